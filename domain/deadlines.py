"""When a deadline is missed (DOMAIN.md, settled rules): one rule for SLA clocks, invoices, milestones.

A deadline is met by an action at or before it and missed only after it, so
the scheduler records a miss at the first instant after the deadline (the
event keeps the deadline itself), and an action at the deadline still wins.
"""
from __future__ import annotations

from datetime import datetime, timedelta

#: The finest step of an instant: the first instant after a deadline is this much later.
STEP = timedelta(microseconds=1)


def missed(due: datetime, at: datetime) -> bool:
    """Whether a deadline ``due`` is missed at ``at`` (strictly after it)."""
    return at > due


def first_missed(due: datetime) -> datetime:
    """The first instant at which ``due`` is missed: when the scheduler records it."""
    return due + STEP


def over_budget(used_s: float, budget_s: float) -> bool:
    """Whether a clock that used ``used_s`` of ``budget_s`` seconds has missed its deadline."""
    return used_s > budget_s
