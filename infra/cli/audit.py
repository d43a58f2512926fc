"""``vip verify`` and ``vip checkpoint``: a log auditors can verify (issue 20).

``vip tick`` (infra/cli/ops.py) and ``vip serve`` also sign the checkpoints
that fell due (every ``VIP_CHECKPOINT_EVERY`` notification ids, default
10,000) after their work, through ``infra.audit.schedule.checkpoint_due``.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timezone

import click

from infra.audit.checkpoints import AuditError, checkpoint_every, key_path, load_key, make_checkpoints
from infra.audit.sql import AuditSql
from infra.audit.verify import adopt, verify
from infra.bootstrap import open_app
from infra.cli.common import display_zone, emit
from infra.progress import bar
from projections import presentation as show
from infra.settings import Settings

log = logging.getLogger("vip.audit")


@contextmanager
def audited(settings: Settings, read_only: bool):
    """The audit queries on the configured event store (SQLite or PostgreSQL)."""
    if settings.event_store in ("memory", "popo"):
        raise click.ClickException("the in-memory event store keeps nothing to verify: set VIP_EVENT_STORE "
                                   "to sqlite or a postgresql:// URL")
    if settings.event_store == "sqlite" and not (settings.data_dir / "events.db").exists():
        raise click.ClickException(f"no event store at {settings.data_dir / 'events.db'}: check VIP_DATA_DIR")
    app, keys = open_app(settings, read_only=read_only)
    try:
        yield AuditSql(app.recorder)
    finally:
        keys.close()
        app.close()


@click.command("checkpoint")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def checkpoint_cmd(as_json):
    """Sign checkpoints of the log up to its end now (for `vip verify`).

    Ranges of VIP_CHECKPOINT_EVERY ids, the last one up to the end. The key is
    VIP_AUDIT_KEY_FILE or <data dir>/audit.key, made on first use (0600): keep
    a copy where the database's administrators cannot write."""
    settings = Settings.from_env()
    try:
        with audited(settings, read_only=False) as sql:
            made = make_checkpoints(sql, load_key(key_path(settings.data_dir), create=True),
                                    checkpoint_every(), force=True)
            total = len(sql.checkpoints())
    except AuditError as exc:
        raise click.ClickException(str(exc)) from None
    answer = {"made": [{"from_id": cp.from_id, "to_id": cp.to_id, "root": cp.root.hex(), "made_at": cp.made_at}
                       for cp in made], "checkpoints": total}
    emit(answer, as_json, lambda d: click.echo(
        f"{len(d['made'])} checkpoints signed"
        + (f" ({d['made'][0]['from_id']}..{d['made'][-1]['to_id']})" if d["made"] else " (nothing new in the log)")
        + f"; {d['checkpoints']} in all"))


@click.command("verify")
@click.option("--from", "start_from", type=click.IntRange(min=1), default=1, show_default=True,
              help="Start at this notification id (from the start of the checkpoint holding it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-progress", is_flag=True)
@click.option("--adopt", "adopt_", is_flag=True,
              help="ADMIN: chain the events stored before chaining began, as they stand NOW "
                   "(attests them only from now on), then verify.")
@click.pass_context
def verify_cmd(ctx, start_from, as_json, no_progress, adopt_):
    """Check that the stored log is the log that was written (hash chains, checkpoints).

    Every event against its hash chain, every checkpoint's signature and root.
    Names the first changed, missing, reordered or inserted event, or a
    truncated log, and exits 1; 0 when clean."""
    settings = Settings.from_env()
    if adopt_:
        with audited(settings, read_only=False) as sql:
            start, _ = sql.chain_start()
            at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            with bar(start, "adopt", not no_progress) as progress:
                count = adopt(sql, at, progress.update)
        zone = display_zone()
        click.echo(f"adopted {count:,} events stored before chaining began (positions 1..{start}) as they "
                   f"stand now: they are attested only from {show.instant(at, zone)} ({show.zone_note(zone)}) "
                   "on", err=True)
    with audited(settings, read_only=True) as sql:
        has_checkpoints = sql.has_tables() and sql.checkpoints()
        try:
            key = load_key(key_path(settings.data_dir), create=False) if has_checkpoints else None
        except AuditError as exc:
            raise click.ClickException(f"{exc}; without it the checkpoints cannot be checked") from None
        with bar(max(0, sql.max_id() - start_from + 1), "verify", not no_progress) as progress:
            report = verify(sql, key, start_from, progress.update)
    emit(report.as_dict(), as_json, _print_report)
    if not report.clean:
        ctx.exit(1)


def _print_report(report: dict) -> None:
    """The verdict line, its instants (checkpoint signing, adoption) in the display zone."""
    zone = display_zone()
    line = show.text(report["summary"], zone)
    click.echo(line + (f" ({show.zone_note(zone)})" if show.has_instant(report["summary"]) else ""))
