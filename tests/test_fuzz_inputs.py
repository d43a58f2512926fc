"""Fuzz: the ingest parser and the upstream decoders answer every input with a value or a reason.

Whatever bytes or JSON arrive, :func:`infra.service_layer.upstream.parse` returns an
:class:`Input` or raises :class:`InputError`, ``read_lines`` reports every
line as parsed or rejected, and :func:`consumers.upstream.decode_message`
returns an :class:`Input` or raises :class:`DeadLetter`. Nothing else escapes.
"""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.upstream import DeadLetter, decode_message
from infra.service_layer.ingest import IngestReport, read_lines
from infra.service_layer.upstream import Input, InputError, parse
from schemas.codec import encode

FIELDS = ["event_id", "type", "member_id", "order_id", "occurred_at", "amount_fen", "currency",
          "name", "phone", "email", "kind", "correlation_id"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**200), max_value=2**200),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["OrderPaid", "OrderRefunded", "CustomerRegistered", "ActivityRecorded",
                                     "login", "CNY", "XXX", "0001-01-01T00:00:00+08:00",
                                     "9999-12-31T23:00:00-08:00", "2025-03-01T10:00:00+08:00",
                                     "2025-03-01T10:00:00", "2999-01-01T00:00:00+00:00"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=6)
records = st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS))
quick = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@quick
@given(source=st.sampled_from(["orders", "crm", "other"]), record=st.one_of(records, values))
def test_parse_returns_an_input_or_a_reason(source, record):
    try:
        item = parse(source, record)
    except InputError as exc:
        assert str(exc)
    else:
        assert isinstance(item, Input) and 0 < item.fields.get("amount_fen", 1) <= 10**12


@quick
@given(lines=st.lists(st.one_of(records.map(lambda r: json.dumps(r, default=str).encode()),
                                st.binary(max_size=40)), max_size=6))
def test_read_lines_reports_every_line_as_parsed_or_rejected(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "in.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    report = IngestReport("orders")
    items = read_lines("orders", path, report)
    assert len(items) + len(report.rejected) == report.lines
    assert all(reason for _, reason, _ in report.rejected)


ORDER = {"event_id": "e1", "member_id": "M1", "order_id": "o1", "occurred_at": "2025-03-01T10:00:00+08:00",
         "amount_fen": 100, "currency": "CNY", "correlation_id": None}


@quick
@given(data=st.binary(max_size=80))
def test_decode_message_returns_an_input_or_a_dead_letter_for_any_bytes(data):
    valid = encode("vip.upstream.OrderPaid", ORDER)
    for value in (data, valid[:10] + data, valid[: len(valid) // 2] + data):
        try:
            assert isinstance(decode_message("orders", value), Input)
        except DeadLetter as dead:
            assert dead.reason.split(":", 1)[0] in ("bad-magic", "unknown-fingerprint", "decode-failed",
                                                    "invalid")


@quick
@given(amount=st.integers(min_value=-(2**63), max_value=2**63 - 1), currency=st.text(max_size=4),
       at=st.sampled_from(["2025-03-01T10:00:00+08:00", "0001-01-01T00:00:00+08:00", "x", ""]))
def test_decoded_avro_values_are_validated_like_json(amount, currency, at):
    value = encode("vip.upstream.OrderPaid", {**ORDER, "amount_fen": amount, "currency": currency,
                                              "occurred_at": at})
    try:
        item = decode_message("orders", value)
    except DeadLetter as dead:
        assert dead.reason.startswith("invalid: ")
    else:
        assert 0 < item.fields["amount_fen"] <= 10**12 and item.fields["currency"] == currency
