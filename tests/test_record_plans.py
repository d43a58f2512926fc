"""The compiled plans (schemas/plans.py) make exactly the records the walk of the schema made.

``to_record`` converts an envelope with a plan made once per schema. The
reference below is the walk it replaced, kept here only: the Avro type
looked up and dispatched for every value of every event, the zone of a
timestamp computed from its offset each time. Every event type (the
scenario of tests/test_domain_schemas.py), the stored events of a simulated
year (what the relay reads), odd values and broken values must give the same
record, key order included, the same Avro bytes, and the same error.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.dev.demo import run_demo
from infra.service_layer.fastpath import paths_of
from schemas.codec import REASON_BAD_SCHEMA, CodecError, SchemaRegistry, encode
from schemas.events import to_record
from schemas.values import (
    ATTRIBUTE, HEADER_FIELDS, META_FIELDS, OPTIONAL, REST, TIMESTAMP, VALUE, ZONE_SUFFIX, LONG, Misfit,
    deref, invalid, is_timestamp, prepared, registry_or_default, schema_name,
)
from tests.test_domain_schemas import ENVELOPES, EVENT_TYPES, REGISTRY, TZ

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


# --- the reference: the walk of the schema per value ------------------------------------


def _ref_zone(at: datetime) -> str:
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


def _ref_instant(value: Any, where: str) -> tuple[int, str]:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise Misfit(f"{where}: expected a timezone-aware datetime, got {value!r}")
    return (value - _EPOCH) // _MICRO, _ref_zone(value)


def _ref_free(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        if value not in LONG:
            raise Misfit(f"{where}: {value} does not fit a long")
        return value
    if isinstance(value, datetime):
        at, zone = _ref_instant(value, where)
        return {"at": at, "zone": zone}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise Misfit(f"{where}: object keys must be strings, got {list(value)!r}")
        return {k: {"value": _ref_free(v, f"{where}.{k}")} for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [{"value": _ref_free(v, f"{where}[{i}]")} for i, v in enumerate(value)]
    raise Misfit(f"{where}: {type(value).__name__} {value!r} has no Avro form")


def _ref_primitive(t: str, value: Any, where: str) -> Any:
    integer = isinstance(value, int) and not isinstance(value, bool)
    ok = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "int": integer and -(2**31) <= value < 2**31,
        "long": integer and value in LONG,
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "double": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "bytes": isinstance(value, bytes),
    }[t]
    if not ok:
        raise Misfit(f"{where}: {value!r} is not a {t}")
    return value


def _ref_out(t: Any, value: Any, where: str, named: dict) -> Any:
    t = deref(t, named)
    if isinstance(t, list):
        if value is None:
            if "null" in t:
                return None
            raise Misfit(f"{where}: null is not allowed")
        branches = [b for b in t if b != "null"]
        if len(branches) != 1:
            raise CodecError(REASON_BAD_SCHEMA, f"{where}: only [\"null\", T] unions are mapped")
        return _ref_out(branches[0], value, where, named)
    if isinstance(t, str):
        return _ref_primitive(t, value, where)
    if t.get("logicalType") == TIMESTAMP:
        return _ref_instant(value, where)[0]
    kind = t["type"]
    if kind == "record":
        if t["__full"] == VALUE:
            return {"value": _ref_free(value, where)}
        if not isinstance(value, Mapping):
            raise Misfit(f"{where}: expected an object, got {value!r}")
        return _ref_record(t["fields"], value, where, named)
    if kind == "enum":
        if value not in t["symbols"]:
            raise Misfit(f"{where}: {value!r} is not one of {t['symbols']}")
        return value
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            raise Misfit(f"{where}: expected an array, got {value!r}")
        return [_ref_out(t["items"], v, f"{where}[{i}]", named) for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise Misfit(f"{where}: expected an object with string keys, got {value!r}")
        return {k: _ref_out(t["values"], v, f"{where}.{k}", named) for k, v in value.items()}
    raise CodecError(REASON_BAD_SCHEMA, f"{where}: Avro type {kind!r} is not mapped")


def _ref_record(fields: list, value: Mapping, where: str, named: dict, top: bool = False) -> dict:
    data = dict(value)
    out: dict[str, Any] = {}
    rest_field = next((f for f in fields if f.get(REST)), None)
    rest: dict[str, Any] = {}
    zones = {f["name"] + ZONE_SUFFIX for f in fields if is_timestamp(f["type"], named)}
    for f in fields:
        name = f["name"]
        if name in zones or f is rest_field:
            continue
        attribute = f.get(ATTRIBUTE, name)
        timestamp = is_timestamp(f["type"], named)
        if attribute not in data:
            if f.get(OPTIONAL):
                out[name] = None
                if timestamp:
                    out[name + ZONE_SUFFIX] = None
            elif not top:
                raise Misfit(f"{where}.{attribute}: missing")
            continue
        item = data.pop(attribute)
        try:
            out[name] = _ref_out(f["type"], item, f"{where}.{name}", named)
        except Misfit:
            if rest_field is None:
                raise
            rest[attribute] = item
            out[name] = None
        if timestamp:
            out[name + ZONE_SUFFIX] = None if out[name] is None else _ref_zone(item)
    if rest_field is not None:
        rest.update(data)
        if not all(isinstance(k, str) for k in rest):
            raise Misfit(f"{where}: object keys must be strings, got {list(rest)!r}")
        out[rest_field["name"]] = {k: {"value": _ref_free(v, f"{where}.{k}")} for k, v in rest.items()}
    elif data:
        raise Misfit(f"{where}: attribute(s) {sorted(data)} have no field in the schema")
    return out


def reference_to_record(envelope: Mapping, registry: SchemaRegistry | None = None) -> tuple[str, dict]:
    full = schema_name(envelope["type"])
    raw, named = prepared(registry_or_default(registry).entry(full).raw)
    meta = dict(envelope.get("meta") or {})
    extra = {k: v for k, v in meta.items() if k not in META_FIELDS}
    try:
        occurred_at, zone = _ref_instant(envelope["timestamp"], f"{full}.occurred_at")
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
            "meta_extra": {k: {"value": _ref_free(v, f"{full}.meta_extra.{k}")} for k, v in extra.items()},
        }
        fields = [f for f in raw["fields"] if f["name"] not in HEADER_FIELDS]
        record.update(_ref_record(fields, envelope.get("data") or {}, full, named, top=True))
    except Misfit as exc:
        raise invalid(str(exc)) from None
    return full, record


# --- comparing ---------------------------------------------------------------------------


def _outcome(fn, env, registry=None):
    """The record, key order included, or the error's type, reason and text."""
    try:
        full, record = fn(env, registry)
    except CodecError as exc:
        return ("error", exc.reason, exc.message)
    return (full, record, _order(record))


def _order(value):
    if isinstance(value, dict):
        return [(k, _order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_order(v) for v in value]
    return None


def _encoded(outcome, registry):
    try:
        return encode(outcome[0], outcome[1], registry=registry)
    except CodecError as exc:  # e.g. a missing top-level attribute: the codec reports it
        return ("error", exc.reason, exc.message)


def assert_same(env, registry=None, *, encoded=True):
    """``to_record(env)`` is the reference's record (or error) and encodes to the same bytes (or error)."""
    theirs, ours = _outcome(reference_to_record, env, registry), _outcome(to_record, env, registry)
    assert ours == theirs, env["type"]
    if encoded and ours[0] != "error":
        assert _encoded(ours, registry) == _encoded(theirs, registry)
    return ours


# --- every event type, and odd values -------------------------------------------------------


def _with_instants(env: dict, tz) -> dict:
    """``env`` with every datetime in it moved to zone ``tz`` (same instant)."""
    def move(value):
        if isinstance(value, datetime):
            return value.astimezone(tz)
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(move(v) for v in value)
        return value
    return move(copy.deepcopy(env))


ZONES = [timezone(timedelta(hours=8)), timezone.utc, timezone(timedelta(hours=-3, minutes=-30)),
         timezone(timedelta(hours=5, seconds=7)), timezone(timedelta(hours=-1, microseconds=-12)),
         ZoneInfo("America/New_York")]


@pytest.mark.parametrize("zone", [None, *ZONES], ids=["as-emitted", *map(str, ZONES)])
def test_every_event_type_gives_the_reference_record_and_bytes_in_every_kind_of_zone(zone):
    envelopes = ENVELOPES if zone is None else [_with_instants(e, zone) for e in ENVELOPES]
    assert {e["type"] for e in envelopes} == set(EVENT_TYPES)
    for env in envelopes:
        assert assert_same(env)[0] == schema_name(env["type"])


def _drafted() -> dict:
    return next(e for e in ENVELOPES if e["type"] == "ContractDrafted")


def _variants() -> list[dict]:
    """Envelopes that take the odd turns: misfits kept in a rest field, absent optionals,
    free-form values, and values that fit nothing (each must fail the same way)."""
    drafted, paid = _drafted(), next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    filed = next(e for e in ENVELOPES if e["type"] == "ComplaintFiled")
    effective = next(e for e in ENVELOPES if e["type"] == "ContractBecameEffective")
    terms = drafted["data"]["terms"]
    clocks = filed["data"]["clocks"]

    def with_terms(**changes):
        return {**drafted, "data": {**drafted["data"], "terms": {**terms, **changes}}}

    def with_clock(**changes):
        return {**filed, "data": {**filed["data"], "clocks": {**clocks, "resolution": {
            **clocks["resolution"], **changes}}}}

    def with_paid(**changes):
        return {**paid, "data": {**paid["data"], **changes}}

    odd = {"$dt": "x", "at": datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
           "list": [datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=TZ), {"at": 3, "zone": "x"}, []],
           "float": 0.1 + 0.2, "text": "中文", "empty": {}, "big": 2**62}
    milestones = effective["data"]["milestones"]
    return [
        with_terms(fee_schedule=odd, payment_terms_days="thirty", validity_months=True),
        with_terms(milestones=[*terms["milestones"], {"id": "iso", "due_at": "2027-01-01T00:00:00+08:00"},
                               {"due_at": None, "x": 1}]),
        with_terms(parties=[{"id": "a", "role": 3, "extra_key": [1]}], revenue_share={"a": "half"}),
        with_terms(parties=None, milestones=None, zone=None),
        {**drafted, "data": {**drafted["data"], "terms": {}}},
        with_clock(paused_at=None, stopped_at=datetime(2025, 4, 1, tzinfo=timezone.utc), met=True),
        {**effective, "data": {**effective["data"], "milestones": {
            k: {**v, "completed_at": datetime(2025, 5, 1, 1, 2, 3, 4, tzinfo=ZoneInfo("Europe/London")),
                "weird": {"nested": (1, 2)}} for k, v in milestones.items()}}},
        {**paid, "meta": {**paid["meta"], "channel": "app", "tags": ["a", None, 1.5, {"k": False}]}},
        {**paid, "meta": None, "data": {**paid["data"]}},
        # values that fit nothing: the same error, reason and text
        with_paid(amount_fen=12.5),
        with_paid(amount_fen=True),
        with_paid(amount_fen=2**63),
        with_paid(currency=None),
        with_paid(occurred_at="2025-03-03"),
        with_paid(occurred_at=datetime(2025, 3, 3)),
        with_paid(surprise=1),
        {**paid, "data": {k: v for k, v in paid["data"].items() if k != "currency"}},
        {**paid, "timestamp": paid["timestamp"].replace(tzinfo=None)},
        {**paid, "meta": {**paid["meta"], "bad": {1, 2}}},
        with_clock(deadline=datetime(2025, 4, 1)),
        with_clock(budget_s="long"),
        {**filed, "data": {**filed["data"], "clocks": {"first_response": clocks["first_response"]}}},
        {**filed, "data": {**filed["data"], "clocks": ["not", "an", "object"]}},
        {**filed, "data": {**filed["data"], "clocks": {**clocks, "resolution": {
            k: v for k, v in clocks["resolution"].items() if k != "deadline"}}}},
        {**effective, "data": {**effective["data"], "milestones": {
            k: {**v, "status": "nonsense"} for k, v in milestones.items()}}},
        {**effective, "data": {**effective["data"], "milestones": {1: next(iter(milestones.values()))}}},
        {**effective, "data": {**effective["data"], "milestones": [1]}},
        {**drafted, "data": {**drafted["data"], "terms": {"x": {1, 2}}}},
        {**drafted, "data": {**drafted["data"], "terms": {1: "non-string key"}}},
        with_terms(parties="everyone"),
        with_terms(parties=[None]),
    ]


def test_odd_and_broken_values_give_the_reference_record_or_the_reference_error():
    outcomes = [assert_same(env) for env in _variants()]
    errors = [o for o in outcomes if o[0] == "error"]
    assert 15 <= len(errors) < len(outcomes) and {o[1] for o in errors} == {"invalid-record"}


# --- schemas the domain does not use (yet): every Avro type and the ones not mapped --------


def _odd_registry() -> SchemaRegistry:
    raw = REGISTRY.raw("vip.domain.OrderCancelled")
    stamp = {"type": "long", "logicalType": "timestamp-micros"}
    raw["fields"] += [
        {"name": "small", "type": "int"}, {"name": "ratio", "type": "float"}, {"name": "blob", "type": "bytes"},
        {"name": "flag", "type": "boolean"}, {"name": "nothing", "type": "null"},
        {"name": "wrapped", "type": {"type": "string"}},
        {"name": "stamps", "type": {"type": "array", "items": stamp}},
        {"name": "stamp_map", "type": {"type": "map", "values": ["null", stamp]}},
        {"name": "either", "type": ["null", "string", "long"], "default": None},
        {"name": "digest", "type": ["null", {"type": "fixed", "name": "Digest", "size": 4}], "default": None},
        {"name": "node", "type": ["null", {"type": "record", "name": "Node", "fields": [
            {"name": "label", "type": "string"}, {"name": "next", "type": ["null", "Node"], "default": None}]}],
         "default": None, "vip.optional": True},
        {"name": "seen", "type": stamp, "vip.attribute": "seen_at"}, {"name": "seen_zone", "type": "string"},
    ]
    registry = SchemaRegistry(None)
    registry.register(raw, 1)
    return registry


def test_every_avro_type_and_every_unmapped_one_give_the_reference_record_or_error():
    registry = _odd_registry()
    base = next(e for e in ENVELOPES if e["type"] == "OrderCancelled")
    at = datetime(2025, 3, 3, 9, 0, 0, 7, tzinfo=timezone(timedelta(hours=5, minutes=45)))
    data = {**base["data"], "small": 7, "ratio": 0.5, "blob": b"\x00", "flag": False, "nothing": None,
            "wrapped": "w", "stamps": [at, at.astimezone(TZ)], "stamp_map": {"a": at, "b": None}, "either": None,
            "digest": None, "node": {"label": "a", "next": {"label": "b", "next": None}}, "seen_at": at}
    good = {**base, "data": data}
    assert assert_same(good, registry)[1]["seen_zone"] == "+05:45"
    assert_same({**base, "data": {k: v for k, v in data.items() if k != "node"}}, registry)
    broken = [{"small": 2**31}, {"small": 1.0}, {"ratio": "x"}, {"blob": "text"}, {"flag": 0}, {"nothing": 0},
              {"wrapped": 1}, {"stamps": [at, None]}, {"stamps": (at, "x")}, {"stamp_map": {"a": 1}},
              {"either": "x"}, {"digest": b"abcd"}, {"node": {"label": "a", "next": {"next": None}}},
              {"node": {"label": "a", "next": 5}}, {"seen_at": None}, {"seen_at": "now"}]
    reasons = {assert_same({**base, "data": {**data, **change}}, registry, encoded=False)[1] for change in broken}
    assert reasons == {"invalid-record", "bad-schema"}


# --- what the relay sees: the stored events of a simulated year ------------------------------


@pytest.mark.integration  # a simulated year: a few seconds
def test_the_stored_events_of_a_simulated_year_give_the_reference_records_and_bytes(make_system):
    s = make_system()
    run_demo(s, members=20, seed=7, progress=False)
    decode = paths_of(s.app).stored_envelope
    notes, start = [], 0
    while page := s.app.recorder.select_notifications(start, 500, inclusive_of_start=False):
        notes += page
        start = page[-1].id
    kinds = set()
    for note in notes:
        env = decode(s.app.mapper, note)
        assert assert_same(env)[0] == schema_name(env["type"])
        kinds.add(env["type"])
    assert len(notes) > 300 and len(kinds) > 20
