"""Behaviour of working-time calendars: deadlines, elapsed time, PRC holidays, serialisation."""
from __future__ import annotations

import json
import random
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import CN_HOLIDAYS_2025_2026, Calendar

SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=SH)


@pytest.fixture(scope="module")
def cn() -> Calendar:
    data = {"id": "cn-business-2025", "kind": "business", **CN_HOLIDAYS_2025_2026}
    return Calendar.from_dict(data)


@pytest.fixture(scope="module")
def always() -> Calendar:
    return Calendar(id="7x24", kind="7x24")


# -- add ------------------------------------------------------------------


def test_seven_by_twenty_four_is_plain_addition(always):
    start = at(2025, 10, 1, 23, 30)  # a holiday at night still counts
    assert always.add(start, 90 * 60) == at(2025, 10, 2, 1, 0)
    assert always.elapsed(start, at(2025, 10, 2, 1, 0)) == 90 * 60


def test_seven_by_twenty_four_counts_real_seconds_across_a_dst_change():
    berlin = Calendar(id="7x24-berlin", kind="7x24", zone="Europe/Berlin")
    start = datetime(2025, 3, 29, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    # Clocks jump 02:00 -> 03:00 on 30 March, so 24 real hours end at 13:00 local.
    end = berlin.add(start, 24 * HOUR)
    assert end.replace(tzinfo=None) == datetime(2025, 3, 30, 13, 0)
    assert berlin.elapsed(start, end) == 24 * HOUR


def test_eight_business_hours_from_friday_afternoon_land_on_monday_afternoon(cn):
    # 14-17 March 2025 has no holidays: 2h on Friday, 6h on Monday.
    assert cn.add(at(2025, 3, 14, 16, 0), 8 * HOUR) == at(2025, 3, 17, 15, 0)


def test_deadline_across_national_day_skips_the_holiday_and_counts_makeup_saturday(cn):
    # Tue 30 Sep: 2h; 1-8 Oct off; Thu 9 and Fri 10 Oct: 9h each; Sat 11 Oct (调休): 3h.
    assert cn.add(at(2025, 9, 30, 16, 0), 23 * HOUR) == at(2025, 10, 11, 12, 0)


def test_start_in_the_evening_counts_from_next_morning_opening(cn):
    assert cn.add(at(2025, 3, 11, 20, 0), 2 * HOUR) == at(2025, 3, 12, 11, 0)


def test_start_before_opening_counts_from_that_mornings_opening(cn):
    assert cn.add(at(2025, 3, 11, 7, 15), 30 * 60) == at(2025, 3, 11, 9, 30)


def test_start_on_a_weekend_counts_from_monday_opening(cn):
    assert cn.add(at(2025, 3, 15, 11, 0), HOUR) == at(2025, 3, 17, 10, 0)


def test_start_on_a_makeup_sunday_counts_that_day(cn):
    assert cn.add(at(2025, 9, 28, 10, 0), HOUR) == at(2025, 9, 28, 11, 0)


def test_deadline_landing_exactly_on_closing_time_is_that_closing_time(cn):
    assert cn.add(at(2025, 3, 10, 9, 0), 9 * HOUR) == at(2025, 3, 10, 18, 0)


def test_five_business_days_are_forty_five_business_hours(cn):
    assert cn.add(at(2025, 3, 10, 9, 0), 45 * HOUR) == at(2025, 3, 14, 18, 0)


def test_zero_seconds_returns_start_unchanged_even_outside_hours(cn):
    start = datetime(2025, 3, 15, 3, 0, tzinfo=timezone.utc)
    assert cn.add(start, 0) is start


def test_start_in_another_zone_is_converted_and_result_is_in_calendar_zone(cn):
    start = datetime(2025, 3, 14, 8, 0, tzinfo=timezone.utc)  # 16:00 in Shanghai
    result = cn.add(start, 8 * HOUR)
    assert result == at(2025, 3, 17, 15, 0)
    assert result.tzinfo == SH


def test_result_is_exact_to_the_microsecond(cn):
    start = at(2025, 3, 14, 17, 59, 59, 999_999)
    assert cn.add(start, 0.000_002) == at(2025, 3, 17, 9, 0, 0, 1)


def test_naive_start_and_negative_duration_are_refused(cn):
    with pytest.raises(ValueError, match="timezone-aware"):
        cn.add(datetime(2025, 3, 14, 16, 0), HOUR)
    with pytest.raises(ValueError, match=">= 0"):
        cn.add(at(2025, 3, 14, 16, 0), -1)
    with pytest.raises(ValueError, match="timezone-aware"):
        cn.elapsed(at(2025, 3, 14), datetime(2025, 3, 15))


def test_four_hundred_days_of_business_time_is_fast_and_consistent(cn):
    start = at(2025, 1, 2, 9, 0)
    seconds = 400 * 9 * HOUR
    began = clock.perf_counter()
    end = cn.add(start, seconds)
    assert cn.elapsed(start, end) == seconds
    assert clock.perf_counter() - began < 0.5
    assert end.year == 2026 and end.tzinfo == SH


# -- elapsed --------------------------------------------------------------


def test_elapsed_over_a_weekend_is_zero(cn):
    assert cn.elapsed(at(2025, 3, 14, 18, 0), at(2025, 3, 17, 9, 0)) == 0


def test_elapsed_is_zero_when_end_is_not_after_start(cn, always):
    assert cn.elapsed(at(2025, 3, 14, 12), at(2025, 3, 14, 10)) == 0
    assert always.elapsed(at(2025, 3, 14, 12), at(2025, 3, 14, 12)) == 0


def test_elapsed_counts_only_opening_hours_of_working_days(cn):
    # Wed 12:00 -> next Tue 10:00 = 6 (Wed) + 9 (Thu) + 9 (Fri) + 9 (Mon) + 1 (Tue).
    assert cn.elapsed(at(2025, 3, 12, 12, 0), at(2025, 3, 18, 10, 0)) == 34 * HOUR


def test_elapsed_over_spring_festival_counts_only_makeup_days(cn):
    # 25 Jan (Sat) to 9 Feb (Sun) 2025: the working days are 26 Jan (调休 Sun),
    # 27 Jan, 5-7 Feb and 8 Feb (调休 Sat).
    assert cn.elapsed(at(2025, 1, 25), at(2025, 2, 9)) == 6 * 9 * HOUR


def test_elapsed_matches_an_hour_by_hour_count(cn):
    rng = random.Random(7)
    for _ in range(200):
        start = at(2025, 9, 1) + timedelta(hours=rng.randrange(24 * 60))
        end = start + timedelta(hours=rng.randrange(24 * 20))
        expected = 0
        hour = start
        while hour < end:
            if cn.is_working_day(hour.date()) and time(9) <= hour.time() < time(18):
                expected += HOUR
            hour += timedelta(hours=1)
        assert cn.elapsed(start, end) == expected


def test_add_and_elapsed_round_trip_over_random_starts_and_durations(cn):
    rng = random.Random(20250101)
    working_starts = 0
    for _ in range(2000):
        start = at(2025, 1, 1) + timedelta(microseconds=rng.randrange(720 * 86400 * 10**6))
        seconds = rng.randrange(1, 60 * 9 * HOUR * 10**6) / 10**6
        end = cn.add(start, seconds)
        assert end >= start
        # Counting from the next opening instead of `start` must give the same deadline.
        assert cn.elapsed(start, end) == seconds
        if cn.elapsed(start, start + timedelta(microseconds=1)) > 0:
            working_starts += 1
        inside = _inside_working_hours(cn, end)
        if inside:
            assert cn.add(start, cn.elapsed(start, inside)) == inside
    assert working_starts > 300  # the sample really exercised starts inside hours


def _inside_working_hours(cal: Calendar, instant: datetime) -> datetime | None:
    """``instant`` nudged 1s later when that keeps it inside the same opening hours."""
    later = instant + timedelta(seconds=1)
    local = later.astimezone(SH)
    if cal.is_working_day(local.date()) and cal.opens < local.time() <= cal.closes:
        return later
    return None


# -- working days ---------------------------------------------------------


def test_working_days_respect_weekends_holidays_and_makeup_days(cn, always):
    assert cn.is_working_day(date(2025, 3, 14))  # Friday
    assert not cn.is_working_day(date(2025, 3, 15))  # Saturday
    assert not cn.is_working_day(date(2025, 10, 8))  # National Day holiday, Wednesday
    assert cn.is_working_day(date(2025, 10, 11))  # 调休 Saturday
    assert always.is_working_day(date(2025, 10, 1))


def test_cn_holiday_table_matches_the_official_announcements():
    holidays = [date.fromisoformat(d) for d in CN_HOLIDAYS_2025_2026["holidays"]]
    makeups = [date.fromisoformat(d) for d in CN_HOLIDAYS_2025_2026["makeup_workdays"]]
    assert sum(d.year == 2025 for d in holidays) == 1 + 8 + 3 + 5 + 3 + 8
    assert sum(d.year == 2026 for d in holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert len(set(holidays)) == len(holidays)
    assert all(d.weekday() >= 5 for d in makeups)  # make-up days are always weekend days
    assert not set(makeups) & set(holidays)


# -- serialisation ----------------------------------------------------------


def test_to_dict_is_json_friendly_sorted_and_round_trips(cn):
    data = cn.to_dict()
    assert data["opens"] == "09:00" and data["closes"] == "18:00"
    assert data["holidays"] == sorted(data["holidays"]) and data["holidays"][0] == "2025-01-01"
    assert data["workdays"] == [0, 1, 2, 3, 4]
    assert Calendar.from_dict(json.loads(json.dumps(data))) == cn


def test_custom_calendar_round_trips_including_seconds_in_hours():
    cal = Calendar(
        id="night-desk",
        kind="business",
        zone="Europe/London",
        opens=time(8, 30, 15),
        closes=time(20, 0),
        workdays=frozenset({5, 6}),
        holidays=frozenset({date(2025, 12, 27)}),
        makeup_workdays=frozenset({date(2025, 12, 29)}),
    )
    assert cal.to_dict()["opens"] == "08:30:15"
    assert Calendar.from_dict(cal.to_dict()) == cal
    assert Calendar.from_dict({"id": "7x24", "kind": "7x24"}) == Calendar(id="7x24", kind="7x24")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"kind": "lunar"}, "unknown calendar kind"),
        ({"opens": "9am"}, "opens must be a time"),
        ({"closes": "25:00"}, "closes must be a time"),
        ({"opens": "18:00", "closes": "09:00"}, "must be after opens"),
        ({"opens": "09:00", "closes": "09:00"}, "must be after opens"),
        ({"zone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"zone": "../etc/passwd"}, "unknown time zone"),
        ({"holidays": ["2025-13-01"]}, "holidays must hold ISO dates"),
        ({"workdays": [0, 7]}, "weekday numbers"),
        ({"workdays": []}, "at least one workday"),
        ({"holiday": ["2025-01-01"]}, "unknown fields"),
        ({"id": ""}, "'id' must be a non-empty string"),
    ],
)
def test_from_dict_rejects_bad_data_with_a_clear_message(patch, message):
    data = {"id": "cal", "kind": "business", **patch}
    with pytest.raises(ValueError, match=message):
        Calendar.from_dict(data)
