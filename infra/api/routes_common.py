"""What every route module shares: the command-route factory and pagination.

(No ``from __future__ import annotations`` here: FastAPI reads the body
model from the handler's annotations at run time.)
"""
from typing import Any, Callable

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from pydantic import BaseModel

from infra.api.auth import allowed, principal, route
from infra.api.execute import execute
from infra.api.keys import Principal
from infra.service_layer.commands import Command
from infra.service_layer.describe import STATE_MODELS, describe_complaint, describe_contract, describe_member
from domain.limits import ID_PATTERN, MAX_ID_LENGTH
MAX_PAGE = 500


def describer(kind: str, who: Principal) -> Callable[[Any, Any], BaseModel]:
    """How an aggregate is shown to ``who``: ``(aggregate, app)`` to its reply model (contract terms
    only to the cleared; a member's sealed free text opened with ``app``)."""
    if kind == "member":
        return describe_member
    if kind == "complaint":
        return lambda complaint, app: describe_complaint(complaint)
    terms = allowed(who.role, "contract:terms")
    return lambda contract, app: describe_contract(contract, terms)


IF_MATCH = Header(default=None, alias="If-Match", description='The aggregate version, e.g. "5"; stale -> 412')
IDEMPOTENCY = Header(default=None, alias="Idempotency-Key", min_length=1, max_length=200,
                     description="A repeat with the same key returns the first response, with no second effect")


def command_route(router: APIRouter, kind: str, name: str, command: type[Command], path: str, permission: str,
                  model: type, summary: str, id_field: str | None = None) -> None:
    """``POST path``: run ``command`` (route ``name``) on a ``kind``, built from the body (fields named
    as the command's); the id is in the path, or in the body (``id_field``) for commands that create
    the aggregate."""
    codes = (400, 404, 409, 412) if id_field is None else (404, 409)

    def run(request: Request, business_id: str, body, who: Principal, if_match, key):
        return execute(request.app.state, who, kind, name, command, business_id, body, describer(kind, who),
                       request.url.path, if_match=if_match, idempotency_key=key,
                       correlation_id=getattr(request.state, "correlation_id", ""),
                       created=id_field is not None)

    if id_field is None:
        def handler(request: Request, id: str = Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN),
                    body: model = Body(), who: Principal = Depends(principal),
                    if_match: str | None = IF_MATCH, key: str | None = IDEMPOTENCY):
            return run(request, id, body, who, if_match, key)
    else:
        def handler(request: Request, body: model = Body(), who: Principal = Depends(principal),
                    key: str | None = IDEMPOTENCY):
            return run(request, getattr(body, id_field), body, who, None, key)
    handler.__name__ = f"{kind}_{name.replace('-', '_')}"
    handler.__annotations__["body"] = model
    status = 201 if id_field else 200
    route(router, "POST", path, permission, *codes, summary=summary, status_code=status,
          response_model=STATE_MODELS[kind], tags=[f"{kind}s"])(handler)


def page(items: list, limit: int, offset: int) -> dict:
    """One page of ``items`` (limit/offset; ``next_offset`` null on the last page)."""
    chunk = items[offset:offset + limit]
    nxt = offset + limit if offset + limit < len(items) else None
    return {"items": chunk, "total": len(items), "limit": limit, "offset": offset, "next_offset": nxt}
