"""The ``vip`` command group: a table of its commands, each loaded only when it runs.

``vip --help`` lists the commands from :data:`COMMANDS` (name -> where the
command lives and its one-line help) without importing any of them, so it
does not load the web stack, Kafka or the event store (click's "lazily
loading subcommands" pattern). Each line's help is the first line of the
command's own docstring; a test keeps the two equal.
"""
from __future__ import annotations

import importlib

import click

from infra.cli.errors import VipGroup
from infra.logs import setup_logging

# name -> ("module:attribute", first line of the command's help), in the order `vip --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    # Queries: read-only.
    "tier": ("infra.cli.queries:tier_cmd",
             "Current tier of one member: tier, since, window spend and points, VIP status, review due."),
    "tiers": ("infra.cli.queries:tiers_cmd", "Every member's current tier."),
    "tier-history": ("infra.cli.queries:tier_history_cmd",
                     "Every tier change of a member, with the policy version and reason."),
    "breaches": ("infra.cli.queries:breaches_cmd", "Open complaints whose SLA clock is at risk or breached."),
    "queue": ("infra.cli.benefits:queue_cmd",
              "Open complaints in priority order: time to breach, then tier priority, then severity."),
    "complaints": ("infra.cli.lists:complaints_grp",
                   "Complaints (filters: --status, --tier, --assignee, --member); `show ID` for one."),
    "contracts": ("infra.cli.lists:contracts_cmd",
                  "Contracts: id, kind, status, valid until, outstanding (filters: --status, --kind)."),
    "ledger": ("infra.cli.queries:ledger_cmd",
               "Revenue ledger: balances per account, contract, party and month; trial balance."),
    "kpis": ("infra.cli.queries:kpis_cmd",
             "Complaint KPIs per tier and month: response/resolution percentiles, satisfaction."),
    "overdue": ("infra.cli.queries:overdue_cmd", "Contract milestones and invoices past due."),
    "history": ("infra.cli.queries:history_cmd",
                "Every event of one aggregate: time, type, actor, policy version, data."),
    "replay": ("infra.cli.queries:replay_cmd", "Rebuild every read model from the log, to now or to a past instant."),
    "rebuild": ("infra.cli.queries:rebuild_cmd",
                "Rebuild some read models alone from the log; the others are left as they are."),
    "verify": ("infra.cli.audit:verify_cmd",
               "Check that the stored log is the log that was written (hash chains, checkpoints)."),
    "export": ("infra.cli.export:export_group", "Write the events and read models for analytics tools (Parquet)."),
    # Changes: each recorded as --actor.
    "ingest": ("infra.cli.inputs:ingest_cmd", "Apply upstream events from a JSON Lines file (see README for the fields)."),
    "ingest-all": ("infra.cli.inputs:ingest_all_cmd",
                   "Apply order and CRM files merged into one occurred-at order (historical loads)."),
    "member": ("infra.cli.ops:member", "VIP workflow and tier overrides of a member (seed 002 §2)."),
    "contract": ("infra.cli.ops:contract", "Contracts: cooperation (seed 000) and member agreements (seed 002)."),
    "complaint": ("infra.cli.ops:complaint", "Complaints and their SLA clocks (seed 002 §7)."),
    "erase": ("infra.cli.ops:erase",
              "Erase a member's personal data (PIPL): their key is destroyed; history still replays."),
    "tick": ("infra.cli.ops:tick_cmd",
             "The scheduler: record every item the wall clock says is due (reviews, SLA, due dates)."),
    "checkpoint": ("infra.cli.audit:checkpoint_cmd",
                   "Sign checkpoints of the log up to its end now (for `vip verify`)."),
    "demo": ("infra.cli.inputs:demo_cmd",
             "Simulate a realistic year through the real command path and print the read models."),
    # Processes and the bus.
    "api": ("hosts.api:api",
            "Serve the HTTP API (/api, /openapi.json), the web console (/console), /metrics, /healthz."),
    "api-key": ("hosts.api:api_key", "API keys for `vip api`: each has a role and a subject (the actor on its events)."),
    "serve": ("hosts.bus:serve_cmd",
              "Relay, consumers, scheduler and embedded projections in one process (SIGTERM drains)."),
    "relay": ("hosts.bus:relay_cmd", "Publish the event log to the domain topics until SIGTERM (at least once, no gaps)."),
    "consume": ("hosts.bus:consume_cmd",
                "Consume the upstream order and CRM topics until SIGTERM (exactly-once effect)."),
    "streams": ("hosts.bus:streams", "Stream processors (Faust): the read models, built from the domain topics."),
    "topics": ("hosts.bus:topics_grp", "The backend's Kafka topics."),
    "produce": ("hosts.bus:produce_cmd",
                "Upstream simulator: publish realistic Avro order or CRM events at a chosen rate."),
    "broker": ("hosts.bus:broker_cmd", "Run a Kafka-compatible Tansu broker in the foreground (DEVELOPMENT ONLY)."),
    "postgres": ("infra.cli.devdb:postgres_cmd", "Run a throwaway PostgreSQL 15 in the foreground (DEVELOPMENT ONLY)."),
}


def load(name: str) -> click.Command:
    """The command ``name`` of :data:`COMMANDS`, imported now.

    ``importlib.import_module`` on the table's own strings is the one lazy
    import of the code base (tests/test_architecture.py allows it here only).
    """
    module, _, attribute = COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name][0]} is not a click command")
    return command


class LazyVipGroup(VipGroup):
    """Commands from :data:`COMMANDS`, imported when one is run (or asked for its own help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table's help lines: nothing is imported to show it."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _shorten(help_, limit)) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 10)].rstrip() + "..."


@click.group(cls=LazyVipGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.option("--debug", is_flag=True, help="Show Python tracebacks (for bug reports).")
def main(verbose: bool, debug: bool) -> None:
    """Event-sourced VIP backend: members, contracts, complaints and their read models.

    Settings come from the environment: VIP_DATA_DIR (default ./.vip),
    VIP_EVENT_STORE (sqlite | memory | postgresql://...), VIP_POLICY_FILE,
    VIP_FUTURE_TOLERANCE_SECONDS (how far after the wall clock --at may lie),
    VIP_DISPLAY_ZONE (the zone tables show instants in, and read --at/--as-of
    values without an offset in; default the policy's zone, Asia/Shanghai),
    VIP_OPERATOR (who acts when --actor is not given; default
    operator:<your login name>).

    Queries never write: they read the stores (even a read-only data dir)
    and compute what is at risk, breached, overdue or due for review at the
    query's instant. Only `vip tick` and `vip serve` record scheduled work.
    Tables are for people; --json keeps the machine values (UTC instants,
    seconds, fen), and errors under --json are JSON too.
    """
    setup_logging(verbose)


if __name__ == "__main__":
    main()
