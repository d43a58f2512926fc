"""Running one command for a request: If-Match, Idempotency-Key, the timeline.

A command holds its aggregate's lock and a writer engine of its own for the
request (:meth:`infra.api.engines.Engines.writer`): a second request on the
same aggregate waits its turn (it then sees the first one's effect, its
If-Match or idempotency record), one on another aggregate does not wait.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Callable

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.base import NotFoundError
from infra.api.commands import aggregate, command_of
from infra.api.idempotency import fingerprint
from infra.api.keys import Principal
from infra.api.problems import Problem
from infra.api.observability import COMMANDS
from infra.service_layer.commands import Command
from infra.service_layer.describe import as_json
from infra.service_layer.handlers import handle


# How far after the server's clock a caller's ``at`` may be (clock skew between machines).
# Further only for admins: a later ``at`` would move the log's clock for everyone.
MAX_AT_SKEW = timedelta(seconds=5)


def check_at(system, who: Principal, at: datetime | None) -> None:
    """Refuse an ``at`` in the future beyond ``MAX_AT_SKEW`` unless the caller is an admin (422)."""
    if at is None or who.role == "admin":
        return
    now = system.engine.clock()
    if at > now + MAX_AT_SKEW:
        raise Problem(422, f"at {at.isoformat()} is after the server's clock ({now.isoformat()}) by more "
                           f"than {MAX_AT_SKEW.total_seconds():g} s: give a time no later than now, or "
                           "leave at out to mean now", "urn:vip:at-in-future")


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """``"5"``, ``W/"5"`` or ``5`` -> 5; anything else is a request to fix."""
    if value is None or value.strip() == "*":
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d+)"?\s*', value)
    if not match:
        raise Problem(400, f"If-Match {value!r} is not a version: send the ETag of the aggregate, "
                           'e.g. If-Match: "5"', "urn:vip:bad-if-match")
    return int(match.group(1))


def _cause_of(events, cause: str) -> bool:
    return any(getattr(e, "meta", {}).get("causation_id") == cause for e in events)


def execute(state, who: Principal, kind: str, name: str, command: type[Command], business_id: str,
            body: BaseModel, describe: Callable[[Any, Any], BaseModel], path: str, if_match: str | None = None,
            idempotency_key: str | None = None, correlation_id: str = "",
            created: bool = False) -> JSONResponse:
    """Run ``command`` (built from the body) for ``who`` through the one handler map, and answer
    with the aggregate's new state, ``describe(aggregate, app)`` (``name``: the route's, for the
    metrics)."""
    store = state.idempotency
    asked = command_of(command, kind, business_id, body)
    at: datetime | None = getattr(body, "at", None)
    expected = parse_if_match(if_match)
    code = 201 if created else 200
    fp = fingerprint("POST", path, body.model_dump_json().encode())
    # Scoped by key, not subject: two keys of one person never answer each other's requests.
    owner = who.key_id
    cause = f"idem:{owner}:{idempotency_key}" if idempotency_key else f"api:{correlation_id}"
    with state.engines.writer(kind, business_id) as system:
        if idempotency_key:
            stored = store.get(owner, idempotency_key)
            if stored is not None and stored.fingerprint != fp:
                raise Problem(422, "this Idempotency-Key was used for a different request; "
                                   "use a new key for a new request", "urn:vip:idempotency-key-reused")
            if stored is not None and stored.state == "done":
                return _response(stored.body, stored.status, stored.etag, replayed=True)
            if stored is not None and stored.in_flight():
                raise _in_progress()
            if stored is not None and (done := _effect_logged(system.app, kind, business_id, cause)):
                # A crash after the command saved but before its response was kept.
                answer = as_json(describe(done, system.app))
                store.finish(owner, idempotency_key, code, answer, etag(done.version))
                return _response(answer, code, etag(done.version), replayed=True)
            if not store.reserve(owner, idempotency_key, fp):
                raise _in_progress()  # another process claimed it between our read and our claim
        try:
            if expected is not None:
                current = aggregate(system.app, kind, business_id).version
                if current != expected:
                    raise Problem(412, f"the {kind} {business_id} is at version {current}, not {expected}: "
                                       "someone changed it; reload it and decide again",
                                  "urn:vip:stale-version", headers={"ETag": etag(current)})
            if at is not None:
                check_at(system, who, at)
                system.engine.check_command_at(at, "at")
            result = handle(system.engine, asked, at, actor=who.subject, causation_id=cause,
                            correlation_id=correlation_id)
            system.engine.flush()
        except BaseException:
            if idempotency_key:
                store.release(owner, idempotency_key)
            COMMANDS.labels(kind, name, "refused").inc()
            raise
        COMMANDS.labels(kind, name, "ok").inc()
        answer = as_json(describe(result, system.app))
        tag = etag(result.version)
        if idempotency_key:
            store.finish(owner, idempotency_key, code, answer, tag)
    return _response(answer, code, tag)


def _in_progress() -> Problem:
    return Problem(409, "a request with this Idempotency-Key is still running; retry in a few seconds "
                        "for its response", "urn:vip:idempotency-key-in-progress", headers={"Retry-After": "5"})


def _effect_logged(app, kind: str, business_id: str, cause: str):
    try:
        found = aggregate(app, kind, business_id)
    except NotFoundError:
        return None
    return found if _cause_of(app.events.get(found.id), cause) else None


def _response(body: dict, status: int, tag: str | None, replayed: bool = False) -> JSONResponse:
    headers = {"ETag": tag} if tag else {}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=status, headers=headers)
