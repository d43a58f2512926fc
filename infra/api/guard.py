"""The API's outer guard, an ASGI middleware around everything else.

In this order, on the request's headers alone (before any route reads the body):

1. a correlation id (the caller's ``X-Correlation-ID`` if it is safe, else a new one);
2. failed sign-ins throttled per client address (429 with ``Retry-After``);
3. ``/api/*`` authenticated by bearer key (401), so an anonymous caller never
   makes the server read a body;
4. the body bounded (``MAX_BODY_BYTES``; 413), by ``Content-Length`` and while
   it streams in;

and on the way out, security headers on every response and ``Cache-Control:
no-store`` on every ``/api`` answer. An exception no handler turned into a
problem is logged with its traceback and answered as a problem document
carrying the correlation id: never a bare 500 text, never a traceback.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from typing import Callable

from infra.api.problems import PROBLEM_JSON, TITLES

log = logging.getLogger("vip.api.guard")

MAX_BODY_BYTES = 1024 * 1024
FAILED_SIGNINS = 10          # failures per client address ...
FAILED_WINDOW_S = 60.0       # ... within this many seconds, then 429 until the oldest ages out
TRACKED_CLIENTS = 10_000     # addresses remembered at most (an address spray cannot grow memory)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_SAFE_CID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class Throttle:
    """Failed sign-ins per client address in a sliding window."""

    def __init__(self, limit: int = FAILED_SIGNINS, window_s: float = FAILED_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = TRACKED_CLIENTS) -> None:
        self.limit, self.window_s, self.clock, self.max_clients = limit, window_s, clock, max_clients
        self.failures: dict[str, deque] = {}
        self.lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque:
        seen = self.failures.setdefault(client, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        return seen

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        with self.lock:
            now = self.clock()
            seen = self._recent(client, now)
            if len(seen) < self.limit:
                if not seen:
                    self.failures.pop(client, None)
                return 0
            return max(1, int(seen[0] + self.window_s - now + 0.999))

    def failed(self, client: str) -> None:
        with self.lock:
            now = self.clock()
            seen = self.failures.pop(client, None) or deque()
            seen.append(now)
            self.failures[client] = seen  # the dict keeps clients in order of their latest failure
            while len(self.failures) > self.max_clients:
                # the client failing least recently goes first: its window is the oldest
                del self.failures[next(iter(self.failures))]


class BodyTooLarge(Exception):
    """The body grew past the limit while it streamed in."""


class Guard:
    """See the module docstring. ``app.state.keys`` verifies tokens; ``throttle`` is shared state."""

    def __init__(self, app, max_body: int = MAX_BODY_BYTES, throttle: Throttle | None = None) -> None:
        self.app, self.max_body = app, max_body
        self.throttle = throttle or Throttle()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-correlation-id", "")
        cid = given if _SAFE_CID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["correlation_id"] = cid
        api = scope["path"].startswith("/api/") or scope["path"] == "/api"
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = list(SECURITY_HEADERS) + [(b"x-correlation-id", cid.encode())]
                if api:
                    extra.append((b"cache-control", b"no-store"))
                names = {k for k, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        async def answer(status: int, detail: str, type_: str, extra: dict | None = None) -> None:
            body = {"type": type_, "title": TITLES.get(status, "Error"), "status": status,
                    "detail": detail, "instance": scope["path"], "correlation_id": cid}
            raw = json.dumps(body, ensure_ascii=True).encode()
            hdrs = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(raw)).encode())]
            hdrs += [(k.lower().encode(), str(v).encode()) for k, v in (extra or {}).items()]
            await send_with_headers({"type": "http.response.start", "status": status, "headers": hdrs})
            await send_with_headers({"type": "http.response.body", "body": raw})

        if api:
            refused = self._authenticate(scope, headers, state)
            if refused:
                return await answer(*refused)
        length = headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > self.max_body):
            return await answer(413, f"send a body of at most {self.max_body} bytes", "urn:vip:too-large")
        received = 0

        async def bounded_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                await answer(413, f"send a body of at most {self.max_body} bytes", "urn:vip:too-large")
        except Exception:
            log.exception("unexpected error on %s %s (correlation id %s)", scope.get("method"),
                          scope["path"], cid, extra={"correlation_id": cid})
            if not started:
                await answer(500, f"the server failed on this request; nothing was recorded unless a "
                                  f"later read shows it. Report correlation id {cid}", "urn:vip:internal")

    def _authenticate(self, scope, headers: dict, state: dict) -> tuple | None:
        """None when the bearer key is live (the principal goes into the request state)."""
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.retry_after(client)
        if wait:
            log.warning("429 %s %s: %s failed sign-ins from %s", scope.get("method"), scope["path"],
                        self.throttle.limit, client, extra={"correlation_id": state["correlation_id"]})
            return (429, f"too many failed sign-ins from this address; retry in {wait} s with a valid key",
                    "urn:vip:too-many-failed-signins", {"Retry-After": wait})
        scheme, _, token = headers.get("authorization", "").partition(" ")
        found = None
        if scheme.lower() == "bearer" and token.strip():
            found = scope["app"].state.keys.verify(token.strip())
        if found is None:
            self.throttle.failed(client)
            log.warning("401 %s %s: %s", scope.get("method"), scope["path"],
                        "no bearer token" if not token else "unknown or revoked key",
                        extra={"correlation_id": state["correlation_id"]})
            return (401, "send a valid API key: `Authorization: Bearer <token>` "
                         "(make one with `vip api-key create --role ROLE --subject NAME`)",
                    "urn:vip:unauthorized", {"WWW-Authenticate": "Bearer"})
        state["principal"] = found
        return None
