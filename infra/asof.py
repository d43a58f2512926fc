"""The store a query answers from: the live read store, or a replay of the log up to ``as_of``.

Shared by the CLI queries and the HTTP API, so both answer the same for the same instant.
"""
from __future__ import annotations

from datetime import datetime

from domain.base import DomainError
from infra.bootstrap import VIEWS
from infra.replay import replay


class AsOfError(DomainError, ValueError):
    """An as-of instant the log cannot answer for."""


def store_as_of(system, as_of: datetime | None):
    """The live read store brought to now, or a replay of the log up to ``as_of``.

    "Now" means every scheduled item due by the wall clock has run (reviews,
    SLA breaches, due dates), exactly as ``vip tick`` or ``vip serve`` would.
    """
    now = system.engine.clock()
    if as_of is None:
        system.engine.tick()
        return system.store
    if as_of > now:
        raise AsOfError(f"--as-of {as_of.isoformat()} is in the future; the log ends now")
    system.engine.tick()
    return replay(system.app, VIEWS, until=as_of)


def now_or(system, as_of: datetime | None) -> datetime:
    return as_of or system.engine.clock()
