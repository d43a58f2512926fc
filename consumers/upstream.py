"""The upstream consumer: order and CRM topics in, through the one command path.

Each message is decoded (Avro single-object encoding: the writer schema is
found by its fingerprint and resolved to the latest reader), validated with
:func:`infra.service_layer.upstream.parse` and applied with :func:`infra.service_layer.upstream.apply_input`,
exactly as ``vip ingest`` applies a line of a file.

**Exactly-once effect.** Messages are applied in batches, one partition at a
time: what came, closed as soon as the consumer caught up (``_poll``), at most
``VIP_BATCH_MAX_INPUTS`` or ``VIP_BATCH_MAX_MS``. The consumed position is recorded in the event store as a
tracking row ``kafka:<topic>:<partition>`` = offset + 1 of the batch's last
message, in the same transaction as the events the batch caused. On assignment the consumer
seeks every partition to that recorded position, so the event store, not
Kafka's committed offsets, says what was consumed: a crash before the commit
replays the message, a crash after it skips it. Offsets are also committed to
Kafka, as a courtesy for monitoring tools and lag dashboards.

**Dead letters.** A message that cannot be decoded, has an unknown schema
fingerprint, carries invalid values, or is refused by the domain goes to
``<topic>.dlq`` with the original key, value and headers plus
``dlq_reason`` (``<reason>: <detail>``, the reason one of the codec's
``bad-magic``, ``unknown-fingerprint``, ``decode-failed``, ... or ``too-large`` (over
``MAX_INPUT_BYTES``, refused unread), or
``invalid``, ``refused``, ``error``), ``dlq_original_topic``,
``dlq_original_partition`` and ``dlq_original_offset``. The dead letter is
acknowledged by the broker first, then the position is recorded with its
batch, so a crash in between gives at most a duplicate dead letter, never a
lost one.
Failures of the event store itself are not dead-lettered: the consumer stops
(non-zero exit) and a restart retries the message.

**Stopping.** SIGTERM finishes the batch in hand, commits, flushes the
views and closes; the process exits 0.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from eventsourcing.persistence import PersistenceError, Tracking
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from domain.base import DomainError
from infra.kafka.bus import Topics, dead_letter_headers, make_consumer, tracking_name
from infra.service_layer.masking import MAX_INPUT_BYTES
from infra.service_layer.upstream import SOURCES, Input, InputError, apply_input, parse
from schemas.codec import CodecError, SchemaRegistry, decode

log = logging.getLogger("vip.consumer")

UPSTREAM_NAMESPACE = "vip.upstream"


class DeadLetter(Exception):
    """A message that goes to the dead-letter topic; ``reason`` is ``<kind>: <detail>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_message(source: str, value: bytes | None, registry: SchemaRegistry | None = None) -> Input:
    """One upstream message's bytes -> a validated :class:`Input`; raises :class:`DeadLetter`."""
    if value is None:
        raise DeadLetter("bad-magic: the message has no value (a tombstone)")
    if len(value) > MAX_INPUT_BYTES:
        # Refused by its size alone: never decoded, scanned or copied into the reason.
        raise DeadLetter(f"too-large: the message is {len(value)} bytes; an upstream event is at most "
                         f"{MAX_INPUT_BYTES} bytes")
    try:
        decoded = decode(value, registry=registry)
    except CodecError as exc:
        raise DeadLetter(f"{exc.reason}: {exc.message}") from None
    namespace, _, kind = decoded.name.rpartition(".")
    if namespace != UPSTREAM_NAMESPACE:
        raise DeadLetter(f"invalid: schema {decoded.name} is not an upstream event ({UPSTREAM_NAMESPACE}.*)")
    if kind not in SOURCES.get(source, ()):
        raise DeadLetter(f"invalid: {kind} does not belong on the {source} topic "
                         f"(expected one of {', '.join(SOURCES[source])})")
    try:
        return parse(source, decoded.record, type_hint=kind)
    except InputError as exc:
        raise DeadLetter(f"invalid: {exc}") from None


@dataclass
class Stats:
    counts: Counter = field(default_factory=Counter)   # applied, duplicate, dead, skipped
    reasons: Counter = field(default_factory=Counter)  # dead letters by reason kind

    def as_dict(self) -> dict:
        return {**{k: self.counts[k] for k in ("applied", "duplicate", "dead", "skipped")},
                "dead_by_reason": dict(self.reasons)}


class UpstreamConsumer:
    """A member of the upstream consumer group, applying messages to one engine.

    ``engine`` is the system's :class:`infra.service_layer.engine.Engine`; ``producer`` is a
    Kafka producer for dead letters. Call :meth:`start`, then :meth:`poll_once`
    in a loop (or :meth:`run`), then :meth:`close`.
    """

    def __init__(self, engine, topics: Topics, bootstrap: str, producer, *, group: str,
                 consumer_overrides: dict | None = None, env: dict | None = None,
                 registry: SchemaRegistry | None = None, flush_every: float = 1.0,
                 commit_every: float = 2.0,
                 on_outcome: Callable[[object, str], None] | None = None) -> None:
        self.engine, self.app = engine, engine.app
        self.topics, self.bootstrap, self.producer, self.group = topics, bootstrap, producer, group
        self.consumer_overrides, self.env = consumer_overrides or {}, env
        self.registry = registry
        self.flush_every, self.commit_every = flush_every, commit_every
        self.on_outcome = on_outcome
        self.stats = Stats()
        self.consumer = None
        self.next_offsets: dict = {}      # TopicPartition -> next offset, for the courtesy commit
        self._committed: dict = {}
        self._last_flush = self._last_commit = time.monotonic()
        self._dirty, self._held = False, {}   # _held: records polled, not yet applied, by partition

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "UpstreamConsumer":
        owner = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                owner._on_revoked(revoked)

            def on_partitions_assigned(self, assigned):
                owner._on_assigned(assigned)

        self.consumer = make_consumer(self.bootstrap, self.group, self.env, **self.consumer_overrides)
        self.consumer.subscribe(list(self.topics.upstream), listener=Listener())
        return self

    def _on_assigned(self, assigned) -> None:
        """Seek each partition to the position the event store recorded for it."""
        for tp in assigned:
            recorded = self.app.recorder.max_tracking_id(tracking_name(tp.topic, tp.partition))
            if recorded is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, recorded)
                # What the former owner consumed is committed to Kafka by the new owner at
                # its next commit (outside this callback), so the group shows no phantom lag.
                self.next_offsets[tp] = recorded
            log.info("assigned %s[%d] from offset %s (event store)", tp.topic, tp.partition,
                     recorded if recorded is not None else "beginning")

    def _on_revoked(self, revoked) -> None:
        # Runs on kafka-python's event loop: no blocking Kafka calls (a commit here would
        # wait on the loop it blocks). The next owner seeks to the event store's position
        # and commits that position to Kafka (see _on_assigned): the event store holds
        # every message this member handled, so nothing it consumed shows as lag.
        self.flush()
        for tp in revoked:
            self._held.pop(tp, None)   # polled, not applied: the partition's new owner applies them
            self.next_offsets.pop(tp, None)
            self._committed.pop(tp, None)
        if revoked:
            # Members of the revoked partitions are now written by their new owner: drop the
            # write-back map rather than keep copies that would only conflict (and be retried).
            self.engine.forget_aggregates()

    def close(self) -> None:
        """Commit, flush the views and leave the group (after the message in hand)."""
        try:
            self.flush()
            if self.consumer is not None:
                self.commit()
        finally:
            if self.consumer is not None:
                self.consumer.close(autocommit=False)
                self.consumer = None
            self.producer.flush(timeout=10)

    # -- the loop ----------------------------------------------------------------------

    def poll_once(self, timeout_ms: int = 200, stop: Callable[[], bool] = lambda: False,
                  after_batch: Callable[[], object] | None = None) -> int:
        """Poll once and apply the records, a batch per partition; stops between batches when ``stop()``.
        ``after_batch`` runs after each committed batch (``vip serve`` hands the relay what the
        batch logged, so one partition's effects do not wait for the other partitions' batches)."""
        polled = self._held = self._poll(timeout_ms)
        handled = 0
        for tp, records in list(polled.items()):
            start = 0
            while start < len(records):
                if stop():
                    # Not handled, not recorded: the next run (or member) reads it again.
                    self.consumer.seek(tp, records[start].offset)
                    return handled
                outcomes = self.handle_batch(records[start:start + self.engine.batch_max_inputs])
                start += len(outcomes)
                handled += len(outcomes)
                self.next_offsets[tp] = records[start - 1].offset + 1
                if after_batch is not None:
                    after_batch()
        self._held = {}
        self.housekeeping()
        return handled

    def _poll(self, timeout_ms: int) -> dict:
        """The records to apply now, by partition (group commit): a full poll (``max_poll_records``)
        means more is waiting, so the next poll (not waiting) joins it, up to ``batch_max_inputs``
        or ``batch_max_ms``; a short poll means the consumer caught up and the batch closes at once
        (at low load a batch is the message that came, under load batches stay full)."""
        polled, full = self.consumer.poll(timeout_ms=timeout_ms), self.consumer.config.get("max_poll_records") or 500
        count, deadline = sum(map(len, polled.values())), time.monotonic() + self.engine.batch_max_ms / 1000
        while full <= count < self.engine.batch_max_inputs and time.monotonic() < deadline:
            self._held, got = polled, 0   # a rebalance in the next poll drops revoked partitions
            for tp, records in self.consumer.poll(timeout_ms=0).items():
                polled.setdefault(tp, []).extend(records)
                got += len(records)
            count += got
            if got < full:
                break
        return polled

    def run(self, stop: Callable[[], bool], timeout_ms: int = 200) -> Stats:
        while not stop():
            self.poll_once(timeout_ms, stop)
        return self.stats

    def housekeeping(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_flush >= self.flush_every:
            self.flush()
        if force or now - self._last_commit >= self.commit_every:
            self.commit()

    def flush(self) -> None:
        """Commit the read models (the event store is already committed per message)."""
        if self._dirty:
            self.engine.flush()
            self._dirty = False
        self._last_flush = time.monotonic()

    def commit(self) -> None:
        """Courtesy commit of the consumed offsets to Kafka; failures are only logged."""
        self._last_commit = time.monotonic()
        offsets = {tp: OffsetAndMetadata(off, "", -1) for tp, off in self.next_offsets.items()
                   if self._committed.get(tp) != off}
        if not offsets or self.consumer is None:
            return
        try:
            self.consumer.commit(offsets, timeout_ms=5000)
            self._committed.update({tp: o.offset for tp, o in offsets.items()})
        except Exception as exc:  # a rebalance in progress, a broker hiccup: harmless
            log.info("offset commit skipped: %r", exc)

    # -- one message -------------------------------------------------------------------

    def handle(self, record) -> str:
        """Apply one record with its tracking position (a batch of one); returns the outcome."""
        return self.handle_batch([record])[0]

    def handle_batch(self, records: list) -> list[str]:
        """Apply records of ONE partition, in offset order, as one batch: their effects and the
        position after the last one are committed in one transaction. Returns each record's
        outcome (fewer records than given when the batch's time ran out)."""
        name = tracking_name(records[0].topic, records[0].partition)
        dead: dict = {}   # offset -> reason: dead letters already published (not twice on a redo)
        # Someone else may write first: a former member of the group still finishing these
        # positions, or another writer of the same member. The engine redoes it on fresh state.
        outcomes = self.engine.retrying(lambda: self._batch(name, records, dead),
                                        f"{name} offsets {records[0].offset}..{records[-1].offset}")
        for record, outcome in zip(records, outcomes):
            if outcome == "skipped":
                log.warning("%s offset %d was recorded by another consumer; skipped", name, record.offset)
            self.stats.counts[outcome] += 1
            if outcome == "dead":
                self.stats.reasons[dead[record.offset].split(":", 1)[0]] += 1
            if self.on_outcome is not None:
                self.on_outcome(record, outcome)
        self._dirty = True
        return outcomes

    def _batch(self, name: str, records: list, dead: dict) -> list[str]:
        recorded = self.app.recorder.max_tracking_id(name) or 0
        deadline = time.monotonic() + self.engine.batch_max_ms / 1000
        # Decoding is pure: the whole batch is decoded first, so what its inputs need (receipts,
        # members, view rows) is read in bulk (Engine.prefetch), as file ingest does.
        decoded = [None if record.offset + 1 <= recorded or record.offset in dead else self._decode(record)
                   for record in records]
        outcomes: list[str] = []
        with self.engine.unit_of_work() as uow:
            self.engine.prefetch(item for item in decoded if isinstance(item, Input))
            for record, item in zip(records, decoded):
                if record.offset + 1 <= recorded:
                    outcomes.append("skipped")
                else:
                    outcomes.append(self._apply(record, item, dead))
                if time.monotonic() > deadline:
                    break
            last = records[len(outcomes) - 1].offset + 1
            if last > recorded:
                uow.save_tracked(Tracking(name, last))
        return outcomes

    def _decode(self, record) -> Input | str:
        """The record's validated input, or the reason it is a dead letter."""
        try:
            return decode_message(self.topics.upstream[record.topic], record.value, self.registry)
        except DeadLetter as letter:
            return letter.reason

    def _apply(self, record, item: Input | str | None, dead: dict) -> str:
        if record.offset in dead:
            return "dead"
        if isinstance(item, str):
            return self.dead_letter(record, item, dead)
        try:
            return apply_input(self.engine, item)
        except DomainError as exc:
            return self.dead_letter(record, f"refused: {exc}", dead)
        except PersistenceError:
            raise   # the event store is unwell: stop; a restart retries this batch
        except Exception as exc:  # a bug the message triggers: park it, keep going
            log.exception("%s[%d]@%d failed", record.topic, record.partition, record.offset)
            return self.dead_letter(record, f"error: {type(exc).__name__}: {exc}", dead)

    def dead_letter(self, record, reason: str, dead: dict) -> str:
        """Publish to ``<topic>.dlq`` and wait for the broker's acknowledgement; the position is
        recorded with the batch."""
        headers = dead_letter_headers(reason, record.headers, topic=record.topic,
                                      partition=record.partition, offset=record.offset,
                                      timestamp=record.timestamp, group=self.group)
        future = self.producer.send(self.topics.dlq(record.topic), key=record.key, value=record.value,
                                    headers=headers)
        self.producer.flush(timeout=30)
        future.get(timeout=30)
        log.warning("%s[%d]@%d dead-lettered: %s", record.topic, record.partition, record.offset,
                    reason[:300])
        dead[record.offset] = reason
        return "dead"
