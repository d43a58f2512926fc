"""The outbox relay: publishes the event store's notification log to Kafka.

An event is published because it is in the log, never by the code that
saved it, so there is no dual write. The relay reads the log after its
tracked position, sends each domain event to its aggregate's topic (keyed by
the business id, Avro single-object encoded, with the event id, type,
schema fingerprint, occurred-at, correlation and causation ids as headers),
and moves its position on (a tracking row ``relay:<topics>`` in the event
store) only past batches the broker acknowledged whole, in order. Under
``vip serve`` the relay does not wait for the broker: up to ``window``
batches are in flight while the loop applies more inputs, and the position
is written at most every ``track_every`` seconds while busy (at once when
waiting or stopping).

A crash between the acknowledgement and the position write sends what came
after the position again on restart: publishing is at least once, with no gap, and a duplicate
is the same message with the same event id, so readers dedupe on it.
Personal fields are sealed in the events themselves (``pii:v1:...``), so an
erased member stays erased on every topic.

On PostgreSQL one relay publishes at a time, the holder of the relay lease
(:class:`RelayLeader`); a process that takes the lease, first or again,
starts from the position recorded then (:meth:`Relay.resume`), so a takeover
sends again only what the previous holder had sent and not yet recorded.

Run it alone with ``vip relay`` (``hosts.relay``, or ``python -m hosts.relay``);
``vip serve`` runs it beside the consumers.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import deque
from typing import Callable

from eventsourcing.persistence import IntegrityError, Tracking

from infra.audit.chain import oid_text
from infra.kafka.bus import Topics, dead_letter_headers
from infra.service_layer.envelope import envelope
from infra.service_layer.fastpath import paths_of
from infra.stores.leases import AdvisoryLease
from schemas.codec import HEADER_SIZE, MAGIC, CodecError
from schemas.events import encode_event, headers

log = logging.getLogger("vip.relay")


class RelayError(RuntimeError):
    """The broker did not acknowledge a batch; nothing was marked as published."""


class Relay:
    """Follows the notification log and publishes every domain event once or more."""

    def __init__(self, app, producer, topics: Topics, *, batch: int = 500,
                 ack_timeout: float = 60.0, name: str | None = None, window: int = 8,
                 track_every: float = 0.5) -> None:
        self.app, self.producer, self.topics = app, producer, topics
        self.batch, self.ack_timeout, self.window = batch, ack_timeout, max(1, window)
        self.name = name or topics.relay_name()
        self.published = 0          # messages acknowledged by this instance
        self.dead_lettered = 0      # events parked on a dead-letter topic (cannot be encoded)
        self.position = self.recorded_position()
        self.sent_to = self.position    # the last notification id handed to the producer
        self.in_flight: deque = deque()  # (first id, last id, futures) of batches sent, oldest first
        self.acknowledged = self.position  # the last notification id the broker acknowledged
        self.track_every, self.tracked_at = track_every, time.monotonic()
        self.envelope = paths_of(app).stored_envelope

    def recorded_position(self) -> int:
        """The last notification id known to be on the broker."""
        return self.app.recorder.max_tracking_id(self.name) or 0

    def resume(self) -> None:
        """Go on from the recorded position, dropping what this instance had in flight.

        Called when this process takes the relay lease, first or again: while
        another held it the log was published up to about the recorded position,
        so only the previous holder's unrecorded tail (its in-flight window and
        what was acknowledged since its last position write) is sent again.
        """
        self.in_flight.clear()
        self.position = self.sent_to = self.acknowledged = self.recorded_position()
        self.tracked_at = time.monotonic()

    def message(self, note, event_hash: bytes | None = None) -> tuple[str, bytes, bytes, list]:
        """(topic, key, value, headers) of one notification; ``event_hash`` (its chain hash in the
        event store) travels as the ``event_hash`` header (hex), so a consumer can check what it read."""
        # The envelope straight from the stored state (the app's paths: no domain event built to
        # be taken apart again); the same envelope, so the same bytes (tests/test_relay_message.py).
        event = self.envelope(self.app.mapper, note)
        value = encode_event(event)
        assert value[:len(MAGIC)] == MAGIC
        fingerprint = value[len(MAGIC):HEADER_SIZE]
        key = (event["key"] or event["aggregate_id"]).encode("utf-8")
        hdrs = headers(event, fingerprint)
        if event_hash is not None:
            hdrs.append(("event_hash", event_hash.hex().encode("ascii")))
        return self.topics.domain(event["aggregate"]), key, value, hdrs

    def dead_letter(self, note, exc: Exception) -> tuple[str, bytes, bytes, list]:
        """(topic, key, value, headers) parking an event that cannot be encoded.

        The value is the envelope as JSON (personal fields are sealed in the
        event already); the headers say why, and where the event sits in the log.
        """
        event = envelope(self.app.mapper.to_domain_event(note), note.id)
        topic = self.topics.dlq(self.topics.domain(event["aggregate"]))
        reason = f"encode-failed: {exc}"[:1000]
        log.error("event %s (%s) at position %d cannot be encoded; dead-lettered to %s: %s",
                  event["id"], event["type"], note.id, topic, reason)
        self.dead_lettered += 1
        value = json.dumps(event, default=str, ensure_ascii=False).encode("utf-8")
        key = (event["key"] or event["aggregate_id"]).encode("utf-8")
        hdrs = dead_letter_headers(reason, [("event_id", event["id"].encode()),
                                            ("event_type", event["type"].encode())],
                                   log_position=note.id)
        return topic, key, value, hdrs

    def pump(self) -> int:
        """Publish one batch after what was sent and wait until the broker acknowledged it (and
        every batch before it); returns how many events the batch held."""
        count = self.send(block=True)
        self.settle(wait=True)
        return count

    def send(self, block: bool = False) -> int:
        """Send the next batch after what was sent, without waiting for the broker: the serve
        loop goes on applying inputs while the producer's thread delivers. The position moves
        only in :meth:`settle`, past batches the broker acknowledged whole and in order, so a
        crash still sends again, never skips. At most ``window`` batches are in flight: when
        they are, this sends nothing (0), or with ``block`` waits for them first."""
        self.settle()
        if len(self.in_flight) >= self.window:
            if not block:
                return 0
            self.settle(wait=True)
        notes = self.app.recorder.select_notifications(self.sent_to, self.batch, inclusive_of_start=False)
        if not notes:
            return 0
        futures = []
        keys = [(oid_text(n.originator_id), n.originator_version) for n in notes]
        hashes = self.app.recorder.event_hashes(keys)
        message, send, append = self.message, self.producer.send, futures.append
        for note, chain_key in zip(notes, keys):
            try:
                topic, key, value, hdrs = message(note, hashes.get(chain_key))
            except CodecError as exc:
                # One event its schema cannot carry must not stop the bus for good:
                # it goes to the domain dead-letter topic with the reason, loudly.
                topic, key, value, hdrs = self.dead_letter(note, exc)
            append(send(topic, key=key, value=value, headers=hdrs))
        self.in_flight.append((notes[0].id, notes[-1].id, futures))
        self.sent_to = notes[-1].id
        return len(notes)

    def settle(self, wait: bool = False) -> int:
        """Move the position past the batches the broker acknowledged, oldest first (with
        ``wait``, all of them, flushing first); returns how many events that published.

        A batch the broker did not acknowledge raises :class:`RelayError`; everything after
        the recorded position is then sent again by the next :meth:`send` (at least once).
        """
        if wait and self.in_flight:
            self.producer.flush(timeout=self.ack_timeout)
        acknowledged, last = 0, None
        try:
            while self.in_flight:
                first, end, futures = self.in_flight[0]
                if not wait and not all(f.is_done for f in futures):
                    break
                for future in futures:
                    try:
                        future.get(timeout=self.ack_timeout)
                    except Exception as exc:  # KafkaError, timeout: the batch is sent again
                        self.in_flight.clear()
                        self.sent_to = last if last is not None else self.acknowledged
                        raise RelayError(f"broker did not acknowledge event at position "
                                         f"{first}..{end}: {exc!r}") from exc
                self.in_flight.popleft()
                acknowledged, last = acknowledged + len(futures), end
        finally:
            if last is not None:
                self.published += acknowledged
                self.acknowledged = last
            # The position is a write (a transaction of its own): while the loop is busy it is
            # recorded every ``track_every`` seconds, not per batch. A crash sends what came after
            # it again (readers dedupe on the event id); a wait, an error and a stop record it now.
            if self.acknowledged > self.position and \
                    (wait or last is None or time.monotonic() - self.tracked_at >= self.track_every):
                self._advance(self.acknowledged)
                self.tracked_at = time.monotonic()
        return acknowledged

    def _advance(self, position: int) -> None:
        try:
            self.app.recorder.insert_tracking(Tracking(self.name, position))
            self.position = position
        except IntegrityError:
            # Another relay instance recorded a later position first: follow it.
            self.position = max(position, self.recorded_position())
            self.sent_to = max(self.sent_to, self.position)

    def catch_up(self, max_seconds: float | None = None) -> int:
        """Publish until the log is exhausted (or time is up) and wait for the broker; returns
        the count."""
        started, total = time.monotonic(), 0
        while True:
            count = self.send(block=True)
            total += count
            if not count or (max_seconds is not None and time.monotonic() - started > max_seconds):
                break
        self.settle(wait=True)
        return total

    def run(self, stop: Callable[[], bool], idle: float = 0.05, leads: Callable[[], bool] = lambda: True) -> int:
        """Publish until ``stop()`` is true, while ``leads()`` (this process holds the relay
        lease); a broker failure is retried with backoff."""
        backoff, total = idle, 0
        while not stop():
            if not leads():
                _sleep(idle, stop)
                continue
            try:
                count = self.send(block=True)
                if not count:
                    self.settle(wait=True)
                total += count
                backoff = idle
            except RelayError as exc:
                log.warning("%s; retrying in %.1fs", exc, backoff)
                count = 0
                backoff = min(backoff * 2 or 0.1, 5.0)
            if not count:
                _sleep(backoff, stop)
        try:
            if leads():
                self.settle(wait=True)
        except RelayError as exc:
            log.warning("%s; the next start sends it again", exc)
        return total


class RelayLeader:
    """Whether this process publishes: always on one machine; on PostgreSQL, the lease holder.

    A process without the lease tries again every few seconds, so when the
    publishing process dies (its session, and so its lock, ends) another one
    takes over within that time. On taking the lease, first or again, the
    ``relay`` goes on from the position recorded now (:meth:`Relay.resume`),
    not from where it stood when it started or last published.
    """

    RETRY_SECONDS = 2.0

    def __init__(self, lease: AdvisoryLease | None, echo: Callable[[str], None] | None = None,
                 relay: Relay | None = None) -> None:
        self.lease, self.echo, self.relay = lease, echo, relay
        self.checked = 0.0
        self.leading = lease is None or lease.held

    def leads(self) -> bool:
        if self.lease is None:
            return True
        now = time.monotonic()
        if now - self.checked >= self.RETRY_SECONDS:
            self.checked = now
            was = self.leading
            self.leading = self.lease.still_held() if was else self.lease.acquire()
            if self.leading and not was and self.relay is not None:
                self.relay.resume()
            if self.leading != was:
                line = "relay: this process publishes now" if self.leading else \
                    "relay: lost the relay lease; another process publishes"
                log.info(line)
                if self.echo:
                    self.echo(line)
        return self.leading

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not stop() and time.monotonic() < end:
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))


class StopFlag:
    """Set by SIGTERM/SIGINT; the loops look at it between messages."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.previous: dict = {}

    def __call__(self) -> bool:
        return self.event.is_set()

    def set(self, *_: object) -> None:
        self.event.set()

    def install(self) -> "StopFlag":
        """Catch SIGTERM and SIGINT (main thread only; elsewhere it is a no-op)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self.set)
        return self

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
