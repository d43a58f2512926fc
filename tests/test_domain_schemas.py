"""Avro schemas of the domain events (schemas/domain) and infra/avro_events.

A scenario drives the real aggregates through every event type; each event's
envelope must survive envelope -> Avro bytes -> envelope unchanged.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.base import Ctx
from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member
from infra.policy_file import load_policy
from infra.service_layer.envelope import envelope
from schemas.codec import (
    HEADER_SIZE,
    MAGIC,
    CodecError,
    SchemaRegistry,
    decode,
    default_registry,
    encode,
)
from schemas.events import (
    HEADER_FIELDS,
    decode_event,
    encode_event,
    from_record,
    headers,
    schema_name,
    to_record,
)

TZ = ZoneInfo("Asia/Shanghai")
AGGREGATES = (Member, Contract, Complaint)
REGISTRY = SchemaRegistry()


def event_classes() -> dict[str, type]:
    """Every domain event class of the aggregates, by event type name."""
    found = {}
    for agg in AGGREGATES:
        for cls in vars(agg).values():
            if isinstance(cls, type) and issubclass(cls, agg.Event) and cls.__name__ not in ("Event", "Created"):
                found[cls.__name__] = cls
    return found


EVENT_TYPES = sorted(event_classes())
DOMAIN_NAMES = [n for n in REGISTRY.names() if n.startswith("vip.domain.")]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --- the scenario ------------------------------------------------------------


class Run:
    """Runs commands and snapshots each new event's envelope at once.

    Snapshots (deep copies) because some event bodies mutate dicts that an
    earlier event still holds (e.g. ComplaintSlaAtRisk rewrites the clocks the
    ComplaintFiled event carries).
    """

    def __init__(self) -> None:
        self.envelopes: list[dict] = []
        self.t = datetime(2025, 3, 3, 9, 0, tzinfo=TZ)

    def ctx(self, at: datetime | None = None, actor: str = "ops-1", **extra) -> Ctx:
        if at is not None:
            assert at >= self.t
            self.t = at
        else:
            self.t += timedelta(minutes=5)
        n = len(self.envelopes)
        return Ctx(at=self.t, actor=actor, causation_id=f"cmd-{n}", correlation_id=f"corr-{n // 5}", extra=extra)

    def take(self, aggregate) -> None:
        for e in aggregate.collect_events():
            self.envelopes.append(copy.deepcopy(envelope(e, position=len(self.envelopes) + 1)))


def scenario() -> list[dict]:
    policy = load_policy()
    run = Run()

    # -- member -------------------------------------------------------------
    m = Member.register(run.ctx(), "M001", None, source="order", input_id="in-0")
    run.take(m)
    m.fill_registration(run.ctx(), "in-1", {"name": "pii:v1:bmFtZQ", "phone": "pii:v1:cGhvbmU"})
    m.update_profile(run.ctx(), "in-2", {"email": "pii:v1:ZW1haWw"})
    run.take(m)
    paid_at = run.t
    m.record_order_paid(run.ctx(), "in-3", "O1", 2_100_000, "CNY", paid_at, policy)  # -> gold
    m.record_order_paid(run.ctx(), "in-4", "O2", 100_000, "CNY", run.t, policy)
    m.record_order_refunded(run.ctx(), "in-5", "O2", 40_000, "CNY", run.t, policy)
    m.record_order_cancelled(run.ctx(), "in-6", "O2", run.t)
    m.record_activity(run.ctx(), "in-7", "vip_event", run.t, policy)
    run.take(m)
    m.set_override(run.ctx(), "floor", "gold", "retention offer", run.t + timedelta(days=30))
    m.clear_override(run.ctx(), "offer withdrawn")
    run.take(m)
    m.apply_for_vip(run.ctx(actor="M001"), policy)
    m.start_review(run.ctx())
    m.reject(run.ctx(), "documents incomplete")
    m.apply_for_vip(run.ctx(actor="M001"), policy)
    m.start_review(run.ctx())
    m.approve(run.ctx(), policy)
    m.record_agreement_signed(run.ctx(), "AG-M001")
    m.record_fee_paid(run.ctx(), 19_900, "CNY", "pay-123", policy)  # -> VipActivated
    m.assign_dedicated_agent(run.ctx(), "agent-care-1", "activated", "", policy)
    m.assign_dedicated_agent(run.ctx(actor="sup-1"), "agent-care-2", "reassigned", "pii:v1:cmVhc29u", policy)
    m.lapse(run.ctx(), "AG-M001", "member agreement AG-M001 expired without renewal")
    m.renew_standing(run.ctx(), "AG-M001", policy)
    run.take(m)
    m.terminate_rights(run.ctx(), "breach of §4.3")
    m.apply_for_vip(run.ctx(actor="M001"), policy)
    m.revoke(run.ctx(), "fraud suspicion")
    m.apply_for_vip(run.ctx(actor="M001", channel="app", request={"$dt": "odd", "at": run.t}), policy)
    run.take(m)
    first_review = m.next_review_at
    m.review(run.ctx(at=first_review + timedelta(hours=1), actor="system"), policy)  # gold -> silver
    run.take(m)
    m.review(run.ctx(at=m.next_review_at + timedelta(hours=1), actor="system"), policy)  # -> member
    m.record_erasure(run.ctx(), "in-8")
    run.take(m)

    # -- contract -------------------------------------------------------------
    start = run.t
    terms = {
        "parties": [{"id": "platform", "name": "VIP Platform"}, {"id": "acme", "name": "Acme Ltd"}],
        "validity_months": 12,
        "revenue_share": {"platform": 7000, "acme": 3000},
        "milestones": [
            {"id": "kickoff", "title": "Kick-off", "due_months": 1},
            {"id": "launch", "due_at": start + timedelta(days=3)},
        ],
        "payment_terms_days": 30,
        "notes": ("tuple", 1, 2.5, None, True),
    }
    c = Contract.draft(run.ctx(), "C001", "cooperation", terms)
    c.sign(run.ctx(), "platform")
    c.sign(run.ctx(), "acme")  # -> ContractBecameEffective
    run.take(c)
    c.complete_milestone(run.ctx(), "kickoff")
    run.take(c)
    c.mark_milestone_overdue(run.ctx(at=start + timedelta(days=4), actor="system"), "launch")
    c.issue_invoice(run.ctx(), "INV-1", "acme", 100_000, "CNY", "service_fee")
    c.receive_payment(run.ctx(), "INV-1", 40_000, "CNY", "PAY-1")
    c.grant_discount(run.ctx(), "INV-1", 10_000, "loyalty discount")
    run.take(c)
    c.mark_invoice_overdue(run.ctx(at=run.t + timedelta(days=31), actor="system"), "INV-1")
    c.waive(run.ctx(), "INV-1", "goodwill")
    c.propose_amendment(run.ctx(), "AM-1", {"payment_terms_days": 45, "revenue_share": {"platform": 6000, "acme": 4000}},
                        "amendment")
    c.consent_to_amendment(run.ctx(), "AM-1", "platform")
    c.consent_to_amendment(run.ctx(), "AM-1", "acme")  # -> TermsAmended
    c.record_breach(run.ctx(), "acme", "late delivery", 5_000, "CNY")
    c.open_dispute(run.ctx(), "acme", "disputes the breach")
    c.settle_dispute(run.ctx(), "compensation halved")
    c.renew(run.ctx())
    run.take(c)
    c.expire(run.ctx(at=c.valid_until, actor="system"))
    run.take(c)
    c2 = Contract.draft(run.ctx(), "C002", "member_agreement", {
        "parties": [{"id": "platform"}, {"id": "M001"}], "member_id": "M001"})
    c2.terminate(run.ctx(), "customer withdrew", {"amount_fen": 1_000, "currency": "CNY", "payer": "M001"})
    run.take(c2)

    # -- complaint ---------------------------------------------------------------
    filed = run.t + timedelta(days=1)
    k = Complaint.file(run.ctx(at=filed, actor="M001"), "K001", "M001", "app", "billing", "high",
                       "pii:v1:ZGVzY3JpcHRpb24", "gold", policy)
    k.route_to(run.ctx(at=filed, actor="M001"), "agent-care-2", "dedicated_agent",
               "the member's dedicated agent", 2, policy)
    run.take(k)
    calendar = policy.calendar(k.calendar_id)
    k.mark_at_risk(run.ctx(at=k.clocks["first_response"]["at_risk_at"], actor="system"), "first_response")
    run.take(k)
    k.mark_breached(run.ctx(at=k.clocks["first_response"]["deadline"] + timedelta(microseconds=1), actor="system"), "first_response")
    run.take(k)
    k.acknowledge(run.ctx(actor="agent-7"), calendar)
    k.assign(run.ctx(), "agent-7")
    k.escalate(run.ctx(), "customer threatens to leave")
    run.take(k)
    k.wait_for_customer(run.ctx(actor="agent-7"), "need the order number", calendar)
    run.take(k)
    k.customer_replied(run.ctx(actor="M001"), calendar)
    run.take(k)
    k.resolve(run.ctx(actor="agent-7"), "pii:v1:cmVzb2x1dGlvbg", calendar)
    k.rate(run.ctx(actor="M001"), 4)
    k.close(run.ctx(actor="system"))
    k.reopen(run.ctx(actor="M001"), "problem is back", calendar)
    run.take(k)
    return run.envelopes


ENVELOPES = scenario()


def normalize(value):
    """Tuples compare as lists (JSON has only arrays)."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def without_position(env: dict) -> dict:
    return normalize({k: v for k, v in env.items() if k != "position"})


def _ids(envs):
    return [f"{e['version']:02d}-{e['type']}-{e['key']}" for e in envs]


# --- coverage ------------------------------------------------------------------


def test_scenario_emits_every_event_type():
    emitted = {e["type"] for e in ENVELOPES}
    assert set(EVENT_TYPES) - emitted == set()
    assert len(EVENT_TYPES) >= 50


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_class_has_a_schema(event_type):
    full = schema_name(event_type)
    assert full in REGISTRY.names(), f"{event_type}: add schemas/domain/{snake(event_type)}/v1.avsc"
    entry = REGISTRY.entry(full)
    assert entry.source is not None and entry.source.parent.name == snake(event_type)
    assert entry.source.parent.parent.name == "domain"


def test_no_schema_without_an_event_class():
    assert sorted(n.rsplit(".", 1)[1] for n in DOMAIN_NAMES) == EVENT_TYPES


def _walk_fields(schema):
    """Every field of every record in ``schema`` (nested ones too)."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _walk_fields(branch)
    elif isinstance(schema, dict):
        for f in schema.get("fields", ()):
            yield schema, f
            yield from _walk_fields(f["type"])
        yield from _walk_fields(schema.get("items"))
        yield from _walk_fields(schema.get("values"))
        if isinstance(schema.get("type"), (dict, list)):
            yield from _walk_fields(schema["type"])


def _is_timestamp(t):
    if isinstance(t, list):
        return any(_is_timestamp(b) for b in t)
    return isinstance(t, dict) and t.get("logicalType") == "timestamp-micros"


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_schema_is_documented_and_has_the_common_header(name):
    raw = REGISTRY.raw(name)
    assert raw["namespace"] == "vip.domain" and raw.get("doc")
    fields = raw["fields"]
    for f in fields:
        assert f.get("doc", "").strip(), f"{name}.{f['name']}: every field needs a doc"
        if isinstance(f["type"], list):
            assert f["type"][0] == "null" and f["default"] is None, f"{name}.{f['name']}"
    assert tuple(f["name"] for f in fields[: len(HEADER_FIELDS)]) == HEADER_FIELDS
    types = {f["name"]: f["type"] for f in fields}
    assert types["version"] == "long"
    assert types["occurred_at"] == {"type": "long", "logicalType": "timestamp-micros"}
    assert types["occurred_at_zone"] == "string"
    assert types["meta_extra"]["type"] == "map"


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_every_field_is_a_real_avro_type_not_json_text_or_an_iso_string(name):
    """The analytics contract: no JSON text, no ISO strings, every instant has its zone beside it."""
    raw = REGISTRY.raw(name)
    for record, f in _walk_fields(raw):
        where = f"{name}.{f['name']}"
        assert "vip.encoding" not in f, f"{where}: the retired JSON-text/ISO-string mapping"
        assert "JSON" not in f["doc"] and "ISO-8601" not in f["doc"], where
        siblings = {g["name"]: g for g in record["fields"]}
        if _is_timestamp(f["type"]) and record["name"] != "Instant":  # Instant: {at, zone}
            zone = siblings.get(f["name"] + "_zone")
            assert zone is not None, f"{where}: a timestamp needs its zone in {f['name']}_zone"
            assert zone["type"] == ("string" if isinstance(f["type"], dict) else ["null", "string"]), where
        elif f["name"].endswith("_at") or f["name"] in ("valid_until",):
            raise AssertionError(f"{where}: an instant must be a timestamp-micros (with a _zone field)")


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_fields_match_the_event_attributes(event_type):
    cls = event_classes()[event_type]
    attributes = {k for k in cls.__annotations__ if k not in ("timestamp", "meta")}
    raw = REGISTRY.raw(schema_name(event_type))
    names = {f["name"] for f in raw["fields"]}
    carried = {f.get("vip.attribute", f["name"]) for f in raw["fields"]
               if f["name"] not in HEADER_FIELDS
               and not (f["name"].endswith("_zone") and f["name"][: -len("_zone")] in names)}
    assert carried == attributes


@pytest.mark.parametrize(
    "name, field",
    [("ProfileUpdated", "changes"), ("RegistrationFilled", "profile"), ("MemberRegistered", "profile"),
     ("ComplaintFiled", "description"), ("ComplaintResolved", "resolution")],
)
def test_personal_data_fields_say_they_are_sealed(name, field):
    doc = next(f["doc"] for f in REGISTRY.raw(schema_name(name))["fields"] if f["name"] == field)
    assert "pii:v1:" in doc and "never in clear" in doc


# --- round trip ------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVELOPES, ids=_ids(ENVELOPES))
def test_envelope_round_trips_through_avro(env):
    data = encode_event(env)
    assert data[:2] == MAGIC
    assert data[2:HEADER_SIZE] == REGISTRY.entry(schema_name(env["type"])).fingerprint
    back = decode_event(data)
    assert back["position"] is None
    assert without_position(back) == without_position(env)
    # instants come back aware, at the same instant and offset
    assert back["timestamp"].utcoffset() == env["timestamp"].utcoffset()
    assert back["timestamp"].isoformat() == env["timestamp"].isoformat()


@pytest.mark.parametrize("env", ENVELOPES, ids=_ids(ENVELOPES))
def test_to_record_from_record_are_inverse(env):
    full, record = to_record(env)
    assert full == f"vip.domain.{env['type']}"
    assert record["event_id"] == env["id"] and record["key"] == env["key"]
    assert record["occurred_at"] == int(env["timestamp"].timestamp()) * 1_000_000 + env["timestamp"].microsecond
    assert record["occurred_at_zone"] == "Asia/Shanghai"
    assert without_position(from_record(record, full)) == without_position(env)


def test_nested_datetimes_are_timestamps_restored_in_their_zone():
    effective = next(e for e in ENVELOPES if e["type"] == "ContractBecameEffective")
    _, record = to_record(effective)
    launch = record["milestones"]["launch"]
    assert isinstance(launch["due_at"], int) and launch["due_at_zone"] == "Asia/Shanghai"
    assert launch["status"] == "pending" and launch["completed_at"] is None
    back = decode_event(encode_event(effective))
    due = back["data"]["milestones"]["launch"]["due_at"]
    assert isinstance(due, datetime) and due == effective["data"]["milestones"]["launch"]["due_at"]
    assert due.tzinfo == TZ and "completed_at" not in back["data"]["milestones"]["launch"]
    filed = next(e for e in ENVELOPES if e["type"] == "ComplaintFiled")
    clocks = decode_event(encode_event(filed))["data"]["clocks"]
    assert isinstance(clocks["resolution"]["deadline"], datetime)
    assert isinstance(clocks["resolution"]["used_s"], float) and isinstance(clocks["resolution"]["budget_s"], int)
    assert "paused_at" not in clocks["resolution"] and clocks["resolution"]["running_since"] is not None


def test_fixed_offset_and_utc_datetimes_keep_their_offset():
    paid = next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    for tz, zone in ((timezone(timedelta(hours=-3, minutes=-30)), "-03:30"), (timezone.utc, "+00:00"),
                     (ZoneInfo("America/New_York"), "America/New_York")):
        at = datetime(2025, 3, 9, 1, 30, 0, 123456, tzinfo=tz)
        env = {**paid, "timestamp": at, "data": {**paid["data"], "occurred_at": at}}
        _, record = to_record(env)
        assert record["occurred_at_zone"] == zone and record["order_occurred_at_zone"] == zone
        back = decode_event(encode_event(env))
        assert back["timestamp"] == at and back["timestamp"].isoformat() == at.isoformat()
        assert back["data"]["occurred_at"].utcoffset() == at.utcoffset()


def test_renamed_attributes_and_meta_extra():
    paid = next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    _, record = to_record(paid)
    assert record["order_occurred_at"] == to_record({**paid, "timestamp": paid["data"]["occurred_at"]})[1]["occurred_at"]
    assert record["meta_extra"] == {}
    with_extra = next(e for e in ENVELOPES if "channel" in e["meta"])
    _, record = to_record(with_extra)
    assert record["meta_extra"]["channel"] == {"value": "app"}
    assert set(record["meta_extra"]["request"]["value"]) == {"$dt", "at"}
    assert decode_event(encode_event(with_extra))["meta"] == with_extra["meta"]


def test_optional_fields_carry_null():
    last_review = [e for e in ENVELOPES if e["type"] == "TierReviewed"][-1]
    assert last_review["data"]["next_review_at"] is None
    assert decode_event(encode_event(last_review))["data"]["next_review_at"] is None
    assert to_record(last_review)[1]["next_review_at_zone"] is None
    registered = next(e for e in ENVELOPES if e["type"] == "MemberRegistered")
    assert registered["data"]["profile"] is None
    assert to_record(registered)[1]["profile"] is None


def test_free_form_values_round_trip_exactly():
    """Terms beyond the typed ones, and values that do not fit their typed field, land in ``extra``."""
    drafted = next(e for e in ENVELOPES if e["type"] == "ContractDrafted")
    odd = {
        "$dt": "not a datetime",
        "nested": {"$map": 1, "at": datetime(2025, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))},
        "list": [datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=TZ), {"at": 3, "zone": "x"}, []],
        "float": 0.1 + 0.2,
        "text": "中文",
        "empty": {},
    }
    terms = {**drafted["data"]["terms"], "fee_schedule": odd, "payment_terms_days": "thirty"}
    terms["milestones"] = [*terms["milestones"], {"id": "iso", "due_at": "2027-01-01T00:00:00+08:00"}]
    env = {**drafted, "data": {**drafted["data"], "terms": terms}}
    _, record = to_record(env)
    typed = record["terms"]
    assert typed["validity_months"] == 12 and typed["revenue_share"] == {"platform": 7000, "acme": 3000}
    assert typed["payment_terms_days"] is None and typed["extra"]["payment_terms_days"] == {"value": "thirty"}
    assert typed["milestones"][2]["due_at"] is None and "due_at" in typed["milestones"][2]["extra"]
    assert set(typed["extra"]) == {"notes", "fee_schedule", "payment_terms_days"}
    assert without_position(decode_event(encode_event(env))) == without_position(env)


# --- failures ----------------------------------------------------------------------


def _invalid(fn, *args):
    with pytest.raises(CodecError) as info:
        fn(*args)
    assert info.value.reason == "invalid-record", info.value
    return info.value


def test_corrupted_record_is_rejected_by_encode():
    paid = next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    full, record = to_record(paid)
    for corrupt in (
        {**record, "amount_fen": "2100000"},
        {**record, "version": None},
        {k: v for k, v in record.items() if k != "order_id"},
        {**record, "unexpected": 1},
    ):
        _invalid(encode, full, corrupt)


def test_corrupted_envelope_is_rejected_by_encode_event():
    paid = next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    _invalid(encode_event, {**paid, "data": {**paid["data"], "amount_fen": 12.5}})
    _invalid(encode_event, {**paid, "data": {k: v for k, v in paid["data"].items() if k != "currency"}})
    _invalid(encode_event, {**paid, "data": {**paid["data"], "surprise": 1}})
    _invalid(encode_event, {**paid, "timestamp": paid["timestamp"].replace(tzinfo=None)})
    _invalid(encode_event, {**paid, "data": {**paid["data"], "occurred_at": "2025-03-03"}})
    drafted = next(e for e in ENVELOPES if e["type"] == "ContractDrafted")
    _invalid(encode_event, {**drafted, "data": {**drafted["data"], "terms": {"x": {1, 2}}}})
    _invalid(encode_event, {**drafted, "data": {**drafted["data"], "terms": {1: "non-string key"}}})


def test_unknown_event_type_has_no_schema():
    paid = next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    with pytest.raises(CodecError) as info:
        encode_event({**paid, "type": "NoSuchEvent"})
    assert info.value.reason == "unknown-schema"


def test_upstream_message_is_not_a_domain_event():
    data = encode("vip.upstream.ErasureRequested", {
        "event_id": "e-1", "member_id": "M001", "occurred_at": "2025-03-01T10:00:00+08:00",
        "requested_by": "member", "correlation_id": None})
    with pytest.raises(CodecError):
        decode_event(data)


def test_decode_event_uses_given_registry():
    paid = next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    only = SchemaRegistry(None)
    only.register(REGISTRY.raw("vip.domain.OrderPaid"), 1)
    data = encode_event(paid, registry=only)
    assert data == encode_event(paid)
    assert without_position(decode_event(data, registry=only)) == without_position(paid)
    assert decode(data).name == "vip.domain.OrderPaid"
    assert default_registry().entry("vip.domain.OrderPaid").fingerprint == data[2:HEADER_SIZE]


# --- Kafka headers -------------------------------------------------------------------


def test_headers():
    env = next(e for e in ENVELOPES if e["type"] == "InvoiceIssued")
    fp = REGISTRY.entry(schema_name(env["type"])).fingerprint
    got = headers(env, fp)
    assert [name for name, _ in got] == [
        "event_id", "event_type", "schema_fingerprint", "occurred_at", "correlation_id", "causation_id"]
    assert all(isinstance(v, bytes) for _, v in got)
    h = {name: value.decode() for name, value in got}
    assert h["event_id"] == env["id"] and h["event_type"] == "InvoiceIssued"
    assert h["schema_fingerprint"] == fp.hex() and len(h["schema_fingerprint"]) == 16
    assert datetime.fromisoformat(h["occurred_at"]) == env["timestamp"]
    assert h["correlation_id"] == env["meta"]["correlation_id"]
    assert h["causation_id"] == env["meta"]["causation_id"]


def test_unknown_zone_in_a_message_is_decode_failed():
    paid = next(e for e in ENVELOPES if e["type"] == "OrderPaid")
    full, record = to_record(paid)
    data = encode(full, {**record, "order_occurred_at_zone": "Mars/Olympus"})
    with pytest.raises(CodecError) as info:
        decode_event(data)
    assert info.value.reason == "decode-failed" and "Mars/Olympus" in info.value.message


def test_a_schema_in_the_retired_json_text_style_is_refused():
    old = REGISTRY.raw("vip.domain.OrderCancelled")
    old["fields"].append({"name": "note", "type": "string", "vip.encoding": "json", "doc": "JSON text."})
    reg = SchemaRegistry(None)
    reg.register(old, 1)
    paid = next(e for e in ENVELOPES if e["type"] == "OrderCancelled")
    with pytest.raises(CodecError) as info:
        encode_event({**paid, "data": {**paid["data"], "note": "x"}}, registry=reg)
    assert info.value.reason == "bad-schema" and "vip.encoding" in info.value.message
