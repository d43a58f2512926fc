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

import copy
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.codec import (
    REASON_BAD_SCHEMA,
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
    "zone_name",
]

NAMESPACE = "vip.domain"
#: Fields every domain event record starts with; all others carry data attributes.
HEADER_FIELDS = (
    "event_id",
    "aggregate",
    "aggregate_id",
    "key",
    "version",
    "occurred_at",
    "occurred_at_zone",
    "actor",
    "causation_id",
    "correlation_id",
    "meta_extra",
)
#: ``meta`` entries that have their own header field.
META_FIELDS = ("key", "actor", "causation_id", "correlation_id")

ATTRIBUTE = "vip.attribute"
OPTIONAL = "vip.optional"
REST = "vip.rest"
ZONE_SUFFIX = "_zone"
TIMESTAMP = "timestamp-micros"
VALUE = f"{NAMESPACE}.Value"
INSTANT = f"{NAMESPACE}.Instant"
_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{6}))?)?$")
_LONG = range(-(2**63), 2**63)


class _Misfit(Exception):
    """A value does not fit the Avro type at hand (``where``: what and why)."""


def schema_name(event_type: str) -> str:
    """Full record name of a domain event type: ``OrderPaid`` -> ``vip.domain.OrderPaid``."""
    return f"{NAMESPACE}.{event_type}"


def _registry(registry: SchemaRegistry | None) -> SchemaRegistry:
    return default_registry() if registry is None else registry


def _invalid(message: str) -> CodecError:
    return CodecError(REASON_INVALID_RECORD, message)


# --- instants ------------------------------------------------------------------------


def zone_name(at: datetime) -> str:
    """What ``<field>_zone`` holds: the IANA name of a ``ZoneInfo``, else the UTC offset."""
    tz = at.tzinfo
    if isinstance(tz, ZoneInfo) and tz.key:
        return tz.key
    offset = at.utcoffset()
    sign = "-" if offset < timedelta(0) else "+"
    seconds, micros = divmod(abs(offset) // _MICRO, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if secs or micros:
        text += f":{secs:02d}" + (f".{micros:06d}" if micros else "")
    return text


def _zone(name: str, where: str) -> tzinfo:
    m = _OFFSET.match(name)
    if m:
        sign, hh, mm, ss, us = m.groups()
        delta = timedelta(hours=int(hh), minutes=int(mm), seconds=int(ss or 0), microseconds=int(us or 0))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _Misfit(f"{where}: unknown time zone {name!r}") from exc


def _instant_out(value: Any, where: str) -> tuple[int, str]:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise _Misfit(f"{where}: expected a timezone-aware datetime, got {value!r}")
    return (value - _EPOCH) // _MICRO, zone_name(value)


def _instant_in(value: Any, zone: Any, where: str) -> datetime:
    if not isinstance(zone, str):
        raise _Misfit(f"{where}: no zone for the instant")
    if isinstance(value, datetime):  # fastavro already applied the logical type (UTC)
        at = value if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, int):
        at = _EPOCH + value * _MICRO
    else:
        raise _Misfit(f"{where}: not a timestamp: {value!r}")
    return at.astimezone(_zone(zone, where))


# --- named types ---------------------------------------------------------------------


def _annotate(schema: Any, namespace: str, found: dict) -> None:
    """Mark every named type in ``schema`` (a private copy) with its full name; index them."""
    if isinstance(schema, list):
        for branch in schema:
            _annotate(branch, namespace, found)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            name = schema["name"]
            namespace = name.rsplit(".", 1)[0] if "." in name else schema.get("namespace", namespace)
            full = name if "." in name else f"{namespace}.{name}" if namespace else name
            schema["__full"] = full
            found[full] = schema
            found.setdefault(full.rsplit(".", 1)[-1], schema)
            for f in schema.get("fields", ()):
                _annotate(f["type"], namespace, found)
        elif kind in ("array", "map"):
            _annotate(schema.get("items", schema.get("values")), namespace, found)
        elif isinstance(kind, (dict, list)):
            _annotate(kind, namespace, found)


_PREPARED: dict[int, tuple[dict, dict, dict]] = {}


def _prepared(raw: dict) -> tuple[dict, dict]:
    """``(annotated copy of raw, named types)``, cached per registered schema."""
    cached = _PREPARED.get(id(raw))
    if cached is None or cached[0] is not raw:
        schema, named = copy.deepcopy(raw), {}
        _annotate(schema, "", named)
        for f in schema["fields"]:
            if "vip.encoding" in f:
                raise CodecError(REASON_BAD_SCHEMA, f"{schema['__full']}.{f['name']}: vip.encoding is the "
                                 "retired JSON-text/ISO-string mapping; give the field a real Avro type "
                                 "(schemas/README.md, 'Adding an event')")
        cached = _PREPARED[id(raw)] = (raw, schema, named)
    return cached[1], cached[2]


def _deref(t: Any, named: dict) -> Any:
    while True:
        if isinstance(t, str) and t not in _PRIMITIVES:
            if t not in named:
                raise CodecError(REASON_BAD_SCHEMA, f"unknown named type {t!r}")
            t = named[t]
        elif isinstance(t, dict) and isinstance(t.get("type"), (dict, list)):
            t = t["type"]
        elif isinstance(t, dict) and t.get("type") in _PRIMITIVES and not t.get("logicalType"):
            t = t["type"]
        else:
            return t


def _is_timestamp(t: Any, named: dict) -> bool:
    t = _deref(t, named)
    if isinstance(t, list):
        return any(_is_timestamp(b, named) for b in t if b != "null")
    return isinstance(t, dict) and t.get("logicalType") == TIMESTAMP


# --- values: Python -> Avro datum ---------------------------------------------------


def _out(t: Any, value: Any, where: str, named: dict) -> Any:
    t = _deref(t, named)
    if isinstance(t, list):
        if value is None:
            if "null" in t:
                return None
            raise _Misfit(f"{where}: null is not allowed")
        branches = [b for b in t if b != "null"]
        if len(branches) != 1:
            raise CodecError(REASON_BAD_SCHEMA, f"{where}: only [\"null\", T] unions are mapped")
        return _out(branches[0], value, where, named)
    if isinstance(t, str):
        return _primitive(t, value, where)
    if t.get("logicalType") == TIMESTAMP:
        return _instant_out(value, where)[0]
    kind = t["type"]
    if kind == "record":
        if t["__full"] == VALUE:
            return {"value": _free_out(value, where)}
        if not isinstance(value, Mapping):
            raise _Misfit(f"{where}: expected an object, got {value!r}")
        return _record_out(t["fields"], value, where, named)
    if kind == "enum":
        if value not in t["symbols"]:
            raise _Misfit(f"{where}: {value!r} is not one of {t['symbols']}")
        return value
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            raise _Misfit(f"{where}: expected an array, got {value!r}")
        return [_out(t["items"], v, f"{where}[{i}]", named) for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _Misfit(f"{where}: expected an object with string keys, got {value!r}")
        return {k: _out(t["values"], v, f"{where}.{k}", named) for k, v in value.items()}
    raise CodecError(REASON_BAD_SCHEMA, f"{where}: Avro type {kind!r} is not mapped")


def _primitive(t: str, value: Any, where: str) -> Any:
    ok = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31,
        "long": isinstance(value, int) and not isinstance(value, bool) and value in _LONG,
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "double": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "bytes": isinstance(value, bytes),
    }[t]
    if not ok:
        raise _Misfit(f"{where}: {value!r} is not a {t}")
    return value


def _free_out(value: Any, where: str) -> Any:
    """The ``value`` branch of a ``vip.domain.Value`` record."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        if value not in _LONG:
            raise _Misfit(f"{where}: {value} does not fit a long")
        return value
    if isinstance(value, datetime):
        at, zone = _instant_out(value, where)
        return {"at": at, "zone": zone}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise _Misfit(f"{where}: object keys must be strings, got {list(value)!r}")
        return {k: {"value": _free_out(v, f"{where}.{k}")} for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [{"value": _free_out(v, f"{where}[{i}]")} for i, v in enumerate(value)]
    raise _Misfit(f"{where}: {type(value).__name__} {value!r} has no Avro form")


def _record_out(fields: list, value: Mapping, where: str, named: dict, top: bool = False) -> dict:
    data = dict(value)
    out: dict[str, Any] = {}
    rest_field = next((f for f in fields if f.get(REST)), None)
    rest: dict[str, Any] = {}
    zones = {f["name"] + ZONE_SUFFIX for f in fields if _is_timestamp(f["type"], named)}
    for f in fields:
        name = f["name"]
        if name in zones or f is rest_field:
            continue
        attribute = f.get(ATTRIBUTE, name)
        timestamp = _is_timestamp(f["type"], named)
        if attribute not in data:
            if f.get(OPTIONAL):
                out[name] = None
                if timestamp:
                    out[name + ZONE_SUFFIX] = None
            elif not top:
                raise _Misfit(f"{where}.{attribute}: missing")
            continue  # top level: the codec applies the default or reports the missing field
        item = data.pop(attribute)
        try:
            out[name] = _out(f["type"], item, f"{where}.{name}", named)
        except _Misfit:
            if rest_field is None:
                raise
            rest[attribute] = item  # kept exactly, in the free-form rest
            out[name] = None
        if timestamp:
            out[name + ZONE_SUFFIX] = None if out[name] is None else zone_name(item)
    if rest_field is not None:
        rest.update(data)
        if not all(isinstance(k, str) for k in rest):
            raise _Misfit(f"{where}: object keys must be strings, got {list(rest)!r}")
        out[rest_field["name"]] = {k: {"value": _free_out(v, f"{where}.{k}")} for k, v in rest.items()}
    elif data:
        raise _Misfit(f"{where}: attribute(s) {sorted(data)} have no field in the schema")
    return out


# --- values: Avro datum -> Python ---------------------------------------------------


def _in(t: Any, value: Any, where: str, named: dict) -> Any:
    t = _deref(t, named)
    if value is None:
        return None
    if isinstance(t, list):
        return _in(next(b for b in t if b != "null"), value, where, named)
    if isinstance(t, str) or t["type"] == "enum":
        return value
    kind = t["type"]
    if kind == "record":
        if t["__full"] == VALUE:
            return _free_in(value["value"], where)
        return _record_in(t["fields"], value, where, named)
    if kind == "array":
        return [_in(t["items"], v, f"{where}[{i}]", named) for i, v in enumerate(value)]
    if kind == "map":
        return {k: _in(t["values"], v, f"{where}.{k}", named) for k, v in value.items()}
    return value


def _free_in(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_free_in(v["value"], f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if set(value) == {"at", "zone"} and not isinstance(value["at"], dict):  # an Instant
            return _instant_in(value["at"], value["zone"], where)
        return {k: _free_in(v["value"], f"{where}.{k}") for k, v in value.items()}
    return value


def _record_in(fields: list, record: Mapping, where: str, named: dict, top: bool = False) -> dict:
    out: dict[str, Any] = {}
    rest_field = next((f for f in fields if f.get(REST)), None)
    zones = {f["name"] + ZONE_SUFFIX for f in fields if _is_timestamp(f["type"], named)}
    for f in fields:
        name = f["name"]
        if name in zones or f is rest_field:
            continue
        value = record.get(name, f.get("default"))
        if value is None and f.get(OPTIONAL):
            continue
        if value is not None and _is_timestamp(f["type"], named):
            out[f.get(ATTRIBUTE, name)] = _instant_in(value, record.get(name + ZONE_SUFFIX), f"{where}.{name}")
        else:
            out[f.get(ATTRIBUTE, name)] = _in(f["type"], value, f"{where}.{name}", named)
    if rest_field is not None:
        for k, v in (record.get(rest_field["name"]) or {}).items():
            out[k] = _free_in(v["value"], f"{where}.{k}")
    return out


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
    raw, named = _prepared(_registry(registry).entry(full).raw)
    meta = dict(envelope.get("meta") or {})
    extra = {k: v for k, v in meta.items() if k not in META_FIELDS}
    try:
        occurred_at, zone = _instant_out(envelope["timestamp"], f"{full}.occurred_at")
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
            "meta_extra": {k: {"value": _free_out(v, f"{full}.meta_extra.{k}")} for k, v in extra.items()},
        }
        record.update(_record_out(_data_fields(raw), envelope.get("data") or {}, full, named, top=True))
    except _Misfit as exc:
        raise _invalid(str(exc)) from None
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
    entry = _registry(registry).entry(schema_fullname)
    full = entry.name
    raw, named = _prepared(entry.raw)
    try:
        meta: dict[str, Any] = {k: record[k] for k in META_FIELDS}
        meta.update({k: _free_in(v["value"], f"{full}.meta_extra.{k}")
                     for k, v in (record.get("meta_extra") or {}).items()})
        timestamp = _instant_in(record["occurred_at"], record.get("occurred_at_zone"), f"{full}.occurred_at")
        data = _record_in(_data_fields(raw), record, full, named, top=True)
    except _Misfit as exc:
        raise _invalid(str(exc)) from None
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
