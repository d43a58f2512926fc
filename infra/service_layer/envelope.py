"""Domain events as plain envelopes: what folds, the relay and the bus all see."""
from __future__ import annotations

from typing import Any

from domain.base import event_id

_NAMES: dict = {}  # event class -> (type name, aggregate): one entry per event type


def aggregate_of(event: Any) -> str:
    """``member``, ``contract`` or ``complaint``, from the event's class."""
    return type(event).__qualname__.split(".")[0].lower()


def envelope(event: Any, position: int | None = None) -> dict:
    """A plain dict of one domain event; ``position`` is its notification id."""
    env = lean_envelope(event, position)
    return {"id": env["id"], "aggregate_id": env["aggregate_id"], **env, "meta": dict(event.meta)}


class LeanEnvelope(dict):
    """An envelope whose ``id`` (a uuid5) and ``aggregate_id`` (``str(UUID)``) are made only when
    read: a replay's folds mostly never ask (the ledger's keys do), and both cost more per
    event than the rest of the envelope."""

    __slots__ = ("_oid", "_version")

    def __missing__(self, name: str):
        if name == "id":
            value = self[name] = str(event_id(self._oid, self._version))
        elif name == "aggregate_id":
            value = self[name] = str(self._oid)
        else:
            raise KeyError(name)
        return value

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default


def lean_envelope(event: Any, position: int | None = None) -> LeanEnvelope:
    """The envelope folds see, without the ids computed up front (see :class:`LeanEnvelope`)."""
    cls = event.__class__
    try:
        kind, aggregate = _NAMES[cls]
    except KeyError:
        kind, aggregate = _NAMES[cls] = (cls.__name__, aggregate_of(event))
    meta = event.meta
    state = event.__dict__
    # The event's fields less the header (originator_id, originator_version, timestamp, meta,
    # originator_topic): a copy and a few deletes cost less than a filtering comprehension.
    data = state.copy()
    del data["originator_id"], data["originator_version"], data["timestamp"]
    data.pop("meta", None)
    data.pop("originator_topic", None)
    env = LeanEnvelope(type=kind, aggregate=aggregate, key=meta.get("key", ""),
                       version=state["originator_version"], timestamp=state["timestamp"], meta=meta,
                       data=data, position=position)
    env._oid, env._version = state["originator_id"], state["originator_version"]
    return env
