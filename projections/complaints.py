"""Complaint rows: status, clocks and timings, for pending breaches and KPIs."""
from __future__ import annotations

from domain import sla
from domain.complaint import Complaint
from projections.common import iso, isoify
from projections.view import View, by_aggregate, event_types

VERSION = 3  # 2: the listing index (when a complaint may show in pending breaches); 3: routing


def fold_complaint(row: dict | None, event: dict, key: str) -> dict | None:
    kind, data, at = event["type"], event["data"], iso(event["timestamp"])
    if kind == "ComplaintFiled":
        return {"complaint_id": key, "member_id": data["member_id"], "tier": data["tier"],
                "channel": data["channel"], "category": data["category"],
                "severity": data["severity"], "policy_version": data["policy_version"],
                "calendar": data["calendar"], "at_risk_ratio": data["at_risk_ratio"],
                "status": "filed", "assignee": None, "route": None, "priority": 0,
                "filed_at": at, "first_response_at": None, "resolved_at": None,
                "first_response_s": None, "resolution_s": None, "rating": None,
                "escalation_level": 0, "breached": [], "clocks": isoify(data["clocks"])}
    row = dict(row)
    if "clocks" in data:
        row["clocks"] = isoify(data["clocks"])
    if kind == "ComplaintAcknowledged":
        row.update(status="acknowledged" if row["status"] == "filed" else row["status"],
                   first_response_at=at,
                   first_response_s=data["clocks"]["first_response"]["used_s"])
    elif kind == "ComplaintRouted":  # seed 002 §3.2: at filing, to the dedicated agent or a team queue
        row.update(assignee=data["assignee"], route=data["route"], priority=data["priority"],
                   route_reason=data["reason"])
    elif kind == "ComplaintAssigned":
        row["assignee"] = data["assignee"]
        if row["status"] in ("filed", "acknowledged"):
            row["status"] = "assigned"
    elif kind == "ComplaintEscalated":
        row["escalation_level"] = data["level"]
        if row["status"] == "waiting":
            row["status_before_wait"] = "escalated"
        else:
            row["status"] = "escalated"
    elif kind == "ComplaintWaitingForCustomer":
        row.update(status="waiting", status_before_wait=row["status"])
    elif kind == "ComplaintCustomerReplied":
        row["status"] = row.pop("status_before_wait", None) or "acknowledged"
    elif kind == "ComplaintResolved":
        clocks = data["clocks"]
        row.update(status="resolved", resolved_at=at, resolution_s=clocks["resolution"]["used_s"])
        if row["first_response_at"] is None:
            row.update(first_response_at=at, first_response_s=clocks["first_response"]["used_s"])
    elif kind == "ComplaintRated":
        row["rating"] = data["score"]
    elif kind == "ComplaintClosed":
        row["status"] = "closed"
    elif kind == "ComplaintReopened":
        row.update(status="reopened", rating=None, resolved_at=None)
    elif kind == "ComplaintSlaAtRisk":
        row["clocks"] = _flag(row["clocks"], data["clock"], at_risk_marked=True)
    elif kind == "ComplaintSlaBreached":
        row["clocks"] = _flag(row["clocks"], data["clock"], breached=True, at_risk_marked=True)
        row["breached"] = sorted(set(row["breached"]) | {data["clock"]})
    return row


def _flag(clocks: dict, name: str, **flags) -> dict:
    return {**clocks, name: {**clocks[name], **flags}}


def as_at(row: dict, now: str) -> dict:
    """The row at the instant ``now`` (ISO text), as the scheduler leaves it by then.

    Each running clock whose deadline passed before ``now`` is breached and
    escalates the complaint once (``Complaint.mark_breached``), whether or not
    ``tick`` has recorded it yet: an answer depends on the stored deadlines
    and the query's instant, never on when the scheduler ran.
    """
    due = [name for name, clock in row["clocks"].items()
           if clock.get("running_since") and not clock.get("stopped_at") and not clock.get("breached")
           and clock["deadline"] < now]  # met at the deadline, breached only after it
    if not due:
        return row
    clocks = row["clocks"]
    for name in due:
        clocks = _flag(clocks, name, breached=True, at_risk_marked=True)
    # Running clocks are never those of a complaint waiting for the customer (they pause).
    return {**row, "clocks": clocks, "breached": sorted(set(row["breached"]) | set(due)),
            "escalation_level": row["escalation_level"] + len(due), "status": "escalated"}


def alert_at(row: dict) -> str | None:
    """From when an open complaint may be at risk or breached ("" = already), None = never.

    A running clock is judged against its instants; a paused one by the time
    it used (which only a later event changes); a stopped one never.
    """
    if row["status"] in ("resolved", "closed"):
        return None
    first = None
    for clock in row["clocks"].values():
        if clock.get("stopped_at"):
            continue
        if clock.get("running_since"):
            due = "" if clock.get("breached") or clock.get("at_risk_marked") else \
                min(clock["at_risk_at"], clock["deadline"])
        elif sla.paused_state(clock, row.get("at_risk_ratio", 0.0)) is not None:
            due = ""
        else:
            continue
        first = due if first is None else min(first, due)
    return first


COMPLAINTS = View("complaints", by_aggregate("complaint"), fold_complaint, VERSION, alert_at,
                  event_types(Complaint))
