"""Group commit on the bus: a batch closes when the consumer caught up, stays full while it is behind."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.test_bus_flow import bus, upstream  # noqa: F401  (the fixture)
from schemas.codec import encode

pytestmark = pytest.mark.kafka

ZONE = timezone(timedelta(hours=8))


def _orders(member: str, count: int, first: int = 0) -> list[tuple[str, dict]]:
    start = datetime(2025, 3, 1, 9, tzinfo=ZONE)
    return [upstream("OrderPaid", member, (start + timedelta(minutes=n)).isoformat(), order_id=f"O-{n}",
                     amount_fen=10_000, currency="CNY", channel="app") for n in range(first, first + count)]


def _publish(bus, messages) -> None:
    topic = bus.topics.source_topic("orders")
    for kind, record in messages:
        bus.producer.send(topic, key=record["member_id"].encode(), value=encode(f"vip.upstream.{kind}", record),
                          headers=[("event_type", kind.encode())])
    bus.producer.flush()


def test_a_backlog_is_applied_in_full_batches_past_one_poll_and_a_lone_message_in_a_batch_of_its_own(bus):
    member = f"{bus.prefix}-M1"   # one key: one partition, whose batches are counted below
    backlog = 1300                # more than a poll returns (max_poll_records 500)
    _publish(bus, _orders(member, backlog))
    consumer = bus.consumer()
    stats = bus.system.engine.stats
    bus.consume(consumer, backlog)
    assert consumer.stats.counts["applied"] == backlog
    # behind: the polls that came back full were joined into one batch (one commit), not three
    assert stats["batches"] == 1 and stats["steps"] == backlog

    _publish(bus, _orders(member, 1, first=backlog))   # caught up: the next message alone
    bus.consume(consumer, backlog + 1)
    assert stats["batches"] == 2 and stats["steps"] == backlog + 1
    assert len(bus.system.app.member(member).orders) == backlog + 1
