"""SLA clock arithmetic: pure functions over a clock's state (no aggregate, no wall clock).

A clock is a dict: ``budget_s`` and ``used_s`` (working seconds of its
calendar), ``running_since``, ``deadline`` and ``at_risk_at`` while it runs,
``paused_at`` while the customer owes an answer, ``stopped_at`` and ``met``
once stopped, and the ``at_risk_marked`` / ``breached`` flags set by the
scheduled events. The at-risk ratio is the one recorded when the complaint
was filed (ComplaintFiled.at_risk_ratio), never the policy in force later.
Functions return new dicts; the caller's are never changed.
"""
from __future__ import annotations

from datetime import datetime

from domain.calendar import Calendar
from domain.deadlines import over_budget


def running(clock: dict) -> bool:
    """Whether the clock is counting now."""
    return bool(clock.get("running_since")) and not clock.get("stopped_at")


def start(clock: dict, at: datetime, calendar: Calendar, ratio: float) -> dict:
    """Run a clock from ``at`` with what is left of its budget."""
    budget, used = clock["budget_s"], clock["used_s"]
    left = max(budget - used, 0.0)
    risk_left = max(budget * ratio - used, 0.0)
    return {**clock, "running_since": at, "deadline": calendar.add(at, left),
            "at_risk_at": calendar.add(at, risk_left)}


def pause(clocks: dict, names: list, at: datetime, calendar: Calendar) -> dict:
    """Pause the named clocks at ``at``, keeping the time they used."""
    out = {k: dict(v) for k, v in clocks.items()}
    for name in names:
        clock = out[name]
        clock["used_s"] += calendar.elapsed(clock["running_since"], at)
        clock.update(running_since=None, paused_at=at, deadline=None, at_risk_at=None)
    return out


def resume(clocks: dict, names: list, at: datetime, calendar: Calendar, ratio: float) -> dict:
    """Run the named paused clocks again from ``at``."""
    out = {k: dict(v) for k, v in clocks.items()}
    for name in names:
        out[name].pop("paused_at", None)
        out[name] = start(out[name], at, calendar, ratio)
    return out


def stop(clocks: dict, names: list, at: datetime, calendar: Calendar, ratio: float) -> dict:
    """Stop the named clocks at ``at`` (a paused one is resumed first, so it stops where it paused)."""
    return stop_all(resume(clocks, [n for n in names if clocks[n].get("paused_at")], at, calendar, ratio),
                    names, at, calendar)


def stop_all(clocks: dict, names: list, at: datetime, calendar: Calendar) -> dict:
    """Stop the named clocks at ``at``; ``met`` says whether each kept within its budget."""
    out = {k: dict(v) for k, v in clocks.items()}
    for name in names:
        clock = out[name]
        if clock.get("running_since"):
            clock["used_s"] += calendar.elapsed(clock["running_since"], at)
        clock.update(running_since=None, stopped_at=at,
                     met=not over_budget(clock["used_s"], clock["budget_s"]) and not clock.get("breached"))
    return out


def paused_state(clock: dict, ratio: float) -> str | None:
    """How a paused clock stands, judged by the time it used: "breached", "at_risk" or None.

    ``ratio`` is the at-risk ratio recorded at filing.
    """
    used, budget = clock["used_s"], clock["budget_s"]
    if clock.get("breached") or over_budget(used, budget):
        return "breached"
    return "at_risk" if clock.get("at_risk_marked") or used >= ratio * budget else None
