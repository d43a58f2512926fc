"""Domain events as plain envelopes: what folds, the relay and the bus all see."""
from __future__ import annotations

from typing import Any

from domain.base import event_id

HEADER_FIELDS = ("originator_id", "originator_version", "timestamp", "meta", "originator_topic")


def aggregate_of(event: Any) -> str:
    """``member``, ``contract`` or ``complaint``, from the event's class."""
    return type(event).__qualname__.split(".")[0].lower()


def envelope(event: Any, position: int | None = None) -> dict:
    """A plain dict of one domain event; ``position`` is its notification id."""
    meta = dict(event.meta)
    return {
        "id": str(event_id(event.originator_id, event.originator_version)),
        "type": type(event).__name__,
        "aggregate": aggregate_of(event),
        "key": meta.get("key", ""),
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "timestamp": event.timestamp,
        "meta": meta,
        "data": {k: v for k, v in event.__dict__.items() if k not in HEADER_FIELDS},
        "position": position,
    }
