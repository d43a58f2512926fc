"""Every read model rebuilt from the domain topics (``vip replay --source kafka``).

Reads each partition of the domain topics from the beginning to its end with
an assigned consumer (no group, nothing committed, nothing written) and folds
each decoded event with the same ``apply(store, views, event)`` the embedded
runner and the stream processors use, so the three give the same rows.

The end of a partition is the high watermark the first fetch reports (Tansu
0.6 answers ListOffsets LATEST wrongly, see ``infra.dev.broker``); it is
fixed then, so a replay is a snapshot of the topics even while the relay
keeps publishing. An event whose version was already folded for its
aggregate (the relay publishes a batch again after a crash) is a duplicate
and is skipped; a message that does not decode is counted and skipped.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from kafka import TopicPartition
from kafka.errors import KafkaError

from infra.kafka.admin import TopicNotFoundError, partitions_of
from infra.kafka.bus import make_consumer
from infra.progress import bar as _bar
from infra.service_layer.runner import apply
from infra.stores.readstore import MemoryStore
from projections.common import iso
from schemas.codec import CodecError
from schemas.events import decode_event

log = logging.getLogger("vip.topic_replay")

CONNECT_TIMEOUT = 5.0  # seconds to reach the broker: an address that answers nothing fails fast


class TopicReplayError(RuntimeError):
    """The topics could not be read to their end (broker unreachable, topic missing, too slow)."""


@dataclass
class TopicReplay:
    """What a replay from the topics folded, and where it stopped."""

    store: MemoryStore
    folded: int = 0
    duplicates: int = 0
    undecodable: int = 0
    after: int = 0  # decoded events later than ``until``, not folded
    gaps: int = 0  # events folded after a missing version (e.g. one the relay dead-lettered)
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)  # topic -> partition -> next offset

    def counts(self) -> dict:
        """The counts and offsets as plain JSON-able data."""
        return {"folded": self.folded, "duplicates": self.duplicates, "undecodable": self.undecodable,
                "after_as_of": self.after, "gaps": self.gaps,
                "next_offsets": {t: {str(p): o for p, o in sorted(ps.items())}
                                 for t, ps in sorted(self.offsets.items())}}


def replay_topics(bootstrap: str, topics: Iterable[str], views, until: datetime | None = None,
                  progress: bool = False, timeout: float = 30.0) -> TopicReplay:
    """Fold every message of ``topics`` (up to instant ``until``, inclusive) into a fresh MemoryStore.

    ``timeout`` bounds the wait for the broker, for each topic's metadata and
    for any stretch without a fetch reaching the broker's answer; past it a
    :class:`TopicReplayError` says what was missing. Returns the store with
    the counts (folded, duplicates, undecodable, after ``until``, version gaps) and the next
    offset per partition.
    """
    topics = list(topics)
    store = MemoryStore()
    for view in views:
        store.view(view.name)
    result = TopicReplay(store)
    try:
        consumer = make_consumer(bootstrap, None, env={}, enable_auto_commit=False, fetch_max_wait_ms=100,
                                 max_poll_records=5000, client_id="vip-topic-replay",
                                 bootstrap_timeout_ms=int(min(timeout, CONNECT_TIMEOUT) * 1000))
    except KafkaError as exc:
        raise TopicReplayError(f"cannot reach the Kafka broker at {bootstrap} ({type(exc).__name__}); "
                               "is it running and is VIP_KAFKA_BOOTSTRAP right?") from None
    bar = _bar(None, "replay", progress)
    try:
        partitions = _partitions(consumer, bootstrap, topics, timeout)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        _fold_to_end(consumer, partitions, views, until, result, bar, timeout)
    except KafkaError as exc:
        raise TopicReplayError(f"reading {', '.join(topics)} from {bootstrap} failed: {exc!r}") from None
    finally:
        bar.close()
        consumer.close(autocommit=False)
    return result


def _partitions(consumer, bootstrap: str, topics: list[str], timeout: float) -> list[TopicPartition]:
    try:
        return partitions_of(consumer, topics, time.monotonic() + timeout, bootstrap)
    except TopicNotFoundError as exc:
        raise TopicReplayError(str(exc)) from None


def _fold_to_end(consumer, partitions, views, until, result: TopicReplay, bar, timeout: float) -> None:
    ends: dict[TopicPartition, int] = {}
    versions: dict[tuple[str, str], int] = {}  # (aggregate, aggregate id) -> last version folded
    latest: datetime | None = None
    last_progress = time.monotonic()
    while True:
        batch = consumer.poll(timeout_ms=200)
        for tp in partitions:
            if tp not in ends and consumer.highwater(tp) is not None:
                ends[tp] = consumer.highwater(tp)  # fixed now: the snapshot this replay folds
                if len(ends) == len(partitions):
                    bar.total = sum(ends.values())
                    bar.refresh()
        for tp, records in batch.items():
            end = ends.get(tp)
            for record in records:
                if end is not None and record.offset >= end:
                    break  # published after the snapshot
                at = _fold_one(record, views, until, versions, result)
                if at is not None and (latest is None or at > latest):
                    latest = at
            bar.update(len(records) if end is None else sum(1 for r in records if r.offset < end))
        if batch:
            last_progress = time.monotonic()
        if len(ends) == len(partitions) and all(consumer.position(tp) >= end for tp, end in ends.items()):
            break
        if time.monotonic() - last_progress > timeout:
            behind = {f"{tp.topic}[{tp.partition}]": (consumer.position(tp), ends.get(tp)) for tp in partitions
                      if tp not in ends or consumer.position(tp) < ends[tp]}
            raise TopicReplayError(f"no message for {timeout:.0f}s before the end of {behind} "
                                   "(position, end); is the broker overloaded?")
    for tp, end in ends.items():
        result.offsets.setdefault(tp.topic, {})[tp.partition] = end
    result.store.position = result.folded
    result.store.clock = iso(latest)


def _fold_one(record, views, until, versions: dict, result: TopicReplay) -> datetime | None:
    """Fold one message unless it is undecodable, later than ``until`` or a duplicate;
    returns the timestamp of a folded event."""
    try:
        event = decode_event(record.value)
    except (CodecError, TypeError) as exc:  # TypeError: a value-less message (tombstone)
        result.undecodable += 1
        log.warning("%s[%d]@%d cannot be decoded, skipped: %s", record.topic, record.partition,
                    record.offset, exc)
        return None
    if until is not None and event["timestamp"] > until:
        result.after += 1
        return None
    aggregate = (event["aggregate"], event["aggregate_id"])
    folded = versions.get(aggregate, 0)
    if event["version"] <= folded:
        result.duplicates += 1
        return None
    if event["version"] != folded + 1:
        result.gaps += 1
        log.warning("%s %s jumps from version %d to %d at %s[%d]@%d", *aggregate, folded, event["version"],
                    record.topic, record.partition, record.offset)
    apply(result.store, views, event)
    versions[aggregate] = event["version"]
    result.folded += 1
    return event["timestamp"]
