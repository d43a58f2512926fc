"""The bus commands: ``vip topics create``, ``vip produce``, ``vip serve``, ``vip broker``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from hosts.main import main
from infra.kafka.admin import read_topics
from infra.kafka.bus import header_map
from schemas.codec import decode

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[1]


def _env(kafka_broker: str, tmp_path: Path, prefix: str) -> dict:
    return {"VIP_KAFKA_BOOTSTRAP": kafka_broker, "VIP_TOPIC_PREFIX": prefix, "VIP_DATA_DIR": str(tmp_path / "data"),
            "VIP_EVENT_STORE": "sqlite", "VIP_TOPIC_PARTITIONS": "2", "VIP_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "VIP_KAFKA_HEARTBEAT_MS": "1000"}


def test_topics_produce_and_serve(kafka_broker, tmp_path):
    prefix = "k" + uuid.uuid4().hex[:10]
    env = _env(kafka_broker, tmp_path, prefix)
    runner = CliRunner()

    made = runner.invoke(main, ["topics", "create", "--json"], env=env)
    assert made.exit_code == 0, made.output
    answer = json.loads(made.output)
    assert answer["partitions"] == 2 and len(answer["created"]) == 10  # 3 domain + 2 upstream + 5 dead-letter
    assert f"{prefix}.upstream.orders.v1.dlq" in answer["created"]
    again = runner.invoke(main, ["topics", "create", "--json"], env=env)
    assert json.loads(again.output)["created"] == []

    for source, count in (("crm", 20), ("orders", 60)):
        sent = runner.invoke(main, ["produce", source, "--count", str(count), "--rate", "0", "--members", "10",
                                    "--seed", "3", "--start", "2025-03-01T09:00:00+08:00"], env=env)
        assert sent.exit_code == 0, sent.output
        assert f"produce: {count} {source} events" in sent.output
    records = read_topics(kafka_broker, [f"{prefix}.upstream.orders.v1"])
    assert len(records) == 60
    for r in records:
        decoded = decode(r.value)
        assert decoded.name.startswith("vip.upstream.Order")
        assert r.key == decoded.record["member_id"].encode()
        assert header_map(r.headers)["event_id"] == decoded.record["event_id"]

    # vip serve: consumes both topics, publishes the domain events, stops on SIGTERM with 0
    serve = subprocess.Popen([sys.executable, "-m", "hosts.serve"], cwd=ROOT,
                             env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        member_topic = f"{prefix}.member.events.v1"
        while True:
            out = read_topics(kafka_broker, [member_topic])
            causes = {header_map(r.headers)["causation_id"] for r in out}
            if len(causes) >= 80:
                break
            assert time.monotonic() < deadline and serve.poll() is None, "serve did not publish in time"
            time.sleep(0.5)
        serve.send_signal(signal.SIGTERM)
        output = serve.communicate(timeout=30)[0].decode()
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, output
    assert "serve: stopped" in output and "'applied': 80" in output
    types = Counter(header_map(r.headers)["event_type"] for r in out)
    assert types["MemberRegistered"] == 10 and types["OrderPaid"] > 0


def test_broker_command_runs_until_sigterm(tmp_path):
    from infra.dev.broker import BrokerBinaryNotFound, free_port, tansu_binary

    try:
        tansu_binary()
    except BrokerBinaryNotFound as exc:
        pytest.skip(str(exc))
    port = free_port("127.0.0.1")
    env = {**os.environ, "VIP_TOPIC_PREFIX": "dev", "VIP_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", "from hosts.main import main; main()", "broker",
                             "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("topics: created"):
                break
        assert f"export VIP_KAFKA_BOOTSTRAP=127.0.0.1:{port}\n" in lines
        assert "development only" in lines[0]
        assert "dev.upstream.crm.v1.dlq" in lines[-1]
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "broker: stopped" in rest
