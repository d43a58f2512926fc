"""Due instants of scheduled work, folded from the events that set them.

Reviews on anniversaries, override expiries, SLA at-risk and breach
instants, milestone and invoice due dates and contract expiry. The
scheduler fires the earliest due first; a fired timer's own event clears it.
A breach or an overdue is due at the first instant after its deadline
(domain.deadlines): an action at the deadline itself is still on time.
"""
from __future__ import annotations

from domain.complaint import Complaint
from domain.contract import Contract
from domain.deadlines import first_missed
from projections.common import iso, isoify, parse
from projections.view import View, event_types

# The member events that set or clear a timer (:func:`_member`); every other member event
# leaves the row as it is. Complaints and contracts: any of their events may.
MEMBER_TIMER_TYPES = frozenset({"TierUpgraded", "TierReviewed", "TierOverrideSet", "TierOverrideCleared"})


def timer_keys(event: dict) -> list:
    return [f"{event['aggregate']}:{event['key']}"]


def fold_timers(row: dict | None, event: dict, key: str) -> dict | None:
    row = dict(row) if row else {"aggregate": event["aggregate"], "key": event["key"], "timers": {}, "state": {}}
    fold = {"member": _member, "complaint": _complaint, "contract": _contract}[event["aggregate"]]
    timers, state = fold(dict(row["timers"]), dict(row["state"]), event)
    row.update(timers=timers, state=state)
    return row if timers or state else None


def _member(timers: dict, state: dict, event: dict):
    kind, data = event["type"], event["data"]
    if kind in ("TierUpgraded", "TierReviewed"):
        _set(timers, "review", data["next_review_at"])
    elif kind == "TierOverrideSet":
        _set(timers, "override_expiry", data["expires_at"])
    elif kind == "TierOverrideCleared":
        timers.pop("override_expiry", None)
    return timers, state


def _complaint(timers: dict, state: dict, event: dict):
    kind, data = event["type"], event["data"]
    if "clocks" in data:
        state = isoify(data["clocks"])
    if kind == "ComplaintSlaAtRisk":
        state[data["clock"]] = {**state[data["clock"]], "at_risk_marked": True}
    elif kind == "ComplaintSlaBreached":
        state[data["clock"]] = {**state[data["clock"]], "at_risk_marked": True, "breached": True}
    timers = {}
    for name, clock in state.items():
        due = _next_due(clock)
        if due:
            timers[("breach:" if clock.get("at_risk_marked") else "at_risk:") + name] = due
    if not timers and kind in ("ComplaintResolved", "ComplaintClosed"):
        state = {}
    return timers, state


def _next_due(clock: dict):
    running = clock.get("running_since") and not clock.get("stopped_at")
    if not running or clock.get("breached"):
        return None
    return _after(clock["deadline"]) if clock.get("at_risk_marked") else iso(clock["at_risk_at"])


def _contract(timers: dict, state: dict, event: dict):
    kind, data = event["type"], event["data"]
    if kind == "ContractBecameEffective":
        _set(timers, "expire", data["valid_until"])
        for mid, m in data["milestones"].items():
            _set(timers, f"milestone:{mid}", _after(m["due_at"]))
    elif kind in ("MilestoneCompleted", "MilestoneOverdue"):
        timers.pop(f"milestone:{data['milestone_id']}", None)
    elif kind == "InvoiceIssued":
        _set(timers, f"invoice:{data['invoice_id']}", _after(data["due_at"]))
        state[data["invoice_id"]] = data["amount_fen"]
    elif kind in ("PaymentReceived", "InvoiceCredited"):
        left = state.get(data["invoice_id"], 0) - data["amount_fen"]
        state[data["invoice_id"]] = left
        if left <= 0:
            timers.pop(f"invoice:{data['invoice_id']}", None)
            state.pop(data["invoice_id"], None)
    elif kind == "InvoiceOverdue":
        timers.pop(f"invoice:{data['invoice_id']}", None)
    elif kind == "ContractRenewed":
        _set(timers, "expire", data["valid_until"])
    elif kind == "TermsAmended" and data.get("milestones") is not None:
        _set(timers, "expire", data["valid_until"])
        timers = {k: v for k, v in timers.items() if not k.startswith("milestone:")}
        for mid, m in data["milestones"].items():
            if m["status"] == "pending":
                _set(timers, f"milestone:{mid}", _after(m["due_at"]))
    elif kind in ("ContractTerminated", "ContractExpired"):
        # Money owed outlives the contract: unpaid invoices still fall due.
        timers = {k: v for k, v in timers.items() if k.startswith("invoice:")}
    return timers, state


def _after(deadline) -> str:
    """When a missed ``deadline`` (a datetime or a row's ISO text) is recorded."""
    return iso(first_missed(parse(deadline) if isinstance(deadline, str) else deadline))


def _set(timers: dict, name: str, due) -> None:
    if due is None:
        timers.pop(name, None)
    else:
        timers[name] = iso(due)


# 2: breach, milestone and invoice timers fall due just after their deadline, not at it
TIMERS = View("timers", timer_keys, fold_timers, 2,
              types=MEMBER_TIMER_TYPES | event_types(Complaint) | event_types(Contract))
