"""Key administration (admin only) and who-am-I (any valid key: the console's sign-in)."""
from typing import Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from infra.api.auth import PERMISSIONS, principal, route
from infra.api.keys import ApiKeyError, Principal
from infra.api.problems import Problem

router = APIRouter()


class NewKey(BaseModel):
    role: Literal["agent", "supervisor", "finance", "auditor", "admin"]
    subject: str = Field(min_length=1, max_length=100, description="Who the key belongs to: the actor on events")


class CreatedKey(BaseModel):
    key_id: str
    role: str
    subject: str
    token: str = Field(description="Shown once; only its hash is stored")


class Me(BaseModel):
    subject: str
    role: str
    key_id: str
    permissions: list[str]
    now: str = Field(description="The server's clock: what queries without as_of answer for")


@route(router, "GET", "/whoami", "session:read", response_model=Me, tags=["keys"],
       summary="The caller's subject, role and permissions")
def whoami(request: Request, who: Principal = Depends(principal)) -> dict:
    return {"subject": who.subject, "role": who.role, "key_id": who.key_id,
            "permissions": sorted(p for p, roles in PERMISSIONS.items() if who.role in roles),
            "now": request.app.state.system.engine.clock().isoformat()}


@route(router, "GET", "/api-keys", "keys:admin", tags=["keys"], summary="Every key (never the tokens)")
def list_keys(request: Request) -> list[dict]:
    return request.app.state.keys.list()


@route(router, "POST", "/api-keys", "keys:admin", status_code=201, response_model=CreatedKey,
       tags=["keys"], summary="Make a key; the token is in this response only")
def create_key(request: Request, body: NewKey) -> dict:
    try:
        key_id, token = request.app.state.keys.create(body.role, body.subject)
    except ApiKeyError as exc:
        raise Problem(422, str(exc), "urn:vip:invalid") from None
    return {"key_id": key_id, "role": body.role, "subject": body.subject, "token": token}


@route(router, "DELETE", "/api-keys/{key_id}", "keys:admin", 404, status_code=204, tags=["keys"],
       summary="Revoke a key")
def revoke_key(request: Request, key_id: str = Path(min_length=1, max_length=100)) -> None:
    try:
        request.app.state.keys.revoke(key_id)
    except ApiKeyError as exc:
        raise Problem(404, str(exc), "urn:vip:not-found") from None
