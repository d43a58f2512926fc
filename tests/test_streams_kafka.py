"""The Faust stream processors on a real broker give the embedded read models' answers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from consumers.streams import VERSIONS, StreamViewStore
from infra.dev.demo import run_demo
from infra.kafka.admin import create_all, read_topics
from infra.kafka.bus import DLQ_REASON, Topics, header_map, make_producer
from infra.kafka.relay import Relay

pytestmark = pytest.mark.kafka


def _processed(path, topics) -> int:
    if not path.exists():
        return 0
    try:
        store = StreamViewStore(path)
    except Exception:
        return 0
    try:
        return sum(offset + 1 for (topic, _), offset in store.offsets.items() if topic in topics)
    finally:
        store.close()


def test_faust_agents_build_the_same_read_models_from_the_topics(make_system, kafka_broker, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    system = make_system(kafka_bootstrap=kafka_broker, topic_prefix=prefix)
    topics = Topics(prefix)
    create_all(system.settings, topics)
    run_demo(system, members=40, seed=13, progress=False)
    system.engine.flush()
    producer = make_producer(kafka_broker)
    published = Relay(system.app, producer, topics).catch_up()
    assert published == system.app.recorder.max_notification_id()
    # A message no fold can take, in the middle of a domain topic.
    member_topic = topics.domain("member")
    producer.send(member_topic, key=b"M-bad", value=b"\x00garbage").get(timeout=10)

    data_dir = tmp_path / "streams"
    env = {**os.environ, "VIP_DATA_DIR": str(data_dir), "VIP_KAFKA_BOOTSTRAP": kafka_broker,
           "VIP_TOPIC_PREFIX": prefix}
    vip = os.path.join(os.path.dirname(sys.executable), "vip")
    worker = subprocess.Popen([vip, "streams", "run"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        path = data_dir / "streams.db"
        while _processed(path, topics.domain_topics) < published + 1:
            assert worker.poll() is None, worker.stdout.read()
            assert time.monotonic() < deadline, f"streams processed {_processed(path, topics.domain_topics)}"
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    store = StreamViewStore(data_dir / "streams.db")
    try:
        views = {name: rows for name, rows in store.rows.items() if name != VERSIONS}
        assert views == {name: rows for name, rows in system.store.rows.items() if rows}
    finally:
        store.close()
    dead = read_topics(kafka_broker, [Topics.dlq(member_topic)])
    assert len(dead) == 1
    reason = header_map(dead[0].headers)[DLQ_REASON]
    assert "bad-magic" in reason or "CodecError" in reason
    producer.close()
