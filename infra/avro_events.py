"""Domain event envelopes <-> Avro records of the ``vip.domain`` schemas.

Every domain event type ``T`` has a schema ``schemas/domain/<t>/vN.avsc``
whose record is ``vip.domain.T``.  A record is a flat list of fields:

* a common header, filled from the envelope (:data:`HEADER_FIELDS`):
  ``event_id``, ``aggregate``, ``aggregate_id``, ``key``, ``version``,
  ``occurred_at`` (the envelope ``timestamp``), ``actor``, ``causation_id``,
  ``correlation_id`` and ``meta_extra`` (any other ``meta`` entries, JSON);
* then one field per attribute of the envelope's ``data``.

The mapping is driven by the schema's field list, not written per event.
Two custom field attributes (ignored by Avro, not part of the canonical form)
say how a data field is carried:

* ``"vip.encoding": "instant"`` - an aware ``datetime`` as an ISO-8601 string
  with offset; ``"json"`` - a dict as JSON text (datetimes inside tagged as
  ``{"$dt": "<ISO-8601>"}``, nested dicts whose own keys start with ``$``
  wrapped as ``{"$map": {...}}``, tuples as arrays).  No attribute: the value
  is carried as is.
* ``"vip.attribute": "<name>"`` - the data attribute the field holds, when the
  Avro name differs (``occurred_at`` and ``actor`` are header names, so e.g.
  ``OrderPaid.occurred_at`` travels as ``order_occurred_at``).

Restored datetimes carry a fixed UTC offset (``datetime.timezone``), not the
original ``ZoneInfo``; they compare equal to the originals.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.codec import (
    REASON_DECODE_FAILED,
    REASON_INVALID_RECORD,
    CodecError,
    SchemaRegistry,
    decode,
    default_registry,
    encode,
)

__all__ = [
    "NAMESPACE",
    "HEADER_FIELDS",
    "schema_name",
    "to_record",
    "from_record",
    "encode_event",
    "decode_event",
    "headers",
    "dumps_json",
    "loads_json",
]

NAMESPACE = "vip.domain"
#: Fields every domain event record starts with; all others are data attributes.
HEADER_FIELDS = (
    "event_id",
    "aggregate",
    "aggregate_id",
    "key",
    "version",
    "occurred_at",
    "actor",
    "causation_id",
    "correlation_id",
    "meta_extra",
)
#: ``meta`` entries that have their own header field.
META_FIELDS = ("key", "actor", "causation_id", "correlation_id")

ENCODING = "vip.encoding"
ATTRIBUTE = "vip.attribute"
_DT = "$dt"
_MAP = "$map"


def schema_name(event_type: str) -> str:
    """Full record name of a domain event type: ``OrderPaid`` -> ``vip.domain.OrderPaid``."""
    return f"{NAMESPACE}.{event_type}"


def _registry(registry: SchemaRegistry | None) -> SchemaRegistry:
    return default_registry() if registry is None else registry


def _invalid(message: str) -> CodecError:
    return CodecError(REASON_INVALID_RECORD, message)


# --- instants and JSON ---------------------------------------------------------


def _instant_out(value: Any, where: str) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise _invalid(f"{where}: expected a timezone-aware datetime, got {value!r}")
    return value.isoformat()


def _instant_in(value: str, where: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise _invalid(f"{where}: not an ISO-8601 timestamp: {value!r}") from exc
    if at.tzinfo is None:
        raise _invalid(f"{where}: timestamp {value!r} has no UTC offset")
    return at


def _tag(value: Any, where: str) -> Any:
    """``value`` as plain JSON data, datetimes and ``$``-keyed dicts tagged."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _invalid(f"{where}: {value!r} has no JSON form")
        return value
    if isinstance(value, datetime):
        return {_DT: _instant_out(value, where)}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _invalid(f"{where}: object keys must be strings, got {k!r}")
            out[k] = _tag(v, f"{where}.{k}")
        if any(k.startswith("$") for k in out):
            return {_MAP: out}
        return out
    if isinstance(value, (list, tuple)):
        return [_tag(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise _invalid(f"{where}: {type(value).__name__} {value!r} cannot be carried as JSON")


def _untag(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_untag(v, where) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and _DT in value:
            return _instant_in(value[_DT], where) if isinstance(value[_DT], str) else value
        if len(value) == 1 and isinstance(value.get(_MAP), dict):
            return {k: _untag(v, f"{where}.{k}") for k, v in value[_MAP].items()}
        return {k: _untag(v, f"{where}.{k}") for k, v in value.items()}
    return value


def dumps_json(value: Any, where: str = "value") -> str:
    """JSON text of ``value`` with datetimes tagged (see the module doc)."""
    return json.dumps(_tag(value, where), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def loads_json(text: str, where: str = "value") -> Any:
    """Inverse of :func:`dumps_json`: tagged datetimes become aware datetimes again."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise _invalid(f"{where}: not JSON text: {exc}") from exc
    return _untag(data, where)


# --- field values ----------------------------------------------------------------


def _value_out(field: Mapping[str, Any], value: Any, where: str) -> Any:
    encoding = field.get(ENCODING)
    if value is None or encoding is None:
        return value  # the codec validates plain values and nulls against the type
    if encoding == "instant":
        return _instant_out(value, where)
    if encoding == "json":
        return dumps_json(value, where)
    raise _invalid(f"{where}: unknown {ENCODING} {encoding!r} in the schema")


def _value_in(field: Mapping[str, Any], value: Any, where: str) -> Any:
    encoding = field.get(ENCODING)
    if value is None or encoding is None:
        return value
    if encoding == "instant":
        return _instant_in(value, where)
    if encoding == "json":
        return loads_json(value, where)
    raise _invalid(f"{where}: unknown {ENCODING} {encoding!r} in the schema")


def _data_fields(raw: Mapping[str, Any]) -> list[tuple[dict, str]]:
    """(field, data attribute) of every non-header field of a record schema."""
    return [(f, f.get(ATTRIBUTE, f["name"])) for f in raw["fields"] if f["name"] not in HEADER_FIELDS]


# --- envelope <-> record ----------------------------------------------------------


def to_record(envelope: Mapping[str, Any], registry: SchemaRegistry | None = None) -> tuple[str, dict]:
    """``(schema full name, Avro record)`` of one domain event envelope.

    Raises :class:`CodecError` ``unknown-schema`` if the event type has no
    schema and ``invalid-record`` if a value cannot be carried (e.g. a naive
    datetime, or a data attribute the schema has no field for).
    """
    reg = _registry(registry)
    full = schema_name(envelope["type"])
    raw = reg.entry(full).raw
    meta = dict(envelope.get("meta") or {})
    extra = {k: v for k, v in meta.items() if k not in META_FIELDS}
    record: dict[str, Any] = {
        "event_id": str(envelope["id"]),
        "aggregate": envelope["aggregate"],
        "aggregate_id": str(envelope["aggregate_id"]),
        "key": envelope.get("key", meta.get("key", "")),
        "version": envelope["version"],
        "occurred_at": _instant_out(envelope["timestamp"], f"{full}.occurred_at"),
        "actor": meta.get("actor", ""),
        "causation_id": meta.get("causation_id", ""),
        "correlation_id": meta.get("correlation_id", ""),
        "meta_extra": dumps_json(extra, f"{full}.meta_extra") if extra else None,
    }
    data = dict(envelope.get("data") or {})
    for field, attribute in _data_fields(raw):
        # An absent attribute is left out: the codec reports it as invalid-record
        # unless the field has a default.
        if attribute in data:
            record[field["name"]] = _value_out(field, data.pop(attribute), f"{full}.{field['name']}")
    if data:
        raise _invalid(f"{full}: data attribute(s) {sorted(data)} have no field in the schema")
    return full, record


def from_record(
    record: Mapping[str, Any],
    schema_fullname: str,
    registry: SchemaRegistry | None = None,
) -> dict:
    """The envelope (as :func:`infra.envelope.envelope` builds it) of a decoded record.

    ``schema_fullname`` names the schema ``record`` is in the shape of (the
    reader schema: the latest version of the writer's name). ``position`` is None.
    """
    reg = _registry(registry)
    entry = reg.entry(schema_fullname)
    full = entry.name
    meta: dict[str, Any] = {
        "key": record["key"],
        "actor": record["actor"],
        "causation_id": record["causation_id"],
        "correlation_id": record["correlation_id"],
    }
    if record.get("meta_extra") is not None:
        meta.update(loads_json(record["meta_extra"], f"{full}.meta_extra"))
    data = {
        attribute: _value_in(field, record.get(field["name"], field.get("default")), f"{full}.{field['name']}")
        for field, attribute in _data_fields(entry.raw)
    }
    return {
        "id": record["event_id"],
        "type": entry.short_name,
        "aggregate": record["aggregate"],
        "key": record["key"],
        "aggregate_id": record["aggregate_id"],
        "version": record["version"],
        "timestamp": _instant_in(record["occurred_at"], f"{full}.occurred_at"),
        "meta": meta,
        "data": data,
        "position": None,
    }


def encode_event(envelope: Mapping[str, Any], registry: SchemaRegistry | None = None) -> bytes:
    """Single-object Avro bytes of a domain event envelope (latest schema version)."""
    full, record = to_record(envelope, registry)
    return encode(full, record, registry=registry)


def decode_event(data: bytes | bytearray | memoryview, registry: SchemaRegistry | None = None) -> dict:
    """The envelope of a single-object Avro domain event (``position`` None)."""
    decoded = decode(data, registry=registry)
    if not decoded.name.startswith(NAMESPACE + "."):
        raise CodecError(
            REASON_INVALID_RECORD, f"{decoded.name} is not a domain event schema ({NAMESPACE}.*)"
        )
    # decode() returns the record in the shape of the latest version of its name.
    try:
        return from_record(decoded.record, decoded.name, registry)
    except CodecError as exc:
        if exc.reason != REASON_INVALID_RECORD:
            raise
        # A well-formed Avro body whose instant or JSON strings do not parse.
        raise CodecError(REASON_DECODE_FAILED, exc.message) from exc


def headers(envelope: Mapping[str, Any], fingerprint: bytes | str) -> list[tuple[str, bytes]]:
    """Kafka headers of a domain event message (all values UTF-8 bytes).

    ``fingerprint`` is the writer schema's 8-byte CRC-64-AVRO fingerprint
    (sent as hex) or its hex string.
    """
    meta = envelope.get("meta") or {}
    fp = fingerprint.hex() if isinstance(fingerprint, (bytes, bytearray, memoryview)) else str(fingerprint)
    timestamp = envelope["timestamp"]
    occurred = timestamp.isoformat() if isinstance(timestamp, datetime) else str(timestamp)
    pairs = [
        ("event_id", str(envelope["id"])),
        ("event_type", str(envelope["type"])),
        ("schema_fingerprint", fp),
        ("occurred_at", occurred),
        ("correlation_id", str(meta.get("correlation_id", ""))),
        ("causation_id", str(meta.get("causation_id", ""))),
    ]
    return [(name, value.encode("utf-8")) for name, value in pairs]
