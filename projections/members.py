"""Current tier and tier history, folded from member events."""
from __future__ import annotations

from datetime import datetime, timezone

from domain import vip_workflow as flow
from domain.member import Member
from domain.tiering import oldest_month
from domain.window import AT, MONTH, REVERSED, new_row_order
from projections.common import at_or_before, iso, isoify, parse
from projections.view import View, by_aggregate, event_types

# Version 2: orders, activity entries and months are pruned at the member's own horizon
# (``keep_from``/``forget_before`` on OrderPaid/ActivityRecorded v2): the row stays bounded.
# 3: the row names the member's agreement (its expiry lapses the standing).
# 4: orders are domain.window's lists [at, month, paid, reversed, counted], not dicts.
VERSION = 5  # 5: the dedicated agent (seed 002 §3.2.1), when and why it was assigned

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
    row = row.copy() if row else _new(event)
    kind, data = event["type"], event["data"]
    if kind == "OrderPaid":  # first: nearly every member event is one
        paid, counted = data["amount_fen"], data.get("counted_fen")
        orders = row.get("orders")
        order = new_row_order(iso(data["occurred_at"]), data["month"], paid, paid if counted is None else counted)
        row["orders"] = {**orders, data["order_id"]: order} if orders else {data["order_id"]: order}
    elif kind == "MemberRegistered":
        row.update(registered=data["source"] == "crm", profile=data.get("profile") or {})
    elif kind in ("RegistrationFilled", "ProfileUpdated"):
        row.update(registered=True, profile={**row["profile"], **(data.get("profile") or data.get("changes") or {})})
    elif kind == "PersonalDataErased":
        row.update(erased=True, profile={})
    elif kind in ("OrderRefunded", "OrderCancelled"):
        # A reversal belongs to its order: it counts where (and while) the order does.
        reversed_fen = data["amount_fen"] if kind == "OrderRefunded" else data["reversed_fen"]
        order = row.get("orders", {}).get(data["order_id"])
        if order and reversed_fen:
            order = order.copy()
            order[REVERSED] += reversed_fen
            row["orders"] = {**row["orders"], data["order_id"]: order}
    elif kind == "ActivityRecorded":
        row["entries"] = row["entries"] + [[iso(data["occurred_at"]), 0, data["points"]]]
        row["months"] = sorted(set(row["months"]) | {data["month"]})
    elif kind == "TierUpgraded":
        row.update(tier=data["to_tier"], since=iso(event["timestamp"]), policy_version=data["policy_version"])
    elif kind == "TierReviewed":
        row["policy_version"] = data["policy_version"]
        if data["to_tier"] != data["from_tier"]:
            row.update(tier=data["to_tier"], since=iso(data["review_at"]))
    elif kind == "TierOverrideSet":
        row["override"] = isoify({k: data[k] for k in ("kind", "tier", "reason", "actor", "expires_at")})
    elif kind == "TierOverrideCleared":
        row["override"] = None
    elif kind == "VipAgreementSigned":
        row["agreement_id"] = data["agreement_id"]
    elif kind == "DedicatedAgentAssigned":
        row["agent"] = {"agent_id": data["agent_id"], "team": data["team"], "since": iso(event["timestamp"]),
                        "basis": data["basis"], "policy_version": data["policy_version"]}
    elif kind == "DedicatedAgentReleased":
        row["agent"] = None
    if kind in ("OrderPaid", "ActivityRecorded") and data.get("keep_from"):
        _prune(row, data["keep_from"], kind == "OrderPaid")
    if kind in STATUS:
        row["status"] = STATUS[kind]
        if "policy_version" in data:
            row["policy_version"] = data["policy_version"]
    return row


def _prune(row: dict, keep_from, fresh_orders: bool) -> None:
    # The member's own horizon (domain.tiering.prune). The row answers queries and validates
    # nothing, so it keeps only what a window from ``keep_from`` on can hold: activity after
    # it, months from ``oldest_month`` on, and orders after it or of such a month (an order
    # just before the day window may still make its month active). The member itself keeps a
    # second window of orders, to accept (and ignore) refunds of them; the row drops a refund
    # of an order it no longer holds, which could change no answer.
    # Entries and orders are kept in arrival order, which is nearly time order, and only the
    # run of aged-out items at the front goes: an event that drops nothing costs nothing, one
    # that drops k items costs k (filtering the whole list each time an item aged out made a
    # long history's replay twice as slow). An item that arrived late and aged out behind a
    # newer one waits until it reaches the front: no answer reads it (queries take only the
    # window's own items). ``fresh_orders``: the orders dict is this fold's own copy.
    entries, months, orders = row["entries"], row["months"], row.get("orders")
    if entries and at_or_before(entries[0][0], keep_from):
        keep_text = iso(keep_from)
        n = 1
        while n < len(entries) and entries[n][0] <= keep_text:
            n += 1
        row["entries"] = entries[n:]
    if not (months or orders and at_or_before(next(iter(orders.values()))[AT], keep_from)):
        return
    oldest = oldest_month((keep_from if isinstance(keep_from, datetime) else parse(keep_from))
                          .astimezone(timezone.utc))
    if months and months[0] < oldest:
        row["months"] = [m for m in months if m >= oldest]
    if orders:
        keep_text, gone = iso(keep_from), []
        for order_id, order in orders.items():
            if order[AT] > keep_text or order[MONTH] >= oldest:
                break
            gone.append(order_id)
        if gone:
            if not fresh_orders:
                orders = row["orders"] = dict(orders)
            for order_id in gone:
                del orders[order_id]


HISTORY = ("TierUpgraded", "TierReviewed", "TierOverrideSet", "TierOverrideCleared",
           "VipDisqualified", "VipActivated", "VipRevoked", "VipRightsTerminated",
           "VipLapsed", "VipRenewed", "DedicatedAgentAssigned", "DedicatedAgentReleased")
AGENT_EVENTS = ("DedicatedAgentAssigned", "DedicatedAgentReleased")


def fold_history(row: dict | None, event: dict, key: str) -> dict | None:
    """Tier history: every change of tier, override or VIP standing, with its reason."""
    if event["type"] not in HISTORY:
        return row
    data = event["data"]
    agent = event["type"] in AGENT_EVENTS  # a change of benefits, not of tier: no from/to tier
    change = {"at": iso(event["timestamp"]), "event": event["type"],
              "from": data.get("from_tier"), "to": None if agent else data.get("to_tier") or data.get("tier"),
              "policy_version": data.get("policy_version"), "actor": event["meta"].get("actor"),
              "reason": data.get("reason") or data.get("kind"),
              "standing": data.get("standing")}
    if event["type"] == "TierReviewed" and data["from_tier"] == data["to_tier"]:
        change["reason"] = "annual review: tier kept"
    if agent:
        change.update(agent=data["agent_id"], previous_agent=data.get("previous_agent_id"),
                      reason=data.get("reason") or data.get("basis") or f"standing {data.get('status')}")
    changes = (row or {}).get("changes", [])
    return {"member_id": key, "changes": changes + [change]}


_member_keys = by_aggregate("member")


CURRENT_TIER = View("current_tier", _member_keys, fold_member, VERSION, types=event_types(Member))
# 2: dedicated agents assigned and released (with the reassignment's sealed reason)
TIER_HISTORY = View("tier_history", _member_keys, fold_history, 2, types=frozenset(HISTORY))
