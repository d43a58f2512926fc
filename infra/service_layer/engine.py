"""The engine: commands, inputs and scheduled work, each on its aggregates' own timelines.

Before a command or an input at ``t``, the work of the aggregates it touches
due at or before ``t`` fires, earliest first, each at its own due instant;
the scheduler (:meth:`Engine.tick`) fires all work due at the wall clock.
A command dated before an aggregate's history is refused; a late input is
stamped at it and keeps its occurred-at (``infra.service_layer.timelines``).
The same code runs live (wall clock) and over historical files.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from domain.base import Ctx, DomainError, FutureInstantError
from infra.service_layer.app import VipApp
from infra.service_layer.batch import AggregateMap
from infra.service_layer.runner import Runner
from infra.service_layer.timelines import (REDO_LIMIT, Frame, LateCommandError, Redo, judge, late_command,
                                           latest_of, sight)
from infra.service_layer.handlers import dispatch
from infra.service_layer.scheduled import FireTimer, timer_command
from infra.service_layer.timer_index import TimerIndex
from infra.service_layer.units import ConflictError, UnitsOfWork
from infra.service_layer.uow import UnitOfWork
from projections.common import iso, parse

log = logging.getLogger("vip.scheduler")

__all__ = ["ConflictError", "Engine", "LateCommandError", "TimerIndex"]


class Engine(UnitsOfWork):
    """Applies commands and inputs on their aggregates' timelines, firing their due work first."""

    def __init__(self, app: VipApp, runner: Runner, clock: Callable[[], datetime],
                 future_tolerance: timedelta = timedelta(minutes=5), read_only: bool = False,
                 batch_max_inputs: int = 2000, batch_max_ms: int = 1000,
                 aggregate_map_size: int = 1_000_000, aggregate_map_bytes: int = 64 * 2**20) -> None:
        self.app, self.runner, self.clock = app, runner, clock
        self.future_tolerance = future_tolerance
        self.read_only = read_only
        # A batch of inputs ends at this many inputs or after this many milliseconds.
        self.batch_max_inputs, self.batch_max_ms = max(1, batch_max_inputs), max(1, batch_max_ms)
        # Committed batches, the inputs and timers they tried, the events they recorded (metrics).
        self.stats = {"batches": 0, "steps": 0, "events": 0}
        self.aggregate_map_size = aggregate_map_size   # a ceiling: the bytes bound the map (AggregateMap)
        # The write-back map: aggregates as the last committed unit of work left them, kept
        # between units of work (a read saved per input); dropped when another writer moved the log.
        self.aggregates = AggregateMap(aggregate_map_bytes)
        # The open unit of work (begin .. commit/abort), handed to each handler it runs.
        self.uow: UnitOfWork | None = None
        # The log moved in a way this process has not folded yet (at start: unknown).
        self.log_changed = True
        self._skipped_at_begin: set = set()
        self.runner.catch_up(flush=False)
        self._timers: TimerIndex | None = None
        self.runner.touched.clear()
        self._frame: Frame | None = None  # the command or input being run (see in_batch)

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
        """The latest instant any event in the log was stamped with (a figure for reports).

        Not a rule: each command or input is judged on the timelines of the
        aggregates it touches (:meth:`check_command_at`, :meth:`stamp`)."""
        return parse(self.runner.clock)

    latest_of = staticmethod(latest_of)

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

    def check_command_at(self, at: datetime, what: str = "the instant", aggregates=()) -> datetime:
        """The rule for an operator's instant (CLI ``--at``, the API's ``at``): when the thing
        happened, so not far after the wall clock, nor before the latest instant of the given
        ``aggregates`` (the later of them). :meth:`run` judges the aggregates a command touches
        by itself, so the edge may give none."""
        return self.refuse_past(self.refuse_future(at, what), what, self.latest_of(*aggregates))

    def refuse_past(self, at: datetime, what: str = "the instant",
                    latest: datetime | None = None) -> datetime:
        """Refuse a command dated before ``latest``, an aggregate's latest instant (commands only:
        inputs arriving late follow the late-arrival rule of :meth:`stamp`)."""
        if latest is not None and at < latest:
            raise late_command(what, at, latest)
        return at

    def stamp(self, at: datetime, *aggregates: Any) -> datetime:
        """The instant a thing that happened at ``at`` is applied at: never before the latest
        instant of the aggregates it touches (given, or learned by the step being run)."""
        frame = self._frame
        line = latest_of(*aggregates, frame and frame.floor)
        return at if line is None or at >= line else line

    def ctx(self, at: datetime, actor: str = "system", causation_id: str = "",
            correlation_id: str = "", aggregates=()) -> Ctx:
        """The context of a step at ``at``, stamped by :meth:`stamp`; the step being run is then
        judged on the aggregates it touched (see ``infra.service_layer.timelines``)."""
        stamped = self.stamp(at, *aggregates)
        if self._frame is not None:
            self._frame.stamp = stamped
        return Ctx(at=stamped, actor=actor, causation_id=causation_id, correlation_id=correlation_id)

    def advance(self, until: datetime) -> int:
        """Fire timers due at or before ``until``, in due order; how many fired. Each firing is a
        step of the open batch (one is opened if none is). In a command's or an input's frame,
        only the work of the aggregates its step touches (see :meth:`step`); elsewhere, all."""
        self._writable()
        if self.uow is None:
            return self.in_batch(lambda: self._fire_due(until), "the scheduled work")
        frame = self._frame
        if frame is not None and frame.fire_first:
            if frame.floor is not None and frame.floor > until:
                until = frame.floor
            return self._fire_due(until, frame.keys)
        return self._fire_due(until)

    def _fire_due(self, until: datetime, keys=None) -> int:
        # ``keys`` (timer keys) limits the firing to those aggregates' work
        if keys is not None and not keys:
            return 0
        fired = 0
        limit = iso(until)
        while True:
            self.sync()
            top = self.timers.peek(limit) if keys is None else self.timers.first_due(keys, limit)
            if top is None:
                return fired
            self._fire(*top)
            fired += 1

    @contextmanager
    def step(self) -> Iterator[None]:
        """One input or one timer in the open batch: refused, it leaves no trace; applied, its
        new events are folded into the views before the next step.

        In a command's or an input's frame, the step is judged on the timelines of the
        aggregates it touched before it is kept (``infra.service_layer.timelines.judge``):
        run again after their due work or at their latest instant, or refused as dated too early.
        """
        uow = self.uow
        if uow is None:
            raise RuntimeError("no unit of work is open (Engine.unit_of_work)")
        frame = self._frame
        mark = uow.mark()
        uow.on_sight = (lambda aggregate: sight(frame, aggregate, self.timers)) if frame else None
        try:
            yield
        except BaseException as exc:
            uow.on_sight = None
            # A refusal may come from state the due work would have changed, or from an instant
            # before the aggregate's history: that verdict comes first.
            verdict = judge(frame, uow) if frame and isinstance(exc, DomainError) else None
            uow.rollback(mark)
            if verdict is not None:
                raise verdict from None
            raise
        uow.on_sight = None
        verdict = judge(frame, uow, len(uow.events) > mark[0]) if frame else None
        if verdict is not None:
            uow.rollback(mark)
            raise verdict
        self.sync()

    def in_batch(self, work: Callable[[], Any], what: str = "this step", late: str = "stamp",
                 instant: str = "the instant") -> Any:
        """Run ``work`` in a batch of its own (or in the open one), committed, retried on conflicts.

        ``work`` is one command or input (its due work, then its step): it runs in a frame
        that judges its step on the timelines of the aggregates it touches, and is run again
        when they ask for it (their due work first, or a later stamp). ``late`` is what a step
        dated before those timelines gets: ``"stamp"`` (an input arriving late) or
        ``"refuse"`` (a dated command; ``instant`` names its instant in the refusal).

        A refusal (:class:`DomainError`) still commits what came before it in the
        batch (the timers due before a refused command), then propagates.
        """
        def framed():
            return self._framed(work, Frame(late=late, what=instant))

        if self.uow is not None:
            return framed()

        def attempt():
            with self.unit_of_work(commit_refused=True):
                return framed()
        return self.retrying(attempt, what)

    def _framed(self, work: Callable[[], Any], frame: Frame) -> Any:
        """Run ``work`` in ``frame``, again for as long as its step asks (bounded)."""
        outer, self._frame = self._frame, frame
        try:
            for _ in range(REDO_LIMIT):
                try:
                    return work()
                except Redo:
                    frame.stamp = None
            raise RuntimeError(f"a step kept asking to be run again ({REDO_LIMIT} times); nothing of it "
                               f"was saved")
        finally:
            self._frame = outer

    def _writable(self) -> None:
        if self.read_only:
            raise RuntimeError("this engine was opened read-only (a query): it records nothing")

    def run(self, at: datetime | None, action: Callable[[UnitOfWork, Ctx], Any], actor: str = "operator",
            causation_id: str = "", correlation_id: str = "", what: str = "the instant") -> Any:
        """Run ``action(uow, ctx)``, one command, at ``at`` after the due work of the aggregates it
        touches, in a unit of work of its own (or the one open).

        A dated command (``at`` given) before the latest instant of an aggregate it touches
        (the later of them) is refused naming that instant (:class:`LateCommandError`); with
        ``at`` None it runs at the wall clock, or at that latest instant when it is later
        (a clock a few seconds behind). ``what`` names the instant in a refusal.
        A save that collides with another process's is run again on fresh state.
        """
        self._writable()
        late = "stamp" if at is None else "refuse"
        at = at or self.clock()

        def work():
            self.advance(at)
            with self.step():
                return action(self.uow, self.ctx(at, actor, causation_id, correlation_id))
        return self.in_batch(work, "the command", late=late, instant=what)

    def tick(self) -> int:
        """Live: fire what the wall clock says is due (one batch), and commit the views (the scheduler)."""
        self._writable()
        fired = self.in_batch(lambda: self._fire_due(self.clock()), "the scheduled work")
        self.flush()
        return fired

    def _fire(self, due: str, key: str, name: str) -> None:
        # Stamped at its due instant, or at the latest instant of what it touches when that is
        # later (a due date in a record's past); it fires no other work first.
        command = FireTimer(key, name, due)

        def body():
            with self.step():
                ctx = self.ctx(parse(due), actor="scheduler", causation_id=f"timer:{key}:{name}:{due}")
                dispatch(command, self.uow, ctx)
        try:
            timer_command(command)  # a kind no code knows is refused before any step opens
            self._framed(body, Frame(fire_first=False))
        except DomainError as exc:
            # The views and the aggregate disagree on what is due; the aggregate
            # is the authority, so the timer is dropped (and logged), not retried.
            log.warning("timer %s %s at %s skipped: %s", key, name, due, exc)
            self.timers.skipped.add((due, key, name))
