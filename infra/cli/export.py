"""``vip export``: the log and the read models as files analytics tools load."""
from __future__ import annotations

from pathlib import Path

import click

from infra.analytics.parquet import ExportError, export, prepare
from infra.cli.common import domain_errors, emit, now_or, print_table, store_as_of, system_of, when
from infra.progress import bar


@click.group("export")
def export_group() -> None:
    """Write the events and read models for analytics tools (Parquet)."""


@export_group.command("parquet")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--since", help="Only events that occurred at or after this instant (ISO-8601).")
@click.option("--until", help="Only events up to this instant; read models as of it (default: now).")
@click.option("--with-terms", is_flag=True,
              help="Keep the confidential contract terms (seed 000 §7); left out by default.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def parquet_cmd(ctx, directory, since, until, with_terms, as_json, no_progress):
    """Events (a table per type, typed columns from the Avro schemas, partitioned by month) and
    the read models (current tier, ledger lines) under DIRECTORY, a new or empty directory.

    Nothing is written to the stores; personal values stay sealed as in the events.
    """
    start, end = when(since), when(until)
    try:
        prepare(directory)  # refused before any store is opened: a wrong target costs nothing
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    system = system_of(ctx, read_only=True)
    at = now_or(system, end)
    store = store_as_of(system, end)
    try:
        with bar(None, "export", not no_progress) as progress:
            report = export(system.app, store, system.app.policy, directory, start, at, progress.update,
                            with_terms)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    emit(report.as_dict(), as_json, _print)


def _print(report: dict) -> None:
    click.echo(f"Exported to {report['directory']}: {report['files']} files, log position {report['position']}")
    print_table([{"table": t, "rows": n} for t, n in report["tables"].items()], ["table", "rows"])
