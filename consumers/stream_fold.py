"""Folding batches of domain-event messages into the stream store, effectively once.

No Kafka here (``consumers.streams`` runs it under Faust), so the rules are
tested directly:

* A partition is folded strictly in offset order from the offset committed
  with its rows: an earlier offset is a redelivery (skipped), a later one
  means the consumer is not where the store is (the caller seeks it back).
* A batch commits its rows and every partition's next offset in one
  transaction, compare-and-set against the offsets loaded (a zombie rolls
  back everything and forgets its cached rows).
* One message's folds go to an overlay first: a fold that raises changes no
  row; the message goes to the dead-letter topic (sent before the commit).
* Per aggregate, versions apply in order: a version already applied is a
  duplicate; one beyond the next is parked (stored with the batch, at most
  ``park_max`` per aggregate) and folded when the gap fills.
"""
from __future__ import annotations

import base64
import logging
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

from infra.service_layer.runner import apply
from schemas.events import decode_event

log = logging.getLogger("vip.streams")

VERSIONS = "_versions"  # aggregate -> {"v": last applied version}
PARKED = "_parked"      # aggregate -> {"events": [messages beyond a version gap]}
PARK_MAX = 1000
_MISSING = object()


class _OverlayRows:
    """One view's rows as one message's folds see them: writes kept aside."""

    def __init__(self, overlay: "_Overlay", name: str) -> None:
        self.overlay, self.name = overlay, name

    def get(self, key, default=None):
        row = self.overlay.writes.get((self.name, key), _MISSING)
        if row is _MISSING:
            return self.overlay.store.view(self.name).get(key, default)
        return default if row is None else row

    def __setitem__(self, key, row) -> None:
        self.overlay.writes[(self.name, key)] = row

    def pop(self, key, default=None):
        old = self.get(key)
        self.overlay.writes[(self.name, key)] = None
        return default if old is None else old


class _Overlay:
    """The store as one message's folds see it; :meth:`push` moves the writes into the store."""

    def __init__(self, store) -> None:
        self.store, self.writes = store, {}

    def view(self, name: str) -> _OverlayRows:
        return _OverlayRows(self, name)

    def push(self) -> None:
        for (name, key), row in self.writes.items():
            rows = self.store.view(name)
            if row is None:
                rows.pop(key, None)
            else:
                rows[key] = row


@dataclass
class Batch:
    """What one batch folded: the offsets to commit and what must happen before or after."""

    generation: int
    loaded: dict = field(default_factory=dict)    # (topic, partition) -> next offset as committed
    offsets: dict = field(default_factory=dict)   # (topic, partition) -> next offset after the batch
    dead: list = field(default_factory=list)      # (message, reason): to the DLQ before the commit
    seeks: dict = field(default_factory=dict)     # (topic, partition) -> where the consumer must go
    outcomes: Counter = field(default_factory=Counter)


def _message(entry: dict) -> SimpleNamespace:
    """A parked message back as a message (for its fold or its dead letter)."""
    return SimpleNamespace(topic=entry["topic"], partition=entry["partition"], offset=entry["offset"],
                           key=base64.b64decode(entry["key"]) if entry.get("key") else None,
                           value=base64.b64decode(entry["value"]), headers=[])


class Folder:
    """Folds batches of messages into a :class:`~infra.stores.streamstore.StreamStore`."""

    def __init__(self, store, views, park_max: int = PARK_MAX) -> None:
        self.store, self.views, self.park_max = store, views, park_max
        self.loaded: dict = {}  # (topic, partition) -> next offset as committed (None: never)
        self.next: dict = {}    # (topic, partition) -> next offset to fold
        self.generation = 0     # bumped by every assignment: a batch across one cannot commit

    def next_offset(self, tp: tuple) -> int:
        """The next offset to fold in a partition (read from the store the first time)."""
        if tp not in self.next:
            self.loaded[tp] = self.store.offset(*tp)
            self.next[tp] = self.loaded[tp] or 0
        return self.next[tp]

    def assigned(self) -> None:
        """Partitions moved: forget cached rows and offsets (another worker may have written them)."""
        self.generation += 1
        self.store.forget()
        self.loaded.clear()
        self.next.clear()

    def fold_batch(self, messages) -> Batch:
        """Fold messages (``topic``, ``partition``, ``offset``, ``key``, ``value``, ``headers``) in memory."""
        batch = Batch(self.generation)
        for message in messages:
            tp = (message.topic, message.partition)
            expected = self.next_offset(tp)
            batch.loaded.setdefault(tp, self.loaded[tp])
            if message.offset < expected:
                batch.outcomes["redelivered"] += 1
                continue
            if message.offset > expected:  # the consumer is ahead of the store: go back
                batch.seeks.setdefault(tp, expected)
                batch.outcomes["ahead"] += 1
                continue
            batch.outcomes[self._fold(message, batch)] += 1
            self.next[tp] = batch.offsets[tp] = message.offset + 1
        return batch

    def commit(self, batch: Batch) -> None:
        """Commit the batch's rows and offsets; on any failure roll back (see :meth:`rollback`)."""
        if batch.generation != self.generation:
            self.rollback(batch)
            raise RuntimeError("partitions were reassigned during the batch: it is folded again")
        if not batch.offsets:
            return
        try:
            self.store.commit_batch(batch.offsets, batch.loaded)
        except BaseException:
            self.rollback(batch)
            raise
        self.loaded.update(batch.offsets)

    def rollback(self, batch: Batch) -> None:
        """Forget the batch: rows in memory, offsets; ``batch.seeks`` says where to fold from again."""
        self.store.forget()
        for tp in batch.loaded:
            self.loaded.pop(tp, None)
            self.next.pop(tp, None)
        for tp in batch.loaded:
            batch.seeks[tp] = self.next_offset(tp)

    # -- one message ------------------------------------------------------------------
    def _fold(self, message, batch: Batch) -> str:
        try:
            event = decode_event(message.value)
            aggregate = f"{event['aggregate']}:{event['key']}"
            version = int(event["version"])
        except Exception as exc:  # a message no fold can read
            batch.dead.append((message, f"{type(exc).__name__}: {exc}"))
            return "dead"
        applied = self._applied(aggregate)
        if version <= applied:
            return "duplicate"
        if version > applied + 1:
            return self._park(aggregate, applied, version, message, batch)
        outcome = self._apply(aggregate, event, message, batch)
        self._unpark(aggregate, batch)
        return outcome

    def _applied(self, aggregate: str) -> int:
        return (self.store.view(VERSIONS).get(aggregate) or {}).get("v", 0)

    def _apply(self, aggregate: str, event: dict, message, batch: Batch) -> str:
        overlay = _Overlay(self.store)
        try:
            apply(overlay, self.views, event)
        except Exception as exc:  # the version is used up; its rows change nothing
            log.exception("cannot fold %s[%d]@%d", message.topic, message.partition, message.offset)
            batch.dead.append((message, f"{type(exc).__name__}: {exc}"))
            outcome = "dead"
        else:
            overlay.push()
            outcome = "applied"
        self.store.view(VERSIONS)[aggregate] = {"v": int(event["version"])}
        return outcome

    def _park(self, aggregate: str, applied: int, version: int, message, batch: Batch) -> str:
        row = self.store.view(PARKED).get(aggregate) or {"events": []}
        if any(e["v"] == version for e in row["events"]):
            return "duplicate"
        if len(row["events"]) >= self.park_max:
            batch.dead.append((message, f"version gap: {aggregate} is at {applied}, {version} arrived and "
                                        f"{self.park_max} events already wait for the gap"))
            return "dead"
        log.warning("%s jumps from version %d to %d: parked until the gap fills", aggregate, applied, version)
        entry = {"v": version, "topic": message.topic, "partition": message.partition, "offset": message.offset,
                 "key": base64.b64encode(message.key).decode() if message.key else None,
                 "value": base64.b64encode(message.value).decode()}
        self.store.view(PARKED)[aggregate] = {"events": sorted(row["events"] + [entry], key=lambda e: e["v"])}
        return "parked"

    def _unpark(self, aggregate: str, batch: Batch) -> None:
        """Fold parked events whose turn has come (the gap before them just filled)."""
        row = self.store.view(PARKED).get(aggregate)
        if not row:
            return
        waiting = list(row["events"])
        while waiting and waiting[0]["v"] <= self._applied(aggregate) + 1:
            entry = waiting.pop(0)
            if entry["v"] <= self._applied(aggregate):
                continue
            message = _message(entry)
            log.info("%s: folding parked version %d", aggregate, entry["v"])
            batch.outcomes[self._apply(aggregate, decode_event(message.value), message, batch)] += 1
        if len(waiting) == len(row["events"]):
            return  # nothing's turn yet: the parked row stays as it is (no write)
        parked = self.store.view(PARKED)
        if waiting:
            parked[aggregate] = {"events": waiting}
        else:
            parked.pop(aggregate, None)
