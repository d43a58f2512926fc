"""After a rebalance the group's committed offsets show no phantom lag (real broker)."""
from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.test_bus_flow import SESSION, bus, upstream  # noqa: F401  (the fixture)
from domain.window import PAID

pytestmark = pytest.mark.kafka


def _lag(bus) -> dict:
    """End offset minus the group's committed offset, per upstream partition with messages."""
    probe = KafkaConsumer(bootstrap_servers=bus.bootstrap, group_id=f"{bus.prefix}.group",
                          enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, p) for t in bus.topics.upstream for p in probe.partitions_for_topic(t) or ()]
        ends = probe.end_offsets(parts)
        return {tp: ends[tp] - (probe.committed(tp) or 0) for tp in parts if ends[tp]}
    finally:
        probe.close()


def test_partitions_moved_by_a_rebalance_show_no_lag_after_a_clean_stop(bus):
    members = [f"{bus.prefix}-M{n}" for n in range(12)]
    for n, member in enumerate(members):
        bus.send(*upstream("OrderPaid", member, f"2025-03-01T10:{n:02d}:00+08:00", order_id=f"O{n}",
                           amount_fen=1000, currency="CNY"))
    # Both members poll from this one thread: a join that one of them missed holds the group for
    # the rebalance timeout (max_poll_interval_ms, 300 s by default), so a member that does not
    # rejoin is dropped after one session (6 s, SESSION) and the group moves on. With 20 s a CI run
    # of the whole suite still spent its 180 s in such rounds (alone the test takes ~8 s).
    quick = {"max_poll_interval_ms": 6_000}
    first = bus.consumer(commit_every=3600, consumer_overrides=quick)   # only the rebalance and the stop may commit
    deadline = time.monotonic() + 60
    while first.stats.counts["applied"] < len(members):   # no forced commit: nothing on Kafka yet
        assert time.monotonic() < deadline, first.stats.as_dict()
        first.poll_once(200)
    second = bus.consumer(commit_every=3600, consumer_overrides=quick)
    # A join takes about session_timeout/2 on the dev broker, and a loaded machine can need
    # several rounds before both members hold partitions at once.
    deadline = time.monotonic() + 240
    while not (first.consumer.assignment() and second.consumer.assignment()
               and len(first.consumer.assignment()) + len(second.consumer.assignment()) == 6):
        assert time.monotonic() < deadline, "the group did not rebalance"
        first.poll_once(100)
        second.poll_once(100)
    assert not bus.system.engine.aggregates   # the revoke dropped the cached members
    first.close()
    second.close()
    bus.consumers.clear()
    lag = _lag(bus)
    assert lag and all(v == 0 for v in lag.values()), lag
    assert sum(bus.system.app.member(m).orders[f"O{n}"][PAID] for n, m in enumerate(members)) == 12_000
