"""The queries the API answers, over the same functions the CLI uses.

``infra.service_layer.asof.store_as_of`` (live store, or a replay up to ``as_of``) and the
answers in ``projections.queries`` are shared with ``vip tier``, ``vip breaches``
and the rest, so the API and the CLI give the same answer for the same instant.
"""
from __future__ import annotations

from datetime import datetime

from domain.base import NotFoundError
from infra.service_layer.asof import now_or, store_as_of
from infra.service_layer.replay import history as aggregate_history
from infra.service_layer.reveal import reveal, reveal_rows
from projections import queries


def _store(system, as_of: datetime | None):
    return store_as_of(system, as_of)


def tier_with_why(system, member_id: str, as_of: datetime | None) -> dict:
    """The member's tier at ``as_of`` and why: the window, the rule and the change that set it."""
    store = _store(system, as_of)
    row = store.get("current_tier", member_id)
    if row is None:
        raise NotFoundError(f"no member {member_id!r} in the read model"
                            + (f" as of {as_of.isoformat()}" if as_of else "")
                            + "; check the id (GET /tiers lists members)")
    at = now_or(system, as_of)
    answer = queries.member_answer(store, member_id, row, at, system.app.policy)
    changes = queries.tier_history(store, member_id)
    last = next((c for c in reversed(changes) if c["to"] == answer["tier"]), None)
    # Below the VIP standard there is no rule of its own: the why is the silver rule not yet met.
    tiers = system.app.policy.tiers
    rule = tiers.rule(answer["tier"] if answer["tier"] != "member" else "silver")
    answer["why"] = {
        "rule": {"tier": rule.tier, "min_spend_fen": rule.min_spend_fen, "min_points": rule.min_points,
                 "min_active_months": rule.min_active_months},
        "window_days": system.app.policy.tiers.window_days,
        "last_change": last,
        "override": answer["override"],
        "summary": _why_sentence(answer, rule, last),
    }
    return reveal(system.app, member_id, answer)  # sealed reasons opened (or [erased])


def _why_sentence(answer: dict, rule, last: dict | None) -> str:
    below = " (not yet VIP)" if answer["tier"] == "member" else ""
    text = (f"{answer['tier']}{below}: net spend {answer['window_spend_fen'] / 100:,.2f} CNY and "
            f"{answer['window_points']} points in the window, {answer['active_months']} active months "
            f"(the {rule.tier} rule asks {rule.min_spend_fen / 100:,.0f} CNY or {rule.min_points} points"
            + (f" and {rule.min_active_months} active months" if rule.min_active_months else "") + ")")
    if last:
        text += f"; set by {last['event']} at {last['at']} (policy {last['policy_version']})"
    if answer["override"]:
        o = answer["override"]
        text += f"; override {o['kind']} {o['tier']} until {o['expires_at']}"
    return text


def tier_history(system, member_id: str, as_of: datetime | None) -> list[dict]:
    return reveal(system.app, member_id, queries.tier_history(_store(system, as_of), member_id))


def tiers(system, as_of: datetime | None) -> list[dict]:
    return queries.tiers(_store(system, as_of), now_or(system, as_of), system.app.policy)


def tier_distribution(system, as_of: datetime | None) -> dict:
    return queries.tier_distribution(tiers(system, as_of))


def breaches(system, as_of: datetime | None) -> list[dict]:
    return queries.pending_breaches(_store(system, as_of), now_or(system, as_of), system.app.policy)


def ledger(system, as_of: datetime | None, contract: str | None) -> dict:
    return queries.ledger(_store(system, as_of), as_of, system.app.policy, contract)


def revenue(system, as_of: datetime | None) -> dict:
    return queries.revenue_by_party_month(_store(system, as_of), as_of, system.app.policy)


def kpis(system, as_of: datetime | None) -> list[dict]:
    return queries.complaint_kpis(_store(system, as_of), system.app.policy, now_or(system, as_of))


def overdue(system, as_of: datetime | None) -> dict:
    return queries.overdue(_store(system, as_of), now_or(system, as_of))


def complaints(system, as_of: datetime | None, member_id: str | None, status: str | None) -> list[dict]:
    """Complaint rows (newest first), optionally of one member or in one status."""
    rows = queries.complaint_rows(_store(system, as_of), now_or(system, as_of))
    out = [r for r in rows if (member_id is None or r["member_id"] == member_id)
           and (status is None or r["status"] == status)]
    out = sorted(out, key=lambda r: (r["filed_at"], r["complaint_id"]), reverse=True)
    return reveal_rows(system.app, out)  # sealed categories opened (or [erased])


def contracts(system, as_of: datetime | None) -> list[dict]:
    """Contract rows: status, parties, milestones and invoices (no terms: the row holds none)."""
    rows = _store(system, as_of).view("contracts")
    return [rows[k] for k in sorted(rows)]


def history(system, kind: str, business_id: str, as_of: datetime | None) -> list[dict]:
    """Every event of one aggregate, up to ``as_of`` if given."""
    rows = aggregate_history(system.app, kind, business_id)
    if as_of is not None:
        rows = [r for r in rows if r["at"] <= as_of]
    return rows
