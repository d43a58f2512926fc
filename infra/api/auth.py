"""Who may do what: bearer API keys, roles, and the permission on each route.

Every route names one permission; ``PERMISSIONS`` says which roles hold it.
The permission is also published in the OpenAPI document (``x-permission``)
so the role tests and an operator read the same table.
"""
from __future__ import annotations

import logging
from typing import Callable

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infra.api.keys import ROLES, Principal
from infra.api.problems import Problem, responses

log = logging.getLogger("vip.api.auth")

_ALL = set(ROLES)
_READERS = {"agent", "supervisor", "auditor", "admin"}

PERMISSIONS: dict[str, set[str]] = {
    # members
    "member:read": _ALL,
    "member:workflow": {"supervisor", "admin"},      # apply, review, approve, reject
    "member:supervise": {"supervisor", "admin"},     # override, revoke, terminate rights
    "member:erase": {"admin"},
    # complaints
    "complaint:read": _READERS,
    "complaint:write": {"agent", "supervisor", "admin"},
    "complaint:escalate": {"supervisor", "admin"},
    "kpis:read": {"supervisor", "auditor", "admin"},
    # contracts and money
    "contract:read": {"supervisor", "finance", "auditor", "admin"},
    "contract:write": {"finance", "admin"},
    "contract:terms": {"finance", "auditor", "admin"},   # seed 000 §7: terms are confidential
    "ledger:read": {"finance", "auditor", "admin"},
    # audit and administration
    "history:read": {"agent", "supervisor", "auditor", "admin"},  # contract history also needs contract:terms
    "audit:read": {"auditor", "admin"},   # verify the log against its hash chains and checkpoints
    "keys:admin": {"admin"},
    "session:read": _ALL,   # who am I, what may I do
}

bearer = HTTPBearer(auto_error=False, description="An API key from `vip api-key create`.")


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def principal(request: Request,
              credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 otherwise (and logged)."""
    found = getattr(request.state, "principal", None)  # the guard verified it on the headers
    if found is None and credentials is not None and credentials.scheme.lower() == "bearer":
        found = request.app.state.keys.verify(credentials.credentials)
    if found is None:
        log.warning("401 %s %s: %s", request.method, request.url.path,
                    "no bearer token" if credentials is None else "unknown or revoked key",
                    extra={"correlation_id": getattr(request.state, "correlation_id", None)})
        raise Problem(401, "send a valid API key: `Authorization: Bearer <token>` "
                           "(make one with `vip api-key create --role ROLE --subject NAME`)",
                      "urn:vip:unauthorized", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = found
    return found


def require(permission: str) -> Callable:
    """A dependency that lets only the roles holding ``permission`` through (403, logged)."""
    roles = PERMISSIONS[permission]

    def check(request: Request, who: Principal = Depends(principal)) -> Principal:
        if who.role not in roles:
            log.warning("403 %s %s: %s (%s) lacks %s", request.method, request.url.path,
                        who.subject, who.role, permission,
                        extra={"correlation_id": getattr(request.state, "correlation_id", None)})
            raise Problem(403, f"role {who.role!r} may not do this ({permission}); it needs one of: "
                               f"{', '.join(sorted(roles))}", "urn:vip:forbidden")
        return who
    return check


def route(router: APIRouter, method: str, path: str, permission: str, *codes: int, **kwargs):
    """Register a guarded route: permission check, problem responses, ``x-permission``."""
    extra = {"x-permission": permission, **kwargs.pop("openapi_extra", {})}
    deps = [Depends(require(permission)), *kwargs.pop("dependencies", [])]
    return router.api_route(path, methods=[method], openapi_extra=extra, dependencies=deps,
                            responses=responses(401, 403, 422, *codes), **kwargs)


def route_table(openapi: dict) -> list[tuple[str, str, str]]:
    """``(METHOD, path, permission)`` of every guarded route, from the OpenAPI document."""
    return sorted((method.upper(), path, op["x-permission"])
                  for path, ops in openapi["paths"].items()
                  for method, op in ops.items() if isinstance(op, dict) and "x-permission" in op)
