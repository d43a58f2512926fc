"""Current tier and tier history, folded from member events."""
from __future__ import annotations

from datetime import timedelta

from domain import vip_workflow as flow
from projections.common import iso, isoify, parse
from projections.view import View, by_aggregate

# Version 2: orders, activity entries and months are kept only while within
# RETAIN_DAYS of the latest event of the member (the row stays bounded);
# a policy window (``window_days``, ``activity_months_window``) must fit in it.
VERSION = 2
RETAIN_DAYS = 800

# The status each VIP event leads to, from the workflow table (the action the event records).
STATUS = {event: flow.after(action) for event, action in {
    "VipApplied": "apply", "VipReviewStarted": "start_review", "VipApproved": "approve",
    "VipRejected": "reject", "VipActivated": "activate", "VipRevoked": "revoke",
    "VipDisqualified": "disqualify", "VipRightsTerminated": "terminate_rights",
    "VipLapsed": "lapse", "VipRenewed": "renew",
}.items()}


def _new(event: dict) -> dict:
    return {"member_id": event["key"], "tier": "member", "since": None, "status": "none",
            "policy_version": None, "override": None, "entries": [], "months": [], "orders": {},
            "registered": False, "erased": False, "profile": {}, "created_at": iso(event["timestamp"])}


def fold_member(row: dict | None, event: dict, key: str) -> dict | None:
    """The current-tier row: tier, since, status, override, and the window inputs."""
    row = dict(row) if row else _new(event)
    kind, data, at = event["type"], event["data"], iso(event["timestamp"])
    if kind == "MemberRegistered":
        row.update(registered=data["source"] == "crm", profile=data.get("profile") or {})
    elif kind in ("RegistrationFilled", "ProfileUpdated"):
        row.update(registered=True, profile={**row["profile"], **(data.get("profile") or data.get("changes") or {})})
    elif kind == "PersonalDataErased":
        row.update(erased=True, profile={})
    elif kind == "OrderPaid":
        counted = data.get("counted_fen")
        row["orders"] = {**row.get("orders", {}), data["order_id"]: {
            "at": iso(data["occurred_at"]), "month": data["month"], "paid": data["amount_fen"],
            "reversed": 0, "counted": data["amount_fen"] if counted is None else counted}}
    elif kind in ("OrderRefunded", "OrderCancelled"):
        # A reversal belongs to its order: it counts where (and while) the order does.
        reversed_fen = data["amount_fen"] if kind == "OrderRefunded" else data["reversed_fen"]
        order = row.get("orders", {}).get(data["order_id"])
        if order and reversed_fen:
            row["orders"] = {**row["orders"], data["order_id"]: {
                **order, "reversed": order["reversed"] + reversed_fen}}
    elif kind == "ActivityRecorded":
        row["entries"] = row["entries"] + [[iso(data["occurred_at"]), 0, data["points"]]]
        row["months"] = sorted(set(row["months"]) | {data["month"]})
    elif kind == "TierUpgraded":
        row.update(tier=data["to_tier"], since=at, policy_version=data["policy_version"])
    elif kind == "TierReviewed":
        row["policy_version"] = data["policy_version"]
        if data["to_tier"] != data["from_tier"]:
            row.update(tier=data["to_tier"], since=iso(data["review_at"]))
    elif kind == "TierOverrideSet":
        row["override"] = isoify({k: data[k] for k in ("kind", "tier", "reason", "actor", "expires_at")})
    elif kind == "TierOverrideCleared":
        row["override"] = None
    if kind in STATUS:
        row["status"] = STATUS[kind]
        if "policy_version" in data:
            row["policy_version"] = data["policy_version"]
    if kind in ("OrderPaid", "ActivityRecorded"):
        _prune(row, event["timestamp"])
    return row


def _prune(row: dict, now) -> None:
    """Drop the months no window ending at ``now`` or later can reach (time only moves
    forward): at most once a month per member, whole months at a time."""
    now = parse(now) if isinstance(now, str) else now
    first_month = iso(now - timedelta(days=RETAIN_DAYS))[:7]
    if row.get("kept_from", "") >= first_month:
        return
    row["kept_from"] = first_month
    orders = row.get("orders", {})
    row["orders"] = {k: o for k, o in orders.items() if o["at"][:7] >= first_month or o["month"] >= first_month}
    row["entries"] = [e for e in row["entries"] if e[0][:7] >= first_month]
    row["months"] = [m for m in row["months"] if m >= first_month]


HISTORY = ("TierUpgraded", "TierReviewed", "TierOverrideSet", "TierOverrideCleared",
           "VipDisqualified", "VipActivated", "VipRevoked", "VipRightsTerminated",
           "VipLapsed", "VipRenewed")


def fold_history(row: dict | None, event: dict, key: str) -> dict | None:
    """Tier history: every change of tier, override or VIP standing, with its reason."""
    if event["type"] not in HISTORY:
        return row
    data = event["data"]
    change = {"at": iso(event["timestamp"]), "event": event["type"],
              "from": data.get("from_tier"), "to": data.get("to_tier") or data.get("tier"),
              "policy_version": data.get("policy_version"), "actor": event["meta"].get("actor"),
              "reason": data.get("reason") or data.get("kind"),
              "standing": data.get("standing")}
    if event["type"] == "TierReviewed" and data["from_tier"] == data["to_tier"]:
        change["reason"] = "annual review: tier kept"
    changes = (row or {}).get("changes", [])
    return {"member_id": key, "changes": changes + [change]}


def _member_keys(event: dict) -> list:
    return by_aggregate("member")(event)


CURRENT_TIER = View("current_tier", _member_keys, fold_member, VERSION)
TIER_HISTORY = View("tier_history", _member_keys, fold_history, 1)
