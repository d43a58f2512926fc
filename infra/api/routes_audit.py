"""Money and audit routes: ledger, overdue items, the history of any aggregate.

Audit replay is ``as_of`` on every query: the answer is folded from the log up to that instant.
"""
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime

from infra.api import answers, models as m
from infra.api.auth import allowed, principal, route
from infra.api.keys import Principal
from infra.api.problems import Problem
from infra.api.routes_common import ID_PATTERN, MAX_PAGE, page

router = APIRouter()
AS_OF = Query(default=None, description="Answer as of this past instant (ISO-8601 with zone)")


@route(router, "GET", "/ledger", "ledger:read", tags=["money"],
       summary="Balances per account, contract, party and month; trial balance")
def ledger(request: Request, as_of: AwareDatetime | None = AS_OF,
           contract: str | None = Query(None, max_length=100)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return answers.ledger(system, as_of, contract)


@route(router, "GET", "/revenue", "ledger:read", tags=["money"],
       summary="Recognised revenue per currency, month and party (platform, partners, rounding)")
def revenue(request: Request, as_of: AwareDatetime | None = AS_OF) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return answers.revenue(system, as_of)


@route(router, "GET", "/overdue", "ledger:read", tags=["money"],
       summary="Contract milestones and invoices past due")
def overdue(request: Request, as_of: AwareDatetime | None = AS_OF) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return answers.overdue(system, as_of)


@route(router, "GET", "/history/{kind}/{id}", "history:read", 404, response_model=m.Page, tags=["audit"],
       summary="Every event of one aggregate: time, type, actor, policy version, data")
def history(request: Request, kind: Literal["member", "contract", "complaint"],
            id: str = Path(min_length=1, max_length=100, pattern=ID_PATTERN),
            as_of: AwareDatetime | None = AS_OF, who: Principal = Depends(principal),
            limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    if kind == "contract" and not allowed(who.role, "contract:terms"):
        # A contract's history carries its terms (seed 000 §7: confidential).
        raise Problem(403, f"role {who.role!r} may not read contract history: it holds the terms "
                           "(finance, auditor or admin may)", "urn:vip:forbidden")
    with request.app.state.engines.reader() as system:
        rows = answers.history(system, kind, id, as_of)
    return page(rows, limit, offset)
