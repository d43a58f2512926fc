"""One timeline per aggregate (DOMAIN.md "Time").

Each member, contract and complaint has its own timeline: a command dated
before its history is refused naming its latest instant, a late input is
stamped at it, a command touching two is judged against the later one, and
one aggregate's instant never moves another's stamps or fires its work
early. So the log of each aggregate is the same however the inputs of
different aggregates interleave, and whichever process applied them.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.base import DomainError
from infra.service_layer.engine import LateCommandError
from infra.service_layer.upstream import apply_input, parse
from tests.aggregate_logs import logs_by_aggregate
from tests.conftest import FakeClock
from tests.scenario import Z

D0 = datetime(2025, 2, 1, 10, tzinfo=Z)
END = D0 + timedelta(days=800)


def _order(event_id: str, member: str, days: float, amount: int = 100_000) -> dict:
    return {"type": "OrderPaid", "event_id": event_id, "member_id": member, "order_id": event_id,
            "occurred_at": (D0 + timedelta(days=days)).isoformat(), "amount_fen": amount, "currency": "CNY"}


# Each member's inputs in the order they arrive (one partition each); the last of each is late
# for its own member. Both reach silver early, so each has an annual review inside the run.
A = [_order("a1", "A", 0, 600_000), _order("a2", "A", 200), _order("a3", "A", 370), _order("a-late", "A", 100)]
B = [_order("b1", "B", 10, 700_000), _order("b2", "B", 380), _order("b-late", "B", 120)]
INTERLEAVINGS = {
    "A then B": A + B,
    "B then A": B + A,
    "alternating": [A[0], B[0], A[1], B[1], A[2], B[2], A[3]],
}


def _apply_all(system, rows) -> None:
    for row in rows:
        assert apply_input(system.engine, parse("orders", row)) == "applied"


def _finish(system) -> dict:
    system.engine.advance(END)   # the scheduler: every review still due
    logs = logs_by_aggregate(system.app)
    for key, events in logs.items():
        stamps = [e[2] for e in events]
        assert stamps == sorted(stamps), f"{key}'s timeline only moves forward"
    return logs


def test_interleaving_inputs_of_different_members_never_changes_either_members_log(make_system, event_store):
    logs = {}
    for n, (name, rows) in enumerate(INTERLEAVINGS.items()):
        s = make_system(event_store if n == 0 else "sqlite", name=f"i{n}")
        _apply_all(s, rows)
        logs[name] = _finish(s)
    reference = logs["A then B"]
    assert set(reference) == {("member", "A"), ("member", "B")}
    for name, got in logs.items():
        assert got == reference, f"{name} gives another log than A then B"
    a_log = reference[("member", "A")]
    late = [e for e in a_log if e[4] == "a-late"][0]
    assert late[2] == D0 + timedelta(days=370)  # stamped at A's latest instant, not B's (380)
    reviews = [e[2] for e in a_log if e[0] == "TierReviewed"]
    assert reviews[0] == D0 + timedelta(days=365)  # A's review, before A's input of day 370


def test_two_processes_over_one_store_each_applying_one_members_inputs_give_the_same_logs(
        make_system, event_store):
    """Inputs split between two engines over one event store (as two consumers of a topic's
    partitions take one member each) give each member the log one process gives."""
    one = make_system("sqlite", name="one")
    _apply_all(one, A + B)
    reference = _finish(one)
    first = make_system(event_store, name="shared")
    second = make_system(event_store, name="shared")
    # Turn by turn, A's inputs on the first process and B's (dated earlier) on the second.
    for turn in range(max(len(A), len(B))):
        for system, rows in ((first, A), (second, B)):
            if turn < len(rows):
                _apply_all(system, [rows[turn]])
    second.engine.advance(END)
    first.engine.advance(END)
    assert _finish(first) == reference
