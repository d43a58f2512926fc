"""Dead letters: what cannot be decoded, validated or applied goes to <topic>.dlq with its reason."""
from __future__ import annotations

import pytest

from infra.kafka.admin import read_topics
from infra.kafka.bus import header_map
from schemas.codec import MAGIC, encode
from tests.test_bus_flow import bus, upstream  # noqa: F401  (the fixture)
from domain.window import COUNTED, CURRENCY, PAID

pytestmark = pytest.mark.kafka


def _avro(kind: str, record: dict) -> bytes:
    return encode(f"vip.upstream.{kind}", record)


def test_bad_messages_go_to_the_dead_letter_topic_and_good_ones_around_them_apply(bus):
    orders, crm = bus.topics.orders, bus.topics.crm
    m1, m2, m3 = (f"{bus.prefix}-M{n}" for n in (1, 2, 3))
    good1 = upstream("OrderPaid", m1, "2025-03-01T10:00:00+08:00", order_id="O-1", amount_fen=10_000, currency="CNY")
    good2 = upstream("OrderPaid", m1, "2025-03-01T11:00:00+08:00", order_id="O-2", amount_fen=20_000, currency="CNY")
    good3 = upstream("OrderPaid", m2, "2025-03-01T12:00:00+08:00", order_id="O-3", amount_fen=30_000, currency="CNY")
    good4 = upstream("CustomerRegistered", m3, "2025-03-01T12:30:00+08:00", name="李娜")
    body = _avro(*good1)[len(MAGIC) + 8:]
    _, template = upstream("OrderPaid", m2, "2025-03-01T13:00:00+08:00", order_id="O-9", amount_fen=500,
                           currency="CNY")

    # (topic, key, value, expected reason prefix or None for a good message)
    plan = [
        (orders, m1, _avro(*good1), None),
        (orders, m1, b"this is not avro", "bad-magic: "),
        (orders, m1, _avro(*good2), None),
        (orders, m1, _avro(*good1), None),   # redelivered: a duplicate, applied once
        (orders, m2, MAGIC + bytes.fromhex("0123456789abcdef") + body, "unknown-fingerprint: "),
        (orders, m2, _avro("OrderPaid", {**template, "amount_fen": -500}),
         "invalid: amount_fen must be a positive whole number of fen"),
        (orders, m2, _avro("OrderPaid", {**template, "currency": "XYZ"}),
         "invalid: currency 'XYZ' is not a known ISO 4217 code"),
        (orders, m2, _avro("OrderPaid", {**template, "occurred_at": "2025-03-01T13:00:00"}),
         "invalid: occurred_at '2025-03-01T13:00:00' has no zone offset"),
        # another currency is recorded (it counts toward tiers only by a policy conversion)
        (orders, m2, _avro("OrderPaid", {**template, "currency": "USD"}), None),
        (orders, m2, _avro(*upstream("OrderRefunded", m2, "2025-03-01T13:00:00+08:00", order_id="O-404",
                                     amount_fen=100, currency="CNY")), "refused: order O-404"),
        (orders, m2, _avro(*good4), "invalid: CustomerRegistered does not belong on the orders topic"),
        (orders, m2, _avro(*good1)[:-3], "decode-failed: "),
        (orders, m2, None, "bad-magic: "),
        (orders, m2, _avro(*good3), None),
        (crm, m3, b"\xc3\x01short", "bad-magic: "),
        (crm, m3, _avro(*good4), None),
    ]
    consumer = bus.consumer()
    sent = []
    for topic, key, value, reason in plan:
        headers = [("trace", f"t-{len(sent)}".encode())]
        sent.append((bus.send_raw(topic, key.encode(), value, headers), key, value, headers, reason))
    stats = bus.consume(consumer, len(plan))
    dead = [s for s in sent if s[4]]
    assert stats["applied"] == 5 and stats["duplicate"] == 1 and stats["dead"] == len(dead) == 10
    assert stats["dead_by_reason"] == {"bad-magic": 3, "unknown-fingerprint": 1, "invalid": 4,
                                       "refused": 1, "decode-failed": 1}

    # every dead letter, with its reason, origin and the original message
    letters = read_topics(bus.bootstrap, bus.topics.dlq_topics)
    assert len(letters) == len(dead)
    by_origin = {(header_map(r.headers)["dlq_original_topic"], int(header_map(r.headers)["dlq_original_partition"]),
                  int(header_map(r.headers)["dlq_original_offset"])): r for r in letters}
    for meta, key, value, headers, reason in dead:
        letter = by_origin[(meta.topic, meta.partition, meta.offset)]
        h = header_map(letter.headers)
        assert letter.topic == meta.topic + ".dlq"
        assert h["dlq_reason"].startswith(reason), (h["dlq_reason"], reason)
        assert letter.key == key.encode() and letter.value == value
        assert letter.headers[:len(headers)] == headers
        assert h["dlq_consumer_group"] == f"{bus.prefix}.group"
        print(f"dead letter {meta.topic}[{meta.partition}]@{meta.offset}: {h['dlq_reason'][:110]}")

    # the good ones, and only they, took effect
    app = bus.system.app
    assert {o: s[PAID] for o, s in app.member(m1).orders.items()} == {"O-1": 10_000, "O-2": 20_000}
    assert {o: (s[PAID], s[CURRENCY], s[COUNTED]) for o, s in app.member(m2).orders.items()} == \
        {"O-9": (500, "USD", 0), "O-3": (30_000, "CNY", 30_000)}
    assert app.member(m3).profile and app.find_member(f"{bus.prefix}-M9") is None

    # every position is recorded: a restarted consumer reads nothing twice
    consumer.close()
    bus.consumers.remove(consumer)
    again = bus.consumer()
    bus.send_raw(orders, m2.encode(), _avro(*upstream("OrderPaid", m2, "2025-03-02T10:00:00+08:00",
                                                      order_id="O-4", amount_fen=40_000, currency="CNY")))
    assert bus.consume(again, 1)["applied"] == 1
    assert sum(again.stats.counts.values()) == 1
    assert len(read_topics(bus.bootstrap, bus.topics.dlq_topics)) == len(dead)
