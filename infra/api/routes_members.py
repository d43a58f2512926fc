"""Member routes: the VIP workflow and overrides, the member's state, tier and why, history."""

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from infra.api import answers, models as m
from infra.api.auth import route
from infra.api.commands import aggregate
from infra.api.execute import etag
from infra.api.routes_common import ID_PATTERN, MAX_PAGE, command_route, page
from infra.service_layer import commands as c
from infra.service_layer.describe import MemberState, as_json, describe_member

router = APIRouter()
AS_OF = Query(default=None, description="Answer as of this past instant (ISO-8601 with zone)")
MemberId = Path(min_length=1, max_length=100, pattern=ID_PATTERN)

for name, command, model, permission, summary in (
        ("apply", c.ApplyForVip, m.Command, "member:workflow", "Apply for VIP (seed 002 §2.2.1)"),
        ("start-review", c.StartVipReview, m.Command, "member:workflow", "Start reviewing the application (§2.2.2)"),
        ("approve", c.ApproveVip, m.Command, "member:workflow", "Approve the application (§2.2.2)"),
        ("reject", c.RejectVip, m.Reason, "member:workflow", "Reject the application, with a reason"),
        ("revoke", c.RevokeVip, m.Reason, "member:supervise", "Cancel VIP status, with a reason (§2.3.2)"),
        ("terminate-rights", c.TerminateRights, m.Reason, "member:supervise", "End rights for breach (§4.3.2)"),
        ("override", c.SetOverride, m.Override, "member:supervise", "Pin a tier or give it a floor, until an expiry"),
        ("clear-override", c.ClearOverride, m.ClearOverride, "member:supervise", "Remove a manual tier override"),
        ("erase", c.EraseMember, m.Command, "member:erase",
         "Erase personal data (PIPL): the member's key is destroyed")):
    command_route(router, "member", name, command, f"/members/{{id}}/{name}", permission, model, summary)

@route(router, "GET", "/members/{id}", "member:read", 404, response_model=MemberState,
       tags=["members"], summary="The member's current state and version (the ETag for If-Match)")
def member_state(request: Request, id: str = MemberId):
    with request.app.state.engines.reader() as system:
        member = aggregate(system.app, "member", id)
        body = as_json(describe_member(member, system.app))
    return JSONResponse(body, headers={"ETag": etag(member.version)})


@route(router, "GET", "/members/{id}/tier", "member:read", 404, tags=["members"],
       summary="Tier, window spend and points, status, and why")
def member_tier(request: Request, id: str = MemberId, as_of: AwareDatetime | None = AS_OF) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return answers.tier_with_why(system, id, as_of)


@route(router, "GET", "/members/{id}/tier-history", "member:read", response_model=m.Page,
       tags=["members"], summary="Every tier change, with policy version, reason and actor")
def member_tier_history(request: Request, id: str = MemberId, as_of: AwareDatetime | None = AS_OF,
                        limit: int = Query(50, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return page(answers.tier_history(system, id, as_of), limit, offset)


@route(router, "GET", "/tiers", "member:read", response_model=m.Page, tags=["members"],
       summary="Every member's tier")
def tiers(request: Request, as_of: AwareDatetime | None = AS_OF,
          limit: int = Query(50, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return page(answers.tiers(system, as_of), limit, offset)


@route(router, "GET", "/tiers/distribution", "member:read", tags=["members"],
       summary="Members and active VIPs per tier")
def tier_distribution(request: Request, as_of: AwareDatetime | None = AS_OF) -> dict:
    with request.app.state.engines.at(as_of) as system:
        return answers.tier_distribution(system, as_of)


