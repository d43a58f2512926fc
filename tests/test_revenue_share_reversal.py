"""Revenue-share reversal: a credit reverses exactly the shares its amount carried.

The contract aggregate emits the events, the real ledger fold posts them and
the ledger query sums the balances (DOMAIN.md, Ledger). A fully credited
invoice must leave every partner's payable and the rounding account at zero,
for any sequence of partial discounts and waivers.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import Ctx
from domain.contract import Contract
from infra.policy_file import load_policy
from infra.service_layer.envelope import envelope
from infra.service_layer.runner import apply
from infra.stores.readstore import MemoryStore
from projections.ledger import LEDGER, split
from projections.queries import ledger

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
T0 = datetime(2025, 3, 1, 10, tzinfo=SH)
_ids = itertools.count(1)


def ctx(at: datetime) -> Ctx:
    return Ctx(at=at, actor="finance", causation_id=f"cmd-{next(_ids)}")


class Books:
    """One effective contract whose events are posted as they happen."""

    def __init__(self, parties: list[str], share: dict[str, int]) -> None:
        self.store, self.t = MemoryStore(), T0
        self.contract = Contract.draft(self._ctx(), "K1", "cooperation", {
            "parties": [{"id": p} for p in parties], "revenue_share": share})
        for party in parties:
            self.contract.sign(self._ctx(), party)
        self.post()

    def _ctx(self) -> Ctx:
        self.t += timedelta(minutes=1)
        return ctx(self.t)

    def post(self) -> None:
        for event in self.contract.collect_events():
            apply(self.store, [LEDGER], envelope(event))

    def issue(self, invoice_id: str, payer: str, amount_fen: int) -> None:
        self.contract.issue_invoice(self._ctx(), invoice_id, payer, amount_fen, "CNY", "service_fee")
        self.post()

    def discount(self, invoice_id: str, amount_fen: int) -> None:
        self.contract.grant_discount(self._ctx(), invoice_id, amount_fen, "partial discount")
        self.post()

    def waive(self, invoice_id: str) -> None:
        self.contract.waive(self._ctx(), invoice_id, "goodwill")
        self.post()

    def pay(self, invoice_id: str, amount_fen: int) -> None:
        self.contract.receive_payment(self._ctx(), invoice_id, amount_fen, "CNY", f"pay-{next(_ids)}")
        self.post()

    def balances(self) -> dict:
        books = ledger(self.store, None, POLICY)
        assert all(t["balanced"] for t in books["trial_balance"].values()), books["trial_balance"]
        return books["accounts"].get("CNY", {})


def shares_left(balances: dict) -> dict:
    """Partner payables and rounding that are not zero."""
    return {a: v for a, v in balances.items()
            if (a.startswith("partner_payable:") or a == "rounding") and v != 0}


def test_five_two_fen_discounts_on_a_ten_fen_invoice_leave_no_share_and_no_rounding():
    """Issue 6: split 6667/3333, five 2-fen discounts left the partner owed 3 fen and rounding at +4."""
    books = Books(["platform", "acme"], {"platform": 6667, "acme": 3333})
    books.issue("INV-1", "acme", 10)
    assert shares_left(books.balances()) == {"partner_payable:acme": -3, "rounding": -1}
    for _ in range(5):
        books.discount("INV-1", 2)
    assert books.contract.outstanding("INV-1") == 0
    assert shares_left(books.balances()) == {}


def test_a_discount_then_a_waiver_of_a_20000_fen_invoice_leave_the_partner_owed_nothing():
    """Issue 6: a 20,000-fen invoice discounted then waived left the partner owed 1 fen."""
    books = Books(["platform", "acme"], {"platform": 6667, "acme": 3333})
    books.issue("INV-1", "acme", 20_000)
    books.discount("INV-1", 7)
    books.waive("INV-1")
    assert shares_left(books.balances()) == {}


def test_a_paid_part_keeps_exactly_its_shares_when_the_rest_is_credited():
    """Credits reverse their own shares only: what was paid stays shared as issued minus the credits."""
    books = Books(["platform", "acme"], {"platform": 6667, "acme": 3333})
    books.issue("INV-1", "acme", 10_001)
    books.pay("INV-1", 3_001)
    for _ in range(7):
        books.discount("INV-1", 1_000)
    left = books.balances()
    # 10,001 fen issued carried 3,333 fen of share; 7,000 credited carried 2,333.
    assert left["partner_payable:acme"] == -(3_333 - 2_333)


@st.composite
def invoices(draw):
    """A contract (two partners, or the platform and a partner), an invoice, a payment, credits."""
    if draw(st.booleans()):
        a = draw(st.integers(0, 10_000))
        parties, share = ["p1", "p2"], {"p1": a, "p2": 10_000 - a}
    else:
        a = draw(st.integers(0, 10_000))
        parties, share = ["platform", "p1"], {"platform": 10_000 - a, "p1": a}
    amount = draw(st.integers(1, 5_000_000))
    paid = draw(st.sampled_from([0, 0, draw(st.integers(0, amount - 1))]))
    credits, left = [], amount - paid
    while left > 0 and len(credits) < draw(st.integers(0, 12)):
        step = draw(st.integers(1, left))
        credits.append(step)
        left -= step
    pay_at = draw(st.integers(0, len(credits)))  # where in the credits the payment falls
    return parties, share, amount, paid, credits, pay_at


def _partners(balances: dict) -> dict:
    return {a: v for a, v in balances.items() if a.startswith("partner_payable:")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoices())
def test_any_sequence_of_partial_credits_reverses_exactly_the_shares_of_a_fully_credited_invoice(case):
    parties, share, amount, paid, credits, pay_at = case
    books = Books(parties, share)
    books.issue("INV-1", "p1", amount)
    issued = _partners(books.balances())
    for n, step in enumerate(credits):
        if n == pay_at and paid:
            books.pay("INV-1", paid)
        books.discount("INV-1", step)
        now = _partners(books.balances())
        # A credit never reverses more of a partner's share than the invoice gave it.
        assert all(issued.get(a, 0) <= v <= 0 for a, v in now.items()), (issued, now)
    if paid and pay_at >= len(credits):
        books.pay("INV-1", paid)
    if books.contract.outstanding("INV-1"):
        books.waive("INV-1")
    assert books.contract.outstanding("INV-1") == 0
    balances = books.balances()
    if paid == 0:
        assert shares_left(balances) == {}, (share, amount, credits)
    else:
        # What stays shared is what the invoice gave less what its credits took back, in whole fen.
        whole, credited = split(amount, share), split(amount - paid, share)
        assert {a: balances.get(a, 0) for a in whole} == {a: credited[a] - whole[a] for a in whole}
