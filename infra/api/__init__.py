"""The operator surface: an HTTP API with roles, a web console, metrics.

Modules by concern: ``app`` (factory), ``engines`` (what requests run on:
writer and reader engines, per-aggregate locks, as-of replays of their own;
no process-wide lock), ``keys`` (hashed API keys),
``auth`` (roles and permissions), ``idempotency`` (Idempotency-Key store),
``problems`` (RFC 9457 errors), ``commands`` (the one adapter onto the
application services), ``execute`` (If-Match, idempotency, the timeline),
``routes_*`` (one module per aggregate, queries, keys), ``observability`` (metrics,
health, logs), ``static/`` (console); ``vip api`` and its server thread are in ``hosts/``.
"""
