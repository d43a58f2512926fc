"""Values of the ``vip.domain`` schemas: Python values <-> Avro datums, driven by the schema.

Instants (timestamp-micros with a sibling zone field), named types, the
free-form ``Value`` both ways, and records (optional and rest fields), maps,
arrays and enums from Avro; the rules are listed in :mod:`schemas.events`.
Records to Avro go through the compiled plans of :mod:`schemas.plans`.
"""
from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.codec import (
    REASON_BAD_SCHEMA,
    REASON_INVALID_RECORD,
    CodecError,
    SchemaRegistry,
    default_registry,
)

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
_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{6}))?)?$")
LONG = range(-(2**63), 2**63)  #: the values an Avro long holds


class Misfit(Exception):
    """A value does not fit the Avro type at hand (``where``: what and why)."""


def schema_name(event_type: str) -> str:
    """Full record name of a domain event type: ``OrderPaid`` -> ``vip.domain.OrderPaid``."""
    return f"{NAMESPACE}.{event_type}"


def registry_or_default(registry: SchemaRegistry | None) -> SchemaRegistry:
    return default_registry() if registry is None else registry


def invalid(message: str) -> CodecError:
    return CodecError(REASON_INVALID_RECORD, message)

# --- instants ------------------------------------------------------------------------


def zone_name(at: datetime) -> str:
    """What ``<field>_zone`` holds: the IANA name of a ``ZoneInfo``, else the UTC offset."""
    tz = at.tzinfo
    if isinstance(tz, ZoneInfo) and tz.key:
        return tz.key
    return _offset_text(at.utcoffset())


@functools.lru_cache(maxsize=256)
def _offset_text(offset: timedelta) -> str:
    # Cached: stored events come back with fixed offsets (the transcoder's ISO text), the
    # same few over and over, and the text costs more than the rest of the instant.
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
        raise Misfit(f"{where}: unknown time zone {name!r}") from exc


def instant_out(value: Any, where: str) -> tuple[int, str]:
    """``(microseconds since the epoch, zone_name(value))`` of an aware datetime."""
    offset = value.utcoffset() if isinstance(value, datetime) else None
    if offset is None:
        raise Misfit(f"{where}: expected a timezone-aware datetime, got {value!r}")
    tz = value.tzinfo  # zone_name's rule, with the offset at hand (one call fewer an instant)
    return (value - _EPOCH) // _MICRO, tz.key if isinstance(tz, ZoneInfo) and tz.key else _offset_text(offset)


def instant_in(value: Any, zone: Any, where: str) -> datetime:
    if not isinstance(zone, str):
        raise Misfit(f"{where}: no zone for the instant")
    if isinstance(value, datetime):  # fastavro already applied the logical type (UTC)
        at = value if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, int):
        at = _EPOCH + value * _MICRO
    else:
        raise Misfit(f"{where}: not a timestamp: {value!r}")
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


def prepared(raw: dict) -> tuple[dict, dict]:
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


def deref(t: Any, named: dict) -> Any:
    """The type ``t`` stands for: a named type looked up, a wrapped or plain primitive unwrapped."""
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


_STAMPS: dict[tuple[int, int], tuple[Any, dict, bool]] = {}


def is_timestamp(t: Any, named: dict) -> bool:
    """Whether ``t`` is (or is a null union of) a timestamp. Memoised per type object of a
    prepared schema (cached, so bounded by the registry): asked for every field of every decoded event."""
    key = (id(t), id(named))
    hit = _STAMPS.get(key)
    if hit is not None and hit[0] is t and hit[1] is named:
        return hit[2]
    answer = _timestamp(t, named)
    _STAMPS[key] = (t, named, answer)
    return answer


def _timestamp(t: Any, named: dict) -> bool:
    t = deref(t, named)
    if isinstance(t, list):
        return any(is_timestamp(b, named) for b in t if b != "null")
    return isinstance(t, dict) and t.get("logicalType") == TIMESTAMP


# --- values: Python -> Avro datum (the typed fields: schemas.plans) -----------------


def free_out(value: Any, where: str) -> Any:
    """The ``value`` branch of a ``vip.domain.Value`` record."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        if value not in LONG:
            raise Misfit(f"{where}: {value} does not fit a long")
        return value
    if isinstance(value, datetime):
        at, zone = instant_out(value, where)
        return {"at": at, "zone": zone}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise Misfit(f"{where}: object keys must be strings, got {list(value)!r}")
        return {k: {"value": free_out(v, f"{where}.{k}")} for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [{"value": free_out(v, f"{where}[{i}]")} for i, v in enumerate(value)]
    raise Misfit(f"{where}: {type(value).__name__} {value!r} has no Avro form")


# --- values: Avro datum -> Python ---------------------------------------------------


def _in(t: Any, value: Any, where: str, named: dict) -> Any:
    t = deref(t, named)
    if value is None:
        return None
    if isinstance(t, list):
        return _in(next(b for b in t if b != "null"), value, where, named)
    if isinstance(t, str) or t["type"] == "enum":
        return value
    kind = t["type"]
    if kind == "record":
        if t["__full"] == VALUE:
            return free_in(value["value"], where)
        return record_in(t["fields"], value, where, named)
    if kind == "array":
        return [_in(t["items"], v, f"{where}[{i}]", named) for i, v in enumerate(value)]
    if kind == "map":
        return {k: _in(t["values"], v, f"{where}.{k}", named) for k, v in value.items()}
    return value


def free_in(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [free_in(v["value"], f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if set(value) == {"at", "zone"} and not isinstance(value["at"], dict):  # an Instant
            return instant_in(value["at"], value["zone"], where)
        return {k: free_in(v["value"], f"{where}.{k}") for k, v in value.items()}
    return value


def record_in(fields: list, record: Mapping, where: str, named: dict, top: bool = False) -> dict:
    out: dict[str, Any] = {}
    rest_field = next((f for f in fields if f.get(REST)), None)
    zones = {f["name"] + ZONE_SUFFIX for f in fields if is_timestamp(f["type"], named)}
    for f in fields:
        name = f["name"]
        if name in zones or f is rest_field:
            continue
        value = record.get(name, f.get("default"))
        if value is None and f.get(OPTIONAL):
            continue
        if value is not None and is_timestamp(f["type"], named):
            out[f.get(ATTRIBUTE, name)] = instant_in(value, record.get(name + ZONE_SUFFIX), f"{where}.{name}")
        else:
            out[f.get(ATTRIBUTE, name)] = _in(f["type"], value, f"{where}.{name}", named)
    if rest_field is not None:
        for k, v in (record.get(rest_field["name"]) or {}).items():
            out[k] = free_in(v["value"], f"{where}.{k}")
    return out
