"""The test infrastructure itself: throwaway PostgreSQL and the Tansu broker."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest

from infra.dev.broker import free_port
from infra.kafka.admin import create_topics

# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


@pytest.mark.postgres
def test_pg_cluster_runs_queries(pg_cluster):
    import psycopg

    assert pg_cluster.url == f"postgresql://{pg_cluster.user}@127.0.0.1:{pg_cluster.port}/vip"
    with psycopg.connect(pg_cluster.dsn) as conn:
        version, db, fsync = conn.execute(
            "SELECT current_setting('server_version_num')::int, current_database(), current_setting('fsync')"
        ).fetchone()
        assert 150000 <= version < 160000
        assert db == "vip"
        assert fsync == "off"
        assert conn.execute("SELECT 6 * 7").fetchone() == (42,)
    # the URL form works too
    with psycopg.connect(pg_cluster.url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (pg_cluster.user,)


@pytest.mark.postgres
def test_pg_url_is_a_fresh_database(pg_cluster, pg_url):
    import psycopg

    assert pg_url.startswith(f"postgresql://{pg_cluster.user}@127.0.0.1:{pg_cluster.port}/")
    assert not pg_url.endswith("/vip")
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
        assert tables == 0
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t VALUES (1, 'x')")
        conn.commit()
        assert conn.execute("SELECT v FROM t WHERE id = 1").fetchone() == ("x",)


# --------------------------------------------------------------------------
# Kafka (Tansu)
# --------------------------------------------------------------------------


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.kafka
def test_create_topics_is_idempotent(kafka_broker):
    from kafka import KafkaConsumer

    name = f"test.idem.{uuid.uuid4().hex[:8]}"
    assert create_topics(kafka_broker, [name], partitions=3) == [name]
    assert create_topics(kafka_broker, name, partitions=3) == []
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker)
    try:
        assert consumer.partitions_for_topic(name) == {0, 1, 2}
    finally:
        consumer.close()


@pytest.mark.kafka
def test_broker_round_trip_keeps_per_key_order(kafka_broker):
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker, [topic], partitions=3)

    keys = [f"member-{i}" for i in range(8)]
    per_key = 15
    sent: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)

    # Two separate producers: the key -> partition mapping must not depend on
    # the producer instance (murmur2 default partitioner).
    for half in (range(0, per_key // 2), range(per_key // 2, per_key)):
        producer = KafkaProducer(bootstrap_servers=kafka_broker, acks="all", linger_ms=5)
        try:
            futures = []
            for seq in half:
                for key in keys:
                    fut = producer.send(topic, key=key.encode(), value=f"{key}:{seq}".encode())
                    futures.append((key, seq, fut))
                    sent[key].append(seq)
            producer.flush()
            for key, _seq, fut in futures:
                partition_of[key].add(fut.get(timeout=10).partition)
        finally:
            producer.close()

    assert all(len(p) == 1 for p in partition_of.values()), partition_of
    expected_partition = {k: next(iter(p)) for k, p in partition_of.items()}
    assert len(set(expected_partition.values())) > 1, "keys should spread over partitions"

    total = len(keys) * per_key
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",  # Tansu 0.6: LATEST offsets are wrong
        enable_auto_commit=False,
        session_timeout_ms=6000,  # first group join takes ~session_timeout/2
        heartbeat_interval_ms=1000,
    )
    received: dict[str, list[int]] = defaultdict(list)
    count = 0
    try:
        deadline = time.monotonic() + 30
        while count < total and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for rec in records:
                    key = rec.key.decode()
                    assert rec.partition == expected_partition[key] == tp.partition
                    k2, seq = rec.value.decode().rsplit(":", 1)
                    assert k2 == key
                    received[key].append(int(seq))
                    count += 1
        consumer.commit()
    finally:
        consumer.close()

    assert count == total, f"got {count}/{total} messages"
    assert dict(received) == dict(sent)  # everything back, per-key order intact
