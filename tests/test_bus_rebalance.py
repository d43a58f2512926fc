"""After a rebalance the group's committed offsets show no phantom lag (real broker)."""
from __future__ import annotations

import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from consumers.upstream import UpstreamConsumer
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


def _poll_on_threads(consumers, done, timeout: float) -> None:
    """Each consumer polls on a thread of its own (as separate processes do: a join completes
    only when every member polls) until ``done()`` or ``timeout`` s; a thread's error is raised."""
    stop, errors = threading.Event(), []

    def loop(consumer):
        try:
            while not stop.is_set():
                consumer.poll_once(100)
        except BaseException as exc:  # noqa: BLE001  (raised again on the test's thread)
            errors.append(exc)
    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in consumers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not done() and not errors:
            assert time.monotonic() < deadline, "the group did not rebalance"
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    if errors:
        raise errors[0]


def test_partitions_moved_by_a_rebalance_show_no_lag_after_a_clean_stop(bus, make_system):
    members = [f"{bus.prefix}-M{n}" for n in range(12)]
    for n, member in enumerate(members):
        bus.send(*upstream("OrderPaid", member, f"2025-03-01T10:{n:02d}:00+08:00", order_id=f"O{n}",
                           amount_fen=1000, currency="CNY"))
    # A member that misses a join is dropped after one session (6 s) rather than the default
    # rebalance timeout (300 s).
    quick = {"max_poll_interval_ms": 6_000}
    first = bus.consumer(commit_every=3600, consumer_overrides=quick)   # only the rebalance and the stop may commit
    deadline = time.monotonic() + 60
    while first.stats.counts["applied"] < len(members):   # no forced commit: nothing on Kafka yet
        assert time.monotonic() < deadline, first.stats.as_dict()
        first.poll_once(200)
    # The second member is another process's: an engine of its own over the same store. Both poll
    # at once, each on its thread: polled in turn from one thread, a join one of them missed cost
    # a session each round, and a whole-suite CI run spent 240 s in such rounds (alone: ~8 s).
    other = make_system(name=bus.prefix, kafka_bootstrap=bus.bootstrap, topic_prefix=bus.prefix)
    second = UpstreamConsumer(other.engine, bus.topics, bus.bootstrap, bus.producer, group=f"{bus.prefix}.group",
                              env=SESSION, commit_every=3600, consumer_overrides=quick).start()
    bus.consumers.append(second)
    _poll_on_threads((first, second), lambda: (
        first.consumer.assignment() and second.consumer.assignment()
        and len(first.consumer.assignment()) + len(second.consumer.assignment()) == 6), timeout=240)
    assert not bus.system.engine.aggregates   # the revoke dropped the cached members
    first.close()
    second.close()
    bus.consumers.clear()
    lag = _lag(bus)
    assert lag and all(v == 0 for v in lag.values()), lag
    assert sum(bus.system.app.member(m).orders[f"O{n}"][PAID] for n, m in enumerate(members)) == 12_000
