"""The store a query answers from: the read store at the log's end, or a replay up to ``as_of``.

Shared by the CLI queries and the HTTP API, so both answer the same for the
same instant. Nothing is fired or written: what the clock decides (at risk,
breached, overdue, review due) is computed by the queries from the stored
deadlines against the query's instant.
"""
from __future__ import annotations

from datetime import datetime

from domain.base import DomainError
from infra.service_layer.replay import replay
from projections.views import VIEWS


class AsOfError(DomainError, ValueError):
    """An as-of instant the log cannot answer for."""


def store_as_of(system, as_of: datetime | None):
    """The read store (brought to the log's end), or a replay of the log up to ``as_of``."""
    if as_of is None:
        return system.store
    if as_of > system.engine.clock():
        raise AsOfError(f"--as-of {as_of.isoformat()} is in the future; the log ends now")
    return replay(system.app, VIEWS, until=as_of)


def now_or(system, as_of: datetime | None) -> datetime:
    """The query's instant: ``as_of``, or the wall clock."""
    return as_of or system.engine.clock()
