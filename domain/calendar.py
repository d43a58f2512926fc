"""Working-time calendars: how much of a duration counts towards a deadline.

A :class:`Calendar` is either ``7x24`` (every second counts) or ``business``
(only seconds inside the opening hours of working days count). Business days
are the configured weekdays, minus holidays, plus make-up working days (the
PRC 调休 Saturdays and Sundays).

All arithmetic is done on UTC instants with :class:`~datetime.timedelta`, so
results are exact to the microsecond and a DST shift inside a working window
counts the real seconds that passed, not the wall-clock difference. Business
calendars walk day by day, so a 400-day duration costs ~400 steps.

Only the standard library is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KINDS = ("7x24", "business")

_FIELDS = frozenset(
    {"id", "kind", "zone", "opens", "closes", "workdays", "holidays", "makeup_workdays"}
)


def _day_range(first: str, last: str) -> list[str]:
    """Every ISO date from ``first`` to ``last`` inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


# Official State Council announcements for 2025 and 2026. Whole holiday ranges
# are listed even where a day is a weekend anyway, so the list reads like the
# announcement and can be checked against it line by line.
CN_HOLIDAYS_2025_2026: dict = {
    "holidays": [
        *_day_range("2025-01-01", "2025-01-01"),  # New Year
        *_day_range("2025-01-28", "2025-02-04"),  # Spring Festival
        *_day_range("2025-04-04", "2025-04-06"),  # Qingming
        *_day_range("2025-05-01", "2025-05-05"),  # Labour Day
        *_day_range("2025-05-31", "2025-06-02"),  # Dragon Boat
        *_day_range("2025-10-01", "2025-10-08"),  # National Day + Mid-Autumn
        *_day_range("2026-01-01", "2026-01-03"),  # New Year
        *_day_range("2026-02-15", "2026-02-23"),  # Spring Festival
        *_day_range("2026-04-04", "2026-04-06"),  # Qingming
        *_day_range("2026-05-01", "2026-05-05"),  # Labour Day
        *_day_range("2026-06-19", "2026-06-21"),  # Dragon Boat
        *_day_range("2026-09-25", "2026-09-27"),  # Mid-Autumn
        *_day_range("2026-10-01", "2026-10-07"),  # National Day
    ],
    "makeup_workdays": [
        "2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
        "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20",
        "2026-10-10",
    ],
}


@dataclass(frozen=True)
class Calendar:
    """A working-time calendar: either 7x24, or business hours with holidays and make-up working days.

    Opening hours are wall-clock times in ``zone`` and must lie within one day
    (``opens < closes``; overnight shifts are not supported). A deadline that
    lands exactly on closing time is that closing time, not the next opening.
    Durations are rounded to the microsecond.
    """

    id: str
    kind: str
    zone: str = "Asia/Shanghai"
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # Callers may pass sets or lists; freezing them keeps the calendar hashable.
        for name in ("workdays", "holidays", "makeup_workdays"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        _validate(self)

    # -- public interface -------------------------------------------------

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of working time have elapsed after `start` (start must be tz-aware).

        For 7x24: start + seconds. For business: counts only time inside
        opening hours on working days; if start is outside working time the
        count begins at the next opening. Result is tz-aware in the calendar's
        zone. seconds == 0 returns start unchanged. Negative seconds are refused.
        """
        _require_aware(start, "start")
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        if seconds == 0:
            return start
        remaining = timedelta(seconds=seconds)
        if self.kind == "7x24":
            return (_utc(start) + remaining).astimezone(self._tz)
        return self._add_business(_utc(start), remaining)

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Working seconds between start and end (0 if end <= start)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        begin, finish = _utc(start), _utc(end)
        if finish <= begin:
            return 0.0
        if self.kind == "7x24":
            return (finish - begin).total_seconds()
        total = timedelta(0)
        for opening, closing in self._windows(begin, until=finish):
            total += min(closing, finish) - max(opening, begin)
        return total.total_seconds()

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` has working hours. Holidays win over make-up days."""
        if self.kind == "7x24":
            return True
        if day in self.holidays:
            return False
        return day in self.makeup_workdays or day.weekday() in self.workdays

    def to_dict(self) -> dict:
        """A JSON-friendly form: times ``"09:00"``, dates ``"2025-01-01"``, lists sorted."""
        return {
            "id": self.id,
            "kind": self.kind,
            "zone": self.zone,
            "opens": _format_time(self.opens),
            "closes": _format_time(self.closes),
            "workdays": sorted(self.workdays),
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "makeup_workdays": sorted(d.isoformat() for d in self.makeup_workdays),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Calendar":
        """The inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"calendar data must be a dict, got {type(data).__name__}")
        unknown = set(data) - _FIELDS
        if unknown:
            # A typo such as "holiday" would otherwise silently drop every holiday.
            raise ValueError(f"calendar has unknown fields: {sorted(unknown)}")
        for key in ("id", "kind"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"calendar {key!r} must be a non-empty string")
        kwargs: dict[str, Any] = {"id": data["id"], "kind": data["kind"]}
        if "zone" in data:
            kwargs["zone"] = data["zone"]
        for key in ("opens", "closes"):
            if key in data:
                kwargs[key] = _parse_time(key, data[key])
        if "workdays" in data:
            kwargs["workdays"] = _parse_workdays(data["workdays"])
        for key in ("holidays", "makeup_workdays"):
            if key in data:
                kwargs[key] = _parse_dates(key, data[key])
        return cls(**kwargs)

    # -- business-hours machinery -----------------------------------------

    @property
    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)  # ZoneInfo caches instances per key

    def _add_business(self, begin: datetime, remaining: timedelta) -> datetime:
        for opening, closing in self._windows(begin):
            start = max(opening, begin)
            available = closing - start
            if remaining <= available:
                return (start + remaining).astimezone(self._tz)
            remaining -= available
        raise AssertionError("unreachable: _windows is unbounded")  # pragma: no cover

    def _windows(
        self, begin: datetime, until: datetime | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """UTC (open, close) of each working day whose window ends after ``begin``.

        Stops once a window opens at or after ``until``; without ``until`` it
        never stops, which is safe because validation guarantees at least one
        regular workday a week and holidays are finite.
        """
        day = begin.astimezone(self._tz).date()
        while True:
            opening, closing = self._window(day)
            if until is not None and opening >= until:
                return
            if closing > begin and self.is_working_day(day):
                yield opening, closing
            day += timedelta(days=1)

    def _window(self, day: date) -> tuple[datetime, datetime]:
        tz = self._tz
        opening = datetime.combine(day, self.opens, tzinfo=tz)
        closing = datetime.combine(day, self.closes, tzinfo=tz)
        return _utc(opening), _utc(closing)


# -- validation and parsing helpers ---------------------------------------


def _validate(calendar: Calendar) -> None:
    if calendar.kind not in KINDS:
        raise ValueError(f"unknown calendar kind {calendar.kind!r}; expected one of {KINDS}")
    _check_zone(calendar.zone)
    for name in ("opens", "closes"):
        value = getattr(calendar, name)
        if not isinstance(value, time) or value.tzinfo is not None:
            raise ValueError(f"{name} must be a naive datetime.time, got {value!r}")
    if calendar.closes <= calendar.opens:
        raise ValueError(
            f"closes ({calendar.closes}) must be after opens ({calendar.opens}) on the same day"
        )
    if not calendar.workdays <= frozenset(range(7)):
        given = sorted(calendar.workdays, key=repr)
        raise ValueError(f"workdays must be weekday numbers 0-6, got {given}")
    if calendar.kind == "business" and not calendar.workdays:
        # Without a weekly workday, add() could search forever for working time.
        raise ValueError("a business calendar needs at least one workday")
    for name in ("holidays", "makeup_workdays"):
        for value in getattr(calendar, name):
            if type(value) is not date:
                raise ValueError(f"{name} must hold datetime.date values, got {value!r}")


def _check_zone(zone: Any) -> None:
    if not isinstance(zone, str) or not zone:
        raise ValueError(f"zone must be an IANA zone name, got {zone!r}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {zone!r}") from exc


def _parse_time(name: str, value: Any) -> time:
    try:
        parsed = time.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a time like '09:00', got {value!r}") from exc
    if parsed.tzinfo is not None:
        raise ValueError(f"{name} must not carry a UTC offset (the zone field does), got {value!r}")
    return parsed


def _parse_workdays(value: Any) -> frozenset[int]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"workdays must be a list of weekday numbers 0-6, got {value!r}")
    for day in value:
        # bool is an int subclass; True would silently mean Tuesday.
        if type(day) is not int or not 0 <= day <= 6:
            raise ValueError(f"workdays must be weekday numbers 0-6 (Monday=0), got {day!r}")
    return frozenset(value)


def _parse_dates(name: str, value: Any) -> frozenset[date]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of ISO dates, got {value!r}")
    try:
        return frozenset(date.fromisoformat(item) for item in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold ISO dates like '2025-01-01': {exc}") from exc


def _format_time(value: time) -> str:
    timespec = "minutes" if value.second == 0 and value.microsecond == 0 else "auto"
    return value.isoformat(timespec=timespec)


def _require_aware(at: Any, what: str) -> None:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {at!r}")


def _utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc)
