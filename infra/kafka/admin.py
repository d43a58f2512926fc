"""Topic administration and whole-topic reads: creating the project's topics, reading them back.

Used by ``vip topics create``, the services at start-up, the tests and the
benchmarks, against Apache Kafka or the development broker alike.
"""
from __future__ import annotations

import time
from typing import Iterable

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from infra.kafka.bus import Topics, make_consumer
from infra.settings import Settings


class TopicError(RuntimeError):
    """Topics could not be created or did not show up in the cluster's metadata."""


def admin_client(bootstrap: str, request_timeout_ms: int = 5000):
    """A KafkaAdminClient that fails fast; works with kafka-python 2.x and 3.x."""
    cfg: dict = {"bootstrap_servers": bootstrap, "request_timeout_ms": request_timeout_ms}
    known = getattr(KafkaAdminClient, "DEFAULT_CONFIG", {})
    # kafka-python 3.x: otherwise bootstrapping a dead address blocks ~30s.
    if "bootstrap_timeout_ms" in known:
        cfg["bootstrap_timeout_ms"] = request_timeout_ms
    # kafka-python 2.x: same idea, older knob.
    if "api_version_auto_timeout_ms" in known:
        cfg["api_version_auto_timeout_ms"] = request_timeout_ms
    return KafkaAdminClient(**cfg)


def create_topics(
    bootstrap: str,
    names: str | Iterable[str],
    partitions: int = 3,
    replication: int = 1,
    timeout: float = 30,
) -> list[str]:
    """Create *names* (idempotent: existing topics are left untouched).

    Returns the names that were actually created by this call.  Waits until
    every requested topic shows up in cluster metadata.
    """
    wanted = [names] if isinstance(names, str) else list(dict.fromkeys(names))
    if not wanted:
        return []
    admin = admin_client(bootstrap, request_timeout_ms=int(timeout * 1000))
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for name in wanted:
            if name in existing:
                continue
            try:
                admin.create_topics(
                    [NewTopic(name=name, num_partitions=partitions, replication_factor=replication)],
                    timeout_ms=int(timeout * 1000),
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # raced with another creator: fine
        deadline = time.monotonic() + timeout
        while True:
            missing = set(wanted) - set(admin.list_topics())
            if not missing:
                return created
            if time.monotonic() >= deadline:
                raise TopicError(f"topics not visible after {timeout}s: {sorted(missing)}")
            time.sleep(0.1)
    finally:
        admin.close()


def create_all(settings: Settings, topics: Topics | None = None, timeout: float = 30) -> list[str]:
    """Create every topic (idempotent); returns the names this call created."""
    topics = topics or Topics.from_settings(settings)
    return create_topics(settings.kafka_bootstrap, topics.all(), partitions=settings.topic_partitions,
                         replication=settings.topic_replication, timeout=timeout)


def end_offsets(bootstrap: str, names: Iterable[str], timeout: float = 30.0) -> dict:
    """``{(topic, partition): high watermark}`` of every partition of ``names``.

    Read from a fetch's answer, not ListOffsets (which Tansu 0.6 answers wrongly).
    """
    names = list(names)
    consumer = make_consumer(bootstrap, None, env={}, enable_auto_commit=False, fetch_max_wait_ms=50,
                             max_partition_fetch_bytes=1024, client_id="vip-ends")
    try:
        partitions = partitions_of(consumer, names, time.monotonic() + timeout, bootstrap)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(tp) is None for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fetch answered for {list(names)} within {timeout}s")
            consumer.poll(timeout_ms=100, max_records=1)
        return {(tp.topic, tp.partition): consumer.highwater(tp) for tp in partitions}
    finally:
        consumer.close(autocommit=False)


class TopicNotFoundError(TimeoutError):
    """A topic's metadata did not show up on the broker in time."""


def partitions_of(consumer, names: Iterable[str], deadline: float, bootstrap: str) -> list:
    """Every partition of ``names``, waiting until ``deadline`` (monotonic) for metadata of a
    topic created a moment ago; raises :class:`TopicNotFoundError`."""
    partitions = []
    for name in names:
        found = consumer.partitions_for_topic(name)
        while not found and time.monotonic() < deadline:
            time.sleep(0.1)
            found = consumer.partitions_for_topic(name)
        if not found:
            raise TopicNotFoundError(f"topic {name!r} not found on {bootstrap}; check VIP_TOPIC_PREFIX "
                                     "(`vip topics create` makes the topics)")
        partitions += [TopicPartition(name, p) for p in sorted(found)]
    return partitions


def read_topics(bootstrap: str, names: Iterable[str], timeout: float = 30.0, idle: float = 0.0) -> list:
    """Every message on ``names`` from the beginning to the current end, without a group.

    The end is the high watermark each fetch reports (not ListOffsets, which
    Tansu 0.6 answers wrongly). Returns kafka-python ``ConsumerRecord`` objects,
    per partition in offset order. With ``idle`` > 0 it keeps reading until
    nothing new arrived for that many seconds.
    """
    consumer = make_consumer(bootstrap, None, env={}, enable_auto_commit=False, fetch_max_wait_ms=100,
                             max_poll_records=5000, client_id="vip-reader")
    try:
        deadline = time.monotonic() + timeout
        partitions = partitions_of(consumer, names, deadline, bootstrap)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list = []
        last_new = time.monotonic()
        while True:
            batch = consumer.poll(timeout_ms=200)
            for tp_records in batch.values():
                records.extend(tp_records)
            if batch:
                last_new = time.monotonic()
            at_end = all(consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp)
                         for tp in partitions)
            if at_end and time.monotonic() - last_new >= idle:
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {list(names)} did not reach the end within {timeout}s")
    finally:
        consumer.close(autocommit=False)
