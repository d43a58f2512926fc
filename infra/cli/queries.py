"""The read-only ``vip`` queries: tier, tiers, breaches, ledger, KPIs, overdue, history, replay.

Every query prints a table, or JSON with ``--json``. ``--as-of T`` answers
from a replay of the log up to T, so it equals ``vip replay --as-of T``.
"""
from __future__ import annotations

import logging

import click

from domain.base import NotFoundError
from infra.cli.common import (
    domain_errors,
    emit,
    now_or,
    print_record,
    print_table,
    query,
    store_as_of,
    summarise,
    system_of,
    when,
)
from infra.cli.tables import BREACH_COLUMNS, KPI_COLUMNS, print_balances, print_summary, print_trial_balance, \
    with_time_left
from infra.kafka.bus import Topics
from infra.kafka.topic_replay import TopicReplayError, replay_topics
from infra.policy_file import load_policy
from infra.service_layer.app import utc_now
from infra.service_layer.replay import history, rebuild, rebuild_views, replay_counted
from infra.service_layer.reveal import reveal
from infra.settings import Settings
from projections import queries
from projections.common import parse
from projections.presentation import duration
from projections.views import VIEWS

TIER_COLUMNS = ["member_id", "tier", "effective_tier", "since", "vip_status", "window_spend_fen",
                "window_points", "active_months", "next_review_at", "review_due", "override", "benefits",
                "registered", "erased", "policy_version"]


@query("tier")
@click.argument("member_id")
def tier_cmd(ctx, member_id, as_of, as_json):
    """Current tier of one member: tier, since, window spend and points, VIP status, review due."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    store = store_as_of(system, at)
    row = store.get("current_tier", member_id)
    if row is None:
        raise NotFoundError(f"no member {member_id!r}; check the id (`vip tiers` lists the members)")
    answer = reveal(system.app, member_id,
                    queries.member_answer(store, member_id, row, now_or(system, at), system.app.policy))
    emit(answer, as_json, lambda r: print_record(r, TIER_COLUMNS, f"Member {member_id}"))


@query("tiers")
def tiers_cmd(ctx, as_of, as_json):
    """Every member's current tier."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    rows = queries.tiers(store_as_of(system, at), now_or(system, at), system.app.policy)
    emit(rows, as_json, lambda rs: print_table(rs, TIER_COLUMNS[:8] + ["policy_version"], "Members"))


@query("breaches")
def breaches_cmd(ctx, as_of, as_json):
    """Open complaints whose SLA clock is at risk or breached."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    rows = queries.pending_breaches(store_as_of(system, at), now_or(system, at), system.app.policy)
    emit(rows, as_json, lambda rs: print_table(with_time_left(rs), BREACH_COLUMNS, "Pending SLA breaches"))


@query("ledger")
@click.option("--contract", help="Only postings of this contract.")
def ledger_cmd(ctx, contract, as_of, as_json):
    """Revenue ledger: balances per account, contract, party and month; trial balance."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    answer = queries.ledger(store_as_of(system, at), at, system.app.policy, contract)
    emit(answer, as_json, _print_ledger)


def _print_ledger(answer: dict) -> None:
    print_balances(answer["accounts"], "Balances")
    print_trial_balance(answer["trial_balance"])


@query("kpis")
def kpis_cmd(ctx, as_of, as_json):
    """Complaint KPIs per tier and month: response/resolution percentiles, satisfaction."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    rows = queries.complaint_kpis(store_as_of(system, at), system.app.policy, now_or(system, at))
    emit(rows, as_json, lambda rs: print_table(rs, KPI_COLUMNS, "Complaint KPIs per tier and month of filing "
                                                             "(business-hours tiers in business time)"))


@query("overdue")
def overdue_cmd(ctx, as_of, as_json):
    """Contract milestones and invoices past due."""
    system = system_of(ctx, read_only=True)
    at = when(as_of)
    now = now_or(system, at)
    answer = queries.overdue(store_as_of(system, at), now)

    def table(a):
        print_table(a["milestones"], ["contract_id", "milestone", "title", "due_at", "overdue_s"],
                    "Overdue milestones")
        late = [{**i, "overdue": duration((now - parse(i["due_at"])).total_seconds())} for i in a["invoices"]]
        print_table(late, ["contract_id", "invoice", "payer", "due_at", "overdue", "outstanding_fen"],
                    "Overdue invoices")
    emit(answer, as_json, table)


@query("tier-history", as_of=False)
@click.argument("member_id")
def tier_history_cmd(ctx, member_id, as_json):
    """Every tier change of a member, with the policy version and reason."""
    system = system_of(ctx, read_only=True)
    store = store_as_of(system, None)
    if store.get("current_tier", member_id) is None:
        raise NotFoundError(f"no member {member_id!r}; check the id (`vip tiers` lists the members)")
    rows = reveal(system.app, member_id, queries.tier_history(store, member_id))
    emit(rows, as_json, lambda rs: print_table(rs, ["at", "event", "from", "to", "reason", "actor",
                                                   "policy_version", "standing"], f"Tier history of {member_id}"))


@query("history", as_of=False)
@click.argument("kind", type=click.Choice(["member", "contract", "complaint"]))
@click.argument("business_id")
def history_cmd(ctx, kind, business_id, as_json):
    """Every event of one aggregate: time, type, actor, policy version, data."""
    rows = history(system_of(ctx, read_only=True).app, kind, business_id)
    emit(rows, as_json, lambda rs: print_table(rs, ["version", "at", "type", "actor",
                                                   "policy_version", "data"], f"History of {kind} {business_id}"))


@click.command("replay")
@click.option("--source", type=click.Choice(["log", "kafka"]), default="log", show_default=True,
              help="Fold the event store's log, or the domain topics (VIP_KAFKA_BOOTSTRAP, VIP_TOPIC_PREFIX).")
@click.option("--as-of", "as_of", help="Rebuild as of this past instant (in memory) and summarise.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def replay_cmd(ctx, source, as_of, as_json, no_progress):
    """Rebuild every read model from the log, to now or to a past instant.

    A read store that cannot be opened (it is derived data) is rebuilt, after saying so.
    With ``--source kafka`` the read models are folded in memory from the domain
    topics instead (nothing is written) and the summary adds what was folded,
    skipped as duplicates or undecodable, and the next offset of each partition.
    """
    at = when(as_of)
    if source == "kafka":
        settings = Settings.from_env()
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            # kafka-python logs each failed connection; the one line below says what is wrong (-v shows them)
            logging.getLogger("kafka").setLevel(logging.CRITICAL)
        try:
            replayed = replay_topics(settings.kafka_bootstrap, Topics.from_settings(settings).domain_topics,
                                     VIEWS, until=at, progress=not no_progress)
        except TopicReplayError as exc:
            raise click.ClickException(str(exc)) from None
        summary = summarise(replayed.store, at or utc_now(), load_policy(settings.policy_file))
        summary["events_replayed"] = replayed.folded
        summary["kafka"] = replayed.counts()
        emit(summary, as_json, _print_kafka_summary)
        return
    system = system_of(ctx, read_only=at is not None)
    if at is None:
        count = rebuild(system, progress=not no_progress)
        store, at_ = system.store, system.engine.clock()
    else:
        store, count = replay_counted(system.app, VIEWS, until=at, progress=not no_progress)
        at_ = at
    summary = summarise(store, at_, system.app.policy)
    summary["events_replayed"] = count
    emit(summary, as_json, print_summary)


def _print_kafka_summary(summary: dict) -> None:
    print_summary(summary)
    counts = summary["kafka"]
    click.echo(f"From the topics: {counts['folded']:,} folded, {counts['duplicates']:,} duplicates skipped, "
               f"{counts['undecodable']:,} undecodable skipped, {counts['after_as_of']:,} after --as-of")


@click.command("rebuild")
@click.argument("names", metavar="VIEW...", nargs=-1, required=True,
                type=click.Choice([v.name for v in VIEWS]))
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.pass_context
@domain_errors
def rebuild_cmd(ctx, names, as_json, no_progress):
    """Rebuild some read models alone from the log; the others are left as they are.

    The new rows are folded aside and put in place in one transaction: until
    then queries answer the view from its old rows, or (a view of another
    version) from a replay in memory; never from a half-built view.
    """
    system = system_of(ctx)
    system.engine.flush()  # what this process folded is committed first: the rebuild starts from it
    views = [v for v in VIEWS if v.name in names]
    count = rebuild_views(system.app, system.store, views, progress=not no_progress)
    if "timers" in names:
        system.engine.timers.heap.clear()
        system.engine.timers.refresh(system.engine.timers.rows.keys())
    answer = {"rebuilt": sorted(names), "events_replayed": count,
              "position": {v.name: system.store.position_of(v.name) for v in views}}
    emit(answer, as_json, lambda a: click.echo(
        f"Rebuilt {', '.join(a['rebuilt'])} from {a['events_replayed']:,} events"))
