"""The ``vip`` command: queries, ingest, replay, demo, and the operations in ``cli_ops``.

Every query prints a table, or JSON with ``--json``. ``--as-of T`` answers
from a replay of the log up to T, so it equals ``vip replay --as-of T``.
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import wraps
from typing import Any

import click

from domain.base import DomainError
from infra.asof import now_or, store_as_of  # noqa: F401  (shared with the HTTP API)
from infra.bootstrap import VIEWS, build
from infra.logs import setup_logging
from infra.policy_file import PolicyFileError
from infra.settings import Settings
from projections import queries


def when(value: str | None) -> datetime | None:
    """Parse an --as-of / --at value; a bare date or naive time is read in the policy zone."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time, e.g. 2025-06-30T23:59:59+08:00")
    if at.tzinfo is None:
        from zoneinfo import ZoneInfo
        at = at.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return at


def emit(data: Any, as_json: bool, table=None) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    elif table is not None:
        table(data)
    else:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    """A plain aligned table; long values are cut so the table stays readable."""
    if title:
        click.echo(click.style(title, bold=True))
    if not rows:
        click.echo("  (none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:,.1f}"
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fen(amount: int) -> str:
    return f"{amount / 100:,.2f}"


class Context:
    """Builds the system lazily, so ``--help`` never touches a database."""

    def __init__(self) -> None:
        self._system = None

    @property
    def system(self):
        if self._system is None:
            self._system = build(Settings.from_env())
        return self._system

    def close(self) -> None:
        if self._system is not None:
            self._system.close()
            self._system = None


def domain_errors(func):
    """Refused commands print what is wrong and exit 1, with no traceback."""
    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (DomainError, PolicyFileError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Event-sourced VIP backend: members, contracts, complaints and their read models.

    Settings come from the environment: VIP_DATA_DIR (default ./.vip),
    VIP_EVENT_STORE (sqlite | memory | postgresql://...), VIP_POLICY_FILE.
    """
    setup_logging(verbose)
    ctx.obj = Context()
    ctx.call_on_close(ctx.obj.close)


def system_of(ctx: click.Context):
    return ctx.find_object(Context).system


def query(name: str, as_of: bool = True):
    """A read-only command: ``--json`` always, ``--as-of`` unless told otherwise."""
    def wrap(func):
        func = click.pass_context(domain_errors(func))
        func = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)
        if as_of:
            func = click.option("--as-of", "as_of", help="Answer as of this instant (ISO-8601).")(func)
        return main.command(name)(func)
    return wrap


# -- queries -----------------------------------------------------------------------

@query("tier")
@click.argument("member_id")
def tier_cmd(ctx, member_id, as_of, as_json):
    """Current tier of one member: tier, since, window spend and points, VIP status."""
    system = system_of(ctx)
    at = when(as_of)
    row = store_as_of(system, at).get("current_tier", member_id)
    if row is None:
        raise click.ClickException(f"no member {member_id!r} in the read model")
    answer = queries.tier_row(row, now_or(system, at), system.app.policy)
    emit(answer, as_json, lambda r: print_table([r], list(r)))


@query("tiers")
def tiers_cmd(ctx, as_of, as_json):
    """Every member's current tier."""
    system = system_of(ctx)
    at = when(as_of)
    rows = queries.tiers(store_as_of(system, at), now_or(system, at), system.app.policy)
    emit(rows, as_json, lambda rs: print_table(rs, ["member_id", "tier", "effective_tier", "since",
                                                   "vip_status", "window_spend_fen", "window_points",
                                                   "active_months", "policy_version"]))


@query("breaches")
def breaches_cmd(ctx, as_of, as_json):
    """Open complaints whose SLA clock is at risk or breached."""
    system = system_of(ctx)
    at = when(as_of)
    rows = queries.pending_breaches(store_as_of(system, at), now_or(system, at), system.app.policy)
    emit(rows, as_json, lambda rs: print_table(rs, ["complaint_id", "member_id", "tier", "clock",
                                                   "state", "deadline", "left_s", "overdue_s", "assignee"]))


@query("ledger")
@click.option("--contract", help="Only postings of this contract.")
def ledger_cmd(ctx, contract, as_of, as_json):
    """Revenue ledger: balances per account, contract, party and month; trial balance."""
    system = system_of(ctx)
    at = when(as_of)
    answer = queries.ledger(store_as_of(system, at), at, system.app.policy, contract)
    emit(answer, as_json, _print_ledger)


def _print_ledger(answer: dict) -> None:
    for cur, accounts in answer["accounts"].items():
        print_table([{"account": a, "balance": fen(b), "currency": cur} for a, b in accounts.items()],
                    ["account", "balance", "currency"], f"Balances ({cur}, debit positive)")
    print_table([{"currency": c, "debits": fen(t["debits"]), "credits": fen(t["credits"]),
                  "balanced": t["balanced"]} for c, t in answer["trial_balance"].items()],
                ["currency", "debits", "credits", "balanced"], "Trial balance")


@query("kpis")
def kpis_cmd(ctx, as_of, as_json):
    """Complaint KPIs per tier and month: response/resolution percentiles, satisfaction."""
    system = system_of(ctx)
    rows = queries.complaint_kpis(store_as_of(system, when(as_of)), system.app.policy)
    emit(rows, as_json, lambda rs: print_table(rs, list(rs[0]) if rs else []))


@query("overdue")
def overdue_cmd(ctx, as_of, as_json):
    """Contract milestones and invoices past due."""
    system = system_of(ctx)
    at = when(as_of)
    answer = queries.overdue(store_as_of(system, at), now_or(system, at))

    def table(a):
        print_table(a["milestones"], ["contract_id", "milestone", "title", "due_at"], "Overdue milestones")
        print_table(a["invoices"], ["contract_id", "invoice", "payer", "due_at", "outstanding_fen"],
                    "Overdue invoices")
    emit(answer, as_json, table)


@query("tier-history", as_of=False)
@click.argument("member_id")
def tier_history_cmd(ctx, member_id, as_json):
    """Every tier change of a member, with the policy version and reason."""
    system = system_of(ctx)
    rows = queries.tier_history(store_as_of(system, None), member_id)
    emit(rows, as_json, lambda rs: print_table(rs, ["at", "event", "from", "to", "reason", "actor",
                                                   "policy_version", "standing"]))


@query("history", as_of=False)
@click.argument("kind", type=click.Choice(["member", "contract", "complaint"]))
@click.argument("business_id")
def history_cmd(ctx, kind, business_id, as_json):
    """Every event of one aggregate: time, type, actor, policy version, data."""
    from infra.replay import history
    rows = history(system_of(ctx).app, kind, business_id)
    emit(rows, as_json, lambda rs: print_table(rs, ["version", "at", "type", "actor",
                                                   "policy_version", "data"]))


@main.command("replay")
@click.option("--as-of", "as_of", help="Rebuild as of this past instant (in memory) and summarise.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def replay_cmd(ctx, as_of, as_json, no_progress):
    """Rebuild every read model from the log, to now or to a past instant."""
    from infra.replay import rebuild, replay
    system = system_of(ctx)
    at = when(as_of)
    if at is None:
        count = rebuild(system, progress=not no_progress)
        store, at_ = system.store, system.engine.clock()
    else:
        store = replay(system.app, VIEWS, until=at, progress=not no_progress)
        count, at_ = store.position, at
    summary = summarise(store, at_, system.app.policy)
    summary["events_replayed"] = count
    emit(summary, as_json, print_summary)


def summarise(store, at: datetime, policy) -> dict:
    """The read models' headline numbers (what `vip demo` and `vip replay` print)."""
    tier_rows = queries.tiers(store, at, policy)
    ledger = queries.ledger(store, at, policy)
    return {"as_of": at.isoformat(), "members": len(tier_rows),
            "tier_distribution": queries.tier_distribution(tier_rows),
            "tiers": tier_rows,
            "pending_breaches": queries.pending_breaches(store, at, policy),
            "trial_balance": ledger["trial_balance"], "accounts": ledger["accounts"],
            "by_party": ledger["by_party"],
            "kpis": queries.complaint_kpis(store, policy), "overdue": queries.overdue(store, at)}


def print_summary(s: dict) -> None:
    click.echo(f"As of {s['as_of']}: {s['members']} members"
               + (f", {s['events_replayed']} events replayed" if "events_replayed" in s else ""))
    print_table([{"tier": t, **v} for t, v in s["tier_distribution"].items()],
                ["tier", "members", "active_vip"], "Tier distribution")
    breaches = s["pending_breaches"]
    states = {st: sum(1 for b in breaches if b["state"] == st) for st in ("at_risk", "breached")}
    click.echo(f"Pending SLA: {states['at_risk']} at risk, {states['breached']} breached")
    print_table(breaches[:10], ["complaint_id", "tier", "clock", "state", "deadline", "overdue_s", "left_s"],
                "Most overdue")
    print_table([{"currency": c, "debits": fen(t["debits"]), "credits": fen(t["credits"]),
                  "balanced": t["balanced"]} for c, t in s["trial_balance"].items()],
                ["currency", "debits", "credits", "balanced"], "Trial balance")
    revenue = [{"account": a, "balance": fen(-b)} for cur in s["accounts"].values()
               for a, b in cur.items() if a.startswith(("revenue:", "partner_payable:", "rounding"))]
    print_table(revenue, ["account", "balance"], "Revenue and partner shares (credit balances)")
    parties = [{"party": p, **{k: fen(v) for k, v in accounts.items()}}
               for p, accounts in s["by_party"].items() if not p.startswith("M")]
    columns = sorted({k for row in parties for k in row if k != "party"})
    print_table(parties, ["party", *columns], "By party (contract parties; members' receivables omitted)")
    print_table(s["kpis"][-10:], ["tier", "month", "filed", "breached", "first_response_p50_s",
                                  "first_response_p90_s", "resolution_p50_s", "resolution_p90_s",
                                  "satisfaction_avg"], "Complaint KPIs (latest)")
    click.echo(f"Overdue: {len(s['overdue']['milestones'])} milestones, "
               f"{len(s['overdue']['invoices'])} invoices")


@main.command("ingest")
@click.argument("source", type=click.Choice(["orders", "crm"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejects", type=click.Path(dir_okay=False), help="Where bad lines go (default FILE.rejects).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def ingest_cmd(ctx, source, path, rejects, as_json, no_progress):
    """Apply upstream events from a JSON Lines file (see README for the fields)."""
    from infra.ingest import ingest_file
    report = ingest_file(system_of(ctx).engine, source, path, rejects, progress=not no_progress)
    emit(report.as_dict(), as_json, _print_ingest)


@main.command("ingest-all")
@click.option("--orders", "orders", type=click.Path(exists=True, dir_okay=False), multiple=True)
@click.option("--crm", "crm", type=click.Path(exists=True, dir_okay=False), multiple=True)
@click.option("--rejects", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def ingest_all_cmd(ctx, orders, crm, rejects, as_json, no_progress):
    """Apply order and CRM files merged into one occurred-at order (historical loads)."""
    from infra.ingest import ingest_files
    files = [("orders", p) for p in orders] + [("crm", p) for p in crm]
    if not files:
        raise click.UsageError("give at least one --orders or --crm file")
    report = ingest_files(system_of(ctx).engine, files, rejects, progress=not no_progress)
    emit(report.as_dict(), as_json, _print_ingest)


def _print_ingest(d: dict) -> None:
    click.echo(f"{d['lines']} lines: {d['applied']} applied, {d['duplicates']} duplicates, "
               f"{d['rejected']} rejected" + (f" (see {d['rejects_file']})" if d["rejects_file"] else ""))
    for r in d["rejects"][:10]:
        click.echo(f"  line {r['line']}: {r['reason']}")


@main.command("tick")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tick_cmd(ctx, as_json):
    """Fire every scheduled item the wall clock says is due (reviews, SLA, due dates)."""
    fired = system_of(ctx).engine.tick()
    emit({"fired": fired}, as_json, lambda d: click.echo(f"{d['fired']} scheduled items fired"))


@main.command("demo")
@click.option("--members", default=2000, show_default=True, help="How many members to simulate.")
@click.option("--seed", default=7, show_default=True, help="Random seed: same seed, same year.")
@click.option("--year", default=2025, show_default=True)
@click.option("--reset", is_flag=True, help="Replace an earlier demo's data in VIP_DATA_DIR.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def demo_cmd(ctx, members, seed, year, reset, as_json, no_progress):
    """Simulate a realistic year through the real command path and print the read models.

    Runs in VIP_DATA_DIR, which must be empty or hold an earlier demo (--reset).
    """
    from infra.demo import prepare_data_dir, run_demo
    prepare_data_dir(Settings.from_env(), reset)
    system = system_of(ctx)
    if system.app.recorder.max_notification_id():
        raise click.ClickException("the event store already holds events; point VIP_EVENT_STORE or "
                                   "VIP_DATA_DIR at an empty store for the demo")
    end = run_demo(system, members=members, seed=seed, year=year, progress=not no_progress)
    (system.settings.data_dir / "DEMO").write_text(f"members={members} seed={seed} year={year}\n")
    system.engine.flush()
    emit(summarise(system.store, end, system.app.policy), as_json, print_summary)


from infra import cli_ops  # noqa: E402  (registers the operation commands on `main`)

cli_ops.register(main)

from infra import cli_bus  # noqa: E402  (broker, topics, serve, produce)

cli_bus.register(main)
cli_bus.register_streams(main)

from infra.api import cli as api_cli  # noqa: E402  (vip api, vip api-key)

api_cli.register(main)
