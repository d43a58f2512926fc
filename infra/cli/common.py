"""What every ``vip`` command shares: time arguments, output, the lazily built system, error mapping."""
from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

import click

from domain.base import DomainError, InstantError, parse_instant
from infra.bootstrap import build
from infra.policy_file import PolicyFileError
from infra.service_layer.engine import ConflictError
from infra.service_layer.asof import now_or, store_as_of  # noqa: F401  (the queries' instants)
from infra.settings import Settings
from infra.stores.pii import KeyStoreError
from infra.stores.readstore import damage
from projections import queries

log = logging.getLogger("vip.cli")


def when(value: str | None) -> datetime | None:
    """Parse an --as-of / --at value; a bare date or naive time is read in the policy zone."""
    if not value:
        return None
    try:
        return parse_instant(value, default_zone=ZoneInfo("Asia/Shanghai"))
    except InstantError as exc:
        raise click.BadParameter(str(exc)) from None


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
    """Builds the system lazily, so ``--help`` never touches a database.

    Queries build it read-only (nothing is written, no write lock is taken);
    everything else builds it for writing.
    """

    def __init__(self) -> None:
        self._system = None
        self.read_only = False

    @property
    def system(self):
        if self._system is None:
            self._system = build(Settings.from_env(), read_only=self.read_only)
        return self._system

    def close(self) -> None:
        if self._system is not None:
            self._system.close()
            self._system = None

    def answer_from_memory(self, exc: sqlite3.DatabaseError) -> bool:
        """After a query's read failed: if the read store file is damaged (a corrupt page where
        the open did not look), the query is answered from a replay in memory, after one
        warning, and True; else False (the error is another's). A query writes nothing, so
        the file stays as it is for ``vip replay`` to set aside."""
        system = self._system
        path = getattr(system.store, "path", None) if system is not None and system.read_only else None
        problem = damage(path) if path else None
        if not problem:
            return False
        log.warning("read store %s cannot be read (%s; %s): answering from a replay in memory; "
                    "`vip replay` sets it aside and rebuilds it", path, exc, problem)
        self.close()
        self._system = build(Settings.from_env(), read_only=True, memory_views=True)
        return True


def domain_errors(func):
    """Refused commands print what is wrong and exit 1, with no traceback."""
    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (DomainError, PolicyFileError, ValueError, KeyStoreError, ConflictError) as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


def system_of(ctx: click.Context, read_only: bool = False):
    """The system of this invocation; a query asks for it ``read_only``."""
    context = ctx.find_object(Context)
    if context._system is None:
        context.read_only = read_only
    return context.system


def from_memory_if_damaged(func):
    """A query whose read store turns out damaged is asked again, answered from a replay in memory."""
    @wraps(func)
    def wrapper(ctx, *args, **kwargs):
        try:
            return func(ctx, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not ctx.find_object(Context).answer_from_memory(exc):
                raise
            return func(ctx, *args, **kwargs)
    return wrapper


def query(name: str, as_of: bool = True):
    """A read-only command: ``--json`` always, ``--as-of`` unless told otherwise."""
    def wrap(func):
        func = click.pass_context(from_memory_if_damaged(domain_errors(func)))
        func = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)
        if as_of:
            func = click.option("--as-of", "as_of", help="Answer as of this instant (ISO-8601).")(func)
        return click.command(name)(func)
    return wrap


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
            "kpis": queries.complaint_kpis(store, policy, at), "overdue": queries.overdue(store, at)}


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

