"""Domain event envelopes <-> Avro records of the ``vip.domain`` schemas.

Every domain event type ``T`` has a schema ``schemas/domain/<t>/vN.avsc``
whose record is ``vip.domain.T``: the common header (:data:`HEADER_FIELDS`,
filled from the envelope), then one field per attribute of the envelope's
``data``. Every value is a plain Avro type a standard reader understands
(see ``schemas/README.md``); the mapping is driven by the schema alone, so a
new event type needs its ``.avsc`` and nothing else. The rules, by Avro type:

* ``long`` with ``logicalType: timestamp-micros`` <-> aware ``datetime``; the
  zone travels in the sibling field ``<name>_zone`` (an IANA name such as
  ``Asia/Shanghai`` when the datetime has a ``ZoneInfo``, else the fixed
  offset ``+08:00``), so the datetime comes back in its own zone;
* ``record`` <-> ``dict``. A field with ``"vip.optional": true`` may be absent
  from the dict (absent <-> null). A ``map<Value>`` field with
  ``"vip.rest": true`` holds every key the other fields do not name, and any
  value that does not fit its typed field, so free-form dicts survive exactly;
* ``map`` <-> ``dict``; ``array`` <-> ``list`` (tuples are written as arrays);
  ``enum``, primitives and ``["null", T]`` carry the value as is;
* the named record ``vip.domain.Value`` is a free-form value (null, boolean,
  long, double, string, ``vip.domain.Instant`` {at, zone}, array or map of
  Value), used where the shape is open (``meta_extra``, free terms);
* ``"vip.attribute": "<name>"`` names the data attribute a field holds when
  the Avro name differs (``occurred_at`` and ``actor`` are header names, so
  ``OrderPaid.occurred_at`` travels as ``order_occurred_at``).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.codec import (
    REASON_DECODE_FAILED,
    REASON_INVALID_RECORD,
    CodecError,
    SchemaRegistry,
    decode,
    encode,
)
from schemas.plans import data_plan
from schemas.values import (
    HEADER_FIELDS,
    META_FIELDS,
    NAMESPACE,
    Misfit,
    free_in,
    free_out,
    instant_in,
    instant_out,
    invalid,
    prepared,
    record_in,
    registry_or_default,
    schema_name,
    zone_name,
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
    "zone_name",
]



# --- envelope <-> record ----------------------------------------------------------


def _data_fields(raw: Mapping[str, Any]) -> list[dict]:
    return [f for f in raw["fields"] if f["name"] not in HEADER_FIELDS]


def to_record(envelope: Mapping[str, Any], registry: SchemaRegistry | None = None) -> tuple[str, dict]:
    """``(schema full name, Avro record)`` of one domain event envelope.

    Raises :class:`CodecError` ``unknown-schema`` if the event type has no
    schema and ``invalid-record`` if a value cannot be carried (e.g. a naive
    datetime, or a data attribute the schema has no field for).
    """
    full = schema_name(envelope["type"])
    plan = data_plan(registry_or_default(registry).entry(full).raw)
    meta = envelope.get("meta") or {}
    try:
        occurred_at, zone = instant_out(envelope["timestamp"], f"{full}.occurred_at")
        record: dict[str, Any] = {
            "event_id": str(envelope["id"]),
            "aggregate": envelope["aggregate"],
            "aggregate_id": str(envelope["aggregate_id"]),
            "key": envelope.get("key", meta.get("key", "")),
            "version": envelope["version"],
            "occurred_at": occurred_at,
            "occurred_at_zone": zone,
            "actor": meta.get("actor", ""),
            "causation_id": meta.get("causation_id", ""),
            "correlation_id": meta.get("correlation_id", ""),
            "meta_extra": {k: {"value": free_out(v, f"{full}.meta_extra.{k}")}
                           for k, v in meta.items() if k not in META_FIELDS},
        }
        plan.fill(envelope.get("data") or {}, full, top=True, out=record)
    except Misfit as exc:
        raise invalid(str(exc)) from None
    return full, record


def from_record(
    record: Mapping[str, Any],
    schema_fullname: str,
    registry: SchemaRegistry | None = None,
) -> dict:
    """The envelope (as :func:`infra.service_layer.envelope.envelope` builds it) of a decoded record.

    ``schema_fullname`` names the schema ``record`` is in the shape of (the
    reader schema: the latest version of the writer's name). ``position`` is None.
    """
    entry = registry_or_default(registry).entry(schema_fullname)
    full = entry.name
    raw, named = prepared(entry.raw)
    try:
        meta: dict[str, Any] = {k: record[k] for k in META_FIELDS}
        meta.update({k: free_in(v["value"], f"{full}.meta_extra.{k}")
                     for k, v in (record.get("meta_extra") or {}).items()})
        timestamp = instant_in(record["occurred_at"], record.get("occurred_at_zone"), f"{full}.occurred_at")
        data = record_in(_data_fields(raw), record, full, named, top=True)
    except Misfit as exc:
        raise invalid(str(exc)) from None
    return {
        "id": record["event_id"],
        "type": entry.short_name,
        "aggregate": record["aggregate"],
        "key": record["key"],
        "aggregate_id": record["aggregate_id"],
        "version": record["version"],
        "timestamp": timestamp,
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
        # A well-formed Avro body whose values do not make an event (e.g. an unknown zone).
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
