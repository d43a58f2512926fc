"""Benefits routes (seed 002 §3.2, §4.1): reassigning a member's dedicated agent, the work queue.

The benefits in force are part of the tier answer (``GET /members/{id}/tier``:
``benefits`` with the dedicated agent, priority, SLA budgets and why).
(No ``from __future__ import annotations`` here: FastAPI reads the body model
from the handler's annotations at run time.)
"""
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from infra.api import models as m
from infra.api.auth import route
from infra.api.routes_common import MAX_PAGE, command_route, page
from infra.service_layer import commands as c
from infra.service_layer.asof import now_or, store_as_of
from projections import queries

router = APIRouter()


class AssignAgent(m.Command):
    """A supervisor's reassignment: the agent (on the policy's roster) and why."""

    agent: str = m.Id
    reason: m.FreeText = m.Text


command_route(router, "member", "assign-agent", c.AssignAgent, "/members/{id}/assign-agent", "member:supervise",
              AssignAgent, "Reassign the member's dedicated agent, with a reason (sealed with the member's key)")


@route(router, "GET", "/queue", "complaint:read", response_model=m.Page, tags=["complaints"],
       summary="Open complaints in priority order: time to breach, then tier priority, then severity")
def work_queue(request: Request, as_of: AwareDatetime | None = Query(default=None),
               limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        rows = queries.work_queue(store_as_of(system, as_of), now_or(system, as_of))
    return page(rows, limit, offset)
