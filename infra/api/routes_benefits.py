"""Benefits routes (seed 002 §3.2, §4.1): reassigning a member's dedicated agent, the work queue.

The benefits in force are part of the tier answer (``GET /members/{id}/tier``:
``benefits`` with the dedicated agent, priority, SLA budgets and why).
(No ``from __future__ import annotations`` here: FastAPI reads the body model
from the handler's annotations at run time.)
"""
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from infra.api import models as m
from infra.api.auth import principal, route
from infra.api.commands import describe_member
from infra.api.execute import check_at, etag
from infra.api.keys import Principal
from infra.api.routes_common import ID_PATTERN, MAX_PAGE, page
from infra.service_layer.asof import now_or, store_as_of
from projections import queries

router = APIRouter()


class AssignAgent(m.Command):
    """A supervisor's reassignment: the agent (on the policy's roster) and why."""

    agent: str = m.Id
    reason: m.FreeText = m.Text


class MemberAgentState(m.MemberState):
    dedicated_agent: str | None = None


@route(router, "POST", "/members/{id}/assign-agent", "member:supervise", 404, 409,
       response_model=MemberAgentState, tags=["members"],
       summary="Reassign the member's dedicated agent, with a reason (sealed with the member's key)")
def assign_agent(request: Request, id: str = Path(min_length=1, max_length=100, pattern=ID_PATTERN),
                 body: AssignAgent = Body(), who: Principal = Depends(principal)):
    state = request.app.state
    system = state.system
    with state.lock:
        if body.at is not None:
            check_at(system, who, body.at)
            system.engine.check_command_at(body.at, "at")
        member = system.engine.run(body.at, lambda ctx: system.app.assign_agent(ctx, id, body.agent, body.reason),
                                   actor=who.subject,
                                   causation_id=f"api:{getattr(request.state, 'correlation_id', '')}",
                                   correlation_id=getattr(request.state, "correlation_id", ""))
        system.engine.flush()
        answer = {**m.state_json("member", describe_member(member)), "dedicated_agent": member.dedicated_agent}
    return JSONResponse(answer, headers={"ETag": etag(member.version)})


@route(router, "GET", "/queue", "complaint:read", response_model=m.Page, tags=["complaints"],
       summary="Open complaints in priority order: time to breach, then tier priority, then severity")
def work_queue(request: Request, as_of: AwareDatetime | None = Query(default=None),
               limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    system = request.app.state.system
    with request.app.state.lock:
        rows = queries.work_queue(store_as_of(system, as_of), now_or(system, as_of))
    return page(rows, limit, offset)
