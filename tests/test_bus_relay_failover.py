"""Relay failover on PostgreSQL and a real broker: the process that takes the relay lease goes on
from the recorded position, so only the previous holder's unrecorded tail is published twice."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from infra.kafka.admin import create_all, read_topics
from infra.kafka.bus import Topics, make_producer
from infra.kafka.relay import Relay, RelayLeader
from infra.service_layer.envelope import envelope
from infra.service_layer.upstream import apply_input, parse
from infra.stores.leases import relay_lease
from tests.test_bus_flow import by_event_id, upstream

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BATCH = 10


class Process:
    """One relay process's parts: its own system, producer, relay and lease on the shared store."""

    def __init__(self, make_system, pg_url: str, name: str, bootstrap: str, prefix: str) -> None:
        self.system = make_system(pg_url, name=name, kafka_bootstrap=bootstrap, topic_prefix=prefix)
        self.topics = Topics.from_settings(self.system.settings, env={})
        self.producer = make_producer(bootstrap)
        # A long track interval: the position is written only when the relay waits or stops,
        # so what this process had sent and not recorded when it dies is known exactly.
        self.relay = Relay(self.system.app, self.producer, self.topics, batch=BATCH, track_every=3600)
        self.leader = RelayLeader(relay_lease(self.system.settings), relay=self.relay)
        self.leader.RETRY_SECONDS = 0.0   # check the lease at every call (the serve loop: every 2 s)

    def close(self) -> None:
        self.producer.close(timeout=5)
        self.leader.release()


@pytest.fixture
def pair(pg_url, kafka_broker, make_system):
    prefix = "f" + uuid.uuid4().hex[:10]
    first = Process(make_system, pg_url, "first", kafka_broker, prefix)
    create_all(first.system.settings, first.topics)
    second = Process(make_system, pg_url, "second", kafka_broker, prefix)  # started together: position 0
    yield first, second
    for process in (first, second):
        process.close()


def _orders(system, count: int, start: int) -> None:
    at = datetime(2025, 3, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    for n in range(start, start + count):
        _, record = upstream("OrderPaid", f"M{n % 5}", (at + timedelta(minutes=n)).isoformat(),
                             order_id=f"O-{n}", amount_fen=1000 + n, currency="CNY")
        apply_input(system.engine, parse("orders", record, "OrderPaid"))


def _logged(system, after: int = 0) -> dict:
    """Event id by log position, after ``after``."""
    app = system.app
    notes = app.recorder.select_notifications(after, 1_000_000, inclusive_of_start=False)
    return {n.id: envelope(app.mapper.to_domain_event(n), n.id)["id"] for n in notes}


def _deliveries(process) -> dict:
    return by_event_id(read_topics(process.system.settings.kafka_bootstrap, process.topics.domain_topics))


def test_a_standby_that_takes_the_lease_republishes_only_the_previous_holders_unrecorded_window(pair):
    first, second = pair
    assert first.leader.leads() is True and second.leader.leads() is False
    _orders(first.system, 40, 0)
    first.relay.catch_up()                       # published and recorded
    recorded = first.relay.recorded_position()
    assert recorded == max(_logged(first.system))
    _orders(first.system, 40, 40)
    assert first.relay.send() == BATCH and first.relay.send() == BATCH  # in flight, not recorded
    first.producer.flush(timeout=30)             # delivered: the worst case, sent twice after the takeover
    window = {event_id for position, event_id in _logged(first.system, recorded).items()
              if position <= first.relay.sent_to}
    assert first.relay.recorded_position() == recorded and len(window) == 2 * BATCH

    first.leader.lease._conn.close()             # the holder dies: its session, and so its lock, ends
    assert second.leader.leads() is True         # the standby takes over
    second.relay.catch_up()

    delivered = _deliveries(first)
    logged = set(_logged(first.system).values())
    assert set(delivered) == logged              # nothing lost
    twice = {event_id for event_id, records in delivered.items() if len(records) > 1}
    assert twice <= window and sum(len(r) - 1 for r in delivered.values()) <= len(window)
    assert first.leader.leads() is False         # and the old holder knows it lost the lease


def test_a_relay_that_regains_the_lease_goes_on_from_the_position_its_successor_recorded(pair):
    first, second = pair
    assert first.leader.leads() is True and second.leader.leads() is False
    _orders(first.system, 20, 0)
    first.relay.catch_up()
    first.leader.lease._conn.close()             # its session ends (a lost connection): it lost the lease
    assert first.leader.leads() is False
    assert second.leader.leads() is True
    _orders(first.system, 40, 20)
    second.relay.catch_up()                      # the successor publishes the second wave and stops
    second.leader.release()

    _orders(first.system, 20, 60)
    assert first.leader.leads() is True          # the lease is taken again
    first.relay.catch_up()

    delivered = _deliveries(first)
    assert set(delivered) == set(_logged(first.system).values())
    assert all(len(records) == 1 for records in delivered.values()), \
        f"{sum(len(r) - 1 for r in delivered.values())} events published twice"
