"""The Kafka consumer's batch reads what its messages need in bulk (Engine.prefetch), as file
ingest does: the same effects, no read per member (no broker needed: records are handed in)."""
from __future__ import annotations

from consumers.upstream import UpstreamConsumer
from infra.kafka.bus import Topics, header_map, tracking_name
from schemas.codec import encode
from tests.test_bus_flow import upstream
from tests.test_bus_tracking import CapturingProducer, Record
from tests.test_prefetch import _counting_loads


def _order(member: str, order: str, minute: int, amount: int = 300_000) -> bytes:
    kind, record = upstream("OrderPaid", member, f"2025-03-01T10:{minute:02d}:00+08:00", order_id=order,
                            amount_fen=amount, currency="CNY")
    return encode(f"vip.upstream.{kind}", record)


def test_a_kafka_batch_loads_its_cold_members_and_their_view_rows_in_bulk(make_system):
    topics = Topics("t")

    def records(start: int, count: int) -> list:
        return [Record(topics.orders, 0, n, f"M{n % 30}".encode(), _order(f"M{n % 30}", f"O-{n}", n % 60))
                for n in range(start, start + count)]

    warm = make_system(name="bus", batch_max_inputs=100)
    first = UpstreamConsumer(warm.engine, topics, "unused:9092", CapturingProducer(), group="g")
    assert first.handle_batch(records(0, 60)) == ["applied"] * 60
    warm.engine.flush()

    cold = make_system(name="bus", batch_max_inputs=100)     # a new process: nothing cached
    loads = _counting_loads(cold.app)
    fetched, fetch = [], cold.store.fetch
    cold.store.fetch = lambda view, key: fetched.append((view, key)) or fetch(view, key)
    second = UpstreamConsumer(cold.engine, topics, "unused:9092", CapturingProducer(), group="g")
    assert second.handle_batch(records(60, 60)) == ["applied"] * 60
    assert loads == []
    assert [f for f in fetched if f[0] in ("current_tier", "tier_history", "timers")] == []
    assert cold.app.recorder.max_tracking_id(tracking_name(topics.orders, 0)) == 120
    assert set(cold.app.member("M7").orders) == {f"O-{n}" for n in range(7, 120, 30)}


def test_a_kafka_batch_dead_letters_and_dedupes_in_place_between_applied_messages(make_system):
    system = make_system(batch_max_inputs=100)
    topics = Topics("t")
    producer = CapturingProducer()
    consumer = UpstreamConsumer(system.engine, topics, "unused:9092", producer, group="g")
    again = _order("M1", "O-1", 1)
    values = [again, b"garbage", _order("M2", "O-2", 2), again, _order("M1", "O-3", 3, amount=-5)]
    batch = [Record(topics.orders, 0, n, b"k", v) for n, v in enumerate(values)]
    assert consumer.handle_batch(batch) == ["applied", "dead", "applied", "duplicate", "dead"]
    reasons = [header_map(h)["dlq_reason"].split(":", 1)[0] for _, _, _, h in producer.sent]
    assert reasons == ["bad-magic", "invalid"]
    assert [header_map(h)["dlq_original_offset"] for _, _, _, h in producer.sent] == ["1", "4"]
    assert set(system.app.member("M1").orders) == {"O-1"}
    assert system.app.recorder.max_tracking_id(tracking_name(topics.orders, 0)) == 5
