"""``GET /api/audit/verify``: the auditor's `vip verify` over HTTP.

It walks the log against its hash chains and signed checkpoints (infra/audit)
and names the first changed, missing, reordered or inserted event. It reads
only, off the engine's lock (it needs no view); one verification runs at a
time per process, so a caller cannot pile up full-log scans.
"""
from __future__ import annotations

import threading

from fastapi import APIRouter, Query, Request

from infra.api.auth import route
from infra.api.problems import Problem
from infra.audit.checkpoints import AuditError, key_path, load_key
from infra.audit.sql import AuditSql
from infra.audit.verify import verify

router = APIRouter()
_RUNNING = threading.Lock()


@route(router, "GET", "/audit/verify", "audit:read", 409, 429, tags=["audit"],
       summary="Verify the stored log: the first changed, missing, reordered or inserted event, if any")
def verify_log(request: Request, start: int = Query(1, alias="from", ge=1, le=2**62,
                                                    description="Start at this notification id")) -> dict:
    system = request.app.state.system
    try:
        sql = AuditSql(system.app.recorder)
    except TypeError:
        raise Problem(409, "the in-memory event store keeps nothing to verify (use SQLite or PostgreSQL)",
                      "urn:vip:conflict") from None
    if not _RUNNING.acquire(blocking=False):
        raise Problem(429, "a verification of the log is running: ask again when it has finished",
                      "urn:vip:busy", headers={"Retry-After": "30"})
    try:
        key = None
        if sql.has_tables() and sql.checkpoints():
            try:
                key = load_key(key_path(system.settings.data_dir), create=False)
            except AuditError as exc:
                raise Problem(409, f"{exc}; without it the checkpoints cannot be checked",
                              "urn:vip:conflict") from None
        report = verify(sql, key, start)
    finally:
        _RUNNING.release()
    return report.as_dict()
