"""``vip queue``: open complaints in priority order (seed 002 §3.2.2 优先处理)."""
from __future__ import annotations

from infra.cli.common import emit, now_or, print_table, query, store_as_of, system_of, when
from projections import queries
from projections.presentation import time_left


@query("queue")
def queue_cmd(ctx, as_of, as_json):
    """Open complaints in priority order: time to breach, then tier priority, then severity."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    rows = queries.work_queue(store_as_of(system, at), now_or(system, at))
    emit(rows, as_json, lambda rs: print_table(
        [{**r, "time_to_breach": time_left(r["time_to_breach_s"])} for r in rs],
        ["complaint_id", "member_id", "tier", "priority", "severity", "clock", "deadline", "time_to_breach",
         "status", "assignee", "route"], "Work queue (priority order)"))
