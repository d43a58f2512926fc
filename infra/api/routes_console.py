"""Read routes the web console works from: who am I, member search and profile, a complaint's
page, invoice aging, a filterable contract list. Every one is a query (``as_of`` where the
answer depends on time); none records anything.

Personal values (name, phone, email) are shown, and searched by, only to the roles that serve
the customer (those holding ``complaint:write``); the search goes through a blind index
(:mod:`infra.stores.blind_index`), never a clear copy.
"""
import threading
from datetime import datetime
from pathlib import Path as FilePath
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime

from domain.base import NotFoundError
from domain.policy import TIERS, tier_rank
from infra.api import answers, models as m
from infra.api.auth import PERMISSIONS, allowed, principal, route
from infra.api.commands import aggregate
from infra.api.keys import Principal
from infra.api.routes_common import ID_PATTERN, MAX_PAGE, page
from infra.api.routes_contracts import UNCLASSIFIED
from infra.service_layer.asof import now_or, store_as_of
from infra.service_layer.reveal import reveal_rows
from infra.stores.blind_index import BlindIndex, normalise_phone
from infra.stores.pii import KeyStore
from projections.common import iso, parse
from projections.complaints import as_at
from projections.queries import overdue

router = APIRouter()
AS_OF = Query(default=None, description="Answer as of this past instant (ISO-8601 with zone)")
SEARCH_LIMIT = 20
AGING_BUCKETS = ((30, "0-30"), (60, "31-60"), (90, "61-90"), (None, "90+"))


def _page(path: str, permission: str, tag: str, summary: str):
    """Register ``answer(system, id, as_of, who)`` as a GET route answering one record's page by
    its id (404 when there is none), on a system lent for ``as_of``; the route keeps its name."""
    def register(answer):
        @route(router, "GET", path, permission, 404, tags=[tag], summary=summary, name=answer.__name__)
        def endpoint(request: Request, id: str = Path(min_length=1, max_length=100, pattern=ID_PATTERN),
                     as_of: AwareDatetime | None = AS_OF, who: Principal = Depends(principal)) -> dict:
            with request.app.state.engines.at(as_of) as system:
                return answer(system, id, as_of, who)
        return answer
    return register


def personal(who: Principal) -> bool:
    """Whether ``who`` may see and search personal values: the roles that serve the customer."""
    return allowed(who.role, "complaint:write")


_OPENING = threading.Lock()  # two first searches at once open one index


def blind_index(state) -> BlindIndex:
    """The app's blind index (opened on first use beside the data, its key beside the member keys;
    it takes its own lock for each search and catch-up)."""
    with _OPENING:
        index = getattr(state, "blind_index", None)
        if index is None:
            system = state.system
            index = state.blind_index = BlindIndex(system.settings.data_dir / "search.db",
                                                   _index_key_dir(system) / "search_index.key")
    return index


def _index_key_dir(system) -> FilePath:
    # Beside a key store file; with the member keys in PostgreSQL (no file), in the data dir.
    return FilePath(system.keys.path).parent if isinstance(system.keys, KeyStore) else system.settings.data_dir


@route(router, "GET", "/me", "session:read", response_model=m.Me, tags=["keys"],
       summary="The caller's subject, role and permissions, the server's clock and zone")
def me(request: Request, who: Principal = Depends(principal)) -> dict:
    system = request.app.state.system
    return {"subject": who.subject, "role": who.role, "key_id": who.key_id,
            "permissions": sorted(p for p, roles in PERMISSIONS.items() if who.role in roles),
            "now": system.engine.clock().isoformat(), "zone": system.app.policy.zone}


@route(router, "GET", "/member-search", "member:read", response_model=m.Page, tags=["members"],
       summary="Members by id (any case, or its start); by name or phone for the roles that serve "
               "the customer (exact, normalised: through a blind index)")
def member_search(request: Request, q: str = Query(min_length=1, max_length=100),
                  who: Principal = Depends(principal)) -> dict:
    state = request.app.state
    text = q.strip()
    with state.engines.reader() as system:
        rows = system.store.view("current_tier")
        wanted = text.casefold()
        found = [k for k in sorted(rows) if k.casefold() == wanted]
        found += [k for k in sorted(rows) if k.casefold().startswith(wanted) and k not in found]
        how = {k: "id" for k in found}
        if personal(who):
            index = blind_index(state)
            index.catch_up(system.app)
            digits = normalise_phone(text)
            field = "phone" if len(digits) >= 5 and len(digits) * 2 >= len(text.replace(" ", "")) else "name"
            for k in index.find(field, text):
                if k not in how:
                    found.append(k)
                    how[k] = field
        items = [_summary(system, rows[k], how[k], who) for k in found[:SEARCH_LIMIT] if k in rows]
    return page(items, SEARCH_LIMIT, 0) | {"total": len(found)}


def _summary(system, row: dict, how: str, who: Principal) -> dict:
    out = {"member_id": row["member_id"], "tier": row["tier"], "vip_status": row["status"], "matched_by": how}
    if personal(who):
        out["name"] = system.app.cipher.open(row["member_id"], (row.get("profile") or {}).get("name"))
    return out


@_page("/members/{id}/profile", "member:read", "members",
       "A member's page: tier and why, progress to the next tier, the review that holds the "
       "current one, tier history; name, phone and email for the roles that serve the customer")
def member_profile(system, id: str, as_of: datetime | None, who: Principal) -> dict:
    tier = answers.tier_with_why(system, id, as_of)
    history = answers.tier_history(system, id, as_of)
    out = {"member_id": id, "tier": tier, "progress": progress(tier, system.app.policy),
           "tier_history": history[::-1]}
    if personal(who):
        member = aggregate(system.app, "member", id)
        out["profile"] = {k: system.app.cipher.open(id, member.profile.get(k))
                          for k in ("name", "phone", "email")}
    return out


def progress(answer: dict, policy) -> dict:
    """What the next tier asks beyond what the window holds, and whether the current tier is held
    only until the next annual review (a downgrade waits for the review: DOMAIN.md)."""
    spend, points, months = answer["window_spend_fen"], answer["window_points"], answer["active_months"]
    rank = tier_rank(answer["tier"])
    out: dict = {"next_tier": TIERS[rank + 1] if rank + 1 < len(TIERS) else None, "held_until": None}
    if out["next_tier"]:
        rule = policy.tiers.rule(out["next_tier"])
        out.update(spend_needed_fen=max(0, rule.min_spend_fen - spend),
                   points_needed=max(0, rule.min_points - points),
                   active_months_needed=max(0, rule.min_active_months - months),
                   min_spend_fen=rule.min_spend_fen, min_points=rule.min_points)
    if rank > 0:
        rule = policy.tiers.rule(answer["tier"])
        meets = (spend >= rule.min_spend_fen or points >= rule.min_points) and months >= rule.min_active_months
        if not meets:
            out["held_until"] = answer.get("next_review_at")
    return out


@_page("/complaints/{id}/page", "complaint:read", "complaints",
       "A complaint's page: its clocks, timeline, description, resolution, rating and the "
       "actions its status allows the caller")
def complaint_page(system, id: str, as_of: datetime | None, who: Principal) -> dict:
    at = now_or(system, as_of)
    row = store_as_of(system, as_of).get("complaints", id)
    if row is None:
        raise NotFoundError(f"no complaint {id!r}" + (f" as of {as_of.isoformat()}" if as_of else "")
                            + "; check the id (the queue lists the open ones)")
    row = reveal_rows(system.app, [as_at(row, iso(at))])[0]
    timeline = answers.history(system, "complaint", id, as_of)
    version = aggregate(system.app, "complaint", id).version  # the ETag an action sends as If-Match
    filed = next((e for e in timeline if e["type"] == "ComplaintFiled"), None)
    resolved = [e for e in timeline if e["type"] == "ComplaintResolved"]
    clocks = {name: _clock(clock, at, row.get("at_risk_ratio", 0.8)) for name, clock in row["clocks"].items()}
    return {**{k: v for k, v in row.items() if k != "clocks"}, "clocks": clocks,
            "description": filed["data"].get("description") if filed else None,
            "resolution": resolved[-1]["data"].get("resolution") if resolved else None,
            "timeline": [{k: e[k] for k in ("version", "at", "type", "actor", "data")} for e in timeline],
            "version": version, "actions": [] if as_of else actions(row, who)}


def _clock(clock: dict, at: datetime, ratio: float) -> dict:
    out = {"budget_s": clock["budget_s"], "used_s": round(clock["used_s"], 3), "deadline": clock.get("deadline")}
    if clock.get("stopped_at"):
        out.update(state="stopped", stopped_at=clock["stopped_at"])
    elif clock.get("deadline") and clock.get("running_since"):
        left = (parse(clock["deadline"]) - at).total_seconds()
        used = clock["budget_s"] - left
        out.update(left_s=left, state="breached" if left < 0 else
                   "at_risk" if used >= ratio * clock["budget_s"] or clock.get("at_risk_marked") else "running")
    else:
        out.update(state="paused", left_s=max(clock["budget_s"] - clock["used_s"], 0.0))
    return out


def actions(row: dict, who: Principal) -> list[str]:
    """The commands the complaint's status allows (the domain refuses the rest), for this role."""
    if not allowed(who.role, "complaint:write"):
        return []
    status, clocks = row["status"], row["clocks"]
    out = []
    if status not in ("resolved", "closed"):
        if not clocks["first_response"].get("stopped_at"):
            out.append("ack")
        out.append("assign")
        if allowed(who.role, "complaint:escalate"):
            out.append("escalate")
        out.append("reply" if status == "waiting" else "wait")
        out.append("resolve")
    else:
        if row.get("rating") is None:
            out.append("rate")
        if status == "resolved":
            out.append("close")
        out.append("reopen")
    return out


@route(router, "GET", "/aging", "ledger:read", tags=["money"],
       summary="Overdue invoices by days overdue (0-30, 31-60, 61-90, 90+), with totals per bucket")
def aging(request: Request, as_of: AwareDatetime | None = AS_OF) -> dict:
    with request.app.state.engines.at(as_of) as system:
        at = now_or(system, as_of)
        rows = overdue(store_as_of(system, as_of), at)["invoices"]
    totals: dict = {}
    for row in rows:
        days = int((at - parse(row["due_at"])).total_seconds() // 86400)
        row.update(days_overdue=days, bucket=next(name for top, name in AGING_BUCKETS if top is None or days <= top))
        by = totals.setdefault(row["currency"], {name: 0 for _, name in AGING_BUCKETS} | {"total": 0})
        by[row["bucket"]] += row["outstanding_fen"]
        by["total"] += row["outstanding_fen"]
    return {"as_of": at.isoformat(), "buckets": [name for _, name in AGING_BUCKETS],
            "invoices": rows, "totals": totals}


@route(router, "GET", "/contract-list", "contract:read", response_model=m.Page, tags=["contracts"],
       summary="Contracts a page at a time, filtered by id or party (text), status and kind; parties, "
               "milestones and invoices only for finance, auditor, admin")
def contract_list(request: Request, as_of: AwareDatetime | None = AS_OF,
                  q: str | None = Query(None, max_length=100), status: str | None = Query(None, max_length=30),
                  kind: Literal["cooperation", "member_agreement"] | None = None,
                  limit: int = Query(50, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0),
                  who: Principal = Depends(principal)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        rows = answers.contracts(system, as_of)
    terms = allowed(who.role, "contract:terms")
    text = (q or "").strip().casefold()
    out = []
    for row in rows:
        if (status and row.get("status") != status) or (kind and row.get("kind") != kind):
            continue
        seen = [row["contract_id"], *(row.get("parties") or [] if terms else [])]
        if text and not any(text in str(s).casefold() for s in seen):
            continue
        out.append(row if terms else {k: row.get(k) for k in UNCLASSIFIED})
    return page(out, limit, offset)
