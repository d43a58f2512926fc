"""Answers over read-model rows, as of an instant: the same on every store.

Rows hold what happened; the time-relative part of an answer (what the
window holds at ``at``, time left to a deadline) is computed here from the
rows and the instant, never from the wall clock.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from domain import sla
from domain.benefits import benefits_in_force, queue_key
from domain.policy import TIERS, Policy, tier_rank
from domain.tiering import effective_tier, live_override, order_inputs, standing
from domain.window import AT
from projections.common import iso, parse
from projections.complaints import as_at
from projections.ledger import OWN


def tier_row(row: dict, at: datetime, policy: Policy, timers: dict | None = None,
             agreement: dict | None = None) -> dict:
    """The current-tier answer for one member at ``at``.

    ``timers`` (the member's row of the timers view) gives the next annual
    review: ``review_due`` says it is due at ``at`` and not yet recorded
    (only the scheduler, ``vip tick`` / ``vip serve``, records it).
    ``agreement`` (the member agreement's row of the contracts view) gives its
    expiry: an active standing whose agreement ended by ``at`` answers
    ``lapsed`` with ``lapse_due``, before the scheduler records it.
    """
    # Only instants that can be in the window are parsed (the text of UTC instants sorts as
    # they do; a day of margin): ``standing`` still decides what the window holds.
    lo, hi = iso(at - timedelta(days=policy.tiers.window_days + 1)), iso(at + timedelta(days=1))
    entries = [(parse(o), spend, pts) for o, spend, pts in row["entries"] if lo < o <= hi]
    orders = row.get("orders", {}).values()
    order_months = order_inputs(orders)[1]
    order_entries = order_inputs([[parse(o[AT]), *o[AT + 1:]] for o in orders if lo < o[AT] <= hi])[0]
    now = standing(entries + order_entries, set(row["months"]) | order_months, at, policy)
    next_review = ((timers or {}).get("timers") or {}).get("review")
    override = row["override"]  # expires_at as text in the row: parsed for the one rule
    if override and not live_override({**override, "expires_at": parse(override["expires_at"])}, at):
        override = None
    effective = effective_tier(row["tier"], override)
    ends = (agreement or {}).get("valid_until")
    lapse_due = row["status"] == "active" and bool(ends) and ends <= iso(at)
    status = "lapsed" if lapse_due else row["status"]
    return {"member_id": row["member_id"], "tier": row["tier"], "effective_tier": effective,
            "since": row["since"], "vip_status": status,
            "lapse_due": lapse_due, "benefits": _benefits(row, status, effective, policy),
            "window_spend_fen": now.spend_fen, "window_points": now.points,
            "active_months": now.active_months, "policy_version": row["policy_version"],
            "override": override, "registered": row["registered"], "erased": row["erased"],
            "next_review_at": next_review, "review_due": bool(next_review and next_review <= iso(at))}


def _benefits(row: dict, status: str, effective: str, policy: Policy) -> dict | None:
    """Seed 002 §3.2, §4.1: what the member receives at the answer's instant, and why; None once
    the standing ended (§4.3.2) or below the VIP standard."""
    has = status == "active" and effective != "member"
    agent = row.get("agent") if has else None
    found = benefits_in_force(policy, has, effective, agent["agent_id"] if agent else None)
    if found is not None:
        found["why"] = {"tier": effective, "standing": status, "policy_version": policy.version,
                        "agent_assigned": agent}
    return found


def member_timers(store, member_id: str) -> dict | None:
    """The member's row of the timers view (due reviews and override expiries)."""
    return store.get("timers", f"member:{member_id}")


def member_agreement(store, row: dict) -> dict | None:
    """The contracts-view row of the member's VIP agreement, if one was signed."""
    agreement_id = row.get("agreement_id")
    return store.get("contracts", agreement_id) if agreement_id else None


def member_answer(store, member_id: str, row: dict, at: datetime, policy: Policy) -> dict:
    """:func:`tier_row` with what the store knows of the member's review and agreement."""
    return tier_row(row, at, policy, member_timers(store, member_id), member_agreement(store, row))


def tiers(store, at: datetime, policy: Policy) -> list[dict]:
    rows = store.view("current_tier")
    return [member_answer(store, k, rows[k], at, policy) for k in sorted(rows)]


def tier_distribution(rows: list[dict]) -> dict:
    counts = Counter(r["effective_tier"] for r in rows)
    active = Counter(r["effective_tier"] for r in rows if r["vip_status"] == "active")
    return {t: {"members": counts.get(t, 0), "active_vip": active.get(t, 0)} for t in TIERS}


def pending_breaches(store, at: datetime, policy: Policy) -> list[dict]:
    """Open complaints whose clock is at risk or breached at ``at``, most overdue first."""
    out, now = [], iso(at)
    for row in store.listing("complaints", now):  # only rows whose alert instant has come
        if row["status"] in ("resolved", "closed"):
            continue
        row = as_at(row, now)  # breaches due by now, recorded or not (and their escalation)
        for name, clock in row["clocks"].items():
            # The ratio recorded at filing; a row folded before it was kept
            # (until `vip replay`) falls back to the policy's.
            state = _clock_state(clock, now, row.get("at_risk_ratio", policy.sla.at_risk_ratio))
            if state is None:
                continue
            entry = {"complaint_id": row["complaint_id"], "member_id": row["member_id"],
                     "tier": row["tier"], "severity": row["severity"], "priority": row.get("priority", 0),
                     "clock": name, "state": state,
                     "status": row["status"], "assignee": row["assignee"],
                     "deadline": clock.get("deadline"),
                     "budget_s": clock["budget_s"], "used_s": round(clock["used_s"], 3)}
            if clock.get("deadline"):
                delta = (parse(clock["deadline"]) - at).total_seconds()
                entry["left_s" if delta >= 0 else "overdue_s"] = abs(delta)
            else:
                entry["left_s"] = max(clock["budget_s"] - clock["used_s"], 0.0)
            out.append(entry)
    return sorted(out, key=_priority_order)


def _priority_order(entry: dict) -> tuple:
    # Priority handling (seed 002 §3.2.2): time to breach (overdue first), then priority rank and
    # tier, then severity (domain.benefits.queue_key); the ids only make the order total.
    to_breach = entry["left_s"] if "left_s" in entry else -entry["overdue_s"]
    return (*queue_key(to_breach, entry["priority"], entry["tier"], entry["severity"]),
            entry["complaint_id"], entry["clock"])


def work_queue(store, at: datetime) -> list[dict]:
    """Every open complaint at ``at``, one entry each, in priority order: its clock nearest to
    breach (a running clock by its deadline, a paused one by the budget it has left), then the
    priority rank recorded at routing and the tier, then severity."""
    out, now = [], iso(at)
    for row in store.view("complaints").values():
        if row["status"] in ("resolved", "closed"):
            continue
        row = as_at(row, now)
        nearest = None
        for name, clock in row["clocks"].items():
            if clock.get("stopped_at"):
                continue
            left = ((parse(clock["deadline"]) - at).total_seconds() if clock.get("deadline")
                    else max(clock["budget_s"] - clock["used_s"], 0.0))
            if nearest is None or left < nearest[1]:
                nearest = (name, left, clock.get("deadline"))
        if nearest is None:
            continue
        out.append({"complaint_id": row["complaint_id"], "member_id": row["member_id"],
                    "tier": row["tier"], "priority": row.get("priority", 0), "severity": row["severity"],
                    "status": row["status"], "assignee": row["assignee"], "route": row.get("route"),
                    "clock": nearest[0], "deadline": nearest[2], "time_to_breach_s": round(nearest[1], 3),
                    "breached": row["breached"]})
    return sorted(out, key=lambda e: (*queue_key(e["time_to_breach_s"], e["priority"], e["tier"],
                                                 e["severity"]), e["complaint_id"]))


def clock_state(clock: dict, now: str, ratio: float) -> str:
    """One clock of a complaint at ``now`` (after :func:`projections.complaints.as_at`): ``met`` or
    ``missed`` once stopped, else ``breached``, ``at_risk``, ``running`` or ``paused``."""
    if clock.get("stopped_at"):
        return "met" if clock.get("met", not clock.get("breached")) else "missed"
    return _clock_state(clock, now, ratio) or ("running" if clock.get("running_since") else "paused")


def contract_status(row: dict, now: str) -> str:
    """A contract's status at ``now``: one past its validity has expired at ``now`` even before
    the scheduler records it (so its milestones are no longer owed)."""
    expired = bool(row.get("valid_until")) and row["valid_until"] <= now
    return "expired" if expired and row["status"] in ("effective", "disputed") else row["status"]


def _clock_state(clock: dict, now: str, ratio: float) -> str | None:
    if clock.get("stopped_at"):
        return None
    if clock.get("running_since"):
        if clock.get("breached"):
            return "breached"
        return "at_risk" if clock["at_risk_at"] <= now or clock.get("at_risk_marked") else None
    return sla.paused_state(clock, ratio)


PARTY_ACCOUNTS = ("receivable", "payable", "partner_payable")


def ledger(store, at: datetime | None, policy: Policy, contract: str | None = None) -> dict:
    """Balances per account, contract, party and month, and the trial balance."""
    limit = iso(at) if at else None
    accounts: dict = defaultdict(lambda: defaultdict(int))
    by_contract: dict = defaultdict(lambda: defaultdict(int))
    by_party: dict = defaultdict(lambda: defaultdict(int))
    by_month: dict = defaultdict(lambda: defaultdict(int))
    debits: dict = defaultdict(int)
    credits: dict = defaultdict(int)
    postings = 0
    for posting in _postings(store, limit):
        if (limit and posting["at"] > limit) or (contract and posting["contract_id"] != contract):
            continue
        postings += 1
        month = policy.month_of(parse(posting["at"]))
        for account, debit, credit, cur in posting["lines"]:
            net = debit - credit
            accounts[cur][account] += net
            debits[cur] += debit
            credits[cur] += credit
            by_contract[posting["contract_id"]][f"{account} {cur}"] += net
            kind, _, party = account.partition(":")
            if kind in PARTY_ACCOUNTS:
                by_party[party][f"{kind} {cur}"] += net
            if account.startswith("revenue:"):
                by_month[month][f"{account} {cur}"] -= net
    trial = {cur: {"debits": debits[cur], "credits": credits[cur],
                   "balanced": debits[cur] == credits[cur]} for cur in sorted(debits)}
    return {"as_of": limit, "postings": postings,
            "accounts": {c: dict(sorted(a.items())) for c, a in accounts.items()},
            "by_contract": {k: dict(v) for k, v in sorted(by_contract.items())},
            "by_party": {k: dict(v) for k, v in sorted(by_party.items())},
            "revenue_by_month": {k: dict(v) for k, v in sorted(by_month.items())},
            "trial_balance": trial}


def _postings(store, limit: str | None):
    return store.listing("ledger", limit) if limit else store.view("ledger").values()


def complaint_rows(store, at: datetime) -> list[dict]:
    """Every complaint row at ``at``: status and breaches judged from the stored deadlines."""
    now = iso(at)
    return [as_at(row, now) for row in store.view("complaints").values()]


def complaint_kpis(store, policy: Policy, at: datetime | None = None) -> list[dict]:
    """Per tier and month of filing: volumes, response and resolution percentiles, satisfaction.

    ``breached`` counts the complaints with a clock breached at ``at``, judged
    from the stored deadlines (:func:`projections.complaints.as_at`), so it
    does not depend on when the scheduler ran; without ``at``, only the
    breaches recorded so far. Business-hours tiers measure business seconds
    (the clocks' own calendar); groups are the tier at filing and the month
    of filing in the policy's zone.
    """
    groups: dict = defaultdict(lambda: {"filed": 0, "fr": [], "res": [], "ratings": [], "breached": 0})
    now = iso(at) if at else None
    for row in store.view("complaints").values():
        if now:
            row = as_at(row, now)
        group = groups[(row["tier"], policy.month_of(parse(row["filed_at"])))]
        group["filed"] += 1
        if row["first_response_s"] is not None:
            group["fr"].append(row["first_response_s"])
        if row["resolution_s"] is not None and row["status"] in ("resolved", "closed"):
            group["res"].append(row["resolution_s"])
        if row["rating"] is not None:
            group["ratings"].append(row["rating"])
        group["breached"] += bool(row["breached"])
    out = []
    for (tier, month), g in sorted(groups.items(), key=lambda kv: (tier_rank(kv[0][0]), kv[0][1])):
        out.append({"tier": tier, "month": month, "filed": g["filed"], "breached": g["breached"],
                    "first_response_p50_s": percentile(g["fr"], 50),
                    "first_response_p90_s": percentile(g["fr"], 90),
                    "resolution_p50_s": percentile(g["res"], 50),
                    "resolution_p90_s": percentile(g["res"], 90),
                    "satisfaction_avg": round(sum(g["ratings"]) / len(g["ratings"]), 2) if g["ratings"] else None,
                    "rated": len(g["ratings"])})
    return out


def percentile(values: list, p: float) -> float | None:
    """Nearest-rank percentile (no interpolation, so it is a value that occurred)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return round(ordered[int(rank) - 1], 3)


def overdue(store, at: datetime) -> dict:
    """Milestones and invoices past due at ``at`` and not completed or paid."""
    now, milestones, invoices = iso(at), [], []
    for row in store.listing("contracts", now):  # only contracts with something due by now
        live = contract_status(row, now) in ("effective", "disputed")
        for mid, m in row["milestones"].items():
            if live and m["status"] != "completed" and m["due_at"] < now:  # on time at the due instant
                milestones.append({"contract_id": row["contract_id"], "milestone": mid,
                                   "title": m["title"], "due_at": m["due_at"],
                                   "overdue_s": (at - parse(m["due_at"])).total_seconds()})
        for iid, inv in row["invoices"].items():
            if inv["status"] != "paid" and inv["due_at"] < now:
                invoices.append({"contract_id": row["contract_id"], "invoice": iid,
                                 "payer": inv["payer"], "due_at": inv["due_at"],
                                 "outstanding_fen": inv["amount_fen"] - inv["settled_fen"],
                                 "currency": inv["currency"]})
    return {"milestones": sorted(milestones, key=lambda m: m["due_at"]),
            "invoices": sorted(invoices, key=lambda i: i["due_at"])}


def tier_history(store, member_id: str) -> list[dict]:
    return (store.get("tier_history", member_id) or {}).get("changes", [])


def revenue_by_party_month(store, at: datetime | None, policy: Policy) -> dict:
    """Recognised revenue per month and party: what stays with the platform, what each partner's
    share is (seed 000 §4), net of discounts and waivers, and the rounding remainder:
    ``{currency: {month: {party: fen}}}``; the parts of a month add up to its invoiced revenue."""
    limit = iso(at) if at else None
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for posting in _postings(store, limit):
        if limit and posting["at"] > limit:
            continue
        month = policy.month_of(parse(posting["at"]))
        for account, debit, credit, cur in posting["lines"]:
            kind, _, party = account.partition(":")
            if kind == "revenue":
                out[cur][month][OWN] += credit - debit
            elif kind in ("partner_payable", "rounding"):
                out[cur][month][party or "rounding"] += credit - debit
            elif kind == "discounts":   # the platform's part of a credit (partners' parts come back)
                out[cur][month][OWN] -= debit - credit
    return {cur: {m: dict(sorted(p.items())) for m, p in sorted(months.items())}
            for cur, months in sorted(out.items())}
