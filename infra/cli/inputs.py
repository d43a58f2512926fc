"""What comes in: ``vip ingest`` and ``vip ingest-all`` (upstream files), ``vip demo`` (a simulated year)."""
from __future__ import annotations

import click

from infra.cli.common import domain_errors, emit, summarise, system_of
from infra.cli.tables import print_summary
from infra.dev.demo import prepare_data_dir, run_demo
from infra.service_layer.ingest import ingest_file, ingest_files
from infra.settings import Settings


@click.command("ingest")
@click.argument("source", type=click.Choice(["orders", "crm"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejects", type=click.Path(dir_okay=False), help="Where bad lines go (default FILE.rejects).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def ingest_cmd(ctx, source, path, rejects, as_json, no_progress):
    """Apply upstream events from a JSON Lines file (see README for the fields).

    Recorded as the upstream system's (actor upstream:orders or upstream:crm).
    """
    report = ingest_file(system_of(ctx).engine, source, path, rejects, progress=not no_progress)
    emit(report.as_dict(), as_json, _print_ingest)


@click.command("ingest-all")
@click.option("--orders", "orders", type=click.Path(exists=True, dir_okay=False), multiple=True)
@click.option("--crm", "crm", type=click.Path(exists=True, dir_okay=False), multiple=True)
@click.option("--rejects", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def ingest_all_cmd(ctx, orders, crm, rejects, as_json, no_progress):
    """Apply order and CRM files merged into one occurred-at order (historical loads)."""
    files = [("orders", p) for p in orders] + [("crm", p) for p in crm]
    if not files:
        raise click.UsageError("give at least one --orders or --crm file")
    report = ingest_files(system_of(ctx).engine, files, rejects, progress=not no_progress)
    emit(report.as_dict(), as_json, _print_ingest)


def _print_ingest(d: dict) -> None:
    click.echo(f"{d['lines']:,} lines: {d['applied']:,} applied, {d['duplicates']:,} duplicates, "
               f"{d['rejected']:,} rejected" + (f" (see {d['rejects_file']})" if d["rejects_file"] else ""))
    # Without a rejects file the report is the only record: every rejected line is listed.
    shown = d["rejects"] if not d["rejects_file"] else d["rejects"][:10]
    for r in shown:
        click.echo(f"  line {r['line']}: {r['reason']}")
    if len(shown) < d["rejected"]:
        click.echo(f"  ... and {d['rejected'] - len(shown):,} more"
                   + (f" in {d['rejects_file']}" if d["rejects_file"] else " (--json lists them)"))


@click.command("demo")
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
    prepare_data_dir(Settings.from_env(), reset)
    system = system_of(ctx)
    if system.app.recorder.max_notification_id():
        raise click.ClickException("the event store already holds events; point VIP_EVENT_STORE or "
                                   "VIP_DATA_DIR at an empty store for the demo")
    end = run_demo(system, members=members, seed=seed, year=year, progress=not no_progress)
    (system.settings.data_dir / "DEMO").write_text(f"members={members} seed={seed} year={year}\n")
    system.engine.flush()
    emit(summarise(system.store, end, system.app.policy), as_json, print_summary)
