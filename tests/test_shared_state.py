"""A cluster on two machines: nothing a process needs is in its own data dir (issue 21).

Two `vip serve` (each with the API beside it), two stream workers and two
`vip api`, every one with its own EMPTY data dir, share one PostgreSQL and
the broker: the member keys, API keys and idempotency records are tables of
the event store's database, so the processes behave as one system.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from infra.bootstrap import build, open_api_keys, open_app
from infra.dev.cluster import Cluster, applied, folded
from infra.dev.simulator import Simulator, publish
from infra.kafka.admin import create_all, end_offsets
from infra.kafka.bus import Topics, make_producer
from infra.kafka.relay import Relay
from infra.service_layer.replay import replay
from infra.settings import Settings
from infra.stores.pgstore import PostgresReadStore
from infra.stores.streamstore import open_stream_store
from projections.views import VIEWS
from tests.scenario import log_of
from tests.test_scale_kill import _assert_same, _rows

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CST = timezone(timedelta(hours=8))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(cluster: Cluster, name: str, base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not cluster.alive(name):
            raise RuntimeError(f"{name} ended: {cluster.tail(name)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not answer in {seconds}s: {cluster.tail(name)}")
        time.sleep(0.3)


def test_processes_with_their_own_empty_data_dirs_share_keys_idempotency_and_erasure(pg_url, kafka_broker,
                                                                                     tmp_path):
    prefix = f"s{uuid.uuid4().hex[:8]}"
    shared = {"VIP_EVENT_STORE": pg_url, "VIP_STREAMS_STORE": pg_url, "VIP_KAFKA_BOOTSTRAP": kafka_broker,
              "VIP_TOPIC_PREFIX": prefix, "VIP_BATCH_MAX_MS": "200", "VIP_KAFKA_SESSION_TIMEOUT_MS": "6000",
              "VIP_KAFKA_HEARTBEAT_MS": "1000"}
    settings = Settings.from_env({**shared, "VIP_DATA_DIR": str(tmp_path / "test")})
    topics = Topics(prefix)
    create_all(settings, topics)

    cluster = Cluster({**os.environ, **shared}, tmp_path / "logs")
    bases = {}

    def add(name: str, *args: str, port: int | None = None) -> None:
        data = tmp_path / name  # its own data dir, empty: as on a machine of its own
        cluster.env = {**os.environ, **shared, "VIP_DATA_DIR": str(data)}
        cluster.add(name, *args)
        if port:
            bases[name] = f"http://127.0.0.1:{port}"

    for n in (1, 2):
        port = _port()
        add(f"serve{n}", "serve", "--tick-seconds", "1", "--api-port", str(port), port=port)
    for n in (1, 2):
        add(f"worker{n}", "streams", "run")
    for n in (1, 2):
        port = _port()
        add(f"api{n}", "api", "--port", str(port), "--tick-seconds", "1", port=port)

    now = datetime.now(timezone.utc).replace(microsecond=0)
    sim = Simulator(seed=21, members=40, start=now.astimezone(CST) - timedelta(days=3), member_prefix="H")
    crm, orders = list(sim.stream("crm", 120)), list(sim.stream("orders", 200))
    for n, message in enumerate(crm + orders):  # one timeline: every input later than the one before
        message.record["occurred_at"] = (now - timedelta(seconds=400 - n)).astimezone(CST).isoformat()
    app, _ = open_app(settings, read_only=True)
    producer = make_producer(kafka_broker)
    try:
        for name in bases:
            _wait_http(cluster, name, bases[name])
        for source, messages in (("crm", crm), ("orders", orders)):
            publish(producer, topics.source_topic(source), messages)
            producer.flush()
            ends = end_offsets(kafka_broker, [topics.source_topic(source)])
            cluster.wait_until(lambda: applied(app, ends), 60, f"{source} applied")

        # Inputs applied once: every upstream event id caused its events, none twice.
        produced = {m.record["event_id"] for m in crm + orders}
        caused = Counter((kind, key, cause) for kind, key, _, _, cause in log_of(app) if cause in produced)
        assert {cause for _, _, cause in caused} == produced
        assert max(caused.values()) == 1, [k for k, v in caused.items() if v > 1]

        # An API key made through one API process works on the other.
        root = open_api_keys(settings)
        admin = {"Authorization": f"Bearer {root.create('admin', 'ops-1')[1]}"}
        root.close()
        made = httpx.post(bases["api1"] + "/api/api-keys", headers=admin, timeout=10,
                          json={"role": "agent", "subject": "agent-7"})
        assert made.status_code == 201, made.text
        agent = {"Authorization": f"Bearer {made.json()['token']}"}
        who = httpx.get(bases["api2"] + "/api/whoami", headers=agent, timeout=10)
        assert who.status_code == 200 and who.json()["subject"] == "agent-7", who.text

        # An idempotent POST repeated on the other API process is answered from the record.
        registered = [m.key for m in crm if m.type == "CustomerRegistered"]
        erased_upstream = {m.key for m in crm if m.type == "ErasureRequested"}
        member = next(k for k in registered if k not in erased_upstream)
        complaint = {"member_id": member, "channel": "phone", "category": "billing",
                     "description": "charged twice"}
        first = httpx.post(bases["api1"] + "/api/complaints", json=complaint, timeout=20,
                           headers={**agent, "Idempotency-Key": "k-1"})
        again = httpx.post(bases["api2"] + "/api/complaints", json=complaint, timeout=20,
                           headers={**agent, "Idempotency-Key": "k-1"})
        assert first.status_code == 201, first.text
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.headers.get("Idempotent-Replayed") == "true"
        filed = [key for kind, key, *_ in log_of(app) if kind == "ComplaintFiled"]
        assert filed == [first.json()["complaint_id"]]

        # Erased through one process: unreadable through every other at once (no stale key).
        readers = [b for n, b in bases.items() if n != "api1"]
        for base in readers:  # each reader has opened the member's name before the erasure
            profile = httpx.get(f"{base}/api/members/{member}/profile", headers=admin, timeout=20).json()
            assert profile["profile"]["name"] not in (None, "[erased]"), profile
        erased = httpx.post(f"{bases['api1']}/api/members/{member}/erase", headers=admin, json={}, timeout=20)
        assert erased.status_code == 200, erased.text
        for base in readers:
            profile = httpx.get(f"{base}/api/members/{member}/profile", headers=admin, timeout=20).json()
            assert profile["profile"]["name"] == "[erased]", (base, profile)

        # The read models agree: every process answers alike once its scheduler has folded the
        # log (each within a second), and once the relay and the workers have caught up, the
        # shared read store, the workers' store and a replay.
        def tiers() -> list:
            return [httpx.get(base + "/api/tiers?limit=500", headers=admin, timeout=20).json()
                    for base in bases.values()]
        cluster.wait_until(lambda: all(t == tiers()[0] for t in tiers()), 30, "the same tiers everywhere")
        assert len(tiers()[0]["items"]) == len({m.key for m in crm + orders})
        relay = Relay(app, None, topics)
        cluster.wait_until(lambda: relay.recorded_position() >= app.recorder.max_notification_id(), 60,
                           "relay caught up")
        domain_ends = end_offsets(kafka_broker, topics.domain_topics)
        cluster.wait_until(lambda: folded(settings, domain_ends), 60, "workers caught up")
    finally:
        producer.close()
        codes = cluster.stop()
    # uvicorn ends `vip api` by raising the SIGTERM again once it has shut down cleanly.
    failed = {name: code for name, code in codes.items()
              if code != 0 and not (name.startswith("api") and code == -15
                                    and "Finished server process" in cluster.tail(name))}
    assert not failed, (failed, [cluster.tail(name) for name in failed])
    assert not any((tmp_path / n / f).exists() for n in bases for f in ("keys.db", "api_keys.db", "idempotency.db"))

    build(settings).close()  # the shared read store folded to the log's end
    expected = _rows(replay(app, VIEWS))
    store = PostgresReadStore(pg_url, read_only=True, views=VIEWS)
    streams = open_stream_store(settings, read_only=True)
    try:
        _assert_same(expected, _rows(store), "the shared read store")
        _assert_same(expected, _rows(streams), "the stream workers' store")
    finally:
        store.close()
        streams.close()
        app.close()
