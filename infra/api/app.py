"""The API app factory: one System, the engines requests run on, keys and idempotency, routes, console."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from infra.api import observability, problems
from infra.api.engines import Engines
from infra.api.guard import Guard, Throttle
from infra.api.idempotency import IdempotencyStore
from infra.api.keys import ApiKeyStore
from infra.api.routes_audit import router as audit_routes
from infra.api.routes_benefits import router as benefit_routes
from infra.api.routes_complaints import router as complaint_routes
from infra.api.routes_console import router as console_routes
from infra.api.routes_contracts import router as contract_routes
from infra.api.routes_keys import router as key_routes
from infra.api.routes_members import router as member_routes
from infra.api.routes_registry import router as registry_routes
from infra.api.routes_verify import router as verify_routes
from infra.bootstrap import System, open_api_keys, open_idempotency

STATIC = Path(__file__).parent / "static"


def key_store(system: System) -> ApiKeyStore:
    """The API keys of this system (its data dir's file, or the shared PostgreSQL table)."""
    return open_api_keys(system.settings)


def create_app(system: System, keys: ApiKeyStore | None = None,
               idempotency: IdempotencyStore | None = None) -> FastAPI:
    """An ASGI app over ``system``'s store; the caller owns ``system`` and closes it.

    Requests run on engines of their own over the same store (:mod:`infra.api.engines`),
    closed when the app shuts down; ``system``'s engine stays with the caller (a serve
    loop, a scheduler), which takes ``app.state.lock`` for its turns on it.
    Tests pass a system built with a controllable clock: every engine shares that clock.
    """
    engines = Engines(system)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        engines.close()

    # No Swagger UI or ReDoc: both load scripts from a CDN, which the CSP forbids; the
    # OpenAPI document stays at /openapi.json for any viewer the operator trusts.
    app = FastAPI(title="VIP backend", version="1.0.0", docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Members, contracts and complaints of a VIP program: every command and "
                              "query of the `vip` CLI, with roles. Errors are RFC 9457 problem details.")
    app.state.system = system
    app.state.keys = keys or key_store(system)
    app.state.idempotency = idempotency or open_idempotency(system.settings)
    app.state.engines = engines
    # The host's turns on ``system`` (single-threaded: its engine, read store, timer index).
    app.state.lock = engines.lock
    app.state.throttle = Throttle()
    problems.install(app)
    observability.install(app)
    # Outermost: authentication and the body limit before any route reads the body.
    app.add_middleware(Guard, throttle=app.state.throttle)
    for router in (member_routes, complaint_routes, contract_routes, audit_routes, key_routes,
                   benefit_routes, console_routes, verify_routes):
        app.include_router(router, prefix="/api")
    app.include_router(registry_routes)  # /registry: the bus schemas, read-only, for registry clients
    app.mount("/console", StaticFiles(directory=STATIC, html=True), name="console")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/console/")

    return app
