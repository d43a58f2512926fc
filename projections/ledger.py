"""The revenue ledger: double-entry postings in fen, one per money event.

A posting's id is the id of the event it comes from, so a replayed or
duplicated event posts nothing twice. Every posting balances per currency.
Revenue is split between the parties by the contract's ratio (basis points)
in whole fen; what floors leave over goes to the rounding account. A credit
(discount, waiver) reverses exactly the shares its amount carried: the
shares of everything credited so far less the shares of what was credited
before it, so a fully credited invoice leaves every share at zero.

Breach compensation and a termination settlement are booked when the
breach or the termination is recorded: income of the party owed, with no
share for anyone (least of all the party that pays). The compensation or
settlement invoice that collects them (``domain.claims``)
posts nothing, so its payment brings the same receivable to zero.
"""
from __future__ import annotations

from domain.claims import CLAIM_KINDS
from domain.terms import PLATFORM
from projections.common import iso
from projections.view import View

OWN = PLATFORM  # the party whose books these are: contracts name it by this id (README)
# The only event types :func:`_legs` posts lines for (every other event posts nothing).
POSTING_TYPES = frozenset({"InvoiceIssued", "PaymentReceived", "InvoiceCredited", "BreachRecorded",
                           "ContractTerminated"})


def _legs(event: dict) -> list:
    data, kind = event["data"], event["type"]
    cur = data.get("currency", "CNY")
    if kind == "InvoiceIssued":
        return [] if data["kind"] in CLAIM_KINDS else _invoice(data, cur)
    if kind == "PaymentReceived":
        if data["payer"] == OWN:
            return [(f"payable:{data['payee']}", data["amount_fen"], 0, cur), ("cash", 0, data["amount_fen"], cur)]
        return [("cash", data["amount_fen"], 0, cur), (f"receivable:{data['payer']}", 0, data["amount_fen"], cur)]
    if kind == "InvoiceCredited":
        amount = data["amount_fen"]
        if data["payer"] == OWN:
            return [(f"payable:{data['payee']}", amount, 0, cur), ("discounts_received", 0, amount, cur)]
        # Revenue not collected is not shared: each partner's share of it is reversed.
        before = data.get("credited_before_fen")
        ratios = data.get("revenue_share") or {}
        if before is None:  # v1/v2 events: the credit's own split (what those logs posted)
            moved = split(amount, ratios)
        else:
            after, earlier = split(before + amount, ratios), split(before, ratios)
            moved = {account: after[account] - earlier.get(account, 0) for account in after}
        unshare = [(acc, credit, debit, c) for acc, debit, credit, c in _share_lines(moved, "discounts", cur)]
        return [("discounts", amount, 0, cur), (f"receivable:{data['payer']}", 0, amount, cur)] + unshare
    if kind == "BreachRecorded" and data["compensation_fen"]:
        amount = data["compensation_fen"]
        if data["owed_to"] == OWN:
            return [(f"receivable:{data['party_id']}", amount, 0, cur), ("compensation_income", 0, amount, cur)]
        if data["party_id"] == OWN:
            return [("compensation_expense", amount, 0, cur), (f"payable:{data['owed_to']}", 0, amount, cur)]
    if kind == "ContractTerminated" and data["settlement"].get("amount_fen"):
        s = data["settlement"]
        amount, cur = s["amount_fen"], s.get("currency", "CNY")
        if s["payer"] == OWN:
            return [("settlement_expense", amount, 0, cur), (f"payable:{s.get('payee', 'counterparty')}", 0, amount, cur)]
        return [(f"receivable:{s['payer']}", amount, 0, cur), ("settlement_income", 0, amount, cur)]
    return []


def _invoice(data: dict, cur: str) -> list:
    amount, kind = data["amount_fen"], data["kind"]
    if data["payer"] == OWN:
        return [(f"expense:{kind}", amount, 0, cur), (f"payable:{data['payee']}", 0, amount, cur)]
    revenue = f"revenue:{kind}"
    legs = [(f"receivable:{data['payer']}", amount, 0, cur), (revenue, 0, amount, cur)]
    return legs + share_legs(amount, data.get("revenue_share") or {}, revenue, cur)


def split(amount: int, ratios: dict) -> dict:
    """Each partner's whole-fen share of ``amount`` by basis points, and the rounding remainder.

    Keys are ``partner_payable:<party>`` and ``rounding``; our own share stays
    in revenue and has no key.
    """
    if not ratios:
        return {}
    shares = {party: amount * bp // 10000 for party, bp in sorted(ratios.items())}
    out = {f"partner_payable:{party}": share for party, share in shares.items() if party != OWN}
    out["rounding"] = amount - sum(shares.values())
    return out


def share_legs(amount: int, ratios: dict, revenue: str, cur: str) -> list:
    """Move each partner's share of recognised revenue to its payable; remainder to rounding."""
    return _share_lines(split(amount, ratios), revenue, cur)


def _share_lines(moved: dict, revenue: str, cur: str) -> list:
    # A rounding difference between two cumulative splits may be negative: it
    # then flows the other way (debit rounding), never as a negative amount.
    legs = []
    for account, fen in moved.items():
        if fen > 0:
            legs += [(revenue, fen, 0, cur), (account, 0, fen, cur)]
        elif fen < 0:
            legs += [(account, -fen, 0, cur), (revenue, 0, -fen, cur)]
    return legs


def ledger_keys(event: dict) -> list:
    return [event["id"]] if event["aggregate"] == "contract" and _legs(event) else []


def fold_posting(row: dict | None, event: dict, key: str) -> dict | None:
    """A posting, written once: the same event again changes nothing."""
    if row is not None:
        return row
    lines = [list(leg) for leg in _legs(event)]
    return {"id": key, "at": iso(event["timestamp"]), "contract_id": event["key"],
            "source": event["type"], "lines": lines}


def posted_at(row: dict) -> str:
    """A posting counts in ledgers as of its instant."""
    return row["at"]


# 3: compensation and settlement invoices post nothing (their breach or termination booked them)
LEDGER = View("ledger", ledger_keys, fold_posting, 3, posted_at, POSTING_TYPES)
