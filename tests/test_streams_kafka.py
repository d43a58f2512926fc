"""The Faust stream workers on a real broker give the embedded read models' answers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from infra.dev.demo import run_demo
from kafka import TopicPartition

from infra.kafka.admin import create_all, read_topics
from infra.kafka.bus import DLQ_REASON, Topics, header_map, make_consumer, make_producer
from infra.kafka.relay import Relay
from infra.settings import Settings
from infra.stores.streamstore import open_stream_store
from projections.views import VIEWS

pytestmark = pytest.mark.kafka

VIP = os.path.join(os.path.dirname(sys.executable), "vip")


def _published(make_system, kafka_broker, members: int, seed: int):
    """A demo log relayed to fresh topics, plus one message no fold can read. (system, topics, count)"""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    system = make_system(kafka_bootstrap=kafka_broker, topic_prefix=prefix)
    topics = Topics(prefix)
    create_all(system.settings, topics)
    run_demo(system, members=members, seed=seed, progress=False)
    system.engine.flush()
    producer = make_producer(kafka_broker)
    published = Relay(system.app, producer, topics).catch_up()
    assert published == system.app.recorder.max_notification_id()
    producer.send(topics.domain("member"), key=b"M-bad", value=b"\x00garbage").get(timeout=10)
    producer.close()
    return system, topics, published + 1


def _env(kafka_broker, topics, data_dir, store_url=None) -> dict:
    env = {**os.environ, "VIP_DATA_DIR": str(data_dir), "VIP_KAFKA_BOOTSTRAP": kafka_broker,
           "VIP_TOPIC_PREFIX": topics.prefix, "VIP_BATCH_MAX_INPUTS": "200", "VIP_BATCH_MAX_MS": "200"}
    env.pop("VIP_STREAMS_STORE", None)
    if store_url:
        env["VIP_STREAMS_STORE"] = store_url
    return env


def _settings(env) -> Settings:
    return Settings.from_env(env)


def _processed(env, topics) -> int:
    try:
        store = open_stream_store(_settings(env), read_only=True)
    except Exception:
        return 0
    try:
        offsets = store.offsets() if hasattr(store, "offsets") else {}
        return sum(n for (topic, _), n in offsets.items() if topic in topics.domain_topics)
    finally:
        store.close()


def _start(env):
    """A worker whose output goes to a file in the data dir (shown when a check fails)."""
    os.makedirs(env["VIP_DATA_DIR"], exist_ok=True)
    log = open(os.path.join(env["VIP_DATA_DIR"], f"worker-{uuid.uuid4().hex[:6]}.log"), "w")
    cwd = os.path.join(os.path.dirname(env["VIP_DATA_DIR"]), "cwd")  # must stay empty
    os.makedirs(cwd, exist_ok=True)
    worker = subprocess.Popen([VIP, "streams", "run", "--loglevel", "info"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, text=True, cwd=cwd)
    worker.log_path = log.name
    log.close()
    return worker


def _output(*workers) -> str:
    return "\n".join(f"--- {w.log_path}\n" + open(w.log_path).read()[-3000:] for w in workers)


def _stop(*workers) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _wait(env, topics, total, workers, timeout=120, at_least=None) -> None:
    deadline = time.monotonic() + timeout
    goal = total if at_least is None else at_least
    while _processed(env, topics) < goal:
        for worker in workers:
            assert worker.poll() is None, _output(worker)
        assert time.monotonic() < deadline, f"processed {_processed(env, topics)} of {total}" + _output(*workers)
        time.sleep(0.3)


def _views(env) -> dict:
    store = open_stream_store(_settings(env), read_only=True)
    try:
        return {v.name: dict(store.view(v.name).items()) for v in VIEWS
                if any(True for _ in store.view(v.name).items())}
    finally:
        store.close()


def _embedded(system) -> dict:
    return {name: rows for name, rows in system.store.rows.items() if rows}


def test_one_worker_builds_the_read_models_and_rebuilds_a_deleted_store_from_the_topics(
        make_system, kafka_broker, tmp_path):
    system, topics, total = _published(make_system, kafka_broker, members=40, seed=13)
    env = _env(kafka_broker, topics, tmp_path / "streams")
    worker = _start(env)
    try:
        _wait(env, topics, total, [worker])
        second = subprocess.run([VIP, "streams", "run"], env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "VIP_STREAMS_STORE=postgresql://" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        _stop(worker)
    assert _views(env) == _embedded(system)
    assert not list((tmp_path / "cwd").iterdir()), "a worker wrote into its working directory"
    dead = read_topics(kafka_broker, [Topics.dlq(topics.domain("member"))])
    assert len(dead) == 1
    reason = header_map(dead[0].headers)[DLQ_REASON]
    assert "bad-magic" in reason or "CodecError" in reason
    summary = subprocess.run([VIP, "streams", "summary", "--json"], env=env, capture_output=True, text=True)
    answer = json.loads(summary.stdout)
    assert answer["members"] == 40 and answer["parked"] == 0
    assert sum(answer["offsets"].values()) == total and answer["rows"]["ledger"] == len(system.store.rows["ledger"])

    # The group's Kafka offsets are ahead; the store is gone: the worker seeks to the beginning.
    consumer = make_consumer(kafka_broker, f"{topics.prefix}.views")
    try:
        committed = [consumer.committed(TopicPartition(t, p)) for t in topics.domain_topics for p in range(3)]
    finally:
        consumer.close()
    assert sum(c or 0 for c in committed) > 0, "the group's Kafka offsets should be ahead of the lost store"
    for path in (tmp_path / "streams").glob("streams.db*"):
        path.unlink()
    worker = _start(env)
    try:
        _wait(env, topics, total, [worker])
    finally:
        _stop(worker)
    assert _views(env) == _embedded(system)


def test_two_workers_on_postgresql_with_one_killed_mid_stream_build_the_embedded_read_models(
        make_system, kafka_broker, pg_url, tmp_path):
    system, topics, total = _published(make_system, kafka_broker, members=150, seed=21)
    env = _env(kafka_broker, topics, tmp_path / "streams", store_url=pg_url)
    env["VIP_BATCH_MAX_INPUTS"] = "50"
    workers = [_start(env), _start(env)]
    try:
        _wait(env, topics, total, workers, at_least=total // 4)
        workers[0].kill()  # SIGKILL: no drain, no Kafka commit
        workers[0].wait()
        workers[0] = _start(env)
        _wait(env, topics, total, workers, timeout=180)
    finally:
        _stop(*workers)
    assert _views(env) == _embedded(system), _output(*workers)
    dead = read_topics(kafka_broker, [Topics.dlq(topics.domain("member"))])
    assert len(dead) >= 1 and all(d.key == b"M-bad" for d in dead)
