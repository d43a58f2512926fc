"""Compiled plans: a domain event's ``data`` -> its Avro record fields, made once per schema.

:func:`data_plan` turns the data fields of a registered ``vip.domain`` schema
into a :class:`RecordPlan` (cached per schema): one converter per field, made
from the field's Avro type when the schema is first used, so converting an
event walks no schema. The rules are those listed in :mod:`schemas.events`;
a timestamp's zone is computed once, by the converter that gives its
microseconds, for the sibling ``<name>_zone``.

The values and errors are those of a walk of the schema per value: a value
that does not fit raises :class:`~schemas.values.Misfit` with the same text,
and a type the mapping does not take (a union of two non-null types, an
Avro type it has no rule for, an unknown named type below an array or map)
raises ``bad-schema`` only when a value reaches it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.codec import REASON_BAD_SCHEMA, CodecError
from schemas.values import (
    ATTRIBUTE,
    HEADER_FIELDS,
    LONG,
    OPTIONAL,
    REST,
    TIMESTAMP,
    VALUE,
    ZONE_SUFFIX,
    Misfit,
    deref,
    free_out,
    instant_out,
    is_timestamp,
    prepared,
    zone_name,
)

#: ``convert(value, where) -> datum``; ``where`` names the value in an error.
Convert = Callable[[Any, str], Any]


class RecordPlan:
    """The converters of one record's fields: ``fill`` makes the record's datum (a dict)."""

    __slots__ = ("fields", "rest", "broken")

    def __init__(self) -> None:
        # (name, attribute, convert, optional, zone field or None, "." + name): a timestamp
        # field's convert returns (datum, zone); rest and zone fields have no entry.
        self.fields: tuple = ()
        self.rest: str | None = None  # the vip.rest field: every attribute no field takes
        self.broken: CodecError | None = None  # a field type the mapping cannot resolve

    def fill(self, value: Mapping, where: str, top: bool = False, out: dict | None = None) -> dict:
        """The datum of ``value``, written into ``out`` if given (the record's header, whose
        names no data field has); at the top level a missing attribute is left to the codec."""
        data = dict(value)
        if self.broken is not None:
            raise CodecError(self.broken.reason, self.broken.message)
        if out is None:
            out = {}
        rest: dict[str, Any] = {}
        for name, attribute, convert, optional, zone, suffix in self.fields:
            if attribute not in data:
                if optional:
                    out[name] = None
                    if zone is not None:
                        out[zone] = None
                elif not top:
                    raise Misfit(f"{where}.{attribute}: missing")
                continue
            item = data.pop(attribute)
            try:
                if zone is None:
                    out[name] = convert(item, where + suffix)
                else:
                    out[name], out[zone] = convert(item, where + suffix)
            except Misfit:
                if self.rest is None:
                    raise
                rest[attribute] = item  # kept exactly, in the free-form rest
                out[name] = None
                if zone is not None:
                    out[zone] = None
        if self.rest is not None:
            rest.update(data)
            if not all(isinstance(k, str) for k in rest):
                raise Misfit(f"{where}: object keys must be strings, got {list(rest)!r}")
            out[self.rest] = {k: {"value": free_out(v, f"{where}.{k}")} for k, v in rest.items()}
        elif data:
            raise Misfit(f"{where}: attribute(s) {sorted(data)} have no field in the schema")
        return out


_PLANS: dict[int, tuple[dict, RecordPlan]] = {}


def data_plan(raw: dict) -> RecordPlan:
    """The plan of a domain event schema's data fields (all but :data:`HEADER_FIELDS`),
    made on first use and cached per registered schema (``raw`` is the registry's own)."""
    cached = _PLANS.get(id(raw))
    if cached is None or cached[0] is not raw:
        schema, named = prepared(raw)
        fields = [f for f in schema["fields"] if f["name"] not in HEADER_FIELDS]
        cached = _PLANS[id(raw)] = (raw, _record(fields, named, RecordPlan(), {}))
    return cached[1]


def _record(fields: list, named: dict, plan: RecordPlan, memo: dict) -> RecordPlan:
    try:
        stamps = [is_timestamp(f["type"], named) for f in fields]
    except CodecError as exc:  # the walk raised this for every value of the record
        plan.broken = exc
        return plan
    rest_field = next((f for f in fields if f.get(REST)), None)
    plan.rest = None if rest_field is None else rest_field["name"]
    zones = {f["name"] + ZONE_SUFFIX for f, stamp in zip(fields, stamps) if stamp}
    plan.fields = tuple(
        (f["name"], f.get(ATTRIBUTE, f["name"]),
         _pair(f["type"], named, memo) if stamp else _compile(f["type"], named, memo),
         bool(f.get(OPTIONAL)), f["name"] + ZONE_SUFFIX if stamp else None, "." + f["name"])
        for f, stamp in zip(fields, stamps) if f["name"] not in zones and f is not rest_field)
    return plan


# --- converters ----------------------------------------------------------------------


def _compile(t: Any, named: dict, memo: dict) -> Convert:
    try:
        t = deref(t, named)
    except CodecError as exc:
        return _raises(exc)
    if isinstance(t, list):
        return _union(t, named, memo)
    if isinstance(t, str):
        return _PRIMITIVE_OUT[t]
    if t.get("logicalType") == TIMESTAMP:
        return _micros
    kind = t["type"]
    if kind == "record":
        return _value if t["__full"] == VALUE else _nested(t, named, memo)
    if kind == "enum":
        return _enum(t["symbols"])
    if kind == "array":
        return _array(_compile(t["items"], named, memo))
    if kind == "map":
        return _map(_compile(t["values"], named, memo))

    def unmapped(value: Any, where: str) -> Any:
        raise CodecError(REASON_BAD_SCHEMA, f"{where}: Avro type {kind!r} is not mapped")
    return unmapped


def _pair(t: Any, named: dict, memo: dict) -> Convert:
    """``convert(value, where) -> (datum, zone)`` of a timestamp field: the zone of the
    same ``instant_out`` call; null gives ``(None, None)``."""
    d = deref(t, named)
    if isinstance(d, dict) and d.get("logicalType") == TIMESTAMP:
        return instant_out
    if isinstance(d, list) and "null" in d:
        branches = [b for b in d if b != "null"]
        inner = deref(branches[0], named) if len(branches) == 1 else None
        if isinstance(inner, dict) and inner.get("logicalType") == TIMESTAMP:
            return _nullable_instant
    convert = _compile(t, named, memo)  # any other shape is_timestamp accepts

    def pair(value: Any, where: str) -> tuple:
        datum = convert(value, where)
        return datum, None if datum is None else zone_name(value)
    return pair


def _raises(exc: CodecError) -> Convert:
    def raises(value: Any, where: str) -> Any:
        raise CodecError(exc.reason, exc.message)
    return raises


def _micros(value: Any, where: str) -> int:
    return instant_out(value, where)[0]


def _nullable_instant(value: Any, where: str) -> tuple:
    return (None, None) if value is None else instant_out(value, where)


def _value(value: Any, where: str) -> dict:
    return {"value": free_out(value, where)}


def _union(t: list, named: dict, memo: dict) -> Convert:
    nullable = "null" in t
    branches = [b for b in t if b != "null"]
    inner = _compile(branches[0], named, memo) if len(branches) == 1 else None

    def union(value: Any, where: str) -> Any:
        if value is None:
            if nullable:
                return None
            raise Misfit(f"{where}: null is not allowed")
        if inner is None:
            raise CodecError(REASON_BAD_SCHEMA, f"{where}: only [\"null\", T] unions are mapped")
        return inner(value, where)
    return union


def _nested(t: dict, named: dict, memo: dict) -> Convert:
    plan = memo.get(id(t))
    if plan is None:  # made before its fields, so a record that contains itself ends
        plan = memo[id(t)] = RecordPlan()
        _record(t["fields"], named, plan, memo)
    fill = plan.fill

    def nested(value: Any, where: str) -> dict:
        if not isinstance(value, Mapping):
            raise Misfit(f"{where}: expected an object, got {value!r}")
        return fill(value, where)
    return nested


def _enum(symbols: list) -> Convert:
    def enum(value: Any, where: str) -> Any:
        if value not in symbols:
            raise Misfit(f"{where}: {value!r} is not one of {symbols}")
        return value
    return enum


def _array(items: Convert) -> Convert:
    def array(value: Any, where: str) -> list:
        if not isinstance(value, (list, tuple)):
            raise Misfit(f"{where}: expected an array, got {value!r}")
        return [items(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return array


def _map(values: Convert) -> Convert:
    def map_(value: Any, where: str) -> dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise Misfit(f"{where}: expected an object with string keys, got {value!r}")
        return {k: values(v, f"{where}.{k}") for k, v in value.items()}
    return map_


def _primitive(name: str, fits: Callable[[Any], bool]) -> Convert:
    def primitive(value: Any, where: str) -> Any:
        if fits(value):
            return value
        raise Misfit(f"{where}: {value!r} is not a {name}")
    return primitive


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string(value: Any, where: str) -> Any:  # most fields: no test function called
    if isinstance(value, str):
        return value
    raise Misfit(f"{where}: {value!r} is not a string")


_PRIMITIVE_OUT: dict[str, Convert] = {
    "null": _primitive("null", lambda v: v is None),
    "boolean": _primitive("boolean", lambda v: isinstance(v, bool)),
    "int": _primitive("int", lambda v: _integer(v) and -(2**31) <= v < 2**31),
    "long": _primitive("long", lambda v: _integer(v) and v in LONG),
    "float": _primitive("float", _number),
    "double": _primitive("double", _number),
    "bytes": _primitive("bytes", lambda v: isinstance(v, bytes)),
    "string": _string,
}
