"""Issue 17, items 1 and 2: breach compensation and the termination settlement are booked once
and stay collectible.

Through the services and the engine on a real event store (SQLite and PostgreSQL), with the
real ledger and contracts folds and the query functions the CLI answers with. After every
scenario the trial balance is zero and every receivable that was paid is zero.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.contract import ContractError
from projections import queries
from tests.conftest import FakeClock
from tests.scenario import Z

T = datetime(2025, 3, 3, 10, tzinfo=Z)
CLOCK = FakeClock(datetime(2026, 6, 1, tzinfo=Z))


def _cooperation(s, contract_id: str = "CO-1") -> None:
    """Platform and SP share revenue 7000/3000 bp (seed 000 §4.3)."""
    terms = {"parties": [{"id": "platform"}, {"id": "SP"}],
             "revenue_share": {"platform": 7000, "SP": 3000}}
    s.engine.run(T, lambda u, c: u.draft_contract(c, contract_id, "cooperation", terms))
    s.engine.run(T, lambda u, c: u.sign_contract(c, contract_id, "SP"))
    s.engine.run(T, lambda u, c: u.sign_contract(c, contract_id, "platform"))


def _books(s, at: datetime | None = None, contract: str = "CO-1") -> dict:
    s.engine.flush()
    answer = queries.ledger(s.store, at, s.app.policy, contract)
    assert all(t["balanced"] for t in answer["trial_balance"].values()), answer["trial_balance"]
    return answer["accounts"].get("CNY", {})


def test_breach_compensation_invoiced_and_paid_is_booked_once_with_no_share(make_system, event_store):
    """Item 1: receivable:SP ends at 0; SP gets no share of its own penalty."""
    s = make_system(event_store, clock=CLOCK)
    _cooperation(s)
    s.engine.run(T + timedelta(days=1), lambda u, c: u.record_breach(
        c, "CO-1", "SP", "milestone 1 missed", 50_000))
    s.engine.run(T + timedelta(days=2), lambda u, c: u.issue_invoice(
        c, "CO-1", "COMP-1", "SP", 50_000, "CNY", "compensation"))
    issued = _books(s)
    assert issued["receivable:SP"] == 50_000 and issued["compensation_income"] == -50_000
    s.engine.run(T + timedelta(days=3), lambda u, c: u.pay_invoice(
        c, "CO-1", "COMP-1", 50_000, "CNY", "PAY-1"))
    paid = _books(s)
    assert paid["receivable:SP"] == 0 and paid["cash"] == 50_000
    assert paid["compensation_income"] == -50_000             # income booked once
    assert "partner_payable:SP" not in paid and "rounding" not in paid
    assert not any(a.startswith("revenue:") for a in paid)
    # Nothing more is owed, so nothing more can be invoiced as compensation.
    with pytest.raises(ContractError, match="owes 0 fen"):
        s.engine.run(T + timedelta(days=4), lambda u, c: u.issue_invoice(
            c, "CO-1", "COMP-2", "SP", 1, "CNY", "compensation"))


def test_compensation_owed_by_the_platform_is_paid_off_its_payable(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    _cooperation(s)
    s.engine.run(T + timedelta(days=1), lambda u, c: u.record_breach(
        c, "CO-1", "platform", "late user list", 30_000))
    s.engine.run(T + timedelta(days=2), lambda u, c: u.issue_invoice(
        c, "CO-1", "COMP-1", "platform", 30_000, "CNY", "compensation"))
    s.engine.run(T + timedelta(days=3), lambda u, c: u.pay_invoice(
        c, "CO-1", "COMP-1", 30_000, "CNY", "PAY-1"))
    books = _books(s)
    assert books["payable:SP"] == 0 and books["compensation_expense"] == 30_000
    assert books["cash"] == -30_000


def test_a_compensation_invoice_needs_a_recorded_breach(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    _cooperation(s)
    with pytest.raises(ContractError, match="record the breach"):
        s.engine.run(T + timedelta(days=1), lambda u, c: u.issue_invoice(
            c, "CO-1", "COMP-1", "SP", 50_000, "CNY", "compensation"))
    assert "COMP-1" not in s.app.contract("CO-1").invoices  # refused before anything was recorded


def test_the_termination_settlement_is_collectible_after_termination(make_system, event_store):
    """Item 2 (seed 000 §10.3): invoiced after termination, paid, receivable 0, booked once."""
    s = make_system(event_store, clock=CLOCK)
    _cooperation(s)
    end = T + timedelta(days=20)
    s.engine.run(end, lambda u, c: u.terminate_contract(
        c, "CO-1", "strategy change", {"amount_fen": 20_000, "payer": "SP", "currency": "CNY"}))
    s.engine.run(end + timedelta(days=1), lambda u, c: u.issue_invoice(
        c, "CO-1", "SET-1", "SP", 20_000, "CNY", "settlement", end + timedelta(days=10)))
    books = _books(s)
    assert books["receivable:SP"] == 20_000 and books["settlement_income"] == -20_000
    late = end + timedelta(days=15)
    s.engine.advance(late)   # the due date fires although the contract has ended
    s.engine.flush()
    assert s.app.contract("CO-1").invoices["SET-1"]["status"] == "overdue"
    listed = queries.overdue(s.store, late)["invoices"]
    assert [(i["invoice"], i["outstanding_fen"]) for i in listed] == [("SET-1", 20_000)]
    s.engine.run(late, lambda u, c: u.pay_invoice(c, "CO-1", "SET-1", 20_000, "CNY", "PAY-S"))
    books = _books(s)
    assert books["receivable:SP"] == 0 and books["settlement_income"] == -20_000
    assert books["cash"] == 20_000 and not any(a.startswith("revenue:") for a in books)
    assert queries.overdue(s.store, late + timedelta(days=1))["invoices"] == []


def test_a_settlement_cannot_be_invoiced_before_the_termination_that_books_it(make_system, event_store):
    """Item 2: invoicing first booked it twice; now the invoice waits for the termination."""
    s = make_system(event_store, clock=CLOCK)
    _cooperation(s)
    with pytest.raises(ContractError, match="terminate with the settlement first"):
        s.engine.run(T + timedelta(days=5), lambda u, c: u.issue_invoice(
            c, "CO-1", "SET-1", "SP", 20_000, "CNY", "settlement"))
    s.engine.run(T + timedelta(days=6), lambda u, c: u.terminate_contract(
        c, "CO-1", "strategy change", {"amount_fen": 20_000, "payer": "SP", "currency": "CNY"}))
    with pytest.raises(ContractError, match="owes 20000 fen CNY"):
        s.engine.run(T + timedelta(days=7), lambda u, c: u.issue_invoice(
            c, "CO-1", "SET-1", "SP", 20_001, "CNY", "settlement"))
    # Two instalments collect it; fees are still refused on the ended contract.
    for n, amount in ((1, 12_000), (2, 8_000)):
        s.engine.run(T + timedelta(days=7 + n), lambda u, c, n=n, amount=amount: u.issue_invoice(
            c, "CO-1", f"SET-{n}", "SP", amount, "CNY", "settlement"))
        s.engine.run(T + timedelta(days=7 + n), lambda u, c, n=n, amount=amount: u.pay_invoice(
            c, "CO-1", f"SET-{n}", amount, "CNY", f"PAY-{n}"))
    with pytest.raises(ContractError, match="terminated"):
        s.engine.run(T + timedelta(days=12), lambda u, c: u.issue_invoice(
            c, "CO-1", "FEE-1", "SP", 1_000, "CNY", "service_fee"))
    books = _books(s)
    assert books["receivable:SP"] == 0 and books["settlement_income"] == -20_000 and books["cash"] == 20_000


def test_a_waived_compensation_leaves_nothing_owed_and_no_share(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    _cooperation(s)
    s.engine.run(T + timedelta(days=1), lambda u, c: u.record_breach(
        c, "CO-1", "SP", "confidentiality", 10_001))
    s.engine.run(T + timedelta(days=2), lambda u, c: u.issue_invoice(
        c, "CO-1", "COMP-1", "SP", 10_001, "CNY", "compensation"))
    s.engine.run(T + timedelta(days=3), lambda u, c: u.grant_discount(
        c, "CO-1", "COMP-1", 1, "goodwill"))
    s.engine.run(T + timedelta(days=4), lambda u, c: u.pay_invoice(
        c, "CO-1", "COMP-1", 10_000, "CNY", "PAY-1"))
    books = _books(s)
    assert books["receivable:SP"] == 0 and books.get("partner_payable:SP", 0) == 0
    assert books.get("rounding", 0) == 0
