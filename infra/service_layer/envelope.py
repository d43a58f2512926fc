"""Domain events as plain envelopes: what folds, the relay and the bus all see."""
from __future__ import annotations

from typing import Any

from eventsourcing.persistence import find_id_convertor
from eventsourcing.utils import resolve_topic

from domain.base import event_id

# One entry per event type: class -> (type name, aggregate); topic -> (class, type name,
# aggregate, whether the class upcasts its older versions).
_NAMES: dict = {}
_TOPICS: dict = {}


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
    data = state.copy()  # the fields less the header: a copy and a few deletes, no comprehension
    del data["originator_id"], data["originator_version"], data["timestamp"]
    data.pop("meta", None)
    data.pop("originator_topic", None)
    kind, aggregate = _names(event.__class__)
    return _lean(kind, aggregate, data, state["originator_id"], state["originator_version"],
                 state["timestamp"], event.meta, position)


def stored_envelope(mapper, note) -> LeanEnvelope:
    """:func:`lean_envelope` of a recorded event (a notification), decoded without the event.

    What ``mapper.to_domain_event`` decodes, less the event object it would
    build and that :func:`lean_envelope` would take apart again: the same
    transcoder, topic and id conversion. A mapper that deciphers or
    decompresses, or an event class that upcasts, takes the mapper's own path.
    A bypass of the library's mapper: infra calls it only through
    ``infra.service_layer.fastpath`` (FAST), whose LIBRARY paths build the event.
    """
    try:
        cls, kind, aggregate, upcasts = _TOPICS[note.topic]
    except KeyError:
        cls = resolve_topic(note.topic)
        cls, kind, aggregate, upcasts = _TOPICS[note.topic] = (
            cls, *_names(cls), getattr(cls, "class_version", 1) != 1)
    if upcasts or mapper.cipher or mapper.compressor:
        return lean_envelope(mapper.to_domain_event(note), note.id)
    data = mapper.transcoder.decode(note.state)
    timestamp, meta = data.pop("timestamp"), data.pop("meta")
    if "originator_topic" in data:
        del data["originator_topic"]
    if "class_version" in data:
        del data["class_version"]
    oid = find_id_convertor(cls, type(note.originator_id))(note.originator_id)
    return _lean(kind, aggregate, data, oid, note.originator_version, timestamp, meta, note.id)


def _names(cls: type) -> tuple[str, str]:
    # (type name, aggregate) of an event class, made once per class
    try:
        return _NAMES[cls]
    except KeyError:
        names = _NAMES[cls] = (cls.__name__, cls.__qualname__.split(".")[0].lower())
        return names


def _lean(kind: str, aggregate: str, data: dict, oid, version: int, timestamp, meta: dict,
          position: int | None) -> LeanEnvelope:
    env = LeanEnvelope(type=kind, aggregate=aggregate, key=meta.get("key", ""), version=version,
                       timestamp=timestamp, meta=meta, data=data, position=position)
    env._oid, env._version = oid, version
    return env
