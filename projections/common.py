"""Helpers shared by the folds: instants as sortable strings, money lines."""
from __future__ import annotations

from datetime import datetime, timezone

from domain.base import parse_instant


def iso(at: datetime | str | None) -> str | None:
    """An instant as a UTC ISO string, so rows sort and compare as text."""
    try:  # a datetime, nearly always: straight to the conversion (no type tests first)
        return at.astimezone(timezone.utc).isoformat()
    except AttributeError:
        if at is None:
            return None
        if not isinstance(at, str):
            raise
        return iso(parse_instant(at))
    except OverflowError:
        # Year 1 east of UTC or year 9999 west of it: inputs are refused at parse
        # time, but a log written before that rule must still fold, never crash
        # every later run at the same event: clamp to the first or last instant UTC holds.
        edge = datetime.min if at.year == 1 else datetime.max
        return edge.replace(tzinfo=timezone.utc).isoformat()


def at_or_before(text: str, at: datetime | str) -> bool:
    """Whether a row's instant (ISO text, as :func:`iso` writes it) is at or before ``at``.

    Reading the row's text back is cheaper than writing ``at`` as text (a fold asks this of
    every order); for :func:`iso`'s text both orders agree.
    """
    if isinstance(at, str):
        return text <= iso(at)
    return datetime.fromisoformat(text) <= at


def parse(at: str | None) -> datetime | None:
    """A row's instant back as an aware datetime (None stays None)."""
    return parse_instant(at) if at else None


def isoify(value):
    """Deep copy of event data with every datetime as a UTC ISO string."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: isoify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [isoify(v) for v in value]
    return value
