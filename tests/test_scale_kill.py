"""Three `vip serve` and two stream workers on PostgreSQL and the broker, SIGKILLed at random.

The scenario: a demo year (members, VIP reviews, contracts with invoices,
credits and breaches, complaints with SLA breaches) written to the
PostgreSQL event store, then upstream CRM and order messages (registrations,
activity including reviews, payments, refunds, cancellations) that the serve
processes consume while processes are killed and restarted. The serves'
schedulers fire the year's due timers (annual reviews, agreement expiries,
overdue invoices) at the same time, racing each other. At the end the read
models, folded three ways (the serve processes' shared read store, the
stream workers' shared store, and a replay of the log), equal the embedded
runner's over the same input, to the fen; no timer fired twice.

CRM messages are published and consumed before the orders: a member's CRM
and order events travel on two topics, so only that order makes the
per-member sequence (and so the answer) independent of the interleaving.
"""
from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from consumers.upstream import DeadLetter, decode_message
from domain.base import SEALED_PREFIX, DomainError
from infra.bootstrap import build, open_app
from infra.dev.cluster import Cluster, applied, folded
from infra.dev.demo import run_demo
from infra.dev.simulator import Simulator, publish
from infra.kafka.admin import create_all, end_offsets
from infra.kafka.bus import Topics, make_producer
from infra.kafka.relay import Relay
from infra.service_layer.replay import replay
from infra.service_layer.upstream import apply_input
from infra.settings import Settings
from infra.stores.keyed import KeyedStore
from infra.stores.pgstore import PostgresReadStore
from infra.stores.streamstore import open_stream_store
from projections.views import VIEWS
from tests.scenario import log_of

pytestmark = pytest.mark.kafka

KILLS = 20
SERVES, WORKERS = 3, 2


CST = timezone(timedelta(hours=8))
SEALED = re.compile(r"'pii:[^']*'")


def _rows(store) -> dict:
    """Every view's rows of a read store: {view: {key: row}}, sealed text masked."""
    if isinstance(store, KeyedStore):
        return {view.name: {k: _masked(r) for k, r in store.scan(view.name)} for view in VIEWS}
    return {view.name: {k: _masked(r) for k, r in store.view(view.name).items()} for view in VIEWS}


def _masked(value):
    """Sealed personal data carries a random nonce: two runs seal the same text differently."""
    if isinstance(value, str):
        return "<sealed>" if value.startswith(SEALED_PREFIX) else value
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _log(app) -> Counter:
    """The log as a multiset of (type, key, instant, data, cause); sealed text (random nonces) masked."""
    return Counter((kind, key, at, SEALED.sub("'<sealed>'", data), cause)
                   for kind, key, at, data, cause in log_of(app))


class Killer:
    """SIGKILLs a random process every few seconds and starts it again shortly after."""

    def __init__(self, cluster: Cluster, seed: int) -> None:
        self.cluster, self.rng = cluster, random.Random(seed)
        self.kills = 0
        self.next = time.monotonic() + 3.0

    def step(self) -> None:
        if time.monotonic() < self.next:
            return
        name = self.rng.choice(sorted(self.cluster.members))
        self.cluster.kill(name)
        time.sleep(self.rng.uniform(0.0, 1.5))
        self.cluster.start(name)
        self.kills += 1
        self.next = time.monotonic() + self.rng.uniform(1.5, 3.5)

    def run_until(self, done, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, f"{what} not reached in {seconds}s ({self.kills} kills)"
            self.step()
            time.sleep(0.2)


def _waves(now: datetime) -> list:
    """Upstream messages in four waves (CRM, orders, CRM, orders), each wave at one instant.

    The engine stamps an input that arrives after a later one with the later
    instant (the late-arrival rule, one timeline per store). Partitions consumed
    by three processes arrive in no fixed order, so within a wave every input
    has the same instant, and a wave is published once the one before it is
    applied: then no input is late, in the scaled run or in the reference.
    """
    sim = Simulator(seed=11, members=120, start=now.astimezone(CST) - timedelta(days=12), member_prefix="S")
    crm, orders = list(sim.stream("crm", 500)), list(sim.stream("orders", 1200))
    out = []
    for n, (source, messages) in enumerate((("crm", crm[:250]), ("orders", orders[:600]),
                                            ("crm", crm[250:]), ("orders", orders[600:]))):
        instant = (now - timedelta(seconds=90) + timedelta(seconds=30 * n)).astimezone(CST).isoformat()
        for message in messages:
            message.record["occurred_at"] = instant
        out.append((source, messages))
    return out


def test_three_serves_and_two_workers_killed_twenty_times_equal_the_embedded_runner(pg_url, kafka_broker,
                                                                                    tmp_path):
    prefix = f"k{uuid.uuid4().hex[:8]}"
    env = {"VIP_EVENT_STORE": pg_url, "VIP_STREAMS_STORE": pg_url, "VIP_DATA_DIR": str(tmp_path / "data"),
           "VIP_KAFKA_BOOTSTRAP": kafka_broker, "VIP_TOPIC_PREFIX": prefix, "VIP_BATCH_MAX_MS": "200",
           "VIP_KAFKA_SESSION_TIMEOUT_MS": "4000"}  # a killed member's partitions move on sooner
    settings = Settings.from_env(env)
    topics = Topics(prefix)
    create_all(settings, topics)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    waves = _waves(now)

    system = build(settings)                       # the demo year, written before any process runs
    run_demo(system, members=60, seed=5, progress=False)
    system.close()

    started = time.monotonic()
    cluster = Cluster({**os.environ, **env}, tmp_path / "logs")
    for n in range(1, SERVES + 1):
        cluster.add(f"serve{n}", "serve", "--tick-seconds", "1")
    for n in range(1, WORKERS + 1):
        cluster.add(f"worker{n}", "streams", "run")
    killer = Killer(cluster, seed=3)
    app, _keys = open_app(settings, read_only=True)
    producer = make_producer(kafka_broker)
    try:
        for n, (source, messages) in enumerate(waves):
            topic = topics.source_topic(source)
            first = killer.kills
            # Published at a steady rate with kills in between, so processes die mid-batch.
            publish(producer, topic, messages, rate=120, on_sent=lambda *_: killer.step())
            producer.flush()
            killer.run_until(lambda: killer.kills >= first + 3, 60, f"kills during wave {n}")
            ends = end_offsets(kafka_broker, [topic])
            killer.run_until(lambda: applied(app, ends), 300, f"wave {n} ({source}) consumed")
            print(f"wave {n} ({len(messages)} {source}) consumed at {time.monotonic() - started:.0f}s, "
                  f"{killer.kills} kills")
        killer.run_until(lambda: killer.kills >= KILLS, 300, "the kills")
        cluster.wait_until(lambda: applied(app, ends), 120, "upstream consumed after the last kill")
        for n in range(1, SERVES + 1):  # the final tick is at an instant both runs share
            cluster.wait_for(f"serve{n}", "serve: ", 60)  # started: SIGTERM now drains, not interrupts
            cluster.members[f"serve{n}"].process.terminate()
            code = cluster.members[f"serve{n}"].process.wait(timeout=60)
            assert code == 0, cluster.tail(f"serve{n}")
            del cluster.members[f"serve{n}"]
        at = datetime.now(timezone.utc)
        final = build(settings, clock=lambda: at)
        final.engine.tick()
        final.close()
        cluster.add("relay", "relay")
        cluster.wait_for("relay", "relay: ", 60)
        relay = Relay(app, None, topics)
        cluster.wait_until(lambda: relay.recorded_position() >= app.recorder.max_notification_id(), 120,
                           "relay caught up")
        domain_ends = end_offsets(kafka_broker, topics.domain_topics)
        cluster.wait_until(lambda: folded(settings, domain_ends), 180, "workers caught up")
    finally:
        producer.close()
        codes = cluster.stop()
    assert killer.kills >= KILLS
    assert all(code == 0 for code in codes.values()), codes

    # The reference: the embedded runner (SQLite) over the same input, ticked at the same instant.
    reference = build(Settings.from_env({}, data_dir=tmp_path / "ref"), clock=lambda: at)
    run_demo(reference, members=60, seed=5, progress=False)
    for source, messages in waves:
        for message in messages:
            try:
                apply_input(reference.engine, decode_message(source, message.encode()))
            except (DeadLetter, DomainError):
                continue  # the serve processes dead-letter it
    reference.engine.tick()
    expected = _rows(replay(reference.app, VIEWS))
    expected_log = _log(reference.app)
    reference.close()

    # Nothing lost, nothing doubled: the same events (type, key, instant, data, cause), timers included.
    events = _log(app)
    fired = {e: n for e, n in events.items() if (e[4] or "").startswith("timer:")}
    assert fired and max(fired.values()) == 1, [e for e, n in fired.items() if n > 1]
    assert events == expected_log, (events - expected_log, expected_log - events)

    _assert_same(expected, _rows(replay(app, VIEWS)), "a replay of the PostgreSQL log")
    shared = PostgresReadStore(pg_url, read_only=True, views=VIEWS)
    try:
        _assert_same(expected, _rows(shared), "the serve processes' shared read store")
    finally:
        shared.close()
    streams = open_stream_store(settings, read_only=True)
    try:
        _assert_same(expected, _rows(streams), "the stream workers' store")
    finally:
        streams.close()
    app.close()


def _assert_same(expected: dict, actual: dict, what: str) -> None:
    for view in expected:
        missing = sorted(set(expected[view]) - set(actual[view]))[:5]
        extra = sorted(set(actual[view]) - set(expected[view]))[:5]
        assert not missing and not extra, f"{what}, view {view}: missing {missing}, extra {extra}"
        wrong = [k for k in expected[view] if expected[view][k] != actual[view][k]]
        assert not wrong, (f"{what}, view {view}: {len(wrong)} rows differ, e.g. {wrong[0]}: "
                           f"{expected[view][wrong[0]]} != {actual[view][wrong[0]]}")
