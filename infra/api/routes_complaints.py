"""Complaint routes: filing, handling and closing (seed 002 §7), the complaint's state, lists."""
from typing import Literal

import hashlib
import secrets

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from domain.base import NotFoundError
from infra.api import answers, models as m
from infra.api.auth import principal, route
from infra.api.commands import aggregate
from infra.api.execute import etag, execute
from infra.api.keys import Principal
from infra.api.routes_common import IDEMPOTENCY, ID_PATTERN, MAX_PAGE, command_route, describer, page
from infra.service_layer import commands as c
from infra.service_layer.describe import ComplaintState, as_json, describe_complaint

router = APIRouter()
AS_OF = Query(default=None, description="Answer as of this past instant (ISO-8601 with zone)")
Status = Literal["filed", "acknowledged", "assigned", "escalated", "waiting", "resolved", "closed"]



def new_complaint_id(app, who: Principal, idempotency_key: str | None) -> str:
    """A fresh complaint id: from the Idempotency-Key when there is one (a retry names the same
    complaint, so it gets the first answer back), else random; never one that exists."""
    if idempotency_key:
        digest = hashlib.sha256(f"{who.key_id}\0{idempotency_key}".encode()).hexdigest()
        return f"C-{digest[:10].upper()}"
    while True:
        candidate = f"C-{secrets.token_hex(5).upper()}"
        try:
            aggregate(app, "complaint", candidate)
        except NotFoundError:
            return candidate


@route(router, "POST", "/complaints", "complaint:write", 404, 409, status_code=201,
       response_model=ComplaintState, tags=["complaints"],
       summary="File a complaint; SLA clocks start from the member's tier policy. Leave complaint_id "
               "out and the server makes one (the answer names it)")
def complaint_file(request: Request, body: m.FileNew = Body(), who: Principal = Depends(principal),
                   key: str | None = IDEMPOTENCY):
    state = request.app.state
    if body.complaint_id:
        complaint_id = body.complaint_id
    else:
        with state.engines.reader() as system:
            complaint_id = new_complaint_id(system.app, who, key)
    body = body.model_copy(update={"complaint_id": complaint_id})
    return execute(state, who, "complaint", "file", c.FileComplaint, complaint_id, body,
                   describer("complaint", who),
                   request.url.path, idempotency_key=key,
                   correlation_id=getattr(request.state, "correlation_id", ""), created=True)

for name, command, model, permission, summary in (
        ("ack", c.AcknowledgeComplaint, m.Command, "complaint:write", "First response: stops the first-response clock"),
        ("assign", c.AssignComplaint, m.Assign, "complaint:write", "Assign to an agent"),
        ("escalate", c.EscalateComplaint, m.Reason, "complaint:escalate", "Escalate by hand"),
        ("wait", c.WaitForCustomer, m.Wait, "complaint:write", "Wait for the customer: clocks pause"),
        ("reply", c.RecordCustomerReply, m.Command, "complaint:write", "The customer answered: clocks resume"),
        ("resolve", c.ResolveComplaint, m.Resolve, "complaint:write", "Resolve: both clocks stop (seed 002 §7.3)"),
        ("rate", c.RateComplaint, m.Rate, "complaint:write", "Satisfaction 1-5 (seed 002 §5.3)"),
        ("close", c.CloseComplaint, m.Command, "complaint:write", "Close a resolved complaint"),
        ("reopen", c.ReopenComplaint, m.Reason, "complaint:write", "Reopen: the resolution clock resumes")):
    command_route(router, "complaint", name, command, f"/complaints/{{id}}/{name}", permission, model, summary)


@route(router, "GET", "/complaints", "complaint:read", response_model=m.Page, tags=["complaints"],
       summary="Complaints, newest first; of one member or in one status")
def complaints(request: Request, as_of: AwareDatetime | None = AS_OF,
               member_id: str | None = Query(None, max_length=100), status: Status | None = None,
               limit: int = Query(50, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        rows = answers.complaints(system, as_of, member_id, status)
    return page(rows, limit, offset)


@route(router, "GET", "/complaints/{id}", "complaint:read", 404, response_model=ComplaintState,
       tags=["complaints"], summary="A complaint's state and version (the ETag for If-Match)")
def complaint_state(request: Request, id: str = Path(min_length=1, max_length=100, pattern=ID_PATTERN)):
    with request.app.state.engines.reader() as system:
        complaint = aggregate(system.app, "complaint", id)
    return JSONResponse(as_json(describe_complaint(complaint)), headers={"ETag": etag(complaint.version)})


@route(router, "GET", "/breaches", "complaint:read", response_model=m.Page, tags=["complaints"],
       summary="Open complaints whose SLA clock is at risk or breached, most overdue first")
def breaches(request: Request, as_of: AwareDatetime | None = AS_OF,
             limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return page(answers.breaches(system, as_of), limit, offset)


@route(router, "GET", "/kpis", "kpis:read", response_model=m.Page, tags=["complaints"],
       summary="Complaint KPIs per tier and month: percentiles and satisfaction")
def kpis(request: Request, as_of: AwareDatetime | None = AS_OF,
         limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return page(answers.kpis(system, as_of), limit, offset)
