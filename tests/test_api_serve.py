"""`vip serve --api-port`: the API beside the consumer and relay, with their metrics."""
from __future__ import annotations

import re
import socket
import threading
import time
import uuid

import httpx
import pytest

from hosts.serve import serve
from infra.api.keys import ApiKeyStore
from infra.kafka.admin import create_all
from infra.kafka.bus import Topics, make_producer
from schemas.codec import encode
from tests.test_bus_flow import SESSION, upstream

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_serve_runs_the_api_beside_the_consumer_and_reports_lag_and_dead_letters(kafka_broker, make_system):
    prefix = "a" + uuid.uuid4().hex[:10]
    system = make_system(name=prefix, kafka_bootstrap=kafka_broker, topic_prefix=prefix)
    topics = Topics.from_settings(system.settings, env={})
    create_all(system.settings, topics)
    keys = ApiKeyStore(system.settings.data_dir / "api_keys.db")
    token = keys.create("auditor", "audit-1")[1]
    keys.close()
    producer = make_producer(kafka_broker)
    member = f"{prefix}-M1"
    kind, record = upstream("CustomerRegistered", member, "2025-01-01T09:00:00+08:00", name="王芳")
    producer.send(topics.source_topic("crm"), key=member.encode(), value=encode(f"vip.upstream.{kind}", record),
                  headers=[("event_type", kind.encode())])
    producer.send(topics.source_topic("crm"), key=b"junk", value=b"not avro at all")
    producer.flush()

    port, done = _free_port(), threading.Event()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(serve(
        system.settings, system=system, stop=done.is_set, env=SESSION, api_port=port, tick_seconds=3600)))
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(base + "/metrics", timeout=5).text
            except httpx.TransportError:
                text = ""
            if _metric(text, 'vip_consumer_messages_total{outcome="applied"}') == 1 \
                    and _metric(text, "vip_relay_lag_events") == 0:
                break
            time.sleep(0.5)
        assert _metric(text, 'vip_consumer_messages_total{outcome="applied"}') == 1, text[-2000:]
        assert _metric(text, 'vip_consumer_messages_total{outcome="dead"}') == 1
        assert any(line.startswith("vip_dead_letters_total{") and line.endswith(" 1.0")
                   for line in text.splitlines()), text[-2000:]
        lags = [float(v) for v in re.findall(r"^vip_consumer_lag\{[^}]*\} ([0-9.]+)$", text, re.M)]
        assert lags and sum(lags) == 0
        assert _metric(text, "vip_relay_published_total") >= 1
        tiers = httpx.get(base + "/api/tiers", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert [t["member_id"] for t in tiers["items"]] == [member]
    finally:
        done.set()
        thread.join(timeout=60)
        producer.close(timeout=5)
    assert result["consumed"]["applied"] == 1 and result["consumed"]["dead"] == 1
