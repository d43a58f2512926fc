"""The consumer's positions in the event store, on SQLite and PostgreSQL (no broker needed).

The position of a partition is a tracking row ``kafka:<topic>:<partition>`` =
offset + 1, written in the transaction that saves the events. The recorder
takes any larger id (offsets may have gaps) and refuses one that is not
larger, which makes a late writer (a consumer that lost its partition but is
still finishing a message) roll back instead of doubling an effect.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from consumers.upstream import UpstreamConsumer
from infra.kafka.bus import Topics, header_map, tracking_name
from schemas.codec import encode
from tests.test_bus_flow import upstream
from domain.window import PAID


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list = field(default_factory=list)
    timestamp: int = 0


class Future:
    def get(self, timeout=None):
        return None


class CapturingProducer:
    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value, headers))
        return Future()

    def flush(self, timeout=None):
        pass


def _order(member: str, order: str, amount: int) -> bytes:
    kind, record = upstream("OrderPaid", member, "2025-03-01T10:00:00+08:00", order_id=order,
                            amount_fen=amount, currency="CNY")
    return encode(f"vip.upstream.{kind}", record)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request):
    if request.param == "sqlite":
        return "sqlite"
    return request.getfixturevalue("pg_url")


def test_positions_are_recorded_with_the_effects_and_a_stale_one_is_refused(store, make_system):
    system = make_system(store=store, name="s" + uuid.uuid4().hex[:6])
    topics = Topics("t")
    producer = CapturingProducer()
    consumer = UpstreamConsumer(system.engine, topics, "unused:9092", producer, group="g")
    recorder = system.app.recorder
    name0, name1 = tracking_name(topics.orders, 0), tracking_name(topics.orders, 1)

    def rec(partition, offset, value):
        return Record(topics.orders, partition, offset, b"M1", value, [("h", b"1")])

    assert consumer.handle(rec(0, 0, _order("M1", "O-1", 100))) == "applied"
    assert recorder.max_tracking_id(name0) == 1
    assert consumer.handle(rec(0, 7, _order("M1", "O-2", 200))) == "applied"   # offsets may jump
    assert recorder.max_tracking_id(name0) == 8
    assert consumer.handle(rec(1, 0, _order("M2", "O-3", 300))) == "applied"   # partitions are apart
    assert recorder.max_tracking_id(name1) == 1

    # a position at or before the recorded one: refused, and its effect rolled back with it
    assert consumer.handle(rec(0, 3, _order("M1", "O-4", 400))) == "skipped"
    assert "O-4" not in system.app.member("M1").orders
    assert recorder.max_tracking_id(name0) == 8

    # the same upstream event again at a new offset: a duplicate, the position still moves
    again = rec(0, 9, None)
    again.value = _order("M1", "O-5", 500)
    assert consumer.handle(again) == "applied"
    again.offset = 10
    assert consumer.handle(again) == "duplicate"
    assert recorder.max_tracking_id(name0) == 11

    # a dead letter is published first, then its position is recorded alone
    assert consumer.handle(rec(0, 11, b"garbage")) == "dead"
    assert recorder.max_tracking_id(name0) == 12
    [(topic, key, value, headers)] = producer.sent
    h = header_map(headers)
    assert topic == topics.orders + ".dlq" and key == b"M1" and value == b"garbage"
    assert h["h"] == "1" and h["dlq_reason"].startswith("bad-magic: ")
    assert (h["dlq_original_topic"], h["dlq_original_partition"], h["dlq_original_offset"]) == \
        (topics.orders, "0", "11")
    assert {o: s[PAID] for o, s in system.app.member("M1").orders.items()} == {"O-1": 100, "O-2": 200,
                                                                                 "O-5": 500}


def test_a_member_saved_meanwhile_by_another_process_is_retried_on_fresh_state(make_system):
    """Orders and CRM partitions of one member may sit with different group members."""
    from infra.service_layer.upstream import apply_input, parse

    system = make_system(name="a")
    other = make_system(name="a")            # a second process on the same event store
    topics = Topics("t")
    consumer = UpstreamConsumer(system.engine, topics, "unused:9092", CapturingProducer(), group="g")
    assert consumer.handle(Record(topics.orders, 0, 0, b"M1", _order("M1", "O-1", 100))) == "applied"

    original, calls = system.app.record_batch, []

    def racing_record(processing):
        if not calls:   # the first attempt loses the race against the other process
            _, record = upstream("OrderPaid", "M1", "2025-03-01T10:30:00+08:00", order_id="O-2",
                                 amount_fen=200, currency="CNY")
            apply_input(other.engine, parse("orders", record, "OrderPaid"))
        calls.append(processing.tracking)
        return original(processing)

    system.app.record_batch = racing_record
    assert consumer.handle(Record(topics.crm, 0, 0, b"M1", encode("vip.upstream.ActivityRecorded", upstream(
        "ActivityRecorded", "M1", "2025-03-01T11:00:00+08:00", kind="login")[1]))) == "applied"
    # two attempts, each recording the batch's position once (the first lost the race)
    assert [t.notification_id for t in calls if t is not None] == [1, 1]
    member = system.app.member("M1")
    assert set(member.orders) == {"O-1", "O-2"} and len(member.entries) == 1   # the login once
    assert system.app.recorder.max_tracking_id(tracking_name(topics.crm, 0)) == 1
