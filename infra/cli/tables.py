"""The tables several ``vip`` commands print: breaches, balances, parties, KPIs, the summary.

Rows go in with their machine values (instants, seconds, fen); ``print_table``
shows them by the one presentation rule (``projections.presentation``).
Here only what a table adds: a deadline's time left as one column, ledger
balances on their natural side (what is owed reads positive).
"""
from __future__ import annotations

import click

from infra.cli.common import display_zone, print_table
from projections import presentation as show

BREACH_COLUMNS = ["complaint_id", "member_id", "tier", "clock", "state", "deadline", "time_left",
                  "assignee"]
KPI_COLUMNS = ["tier", "month", "filed", "breached", "first_response_p50_s", "first_response_p90_s",
               "resolution_p50_s", "resolution_p90_s", "satisfaction_avg", "rated"]


def with_time_left(rows: list[dict]) -> list[dict]:
    """Breach rows with ``time_left``: ``2 h 5 min``, or ``overdue 2 h 5 min`` past the deadline."""
    return [{**r, "time_left": show.time_left(r["left_s"] if "left_s" in r else -r["overdue_s"])}
            for r in rows]


def print_trial_balance(trial: dict) -> None:
    print_table([{"currency": c, "debits_fen": t["debits"], "credits_fen": t["credits"],
                  "balanced": t["balanced"]} for c, t in trial.items()],
                ["currency", "debits_fen", "credits_fen", "balanced"], "Trial balance")


def balance_rows(accounts: dict, only: tuple[str, ...] = ()) -> list[dict]:
    """``{currency: {account: debit-positive fen}}`` as rows on each account's natural side."""
    return [{"account": a, "nature": show.account_nature(a), "balance_fen": show.natural_balance(a, b),
             "currency": cur}
            for cur, balances in accounts.items() for a, b in balances.items()
            if not only or a.startswith(only)]


def print_balances(accounts: dict, title: str, only: tuple[str, ...] = ()) -> None:
    print_table(balance_rows(accounts, only), ["account", "nature", "balance_fen"],
                f"{title} (each on its natural side: owed to us, we owe, income, expense)")


def party_rows(by_party: dict, members: bool = True) -> list[dict]:
    """Per party and currency: what the party owes us and what we owe it, both positive."""
    out: dict = {}
    for party, balances in by_party.items():
        if not members and party.startswith("M"):
            continue
        for key, net in balances.items():
            kind, _, cur = key.partition(" ")
            row = out.setdefault((party, cur), {"party": party, "currency": cur,
                                                "owed_to_us_fen": 0, "we_owe_fen": 0})
            row["owed_to_us_fen" if kind == "receivable" else "we_owe_fen"] += show.natural_balance(kind, net)
    return [out[k] for k in sorted(out)]


def print_summary(s: dict) -> None:
    """What `vip demo`, `vip replay` and `vip streams summary` print."""
    zone = display_zone()
    click.echo(f"As of {show.instant(s['as_of'], zone)} ({show.zone_note(zone)}): {s['members']:,} members"
               + (f", {s['events_replayed']:,} events replayed" if "events_replayed" in s else ""))
    print_table([{"tier": t, **v} for t, v in s["tier_distribution"].items()],
                ["tier", "members", "active_vip"], "Tier distribution")
    breaches = s["pending_breaches"]
    states = {st: sum(1 for b in breaches if b["state"] == st) for st in ("at_risk", "breached")}
    click.echo(f"Pending SLA: {states['at_risk']:,} at risk, {states['breached']:,} breached")
    print_table(with_time_left(breaches[:10]), ["complaint_id", "tier", "clock", "state", "deadline",
                                                "time_left"], "Most urgent")
    print_trial_balance(s["trial_balance"])
    print_balances(s["accounts"], "Revenue and partner shares",
                   ("revenue:", "partner_payable:", "rounding"))
    print_table(party_rows(s["by_party"], members=False), ["party", "owed_to_us_fen", "we_owe_fen"],
                "By party (contract parties; members' receivables omitted)")
    print_table(s["kpis"][-10:], KPI_COLUMNS, "Complaint KPIs (latest; business-hours tiers in business time)")
    click.echo(f"Overdue: {len(s['overdue']['milestones']):,} milestones, "
               f"{len(s['overdue']['invoices']):,} invoices")
