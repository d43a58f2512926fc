"""A cheap deep copy of a Member (its ``__deepcopy__``).

Repositories deep-copy cached aggregates on every get; the generic deepcopy walks every
datetime of the orders. Entries hold only immutables, so copying containers is enough.
"""
from __future__ import annotations


def copy_member(member, memo: dict):
    """A copy of ``member`` that shares no mutable container with it."""
    clone = object.__new__(type(member))
    clone.__dict__.update(member.__dict__)
    clone._pending_events = list(member._pending_events)
    clone.entries = [list(e) for e in member.entries]
    clone.active_months = list(member.active_months)
    clone.orders = {k: v.copy() for k, v in member.orders.items()}
    clone.closed_orders = {k: v.copy() for k, v in member.closed_orders.items()}
    clone.profile = dict(member.profile)
    clone.override = dict(member.override) if member.override else None
    index = getattr(member, "_index", None)
    if index is not None:
        clone._index = index.copy()
    return clone
