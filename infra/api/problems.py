"""RFC 9457 problem details: every error says what went wrong and what to fix."""
from __future__ import annotations

import json
from typing import Any

import click
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.base import DomainError, NotFoundError
from domain.base import DuplicateError, InstantError
from domain.contract import TermsError
from domain.limits import show
from infra.service_layer.asof import AsOfError
from infra.policy_file import PolicyFileError

PROBLEM_JSON = "application/problem+json"


class ProblemModel(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    correlation_id: str | None = Field(default=None, description="Quote it when reporting a problem")
    errors: list[dict[str, Any]] | None = None


def responses(*codes: int) -> dict:
    """OpenAPI entries for the problem responses a route may give."""
    schema = {"$ref": "#/components/schemas/ProblemModel"}
    return {code: {"model": ProblemModel, "description": TITLES.get(code, "Error"),
                   "content": {PROBLEM_JSON: {"schema": schema}}} for code in codes}


TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          409: "Conflict", 412: "Precondition failed", 413: "Content too large",
          422: "Unprocessable request", 428: "Precondition required", 429: "Too many requests",
          500: "Internal error", 503: "Busy"}


class Problem(Exception):
    """An error the API answers with as problem details."""

    def __init__(self, status: int, detail: str, type_: str = "about:blank",
                 headers: dict | None = None, errors: list | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.type = status, detail, type_
        self.headers, self.errors = headers or {}, errors


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate echoed from a refused
    request (a field name, say) cannot fail to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, default=str,
                          separators=(",", ":")).encode("ascii")


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body = {"type": problem.type, "title": TITLES.get(problem.status, "Error"),
            "status": problem.status, "detail": problem.detail, "instance": request.url.path,
            "correlation_id": getattr(request.state, "correlation_id", None)}
    if problem.errors:
        body["errors"] = problem.errors
    return AsciiJSONResponse(body, status_code=problem.status, headers=problem.headers,
                             media_type=PROBLEM_JSON)


def as_problem(exc: Exception) -> Problem:
    """Map a refused command or query to its status: 404, 409 or 422."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, NotFoundError):
        return Problem(404, str(exc), "urn:vip:not-found")
    if isinstance(exc, AsOfError):
        return Problem(422, str(exc), "urn:vip:invalid-as-of")
    if isinstance(exc, (TermsError, InstantError)):
        # Malformed input, not a refusal in the aggregate's state: fix the request.
        return Problem(422, str(exc), "urn:vip:invalid")
    if isinstance(exc, DuplicateError):
        return Problem(409, str(exc), "urn:vip:duplicate")
    if isinstance(exc, DomainError):
        # A rule refused the command in the aggregate's current state.
        return Problem(409, str(exc), "urn:vip:refused")
    if isinstance(exc, click.ClickException):
        return Problem(422, exc.format_message(), "urn:vip:invalid")
    return Problem(422, str(exc), "urn:vip:invalid")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(request, exc)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return problem_response(request, as_problem(exc))

    @app.exception_handler(PolicyFileError)
    async def _policy(request: Request, exc: PolicyFileError):
        return problem_response(request, as_problem(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # Never the refused input itself (it may be huge or hostile): where, and what to fix.
        errors = [{"loc": [p if isinstance(p, int) else show(p) for p in e.get("loc", ())],
                   "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem_response(request, Problem(422, f"fix the request: {where}", "urn:vip:invalid",
                                                 errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}; see /openapi.json for the routes"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /openapi.json"
        return problem_response(request, Problem(exc.status_code, detail, headers=exc.headers))
