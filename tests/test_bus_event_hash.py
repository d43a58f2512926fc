"""A consumer can verify what it read: each domain message carries its event's chain hash."""
from __future__ import annotations

import uuid

import pytest

from bench.workloads import generate_orders
from infra.audit.chain import oid_text
from infra.kafka.admin import create_all, read_topics
from infra.kafka.bus import Topics, header_map, make_producer
from infra.kafka.relay import Relay
from infra.service_layer.envelope import envelope
from infra.service_layer.ingest import ingest_file

pytestmark = pytest.mark.kafka


def test_relayed_messages_carry_the_stored_event_hash(kafka_broker, make_system, tmp_path):
    prefix = "h" + uuid.uuid4().hex[:10]
    system = make_system(name=prefix, kafka_bootstrap=kafka_broker, topic_prefix=prefix)
    topics = Topics.from_settings(system.settings, env={})
    create_all(system.settings, topics)
    generate_orders(tmp_path / "orders.jsonl", 30, 5, seed=3)
    assert ingest_file(system.engine, "orders", str(tmp_path / "orders.jsonl"), None, progress=False).applied == 30
    recorder = system.app.recorder
    notes = recorder.select_notifications(0, 10_000, inclusive_of_start=False)
    stored = recorder.event_hashes([(oid_text(n.originator_id), n.originator_version) for n in notes])
    assert len(stored) == len(notes)
    by_id = {envelope(system.app.mapper.to_domain_event(n), n.id)["id"]:
             stored[(oid_text(n.originator_id), n.originator_version)] for n in notes}
    producer = make_producer(kafka_broker)
    try:
        assert Relay(system.app, producer, topics, batch=7).catch_up() == len(notes)
    finally:
        producer.close(timeout=5)
    records = read_topics(kafka_broker, topics.domain_topics)
    got = {header_map(r.headers)["event_id"]: header_map(r.headers)["event_hash"] for r in records}
    assert got == {event_id: h.hex() for event_id, h in by_id.items()}
