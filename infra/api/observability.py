"""Observability: Prometheus metrics, health and readiness, JSON log lines with correlation ids."""
from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("vip.api")
correlation: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")

COMMANDS = Counter("vip_api_commands_total", "Commands run through the API, by outcome",
                   ["aggregate", "command", "outcome"])
REQUESTS = Histogram("vip_api_request_seconds", "API request latency", ["method", "route", "status"])


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the request's correlation id."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                 "logger": record.name, "msg": record.getMessage(),
                 "correlation_id": getattr(record, "correlation_id", None) or correlation.get() or None}
        for field in ("method", "path", "status", "duration_ms", "subject"):
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class SystemCollector:
    """Scrape-time metrics: how far the log, the read models, the relay and the consumer have come.

    Read under the lock the host takes for its turns on its system (``state.system``; under
    ``vip serve --api-port`` also its consumer and relay, ``state.serving``). The views'
    position is the furthest any engine of the process has folded (the host's, or one a
    request ran on: each commits the read store it folded); the batch counters add them up.
    """

    def __init__(self, state) -> None:
        self.state = state

    def collect(self):
        with self.state.lock:
            yield from self._collect()

    def _collect(self):
        system = self.state.system
        engines = [system.engine] + [e for e in self.state.engines.engines() if e is not system.engine]
        head = system.app.recorder.max_notification_id() or 0
        position = max(e.runner.position for e in engines)
        yield GaugeMetricFamily("vip_log_head", "Highest notification id in the event log", value=head)
        # The log only grows, so its head is a counter too: rate(vip_events_total) is events/s.
        yield CounterMetricFamily("vip_events", "Events in the log", value=head)
        yield GaugeMetricFamily("vip_views_position", "Log position the read models have folded",
                                value=position)
        yield GaugeMetricFamily("vip_views_lag_events", "Events in the log not yet in the read models",
                                value=max(head - position, 0))
        store = system.store
        # The runner folds every view together; a view of another version (waiting for its
        # rebuild) stands at its own stored position, so it shows its own lag.
        stale = {view.name for view in store.stale()} if hasattr(store, "stale") else set()
        lag = GaugeMetricFamily("vip_view_lag_events", "Events in the log not yet in each read model",
                                labels=["view"])
        for view in system.engine.runner.views:
            folded = store.position_of(view.name) if view.name in stale else position
            lag.add_metric([view.name], max(head - folded, 0))
        yield lag
        stats = {name: sum(e.stats[name] for e in engines) for name in ("batches", "steps", "events")}
        yield CounterMetricFamily("vip_batches", "Batches committed (one transaction each)",
                                  value=stats["batches"])
        yield CounterMetricFamily("vip_batch_steps", "Inputs and timers the committed batches tried; "
                                  "rate(vip_batch_steps_total)/rate(vip_batches_total) is the batch size",
                                  value=stats["steps"])
        yield CounterMetricFamily("vip_batch_events", "Events the committed batches recorded",
                                  value=stats["events"])
        serving = getattr(self.state, "serving", None) or {}
        relay, consumer = serving.get("relay"), serving.get("consumer")
        if relay is not None:
            yield GaugeMetricFamily("vip_relay_lag_events", "Logged events not yet published",
                                    value=max(head - relay.position, 0))
            yield CounterMetricFamily("vip_relay_published", "Events published by this process",
                                      value=relay.published)
        if consumer is not None:
            yield from _consumer_metrics(consumer)


def _consumer_metrics(consumer):
    outcomes = CounterMetricFamily("vip_consumer_messages", "Upstream messages by outcome", labels=["outcome"])
    for outcome, count in consumer.stats.as_dict().items():
        if isinstance(count, int):
            outcomes.add_metric([outcome], count)
    yield outcomes
    dead = CounterMetricFamily("vip_dead_letters", "Dead letters by reason", labels=["reason"])
    for reason, count in consumer.stats.reasons.items():
        dead.add_metric([reason], count)
    yield dead
    lag = GaugeMetricFamily("vip_consumer_lag", "Fetch high-water mark minus position, per partition",
                            labels=["topic", "partition"])
    kafka = consumer.consumer
    for tp in (kafka.assignment() if kafka is not None else ()):
        high = kafka.highwater(tp)
        if high is not None:
            lag.add_metric([tp.topic, str(tp.partition)], max(high - kafka.position(tp), 0))
    yield lag


def install(app: FastAPI) -> None:
    """Correlation-id and access-log middleware, and the /metrics, /healthz, /readyz routes."""
    registry = CollectorRegistry()
    registry.register(SystemCollector(app.state))
    app.state.registry = registry

    @app.middleware("http")
    async def correlate(request: Request, call_next):
        # The guard outside has chosen it (a caller's id only if it is safe to log).
        cid = getattr(request.state, "correlation_id", None) or uuid.uuid4().hex
        request.state.correlation_id = cid
        token = correlation.set(cid)
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            elapsed = time.perf_counter() - start
            route = request.scope.get("route")
            REQUESTS.labels(request.method, getattr(route, "path", "unmatched"), str(status)).observe(elapsed)
            who = getattr(request.state, "principal", None)
            log.info("%s %s %s", request.method, request.url.path, status,
                     extra={"method": request.method, "path": request.url.path, "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "subject": who.subject if who else None})
            correlation.reset(token)
        response.headers["X-Correlation-ID"] = cid
        return response

    router = APIRouter(tags=["operations"])

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest() + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the event store and read models answer",
                responses={503: {"description": "Not ready"}})
    def readyz():
        try:
            with app.state.engines.reader() as system:  # brought to the log's end, or failing
                head = system.app.recorder.max_notification_id() or 0
                position = system.engine.runner.position
        except Exception as exc:  # any failure of the store means not ready
            return JSONResponse({"status": "not ready", "detail": str(exc)}, status_code=503)
        return {"status": "ready", "log_head": head, "views_position": position}

    app.include_router(router)
