"""The embedded projection runner: follows the notification log with tracking.

SQLite recorders cannot subscribe, so the runner polls
``select_notifications`` after its tracked position, folds each event into
every view, and commits changed rows with the new position in one
transaction (see ``infra.stores.readstore``).
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Callable, Iterable

from infra.service_layer.envelope import lean_envelope
from infra.service_layer.fastpath import paths_of
from infra.stores.readstore import StaleStoreError
from projections.common import iso
from projections.view import View

log = logging.getLogger("vip.runner")

FLUSH_ATTEMPTS = 20


def note_hash(note) -> str:
    """A digest of one stored notification: which log, which event, at which position."""
    digest = hashlib.sha256(f"{note.id}|{note.originator_id}|{note.originator_version}|{note.topic}|".encode())
    digest.update(bytes(note.state))
    return digest.hexdigest()[:32]


def _folds(view, kind: str) -> bool:
    # Any object with name, keys and fold may serve as a view; without ``types`` it folds all.
    types = getattr(view, "types", None)
    return types is None or kind in types


class ViewSet(tuple):
    """Views (iterated as given) that also know, per event type, which of them fold it.

    ``apply`` then visits only those: a replay's bulk (orders) reaches one
    view of six. The choice per type is made once, so it holds one entry per
    event type the views have seen.
    """

    def __new__(cls, views: Iterable[View]) -> "ViewSet":
        return super().__new__(cls, views)

    def __init__(self, views: Iterable[View]) -> None:
        self.by_type: dict[str, tuple] = {}

    def folding(self, kind: str) -> tuple:
        """The views whose fold takes events of type ``kind``."""
        try:
            return self.by_type[kind]
        except KeyError:
            chosen = self.by_type[kind] = tuple(v for v in self if _folds(v, kind))
            return chosen


def apply(store, views: Iterable[View], event: dict) -> set:
    """Fold one envelope into every view of the store; returns the (view, key) rows it changed.

    The stream processors make the same call, so both give the same answer.
    A view skips the event types its ``types`` leave out (no keys, no fold):
    :class:`ViewSet` makes that choice once per type, any other iterable per event.
    """
    changed = set()
    kind = event["type"]
    if views.__class__ is ViewSet:
        chosen = views.by_type.get(kind) or views.folding(kind)
    else:
        chosen = [v for v in views if _folds(v, kind)]
    for view in chosen:
        rows = store.view(view.name)
        for key in view.keys(event):
            old = rows.get(key)
            new = view.fold(old, event, key)
            if new is old:
                continue
            if new is None:
                rows.pop(key, None)
            else:
                rows[key] = new
            changed.add((view.name, key))
    return changed


class Runner:
    """Catches a read store up with an application's notification log."""

    def __init__(self, app, store, views: list[View], page: int = 500) -> None:
        self.app, self.store, self.views, self.page = app, store, ViewSet(views), page
        self.dirty: set = set()
        self.touched: set = set()  # (view, key) changed since the engine last looked
        self.position = store.position
        self.clock = store.clock
        self.last_hash = store.last_hash
        self._log_id: str | None = None
        self._pending_hash: str | None = None

    @property
    def log_id(self) -> str | None:
        """The identity of the log: a digest of its first notification (None while empty)."""
        if self._log_id is None:
            first = self.app.recorder.select_notifications(0, 1, inclusive_of_start=False)
            self._log_id = note_hash(first[0]) if first else None
        return self._log_id

    def mismatch(self) -> str | None:
        """Why the read store does not belong to this log (ahead of it, or another log), or None."""
        store = self.store
        if not store.position:
            return None
        end = self.app.recorder.max_notification_id() or 0
        if store.position > end:
            return (f"it is at position {store.position}, beyond the event log's end ({end}): "
                    "the event store was restored or replaced")
        if store.log_id is None:
            return "it records no log identity (built by an older version)"
        if store.log_id != self.log_id:
            return "it was built from another event log"
        found = self.app.recorder.select_notifications(store.position, 1)
        if not found or found[0].id != store.position or note_hash(found[0]) != store.last_hash:
            return f"the event at its position {store.position} is not the one it folded"
        return None

    def restart(self) -> None:
        """Forget everything folded: the next catch-up starts at the log's first event."""
        self.store.reset()
        self.position, self.clock, self.last_hash, self.dirty = 0, None, None, set()
        self._log_id = None

    def events(self, until: datetime | None = None) -> Iterable[dict]:
        """Envelopes after the tracked position, oldest first (optionally up to a timestamp)."""
        recorder, mapper = self.app.recorder, self.app.mapper
        decode = paths_of(self.app).stored_envelope
        start = self.position
        while True:
            page = recorder.select_notifications(start, self.page, inclusive_of_start=False)
            if not page:
                return
            for note in page:
                event = decode(mapper, note)
                if until is not None and event["timestamp"] > until:
                    return
                self._pending_hash = note_hash(note)
                yield event
            if len(page) < self.page:
                return  # a short page is the end of the log for now
            start = page[-1].id

    def catch_up(self, until: datetime | None = None, flush: bool = True,
                 progress: Callable[[int], None] | None = None) -> int:
        """Apply every new event; commit unless ``flush`` is False. Returns the count."""
        count = 0
        for event in self.events(until):
            if event["position"] <= self.position:
                continue  # a mid-loop flush reloaded and caught up past this one
            changed = apply(self.store, self.views, event)
            self.dirty |= changed
            self.touched |= changed
            self.position = event["position"]
            self.last_hash = self._pending_hash
            stamp = iso(event["timestamp"])
            if self.clock is None or stamp > self.clock:
                self.clock = stamp
            count += 1
            if progress:
                progress(1)
            if flush and len(self.dirty) >= 5000:
                self.flush()
        if flush:
            self.flush()
        return count

    # -- this process's own writes, from memory ------------------------------------------

    def fold(self, events: Iterable) -> None:
        """Fold domain events this process is about to commit, from memory (no read, no decode).

        Their log positions are not known yet: :meth:`committed` sets the
        tracked position once they are recorded.
        """
        for domain_event in events:
            event = lean_envelope(domain_event, None)
            changed = apply(self.store, self.views, event)
            self.dirty |= changed
            self.touched |= changed
            stamp = iso(event["timestamp"])
            if self.clock is None or stamp > self.clock:
                self.clock = stamp

    def committed(self, recordings: list) -> bool:
        """Move the tracked position past what this process just recorded (and folded).

        True when the recordings directly follow the position; False when
        another process's events sit in between (they were not folded, and
        ours were folded out of log order): the caller then calls :meth:`rewind`.
        """
        if not recordings:
            return True
        first, last = recordings[0].notification, recordings[-1].notification
        if first.id != self.position + 1:
            return False
        self.position = last.id
        self.last_hash = note_hash(last)
        return True

    def rewind(self) -> None:
        """Drop the uncommitted rows (events folded but not recorded) and fold from the log again."""
        reload = getattr(self.store, "reload", None)
        if reload is None or self.store.read_only:
            self.store.reset()   # memory only: rebuilt from the log's first event
            self._log_id = None
        else:
            reload()
        self.position, self.clock, self.dirty = self.store.position, self.store.clock, set()
        self.last_hash = self.store.last_hash
        self.touched |= {(view, key) for view, rows in self.store.rows.items() for key in rows}
        self.catch_up(flush=False)

    def flush(self) -> None:
        """Commit changed rows with the position; if another process got there first, redo.

        A read-only store is never written: the rows stay in memory.
        """
        if self.store.read_only or (self.position == self.store.position and not self.dirty):
            return
        for _ in range(FLUSH_ATTEMPTS):
            try:
                self.store.commit(self.dirty, self.position, self.clock, self.log_id, self.last_hash)
                break
            except StaleStoreError:
                self.store.reload()
                self.position, self.clock, self.dirty = self.store.position, self.store.clock, set()
                self.last_hash = self.store.last_hash
                # Rows committed by the other process (its timers too) are news to the engine.
                self.touched |= {(view, key) for view, rows in self.store.rows.items() for key in rows}
                self.catch_up(flush=False)
        else:
            raise StaleStoreError(f"the read store kept moving under this process ({FLUSH_ATTEMPTS} tries); "
                                  "run the command again")
        self.dirty = set()
