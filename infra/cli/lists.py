"""``vip contracts``, ``vip complaints`` and ``vip complaints show ID``: read-only lists.

Like every query they never write, answer ``--as-of`` from a replay of the
log, and judge what depends on the clock (an expired contract, a breached
clock) from the stored instants at the query's instant. The rows come from
the same answers the API gives (``infra.api.answers``).
"""
from __future__ import annotations

import click

from domain.base import NotFoundError
from infra.api import answers
from infra.cli.common import (
    domain_errors,
    emit,
    from_memory_if_damaged,
    now_or,
    print_record,
    print_table,
    query,
    store_as_of,
    system_of,
    when,
)
from infra.service_layer.replay import history
from infra.service_layer.reveal import reveal_rows
from projections import presentation as show
from projections import queries
from projections.common import iso, parse
from projections.complaints import as_at

CONTRACT_STATUSES = ("draft", "effective", "disputed", "expired", "terminated")
COMPLAINT_STATUSES = ("filed", "acknowledged", "assigned", "escalated", "waiting", "reopened", "resolved",
                      "closed")
CLOSED = ("resolved", "closed")


@query("contracts")
@click.option("--status", type=click.Choice(CONTRACT_STATUSES), help="Only contracts in this status.")
@click.option("--kind", type=click.Choice(["cooperation", "member_agreement"]), help="Only this kind.")
def contracts_cmd(ctx, status, kind, as_of, as_json):
    """Contracts: id, kind, status, valid until, outstanding (filters: --status, --kind).

    ``outstanding_fen`` (per currency) is what the open invoices still ask for.
    """
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    now = iso(now_or(system, at))
    rows = []
    for row in answers.contracts(system, at):
        row = {**row, "status": queries.contract_status(row, now), "outstanding_fen": _outstanding(row)}
        if (status is None or row["status"] == status) and (kind is None or row["kind"] == kind):
            rows.append(row)
    emit(rows, as_json, _print_contracts)


def _outstanding(row: dict) -> dict[str, int]:
    owed: dict[str, int] = {}
    for invoice in row["invoices"].values():
        left = invoice["amount_fen"] - invoice["settled_fen"]
        if invoice["status"] != "paid" and left > 0:
            owed[invoice["currency"]] = owed.get(invoice["currency"], 0) + left
    return owed


def _print_contracts(rows: list[dict]) -> None:
    shown = [{**r, "parties": ", ".join(r["parties"]), "invoices": len(r["invoices"]),
              "outstanding": ", ".join(show.money(f, c) for c, f in sorted(r["outstanding_fen"].items())) or "-"}
             for r in rows]
    print_table(shown, ["contract_id", "kind", "status", "parties", "effective_at", "valid_until", "invoices",
                        "outstanding"], "Contracts")


@click.group("complaints", invoke_without_command=True)
@click.option("--status", type=click.Choice(("open",) + COMPLAINT_STATUSES),
              help="Only complaints in this status (open: not resolved or closed).")
@click.option("--tier", help="Only complaints filed under this tier.")
@click.option("--assignee", help="Only complaints assigned to this agent.")
@click.option("--member", "member_id", help="Only this member's complaints.")
@click.option("--as-of", "as_of", help="Answer as of this instant (ISO-8601).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def complaints_grp(ctx, status, tier, assignee, member_id, as_of, as_json):
    """Complaints (filters: --status, --tier, --assignee, --member); `show ID` for one."""
    if ctx.invoked_subcommand is None:
        _list(ctx, status, tier, assignee, member_id, as_of, as_json)


@from_memory_if_damaged
@domain_errors
def _list(ctx, status, tier, assignee, member_id, as_of, as_json):
    """The complaints, newest first, with each one's nearest running deadline."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    now = now_or(system, at)
    rows = answers.complaints(system, at, member_id, None if status == "open" else status)
    rows = [dict(r, next_deadline=_nearest(r, now)) for r in rows
            if (status != "open" or r["status"] not in CLOSED) and tier in (None, r["tier"])
            and assignee in (None, r["assignee"])]
    emit(rows, as_json, lambda rs: print_table(
        [dict(r, time_left=show.time_left(r["next_deadline"][1]) if r["next_deadline"] else "-",
              deadline=r["next_deadline"][0] if r["next_deadline"] else None) for r in rs],
        ["complaint_id", "member_id", "tier", "severity", "status", "assignee", "filed_at", "deadline",
         "time_left", "rating"], "Complaints (newest first)"))


def _nearest(row: dict, now) -> list | None:
    """The nearest deadline of a running clock and the seconds to it (negative: past), or None."""
    running = [c["deadline"] for c in row["clocks"].values()
               if c.get("running_since") and not c.get("stopped_at") and c.get("deadline")]
    if row["status"] in CLOSED or not running:
        return None
    deadline = min(running)
    return [deadline, round((parse(deadline) - now).total_seconds(), 3)]


@complaints_grp.command("show")
@click.argument("complaint_id")
@click.option("--as-of", "as_of", help="Answer as of this instant (ISO-8601).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def show_cmd(ctx, complaint_id, as_of, as_json):
    """One complaint: its clocks and deadlines, timeline, resolution and rating."""
    _show(ctx, complaint_id, as_of, as_json)


@from_memory_if_damaged
@domain_errors
def _show(ctx, complaint_id, as_of, as_json):
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    now = now_or(system, at)
    row = store_as_of(system, at).get("complaints", complaint_id)
    if row is None:
        raise NotFoundError(f"no complaint {complaint_id!r}; check the id (`vip complaints` lists them)")
    row = reveal_rows(system.app, [as_at(row, iso(now))])[0]
    ratio = row.get("at_risk_ratio", system.app.policy.sla.at_risk_ratio)
    clocks = [{"clock": name, "state": queries.clock_state(c, iso(now), ratio), "budget_s": c["budget_s"],
               "used_s": round(c["used_s"], 3), "deadline": c.get("deadline"),
               "left_s": _left(c, now), "stopped_at": c.get("stopped_at")} for name, c in row["clocks"].items()]
    timeline = [e for e in history(system.app, "complaint", complaint_id) if at is None or e["at"] <= at]
    resolved = [e for e in timeline if e["type"] == "ComplaintResolved"]
    answer = {"complaint": {k: v for k, v in row.items() if k != "clocks"}, "clocks": clocks,
              "timeline": timeline, "resolution": resolved[-1]["data"].get("resolution") if resolved else None,
              "rating": row["rating"]}
    emit(answer, as_json, _print_complaint)


def _left(clock: dict, now) -> float | None:
    """Seconds to a running clock's deadline (negative: past it); a paused clock's budget left."""
    if clock.get("stopped_at"):
        return None
    if clock.get("running_since") and clock.get("deadline"):
        return round((parse(clock["deadline"]) - now).total_seconds(), 3)
    return round(max(clock["budget_s"] - clock["used_s"], 0.0), 3)


def _print_complaint(answer: dict) -> None:
    c = answer["complaint"]
    print_record({**c, "resolution": answer["resolution"]},
                 ["complaint_id", "member_id", "tier", "channel", "category", "severity", "status", "assignee",
                  "route", "escalation_level", "filed_at", "first_response_at", "resolved_at", "resolution",
                  "rating", "policy_version"], f"Complaint {c['complaint_id']}")
    print_table([{**k, "time_left": show.time_left(k["left_s"]) if k["left_s"] is not None else "-"}
                 for k in answer["clocks"]],
                ["clock", "state", "budget_s", "used_s", "deadline", "time_left", "stopped_at"], "Clocks")
    print_table([{**e, "details": _details(e["data"])} for e in answer["timeline"]],
                ["at", "type", "actor", "details"], "Timeline")


def _details(data: dict) -> dict:
    # The clocks are shown above; each step's own fields are what it adds to the story.
    return {k: v for k, v in data.items() if k not in ("clocks", "policy_version", "calendar")}
