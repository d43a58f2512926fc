"""The input digest stored in receipts: written directly for parsed inputs, the same bytes as
the json.dumps it replaced (a receipt written before must still match its redelivery)."""
from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from infra.service_layer.upstream import Input, parse

ALPHABET = "aZ09-_:./ \"\\\t\n\x00\x7f\u00e9\u4e2d\U0001f600\ud800"


def dumped(item: Input) -> str:
    """The digest as first written: json.dumps of the content, profile names sorted."""
    fields = {k: (sorted(v) if k == "profile" else v) for k, v in item.fields.items()}
    content = [item.source, item.type, item.member_id, item.occurred_at.isoformat(), fields]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 12)))


def test_random_inputs_digest_to_the_bytes_json_dumps_gave():
    rng = random.Random(21)
    zones = [timezone.utc, timezone(timedelta(hours=8)), ZoneInfo("America/New_York")]
    for _ in range(3000):
        fields: dict = {}
        for _ in range(rng.randrange(0, 5)):
            fields[text(rng)] = rng.choice([text(rng), rng.randrange(-10**20, 10**20), rng.randrange(0, 10)])
        if rng.random() < 0.3:
            fields["profile"] = {text(rng): text(rng) for _ in range(rng.randrange(0, 4))}
        at = datetime(2025, 1, 1, tzinfo=rng.choice(zones)) + timedelta(seconds=rng.randrange(10**8),
                                                                          microseconds=rng.choice([0, 7]))
        item = Input(text(rng), text(rng), text(rng), text(rng), at, fields)
        assert item.digest() == dumped(item), item


def test_fields_of_other_types_take_json_dumps_itself():
    at = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    for value in (True, None, 1.5, [1, "a"], {"b": 2, "a": 1}, at, -0.0):
        item = Input("orders", "OrderPaid", "M1", "e1", at, {"amount_fen": value, "order_id": "O1"})
        assert item.digest() == dumped(item), value
    for profile in (["b", "a"], {"name": "x", "phone": 1}, {1: "x", 2: "y"}):
        item = Input("crm", "ProfileUpdated", "M1", "e1", at, {"profile": profile})
        assert item.digest() == dumped(item), profile


def test_parsed_orders_and_crm_events_digest_as_before():
    records = [
        ("orders", {"type": "OrderPaid", "event_id": "evt-1", "member_id": "M1", "order_id": "SO-1",
                    "occurred_at": "2025-06-30T23:59:59+08:00", "amount_fen": 12300, "currency": "CNY"}),
        ("orders", {"type": "OrderCancelled", "event_id": "evt-2", "member_id": "M1", "order_id": "SO-1",
                    "occurred_at": "2025-07-01T10:00:00Z"}),
        ("crm", {"type": "CustomerRegistered", "event_id": "evt-3", "member_id": "M2", "name": "\u674e\u96f7",
                 "phone": "+86 138", "occurred_at": "2025-07-01T10:00:00+08:00"}),
        ("crm", {"type": "ActivityRecorded", "event_id": "evt-4", "member_id": "M2", "kind": "login",
                 "occurred_at": "2025-07-01T10:00:00+08:00"}),
    ]
    for source, record in records:
        item = parse(source, record)
        assert item.digest() == dumped(item)
    # the stored form of a receipt written before: a fixed value, not only agreement with dumped()
    assert parse(*records[0]).digest() == hashlib.sha256(
        b'["orders", "OrderPaid", "M1", "2025-06-30T23:59:59+08:00", '
        b'{"amount_fen": 12300, "currency": "CNY", "order_id": "SO-1"}]').hexdigest()
