"""Helpers shared by the folds: instants as sortable strings, money lines."""
from __future__ import annotations

from datetime import datetime, timezone


def iso(at: datetime | str | None) -> str | None:
    """An instant as a UTC ISO string, so rows sort and compare as text."""
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(timezone.utc).isoformat()


def parse(at: str | None) -> datetime | None:
    return datetime.fromisoformat(at) if at else None


def isoify(value):
    """Deep copy of event data with every datetime as a UTC ISO string."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: isoify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [isoify(v) for v in value]
    return value
