"""The engine: one timeline for commands, inputs and scheduled work.

Before anything with time ``t`` is applied, every timer due at or before
``t`` fires, earliest first, each at its own due instant. The timeline only
moves forward: an input older than what the system already saw (a late
arrival) is stamped with the timeline's time and keeps its own occurred-at,
so it counts in windows by when it happened and never rewrites history.
The same code runs live (wall clock) and over historical files.
"""
from __future__ import annotations

import heapq
import logging
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from eventsourcing.persistence import IntegrityError

from domain.base import Ctx, DomainError, FutureInstantError
from infra.service_layer.app import VipApp
from infra.service_layer.batch import UnitOfWork
from infra.service_layer.prefetch import prefetch_rows
from infra.service_layer.runner import Runner
from infra.stores.readstore import StaleStoreError
from projections.common import iso, parse

log = logging.getLogger("vip.scheduler")

CONFLICT_ATTEMPTS = 8


class ConflictError(RuntimeError):
    """Other processes kept changing the same aggregates; nothing of this step was saved."""


class LateCommandError(DomainError):
    """A command dated before what the log already holds."""


class TimerIndex:
    """Earliest-first index over the timers view; stale entries are skipped on peek.

    Every refresh pushes a key's timers again, so stale entries pile up in
    the heap with every event that touches a timer row; when they outnumber
    the live timers, the heap is rebuilt from the live ones (kept per key),
    so it stays proportional to the live timers, not to the history.
    """

    def __init__(self, rows: dict) -> None:
        self.rows = rows
        self.heap: list = []
        self.skipped: set = set()
        self.live: dict = {}  # key -> {name: due} as of the key's last refresh
        self.live_count = 0
        for key, row in rows.items():  # one scan of a keyed store, not a read per key
            timers = row.get("timers", {})
            if timers:
                self.live[key] = dict(timers)
                self.live_count += len(timers)
            for name, due in timers.items():
                self.heap.append((due, key, name))
        heapq.heapify(self.heap)

    def refresh(self, keys) -> None:
        for key in keys:
            row = self.rows.get(key)
            timers = (row or {}).get("timers", {})
            self.live_count -= len(self.live.pop(key, ()))
            if timers:
                self.live[key] = dict(timers)
                self.live_count += len(timers)
            for name, due in timers.items():
                heapq.heappush(self.heap, (due, key, name))
        self._compact()

    def _compact(self) -> None:
        # Amortised: a rebuild costs the live count and happens only once the heap doubled.
        if len(self.heap) <= 2 * self.live_count + 64:
            return
        self.heap = [(due, key, name) for key, timers in self.live.items()
                     for name, due in timers.items() if (due, key, name) not in self.skipped]
        heapq.heapify(self.heap)

    def peek(self, until: str) -> tuple | None:
        while self.heap:
            due, key, name = self.heap[0]
            row = self.rows.get(key)
            current = (row or {}).get("timers", {}).get(name)
            if current != due or (due, key, name) in self.skipped:
                heapq.heappop(self.heap)
                continue
            return self.heap[0] if due <= until else None
        return None


class Engine:
    """Applies commands and inputs on one timeline, firing due work first."""

    def __init__(self, app: VipApp, runner: Runner, clock: Callable[[], datetime],
                 future_tolerance: timedelta = timedelta(minutes=5), read_only: bool = False,
                 batch_max_inputs: int = 2000, batch_max_ms: int = 1000,
                 aggregate_map_size: int = 20000) -> None:
        self.app, self.runner, self.clock = app, runner, clock
        self.future_tolerance = future_tolerance
        self.read_only = read_only
        # A batch of inputs ends at this many inputs or after this many milliseconds.
        self.batch_max_inputs, self.batch_max_ms = max(1, batch_max_inputs), max(1, batch_max_ms)
        # Committed batches, the inputs and timers they tried, the events they recorded (metrics).
        self.stats = {"batches": 0, "steps": 0, "events": 0}
        self.aggregate_map_size = aggregate_map_size
        self._skipped_at_begin: set = set()
        self.runner.catch_up(flush=False)
        self._timers: TimerIndex | None = None
        self.runner.touched.clear()

    @property
    def timers(self) -> TimerIndex:
        """The due-work index, built on first use: a query (read-only) never fires, so it never
        reads every timer row of the keyed store."""
        if self._timers is None:
            self._timers = TimerIndex(self.runner.store.view("timers"))
        return self._timers

    @property
    def policy(self):
        return self.app.policy

    def timeline(self) -> datetime | None:
        """The latest instant any event was stamped with."""
        return parse(self.runner.clock)

    def refuse_future(self, at: datetime, what: str = "the instant") -> datetime:
        """Refuse an instant further after the wall clock than the tolerance (a typo, a bad clock).

        The one place this rule lives: commands (``--at``) and upstream
        inputs (``occurred_at``) both call it.
        """
        now = self.clock()
        if at > now + self.future_tolerance:
            raise FutureInstantError(
                f"{what} {at.isoformat()} is more than {int(self.future_tolerance.total_seconds())} s "
                f"after the wall clock ({now.isoformat()}); check the date "
                f"(VIP_FUTURE_TOLERANCE_SECONDS sets the tolerance)")
        return at

    def check_command_at(self, at: datetime, what: str = "the instant") -> datetime:
        """The rule for an operator's instant (CLI ``--at``, the API's ``at``): when the thing
        happened, so neither before the log's latest instant nor far after the wall clock."""
        return self.refuse_past(self.refuse_future(at, what), what)

    def refuse_past(self, at: datetime, what: str = "the instant") -> datetime:
        """Refuse a command dated before the log's latest instant (commands only: inputs arriving
        late follow the late-arrival rule of :meth:`stamp`)."""
        line = self.timeline()
        if line is not None and at < line:
            shown = line.astimezone(at.tzinfo) if at.tzinfo else line
            raise LateCommandError(
                f"{what} {at.isoformat()} is before the log's latest instant {shown.isoformat()}: "
                f"the log only moves forward; give {shown.isoformat()} or later (a past action is "
                f"entered with the instant it is entered at, and its own dates in its fields)")
        return at

    def retrying(self, step: Callable[[], Any], what: str = "this step") -> Any:
        """Run ``step``; when another process saved the same aggregate first, run it again on
        fresh state (a bounded number of times), then refuse clearly."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                return step()
            except IntegrityError:
                log.info("conflict with another writer on %s (try %d): retrying on fresh state",
                         what, attempt + 1)
                self.abort()
                self.sync(force=True)
        raise ConflictError(f"other processes kept changing the same records; {what} was not saved "
                            f"after {CONFLICT_ATTEMPTS} tries: run it again")

    def stamp(self, at: datetime) -> datetime:
        """The instant a thing that happened at ``at`` is applied at: never before the timeline."""
        line = self.timeline()
        return at if line is None or at >= line else line

    def ctx(self, at: datetime, actor: str = "system", causation_id: str = "",
            correlation_id: str = "") -> Ctx:
        return Ctx(at=self.stamp(at), actor=actor, causation_id=causation_id,
                   correlation_id=correlation_id)

    def advance(self, until: datetime) -> int:
        """Fire every timer due at or before ``until``, in due order. Returns how many fired.

        Each firing is a step of the open batch (one is opened if none is).
        """
        self._writable()
        if self.app.uow is None:
            return self.in_batch(lambda: self.advance(until), "the scheduled work")
        fired = 0
        limit = iso(until)
        while True:
            self.sync()
            top = self.timers.peek(limit)
            if top is None:
                return fired
            self._fire(*top)
            fired += 1

    def sync(self, force: bool = False) -> None:
        """Fold newly saved events into the views (in memory) and the timer index.

        In a batch, the batch's new events are folded from memory (never read
        back from the log). Outside one, the log is read after the tracked
        position; skipped when this process saved nothing since the last
        sync, unless ``force`` (another process may have written).
        """
        uow = self.app.uow
        if uow is not None:
            new = uow.unfolded()
            if new:
                self.runner.fold(new)
                self._refresh_timers()
            return
        if not (force or self.app.log_changed):
            return
        self.app.log_changed = False
        self.runner.catch_up(flush=False)
        self._refresh_timers()

    def _refresh_timers(self) -> None:
        keys = {key for view, key in self.runner.touched if view == "timers"}
        self.runner.touched.clear()
        self.timers.refresh(keys)

    # -- batches ----------------------------------------------------------------------

    def begin(self) -> UnitOfWork:
        """Open a batch. When the log moved past what this process folded (another writer),
        the views catch up from it and the write-back map is dropped first."""
        self._writable()
        if self.app.uow is not None:
            raise RuntimeError("a batch is already open")
        end = self.app.recorder.max_notification_id() or 0
        if end != self.runner.position or self.app.log_changed:
            self.app.aggregates.clear()
            self.sync(force=True)
        self._skipped_at_begin = set(self.timers.skipped)
        self.app.uow = UnitOfWork(self.app.aggregates, self.aggregate_map_size)
        return self.app.uow

    def prefetch(self, inputs) -> None:
        """At a batch's start, read in bulk what its inputs (``event_id``, ``member_id``) need: their
        receipts, their members and those members' view rows. File ingest and the Kafka consumer both
        call it; a writer in between makes the commit conflict, so the log is the same without it."""
        inputs = list(inputs)
        if self.app.uow is None or not inputs:  # no batch to fill, or nothing to read for it
            return
        self.app.prefetch_receipts([item.event_id for item in inputs])
        members = list(dict.fromkeys(item.member_id for item in inputs))
        self.app.prefetch_members(members)
        prefetch_rows(self.runner, "member", members)

    @contextmanager
    def step(self) -> Iterator[None]:
        """One input or one timer in the open batch: refused, it leaves no trace; applied, its
        new events are folded into the views before the next step."""
        uow = self.app.uow
        if uow is None:
            raise RuntimeError("no batch is open (Engine.begin)")
        mark = uow.mark()
        try:
            yield
        except BaseException:
            uow.rollback(mark)
            raise
        self.sync()

    def commit(self) -> None:
        """Record the open batch in one transaction; a failure records nothing (see :meth:`abort`)."""
        uow = self.app.uow
        self.sync()
        try:
            recordings = uow.commit(self.app)
        except BaseException:
            self.abort()
            raise
        self.app.uow = None
        self.app.log_changed = False
        self.stats["batches"] += 1
        self.stats["steps"] += uow.steps
        self.stats["events"] += len(recordings)
        if not self.runner.committed(recordings):
            # Another writer's events came between: fold the log in its own order.
            self.runner.rewind()
            self._refresh_timers()

    def abort(self) -> None:
        """Drop the open batch: nothing of it is recorded, the views forget what they folded."""
        uow, self.app.uow = self.app.uow, None
        if uow is None:
            return
        self.app.aggregates.clear()
        self.timers.skipped = self._skipped_at_begin
        if uow.folded:
            self.runner.rewind()
            self._refresh_timers()

    def in_batch(self, work: Callable[[], Any], what: str = "this step") -> Any:
        """Run ``work`` in a batch of its own (or in the open one), committed, retried on conflicts.

        A refusal (:class:`DomainError`) still commits what came before it in the
        batch (the timers due before a refused command), then propagates.
        """
        if self.app.uow is not None:
            return work()

        def attempt():
            self.begin()
            try:
                result = work()
            except DomainError:
                self.commit()
                raise
            except BaseException:
                self.abort()
                raise
            self.commit()
            return result
        return self.retrying(attempt, what)

    def flush(self) -> None:
        """Commit the views. The read store is derived data: when it cannot be written (a full
        disk), what was saved is still in the log and the store catches up from it later, so
        this warns instead of failing a step whose events are already saved.
        Nothing is written while a batch is open (its events are not recorded yet)."""
        if self.app.uow is not None:
            return
        self.sync(force=True)
        try:
            self.runner.flush()
        except (sqlite3.Error, OSError, StaleStoreError) as exc:
            log.warning("the read store could not be updated (%s): what was saved is in the event "
                        "log, and the read store catches up from it on the next command", exc)

    def _writable(self) -> None:
        if self.read_only:
            raise RuntimeError("this engine was opened read-only (a query): it records nothing")

    def run(self, at: datetime | None, action: Callable[[Ctx], Any], actor: str = "operator",
            causation_id: str = "", correlation_id: str = "") -> Any:
        """Run one command at ``at`` (the wall clock if None) after the work due before it.

        A save that collides with another process's is run again on fresh state.
        """
        self._writable()
        at = at or self.clock()

        def work():
            self.advance(at)
            with self.step():
                return action(self.ctx(at, actor, causation_id, correlation_id))
        return self.in_batch(work, "the command")

    def tick(self) -> int:
        """Live: fire what the wall clock says is due (one batch), and commit the views (the scheduler)."""
        self._writable()
        fired = self.in_batch(lambda: self.advance(self.clock()), "the scheduled work")
        self.flush()
        return fired

    # -- firing -----------------------------------------------------------------------

    def _fire(self, due: str, key: str, name: str) -> None:
        _, business_id = key.split(":", 1)
        kind, _, item = name.partition(":")
        ctx = self.ctx(parse(due), actor="scheduler", causation_id=f"timer:{key}:{name}:{due}")
        try:
            if kind not in FIRE:
                raise DomainError(f"no scheduled work is known for timer kind {kind!r}")
            with self.step():
                FIRE[kind](self.app, business_id, item, ctx)
        except DomainError as exc:
            # The views and the aggregate disagree on what is due; the aggregate
            # is the authority, so the timer is dropped (and logged), not retried.
            log.warning("timer %s %s at %s skipped: %s", key, name, due, exc)
            self.timers.skipped.add((due, key, name))


Fire = Callable[[VipApp, str, str, Ctx], Any]

# What a due timer does, by its kind: a timer is named ``kind`` or ``kind:item``
# (projections/timers.py); each entry takes (app, business id, item, ctx).
FIRE: dict[str, Fire] = {
    "review": lambda app, member_id, _, ctx: app.review_member(ctx, member_id),
    "override_expiry": lambda app, member_id, _, ctx: app.expire_override(ctx, member_id),
    "at_risk": lambda app, complaint_id, clock, ctx: app.mark_complaint_at_risk(ctx, complaint_id, clock),
    "breach": lambda app, complaint_id, clock, ctx: app.mark_complaint_breached(ctx, complaint_id, clock),
    "milestone": lambda app, contract_id, item, ctx: app.mark_milestone_overdue(ctx, contract_id, item),
    "invoice": lambda app, contract_id, item, ctx: app.mark_invoice_overdue(ctx, contract_id, item),
    "expire": lambda app, contract_id, _, ctx: app.expire_contract(ctx, contract_id),
}
