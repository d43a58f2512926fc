"""One timeline per aggregate (DOMAIN.md "Time"): how a step is judged on the aggregates it touches.

Each member, contract and complaint holds its own timeline: the timestamp of
its latest event (``modified_on``). A step (a command, an upstream input, a
fired timer) runs at the instant it was given; each aggregate it gets is
checked the first time (:func:`sight`, before the step can change it), and
the step as a whole once it ran (:func:`judge`, against the later of the
histories it got). Only those aggregates count, never others nor the read
store, so one member's or caller's instant never moves another's stamps, and
an aggregate's log does not depend on how inputs of different aggregates
interleave or which process applied them:

* an aggregate it touched has work due at or before the step's instant that
  has not fired (its own, or for a member its agreement's): the step is run
  again after that work (:class:`Redo`);
* a command dated before the later of those latest instants is refused
  (:class:`LateCommandError`, naming that instant);
* an input (or a timer, or a command at "now") dated before it is a late
  arrival: run again stamped at that instant (it keeps its own dates).

The engine keeps one :class:`Frame` per command or input while it runs
(``Engine.in_batch``), so what a first run learned (the aggregates, their
latest instant) holds when the step is run again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.base import DomainError
from projections.common import iso

# A step is run again at most this many times (each rerun learns more aggregates or a
# later instant, so a handful is already more than any command needs).
REDO_LIMIT = 16


class LateCommandError(DomainError):
    """A command dated before what the history of an aggregate it touches already holds."""


class Redo(Exception):
    """Internal: run the step again, after its aggregates' due work or at their latest instant.

    Not a :class:`DomainError`: it never leaves the engine."""


@dataclass
class Frame:
    """What the engine knows about the command or input being run, across its reruns."""

    late: str = "stamp"          # "refuse" (a dated command) or "stamp" (late arrival rule)
    fire_first: bool = True      # fire due work of the touched aggregates before the step
    what: str = "the instant"    # how the instant is named in a refusal (``--at``, ``at``)
    keys: set = field(default_factory=set)   # timer keys of the aggregates seen so far
    floor: datetime | None = None            # stamp no earlier than this (late arrival)
    stamp: datetime | None = None            # the instant the current run stamps with


def latest_of(*aggregates: Any) -> datetime | None:
    """The later of the aggregates' latest instants (their latest events'), None for none;
    an instant given among them counts as itself."""
    instants = [a if isinstance(a, datetime) else a.modified_on for a in aggregates if a is not None]
    return max(instants) if instants else None


_KINDS: dict = {}  # aggregate class -> "member", "contract", "complaint"


def timer_key(aggregate: Any) -> str:
    """The timers view's key of an aggregate: ``member:M1``, ``contract:K1``, ``complaint:C1``."""
    cls = type(aggregate)
    kind = _KINDS.get(cls) or _KINDS.setdefault(cls, cls.__name__.lower())
    return f"{kind}:{getattr(aggregate, cls.KEY)}"


def timer_keys(aggregate: Any) -> tuple:
    """The keys of the work that moves the aggregate: its own, and for a member its agreement's
    (the agreement's expiry lapses the member, so it is the member's scheduled work too)."""
    agreement = getattr(aggregate, "agreement_id", None)
    own = timer_key(aggregate)
    return (own, f"contract:{agreement}") if agreement else (own,)


def describe(aggregate: Any) -> str:
    """``member M1``: how a refusal names the aggregate whose timeline it quotes."""
    return f"{type(aggregate).__name__.lower()} {getattr(aggregate, aggregate.KEY, '')}".rstrip()


def late_command(what: str, at: datetime, latest: datetime, holder: Any = None) -> LateCommandError:
    """The refusal of a command dated before an aggregate's latest instant, naming that instant."""
    shown = latest.astimezone(at.tzinfo) if at.tzinfo else latest
    whose = f" for {describe(holder)}" if holder is not None else ""
    return LateCommandError(
        f"{what} {at.isoformat()} is before the log's latest instant{whose}, {shown.isoformat()}: "
        f"a record's history only moves forward; give {shown.isoformat()} or later (a past action "
        f"is entered with the instant it is entered at, and its own dates in its fields)")


def sight(frame: Frame, aggregate: Any, timers: Any) -> None:
    """The check of an aggregate a step gets for the first time, before the step can change it:
    raises :class:`Redo` when work of the aggregate is due by the step's instant, or (an input,
    a timer) when its history is later than that instant. Stopped here, the step is run again
    without reloading the aggregate (a late input on the bus costs no read)."""
    stamp = frame.stamp
    if stamp is None:
        return
    if frame.fire_first and _new_due_work(frame, aggregate, timers, stamp):
        raise Redo()
    if frame.late == "stamp" and aggregate.modified_on > stamp:
        frame.floor = aggregate.modified_on if frame.floor is None else max(frame.floor, aggregate.modified_on)
        raise Redo()


def _new_due_work(frame: Frame, aggregate: Any, timers: Any, stamp: datetime) -> bool:
    # Whether work not seen before in this frame moves the aggregate by ``stamp`` (its keys are
    # noted, for Engine.advance to fire). Once per input: most aggregates have no timer row.
    live, due = timers.live, False
    for key in timer_keys(aggregate):
        if key not in frame.keys:
            frame.keys.add(key)
            due = due or (key in live and timers.first_due((key,), iso(stamp)) is not None)
    return due


def judge(frame: Frame, uow: Any, recorded: bool = True) -> Exception | None:
    """The verdict on a step that just ran (its events still pending): None to keep it, or the
    exception to raise after rolling it back (:class:`Redo` or :class:`LateCommandError`).

    An input or a timer that ``recorded`` nothing (a duplicate delivery) stamped nothing: it is
    kept as it is, with no rerun (a rerun reloads its aggregates from the store)."""
    stamp = frame.stamp
    if stamp is None or not (recorded or frame.late == "refuse"):  # nothing to judge
        return None
    # Due work was checked at each aggregate's first sight (:func:`sight`); what is left is the
    # instant, against the later of the histories the step got.
    latest = uow.latest
    if latest is None or latest <= stamp:
        return None
    if frame.late == "refuse":
        return late_command(frame.what, stamp, latest, uow.latest_holder)
    frame.floor = latest
    return Redo()
