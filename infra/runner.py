"""The embedded projection runner: follows the notification log with tracking.

SQLite recorders cannot subscribe, so the runner polls
``select_notifications`` after its tracked position, folds each event into
every view, and commits changed rows with the new position in one
transaction (see ``infra.readstore``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable

from infra.envelope import envelope
from infra.readstore import StaleStoreError
from projections.common import iso
from projections.view import View


def apply(store, views: Iterable[View], event: dict) -> set:
    """Fold one envelope into every view of the store; returns the (view, key) rows it changed.

    The stream processors make the same call, so both give the same answer.
    """
    changed = set()
    for view in views:
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
        self.app, self.store, self.views, self.page = app, store, views, page
        self.dirty: set = set()
        self.touched: set = set()  # (view, key) changed since the engine last looked
        self.position = store.position
        self.clock = store.clock

    def events(self, until: datetime | None = None) -> Iterable[dict]:
        """Envelopes after the tracked position, oldest first (optionally up to a timestamp)."""
        recorder, mapper = self.app.recorder, self.app.mapper
        start = self.position
        while True:
            page = recorder.select_notifications(start, self.page, inclusive_of_start=False)
            if not page:
                return
            for note in page:
                event = envelope(mapper.to_domain_event(note), note.id)
                if until is not None and event["timestamp"] > until:
                    return
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

    def flush(self) -> None:
        """Commit changed rows with the position; if another process got there first, redo."""
        if self.position == self.store.position and not self.dirty:
            return
        try:
            self.store.commit(self.dirty, self.position, self.clock)
        except StaleStoreError:
            self.store.reload()
            self.position, self.clock, self.dirty = self.store.position, self.store.clock, set()
            # Rows committed by the other process (its timers too) are news to the engine.
            self.touched |= {(view, key) for view, rows in self.store.rows.items() for key in rows}
            self.catch_up(flush=False)
            self.store.commit(self.dirty, self.position, self.clock)
        self.dirty = set()
