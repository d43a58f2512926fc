"""``vip postgres``: a throwaway PostgreSQL 15 for trying several processes on one machine."""
from __future__ import annotations

import time

import click

from infra.dev.postgres import PostgresBinariesMissing, PostgresStartError, start_pg_cluster
from infra.kafka.relay import StopFlag


@click.command("postgres")
def postgres_cmd():
    """Run a throwaway PostgreSQL 15 in the foreground (DEVELOPMENT ONLY).

    initdb into a temporary directory (fsync off), a free port on
    127.0.0.1; everything is removed when it stops. Point VIP_EVENT_STORE
    and VIP_STREAMS_STORE at the printed URL. Ctrl-C or SIGTERM stops it.
    """
    try:
        cluster = start_pg_cluster("vip")
    except (PostgresBinariesMissing, PostgresStartError) as exc:
        raise click.ClickException(str(exc)) from None
    stop = StopFlag().install()
    try:
        click.echo("postgres: throwaway cluster (development only, removed when it stops)")
        click.echo(f"export VIP_EVENT_STORE={cluster.url} VIP_STREAMS_STORE={cluster.url}")
        while not stop():
            time.sleep(0.2)
    finally:
        cluster.stop()
        stop.restore()
    click.echo("postgres: stopped")
