"""Domain events as plain envelopes: what folds, the relay and the bus all see."""
from __future__ import annotations

from typing import Any

from eventsourcing.persistence import find_id_convertor
from eventsourcing.utils import resolve_topic

from domain.base import event_id

_NAMES: dict = {}  # event class -> (type name, aggregate): one entry per event type
_HEADER = ("originator_id", "originator_version", "timestamp", "meta", "originator_topic")


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
    state = event.__dict__
    meta = event.meta
    return _lean(event.__class__, state.copy(), state["originator_id"], state["originator_version"],
                 state["timestamp"], meta, position)


def stored_envelope(mapper, note) -> LeanEnvelope:
    """:func:`lean_envelope` of a recorded event (a notification), decoded without the event.

    What ``mapper.to_domain_event`` decodes, less the event object it would
    build and that :func:`lean_envelope` would take apart again: the same
    transcoder, topic and id conversion. A mapper that deciphers or
    decompresses, or an event class that upcasts, takes the mapper's own path.
    """
    cls = resolve_topic(note.topic)
    if mapper.cipher or mapper.compressor or getattr(cls, "class_version", 1) != 1:
        return lean_envelope(mapper.to_domain_event(note), note.id)
    state = mapper.transcoder.decode(note.state)
    oid = find_id_convertor(cls, type(note.originator_id))(note.originator_id)
    state.pop("class_version", None)
    return _lean(cls, state, oid, note.originator_version, state["timestamp"], state["meta"], note.id)


def _lean(cls: type, data: dict, oid, version: int, timestamp, meta: dict, position) -> LeanEnvelope:
    # ``data``: the event's fields, to be kept less the header (originator_id,
    # originator_version, timestamp, meta, originator_topic) by a few deletes.
    try:
        kind, aggregate = _NAMES[cls]
    except KeyError:
        kind, aggregate = _NAMES[cls] = (cls.__name__, cls.__qualname__.split(".")[0].lower())
    for name in _HEADER:
        data.pop(name, None)
    env = LeanEnvelope(type=kind, aggregate=aggregate, key=meta.get("key", ""), version=version,
                       timestamp=timestamp, meta=meta, data=data, position=position)
    env._oid, env._version = oid, version
    return env
