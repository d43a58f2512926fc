"""What every ``vip`` command shares: time arguments, output, the lazily built system, error mapping."""
from __future__ import annotations

import getpass
import json
import logging
import os
import re
import sqlite3
from datetime import datetime
from functools import lru_cache, wraps
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from domain.base import DomainError, InstantError, parse_instant
from domain.limits import SUBJECT_PATTERN, subject_problem
from infra.bootstrap import build
from infra.policy_file import PolicyFileError, load_policy
from infra.service_layer.engine import ConflictError
from infra.service_layer.asof import now_or, store_as_of  # noqa: F401  (the queries' instants)
from infra.settings import Settings
from infra.stores.leases import SERVE_LOCK
from infra.stores.pii import KeyStoreError
from infra.stores.readstore import damage
from projections import presentation as show
from projections import queries

log = logging.getLogger("vip.cli")


def display_zone() -> ZoneInfo:
    """The one zone tables show instants in, and bare --at / --as-of values are read in:
    VIP_DISPLAY_ZONE, else the policy's zone (Asia/Shanghai by default)."""
    name = os.environ.get("VIP_DISPLAY_ZONE", "").strip()
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.ClickException(f"VIP_DISPLAY_ZONE={name!r} is not a time zone: use an IANA "
                                       "name such as Asia/Shanghai or UTC") from None
    return ZoneInfo(_policy_zone(Settings.from_env().policy_file))


@lru_cache(maxsize=4)
def _policy_zone(policy_file: str | None) -> str:
    try:
        return load_policy(policy_file).zone
    except (PolicyFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def when(value: str | None) -> datetime | None:
    """Parse an --as-of / --at value; a bare date or naive time is read in the display zone."""
    if not value:
        return None
    try:
        return parse_instant(value, default_zone=display_zone())
    except InstantError as exc:
        raise click.BadParameter(str(exc)) from None


def actor_of(given: str | None) -> str:
    """Who a change is recorded as: ``--actor``, else VIP_OPERATOR, else ``operator:<login>``.

    A name given is checked as API key subjects are (``domain.limits.subject_problem``):
    the system's own actors (system, scheduler, upstream:..., ...) are refused, and
    ``operator:`` names only come from the login, so a typed name cannot pass for one.
    """
    name, source = (given, "--actor") if given else (os.environ.get("VIP_OPERATOR", "").strip(), "VIP_OPERATOR")
    if name:
        problem = subject_problem(name)
        if problem:
            raise click.ClickException(f"{source} {name!r} cannot act: {problem}")
        return name
    try:
        login = getpass.getuser()
    except (OSError, KeyError, ImportError):
        login = ""
    if not re.fullmatch(SUBJECT_PATTERN, login):
        raise click.ClickException(f"cannot tell who acts (login name {login!r} is not a usable actor): "
                                   "give --actor NAME or set VIP_OPERATOR")
    return f"operator:{login}"


def emit(data: Any, as_json: bool, table=None) -> None:
    """``--json``: the machine values as they are; otherwise the table (by the presentation rule)."""
    if as_json or table is None:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        table(data)


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    """A plain aligned table, every cell by the presentation rule (``projections.presentation``);
    a table with instants names their zone in its title. Long values are cut."""
    zone = display_zone()
    instants = any(show.has_instant(r.get(c)) for r in rows for c in columns)
    shown = [show.row(r, columns, zone) for r in rows]
    _grid([show.header(c) for c in columns], [list(r.values()) for r in shown], title, instants, zone)


def print_record(data: dict, keys: list[str], title: str | None = None) -> None:
    """One answer as ``field  value`` lines, by the same rule as :func:`print_table`."""
    zone = display_zone()
    currency = data.get("currency")
    cells = [[show.header(k), show.value(k, data.get(k), zone, currency)] for k in keys]
    instants = any(show.has_instant(data.get(k)) for k in keys)
    _grid(["field", "value"], cells, title, instants, zone, width=100)


def _grid(headers: list[str], cells: list[list[str]], title: str | None, instants: bool, zone,
          width: int = 60) -> None:
    if instants:
        title = f"{title} ({show.zone_note(zone)})" if title else f"({show.zone_note(zone)})"
    if title:
        click.echo(click.style(title, bold=True))
    if not cells:
        click.echo("  (none)")
        return
    cells = [[v if len(v) <= width else v[: width - 3] + "..." for v in row] for row in cells]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def missing_store(settings: Settings) -> str | None:
    """Why a query has no event store to read (a SQLite data dir without one), or None.

    A data dir a ``vip serve`` was started in is the one in use even before the serve
    has made its event store (it takes its lease first): a query there is answered.
    """
    if settings.event_store != "sqlite":
        return None
    path = settings.data_dir / "events.db"
    if path.exists() or (settings.data_dir / SERVE_LOCK).exists():
        return None
    where = "does not exist" if not settings.data_dir.exists() else "holds no event store"
    return (f"no event store at {path}: the data dir {settings.data_dir} (VIP_DATA_DIR) {where}; "
            "point VIP_DATA_DIR at the data dir in use, or create one with `vip ingest` "
            "(or `vip demo` for a sample year)")


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
            settings = Settings.from_env()
            problem = missing_store(settings) if self.read_only and settings.query_views == "embedded" else None
            if problem:
                raise click.ClickException(problem)
            self._system = build(settings, read_only=self.read_only)
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
    """The system of this invocation; a query asks for it ``read_only``.

    Built on first use (so ``--help`` never touches a database) and closed with the command.
    """
    root = ctx.find_root()
    context = root.find_object(Context)
    if context is None:
        context = root.obj = Context()
        root.call_on_close(context.close)
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
            context = ctx.find_root().find_object(Context)
            if context is None or not context.answer_from_memory(exc):
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
