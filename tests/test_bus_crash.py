"""Crash safety: two consumers (one group) and a relay as separate processes, SIGKILLed at
random points while a stream flows, restarted; afterwards every upstream event had exactly one
effect and every domain event in the log reached its topic. And SIGTERM stops a consumer cleanly.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from infra.bootstrap import open_app
from infra.dev.simulator import Simulator, expected_effects, publish
from infra.kafka.admin import create_all, read_topics
from infra.kafka.bus import Topics, header_map, make_producer, tracking_name
from infra.service_layer.envelope import envelope
from infra.settings import Settings
from domain.window import PAID, REVERSED

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[1]
SEED = 20250301
EVENTS = 3000
RATE = 70.0           # upstream events per second: the stream lasts ~45 s, while the kills happen
KILLS = 6             # SIGKILLs of each process
# Two consumer processes share the read store. SqliteReadStore._load reads the rows and the
# position in separate transactions, so a load during another process's commit can pair old
# rows with a new position (reported; see the note to infra/stores/readstore.py). Until it reads
# both in one transaction the read-model comparison below is printed, not asserted.
STRICT_READ_MODELS = True

# The one domain event each upstream event must cause (by its causation id).
PRIMARY = {"OrderPaid": {"OrderPaid"}, "OrderRefunded": {"OrderRefunded"},
           "OrderCancelled": {"OrderCancelled"}, "ActivityRecorded": {"ActivityRecorded"},
           "CustomerRegistered": {"MemberRegistered", "RegistrationFilled"},
           "ProfileUpdated": {"ProfileUpdated"}, "ErasureRequested": {"PersonalDataErased"}}


class Proc:
    """A restartable ``python -m <module>`` child with its output in a file."""

    def __init__(self, module: str, env: dict, log: Path, ready: str) -> None:
        self.module, self.env, self.log, self.ready = module, env, log, ready
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        out = open(self.log, "ab")
        out.write(f"--- start {self.starts}\n".encode())
        out.flush()
        self.proc = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env=self.env,
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.starts += 1

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM once the process is up (its signal handler is installed by then)."""
        deadline = time.monotonic() + timeout
        while self.ready not in self.tail(100_000).rsplit(f"--- start {self.starts - 1}", 1)[-1]:
            if time.monotonic() > deadline or not self.alive():
                break
            time.sleep(0.05)
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 3000) -> str:
        return self.log.read_bytes()[-n:].decode("utf-8", "replace") if self.log.exists() else ""


class Positions:
    """The consumed and relayed positions, read from the event store as the children write it."""

    def __init__(self, settings: Settings, topics: Topics) -> None:
        self.app, self.keys = open_app(settings)     # also creates the tables before the children run
        self.names = [tracking_name(t, p) for t in topics.upstream for p in range(settings.topic_partitions)]
        self.relay_name = topics.relay_name()
        self.lock = threading.Lock()

    def consumed(self) -> int:
        with self.lock:
            return sum(self.app.recorder.max_tracking_id(n) or 0 for n in self.names)

    def relayed(self) -> int:
        with self.lock:
            return self.app.recorder.max_tracking_id(self.relay_name) or 0

    def log_end(self) -> int:
        with self.lock:
            return self.app.recorder.max_notification_id() or 0

    def close(self) -> None:
        if self.keys is not None:
            self.app.close()
            self.keys.close()
            self.keys = None


def chaos(procs: list, progress, at: list, rng: random.Random, done: list, errors: list) -> None:
    """SIGKILL one of ``procs`` at each of the times ``at`` (monotonic), then restart it."""
    try:
        for when in at:
            time.sleep(max(0.0, when - time.monotonic()))
            proc = rng.choice(procs)
            proc.kill()
            done.append((progress(), time.monotonic()))
            time.sleep(rng.uniform(0.0, 0.5))
            proc.start()
    except Exception as exc:  # pragma: no cover - reported by the test
        errors.append(exc)


def wait_for(condition, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.module}:\n{p.tail()}" for p in procs)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        for p in procs:
            if not p.alive():
                raise AssertionError(f"{p.module} exited with {p.proc.returncode}:\n{p.tail()}")
        time.sleep(0.1)


def child_env(settings: Settings, tmp: Path) -> dict:
    env = dict(os.environ)
    env.update(VIP_DATA_DIR=str(settings.data_dir), VIP_EVENT_STORE=settings.event_store,
               VIP_KAFKA_BOOTSTRAP=settings.kafka_bootstrap, VIP_TOPIC_PREFIX=settings.topic_prefix,
               VIP_KAFKA_GROUP=f"{settings.topic_prefix}.group",
               VIP_KAFKA_SESSION_TIMEOUT_MS="3000", VIP_KAFKA_HEARTBEAT_MS="500",
               PYTHONPATH=str(ROOT))
    for name in ("VIP_POLICY_FILE", "VIP_KEY_STORE", "VIP_READ_STORE", "VIP_TOPIC_ORDERS", "VIP_TOPIC_CRM"):
        env.pop(name, None)
    return env


def _setup(kafka_broker, tmp_path, store="sqlite"):
    prefix = "c" + uuid.uuid4().hex[:10]
    settings = Settings.from_env({}, data_dir=tmp_path / "data", kafka_bootstrap=kafka_broker,
                                 topic_prefix=prefix, event_store=store)
    topics = Topics.from_settings(settings, env={})
    create_all(settings, topics)
    return settings, topics


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def crash_store(request):
    """(event store, upstream events, their rate, kills of each process)."""
    if request.param == "sqlite":
        return "sqlite", EVENTS, RATE, KILLS
    return request.getfixturevalue("pg_url"), 2000, 50.0, 5


def test_kill_consumer_and_relay_at_random_points_nothing_lost_or_doubled(kafka_broker, tmp_path, crash_store):
    store, events, rate, kills_each = crash_store
    settings, topics = _setup(kafka_broker, tmp_path, store)
    env = child_env(settings, tmp_path)
    pos = Positions(settings, topics)
    rng = random.Random(SEED)

    # the upstream stream: orders and CRM on one simulated timeline
    sim = Simulator(seed=SEED, members=150, start=datetime(2025, 3, 1, 9, tzinfo=timezone.utc),
                    member_prefix=f"{topics.prefix}-M")
    stream = [(("orders", sim.order()) if rng.random() < 0.75 else ("crm", sim.crm())) for _ in range(events)]
    expected = expected_effects([m for _, m in stream])

    producer = make_producer(kafka_broker)
    stop_producing = threading.Event()

    stream_end: list = []

    def produce():
        started = time.monotonic()
        for n, (source, message) in enumerate(stream):
            if stop_producing.is_set():
                return
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            publish(producer, topics.source_topic(source), [message])
        stream_end.append(time.monotonic())

    # two consumers in one group: a kill also moves partitions to the survivor
    group = [Proc("hosts.consume", env, tmp_path / f"consumer{n}.log", "consume: ") for n in (1, 2)]
    relay = Proc("hosts.relay", env, tmp_path / "relay.log", "relay: ")
    feeder = threading.Thread(target=produce, daemon=True)
    errors: list = []
    kills: dict = {"consumer": [], "relay": []}
    began = time.monotonic()
    try:
        for consumer in group:
            consumer.start()
        relay.start()
        feeder.start()
        # kill times: random over the stream's duration, drawn from the seed
        duration = events / rate
        schedule = {name: sorted(began + rng.uniform(2.0, duration - 1.0) for _ in range(kills_each))
                    for name in ("consumer", "relay")}
        workers = [threading.Thread(target=chaos, args=(group, pos.consumed, schedule["consumer"],
                                                        random.Random(SEED + 1), kills["consumer"], errors)),
                   threading.Thread(target=chaos, args=([relay], pos.relayed, schedule["relay"],
                                                        random.Random(SEED + 2), kills["relay"], errors))]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=240)
        assert not errors, errors
        feeder.join(timeout=120)
        assert not feeder.is_alive()

        # let the survivors finish: every message consumed, every logged event published
        wait_for(lambda: pos.consumed() == events, 120, "the consumers to catch up", group + [relay])
        wait_for(lambda: pos.relayed() == pos.log_end(), 60, "the relay to catch up", group + [relay])
        for p in group + [relay]:
            assert p.terminate() == 0, p.tail()

        app = pos.app
        notes = app.recorder.select_notifications(0, 10_000_000, inclusive_of_start=False)
        logged = [envelope(app.mapper.to_domain_event(n), n.id) for n in notes]

        # one effect per upstream event: the domain event it caused, by causation id
        effects = Counter((e["meta"].get("causation_id"), e["type"]) for e in logged)
        per_input = [sum(effects[(m.record["event_id"], t)] for t in PRIMARY[m.type]) for _, m in stream]
        lost = sum(1 for n in per_input if n == 0)
        lost_types = Counter(m.type for (_, m), n in zip(stream, per_input) if n == 0)
        doubled = sum(1 for n in per_input if n > 1)

        # every logged event on its topic; duplicates allowed, each the same message
        records = read_topics(kafka_broker, topics.domain_topics)
        copies: dict = {}
        for r in records:
            copies.setdefault(header_map(r.headers)["event_id"], []).append(r)
        log_ids = {e["id"] for e in logged}
        missing = log_ids - set(copies)
        bus_duplicates = sum(len(c) - 1 for c in copies.values())

        flowing = sum(1 for k in kills["consumer"] + kills["relay"] if k[1] < stream_end[0])
        logs = "".join(p.tail(10_000_000) for p in group)
        retried, skipped = logs.count("saved the member first; retry"), logs.count("recorded by another consumer")
        print(f"\ncrash test ({'sqlite' if store == 'sqlite' else 'postgresql'}): "
              f"{len(kills['consumer'])} consumer kills (2 in the group) at consumed positions "
              f"{[k[0] for k in kills['consumer']]}, {len(kills['relay'])} relay kills at relayed positions "
              f"{[k[0] for k in kills['relay']]} "
              f"({flowing} of them while the stream was flowing); "
              f"{events} upstream events -> {len(logged)} domain events; lost {lost} {dict(lost_types)}, "
                  f"doubled {doubled}; "
              f"on the topics: {len(missing)} missing, {bus_duplicates} duplicates (same event id); "
              f"{retried} conflict retries, {skipped} stale positions refused; "
              f"{time.monotonic() - began:.0f}s")
        assert len(kills["consumer"]) == kills_each and len(kills["relay"]) == kills_each
        assert lost == 0 and doubled == 0
        assert not missing and set(copies) <= log_ids
        for c in copies.values():
            assert len({(r.topic, r.key, r.value) for r in c}) == 1
        for key in {r.key for r in records}:    # per aggregate, first sightings in version order
            seen, versions = set(), []
            for r in records:
                event_id = header_map(r.headers)["event_id"]
                if r.key == key and event_id not in seen:
                    seen.add(event_id)
                    versions.append(_version(r))
            assert versions == sorted(versions), key
        assert read_topics(kafka_broker, topics.dlq_topics) == []

        # the same totals as an independent computation from the input
        for member_id, net in expected["net_spend_fen"].items():
            orders = app.member(member_id).orders
            assert sum(o[PAID] - o[REVERSED] for o in orders.values()) == net, member_id
        paid = Counter(e["key"] for e in logged if e["type"] == "OrderPaid")
        assert dict(paid) == expected["orders_paid"]

        # the read models survived the kills too: equal to a replay of the log
        from infra.bootstrap import open_views
        from projections.views import VIEWS
        from infra.service_layer.replay import replay
        live = open_views(settings, read_only=True)  # SQLite read.db, or the PostgreSQL tables
        try:
            again = replay(app, VIEWS)
            differing = {view: sorted(k for k in set(live.view(view)) | set(again.view(view))
                                      if live.view(view).get(k) != again.view(view).get(k))
                         for view in again.rows}
            differing = {v: keys for v, keys in differing.items() if keys}
            print(f"read models vs a replay of the log: position {live.position}/{logged[-1]['position']}, "
                  f"{sum(map(len, differing.values()))} rows differ {dict((v, k[:3]) for v, k in differing.items())}")
            if STRICT_READ_MODELS:
                assert live.position == logged[-1]["position"] and not differing
        finally:
            live.close()
    finally:
        stop_producing.set()
        for p in group + [relay]:
            if p.alive():
                p.kill()
        producer.close(timeout=5)
        pos.close()


def _version(record) -> int:
    from schemas.events import decode_event
    return decode_event(record.value)["version"]


def test_sigterm_stops_a_consumer_cleanly(kafka_broker, tmp_path):
    settings, topics = _setup(kafka_broker, tmp_path)
    pos = Positions(settings, topics)
    sim = Simulator(seed=5, members=50, start=datetime(2025, 3, 1, 9, tzinfo=timezone.utc),
                    member_prefix=f"{topics.prefix}-M")
    messages = list(sim.stream("orders", 3000))
    producer = make_producer(kafka_broker)
    consumer = Proc("hosts.consume", child_env(settings, tmp_path), tmp_path / "consumer.log",
                    "consume: ")
    try:
        publish(producer, topics.orders, messages)
        consumer.start()
        wait_for(lambda: pos.consumed() > 200, 60, "the consumer to start", [consumer])
        code = consumer.terminate(timeout=30)     # mid-stream: 3000 messages take seconds
        assert code == 0, consumer.tail()
        assert "consume: stopped" in consumer.tail()
        done = pos.consumed()
        assert 200 < done < len(messages)      # stopped mid-stream
        # what it recorded is exactly what took effect
        app = pos.app
        notes = app.recorder.select_notifications(0, 10_000_000, inclusive_of_start=False)
        events = [envelope(app.mapper.to_domain_event(n), n.id) for n in notes]
        inputs = {e["meta"]["causation_id"] for e in events
                  if e["type"] in ("OrderPaid", "OrderRefunded", "OrderCancelled")}
        assert len(inputs) == done
    finally:
        if consumer.alive():
            consumer.kill()
        producer.close(timeout=5)
        pos.close()
