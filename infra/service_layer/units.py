"""The engine's units of work: open one, hand it to handlers, commit it in one transaction.

:class:`UnitsOfWork` is the part of :class:`~infra.service_layer.engine.Engine`
that owns the unit of work's life (:meth:`~UnitsOfWork.unit_of_work`: begin,
commit, abort), the write-back map it starts from, the one retry of a
conflict on fresh state (:meth:`~UnitsOfWork.retrying`, used by commands,
file ingest and the Kafka consumers alike), and folding what it saved into
the views (:meth:`~UnitsOfWork.sync`, :meth:`~UnitsOfWork.flush`).
"""
from __future__ import annotations

import logging
import random
import sqlite3
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from eventsourcing.persistence import IntegrityError

from domain.base import DomainError
from infra.service_layer.batch import AggregateMap
from infra.service_layer.prefetch import prefetch_rows
from infra.service_layer.uow import UnitOfWork
from infra.stores.readstore import StaleStoreError

log = logging.getLogger("vip.scheduler")

CONFLICT_ATTEMPTS = 8


class ConflictError(RuntimeError):
    """Other processes kept changing the same aggregates; nothing of this step was saved."""


class UnitsOfWork:
    """Opens, commits, aborts and retries the engine's units of work (a mixin of the engine,
    which provides ``app``, ``runner``, ``timers``, ``stats`` and ``_writable``)."""

    aggregates: AggregateMap
    uow: UnitOfWork | None
    log_changed: bool

    def retrying(self, step: Callable[[], Any], what: str = "this step") -> Any:
        """Run ``step``; when another process saved the same aggregate first, run it again on
        fresh state (a bounded number of times), then refuse clearly."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                return step()
            except IntegrityError:  # RecordConflictError included: another writer saved first
                log.info("conflict with another writer on %s (try %d): retrying on fresh state",
                         what, attempt + 1)
                self.abort()
                # A short, growing, jittered pause so two writers of one aggregate stop colliding.
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                self.sync(force=True)
        raise ConflictError(f"other processes kept changing the same records; {what} was not saved "
                            f"after {CONFLICT_ATTEMPTS} tries: run it again")

    def sync(self, force: bool = False) -> None:
        """Fold newly saved events into the views (in memory) and the timer index.

        In a batch, the batch's new events are folded from memory (never read
        back from the log). Outside one, the log is read after the tracked
        position; skipped when this process saved nothing since the last
        sync, unless ``force`` (another process may have written).
        """
        uow = self.uow
        if uow is not None:
            new = uow.unfolded()
            if new:
                self.runner.fold(new)
                self._refresh_timers()
            return
        if not (force or self.log_changed):
            return
        self.log_changed = False
        self.runner.catch_up(flush=False)
        self._refresh_timers()

    def _refresh_timers(self) -> None:
        keys = {key for view, key in self.runner.touched if view == "timers"}
        self.runner.touched.clear()
        self.timers.refresh(keys)

    @contextmanager
    def unit_of_work(self, commit_refused: bool = False) -> Iterator[UnitOfWork]:
        """Open a unit of work, hand it out, and commit it at the end of the block; on an error
        nothing of it is recorded. With ``commit_refused`` a refusal (:class:`DomainError`) still
        commits what came before it (the due work before a refused command), then propagates."""
        uow = self.begin()
        try:
            yield uow
        except DomainError:
            if commit_refused:
                self.commit()
            else:
                self.abort()
            raise
        except BaseException:
            self.abort()
            raise
        self.commit()

    def begin(self) -> UnitOfWork:
        """Open a unit of work (prefer :meth:`unit_of_work`). When the log moved past what this
        process folded (another writer), the views catch up from it and the write-back map is
        dropped first."""
        self._writable()
        if self.uow is not None:
            raise RuntimeError("a unit of work is already open")
        end = self.app.recorder.max_notification_id() or 0
        if end != self.runner.position or self.log_changed:
            self.aggregates.clear()
            self.sync(force=True)
        self._skipped_at_begin = set(self.timers.skipped)
        self.uow = UnitOfWork(self.app, self.aggregates, self.aggregate_map_size)
        return self.uow

    def forget_aggregates(self) -> None:
        """Drop the write-back map between units of work (another process now writes them)."""
        if self.uow is None:
            self.aggregates.clear()

    def prefetch(self, inputs) -> None:
        """At a batch's start, read in bulk what its inputs (``event_id``, ``member_id``) need: their
        receipts, their members and those members' view rows. File ingest and the Kafka consumer both
        call it; a writer in between makes the commit conflict, so the log is the same without it."""
        inputs = list(inputs)
        if self.uow is None or not inputs:  # no unit of work to fill, or nothing to read for it
            return
        self.uow.prefetch_receipts(item.event_id for item in inputs)
        members = list(dict.fromkeys(item.member_id for item in inputs))
        self.uow.prefetch_members(members)
        prefetch_rows(self.runner, "member", members)

    def commit(self) -> None:
        """Record the open batch in one transaction; a failure records nothing (see :meth:`abort`)."""
        uow = self.uow
        try:
            self.sync()
            recordings = uow.commit()
        except BaseException:
            self.abort()
            raise
        self.uow = None
        self.log_changed = False
        self.stats["batches"] += 1
        self.stats["steps"] += uow.steps
        self.stats["events"] += len(recordings)
        if not self.runner.committed(recordings):
            # Another writer's events came between: fold the log in its own order.
            self.runner.rewind()
            self._refresh_timers()

    def abort(self) -> None:
        """Drop the open batch: nothing of it is recorded, the views forget what they folded."""
        uow, self.uow = self.uow, None
        if uow is None:
            return
        self.aggregates.clear()
        self.timers.skipped = self._skipped_at_begin
        if uow.folded:
            self.runner.rewind()
            self._refresh_timers()

    def flush(self) -> None:
        """Commit the views. The read store is derived data: when it cannot be written (a full
        disk), what was saved is still in the log and the store catches up from it later, so
        this warns instead of failing a step whose events are already saved.
        Nothing is written while a batch is open (its events are not recorded yet)."""
        if self.uow is not None:
            return
        self.sync(force=True)
        try:
            self.runner.flush()
        except (sqlite3.Error, OSError, StaleStoreError) as exc:
            log.warning("the read store could not be updated (%s): what was saved is in the event "
                        "log, and the read store catches up from it on the next command", exc)
