"""Issue 6 rules through the whole backend: upstream inputs, the engine's timers, the read models.

Real event store (SQLite, and PostgreSQL where the fixture says so), real
folds, the same query functions the CLI answers with.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from infra.service_layer.upstream import apply_input, parse
from projections import queries
from tests.conftest import FakeClock
from tests.scenario import Z

LATE_CLOCK = FakeClock(datetime(2026, 6, 1, tzinfo=Z))


def _order(s, n: int, kind: str, at: datetime, order_id: str, amount_fen: int | None = None,
           currency: str = "CNY", member: str = "M1") -> None:
    record = {"type": kind, "event_id": f"e{n}", "member_id": member, "order_id": order_id,
              "occurred_at": at.isoformat()}
    if amount_fen is not None:
        record.update(amount_fen=amount_fen, currency=currency)
    apply_input(s.engine, parse("orders", record))


def _tier(s, at: datetime, member: str = "M1") -> dict:
    s.engine.flush()
    return queries.tier_row(s.store.view("current_tier")[member], at, s.app.policy)


def test_refund_reverses_its_own_order_at_its_occurred_at(make_system, event_store):
    """Issue 6: window spend at 2026-01-06 is 6,000 CNY (not -4,000), and the review keeps silver."""
    s = make_system(event_store, clock=LATE_CLOCK)
    _order(s, 1, "OrderPaid", datetime(2025, 1, 5, 10, tzinfo=Z), "O1", 1_000_000)
    _order(s, 2, "OrderRefunded", datetime(2025, 6, 1, 10, tzinfo=Z), "O1", 1_000_000)
    _order(s, 3, "OrderPaid", datetime(2025, 12, 1, 10, tzinfo=Z), "O2", 600_000)
    at = datetime(2026, 1, 6, 10, tzinfo=Z)
    s.engine.advance(at)  # the anniversary review of 2026-01-05 fires
    row = _tier(s, at)
    assert row["window_spend_fen"] == 600_000 and row["window_points"] == 6_000
    assert row["tier"] == "silver"
    member = s.app.member("M1")
    assert member.tier == "silver" and member.vip_status == "none"
    review = [c for c in queries.tier_history(s.store, "M1") if c["event"] == "TierReviewed"]
    assert review and review[0]["standing"]["spend_fen"] == 600_000


def test_cancelled_one_fen_orders_do_not_make_months_active_or_lift_to_diamond(make_system):
    s = make_system(clock=LATE_CLOCK)
    start = datetime(2025, 1, 10, 10, tzinfo=Z)
    for n in range(5):
        at = start + timedelta(days=31 * n)
        _order(s, 10 * n, "OrderPaid", at, f"tiny{n}", 1)
        _order(s, 10 * n + 1, "OrderCancelled", at + timedelta(hours=1), f"tiny{n}")
    at = start + timedelta(days=31 * 5)
    _order(s, 99, "OrderPaid", at, "big", 10_000_000)
    row = _tier(s, at)
    assert row["active_months"] == 1 and row["tier"] == "platinum"
    assert s.app.member("M1").tier == "platinum"


def test_an_order_in_another_currency_is_recorded_and_counts_nothing_by_default(make_system):
    """Issue 6: it was dead-lettered as refused; now it is in the history and counts no spend."""
    from infra.service_layer.replay import history
    s = make_system(clock=LATE_CLOCK)
    at = datetime(2025, 3, 1, 10, tzinfo=Z)
    _order(s, 1, "OrderPaid", at, "O-usd", 2_000_000, currency="USD")
    paid = [e for e in history(s.app, "member", "M1") if e["type"] == "OrderPaid"]
    assert [(e["data"]["currency"], e["data"]["amount_fen"], e["data"]["counted_fen"]) for e in paid] == \
        [("USD", 2_000_000, 0)]
    assert paid[0]["policy_version"] == s.app.policy.version
    row = _tier(s, at)
    assert (row["window_spend_fen"], row["tier"], row["active_months"]) == (0, "member", 0)


# -- the member agreement carries the VIP standing ----------------------------------


def _active_gold_member_with_agreement(s, t: datetime) -> None:
    _order(s, 1, "OrderPaid", t, "O1", 2_500_000)  # gold
    s.engine.run(t, lambda u, c: u.apply_for_vip(c, "M1"))
    s.engine.run(t, lambda u, c: u.start_vip_review(c, "M1"))
    s.engine.run(t, lambda u, c: u.approve_vip(c, "M1"))
    terms = {"parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1", "validity_months": 12}
    s.engine.run(t, lambda u, c: u.draft_contract(c, "AG-1", "member_agreement", terms))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "AG-1", "M1"))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "AG-1", "platform"))
    s.engine.run(t, lambda u, c: u.issue_invoice(
        c, "AG-1", "FEE-1", "M1", 19_900, "CNY", "membership_fee"))
    s.engine.run(t, lambda u, c: u.pay_invoice(c, "AG-1", "FEE-1", 19_900, "CNY", "P1"))
    assert s.app.member("M1").vip_status == "active"


def test_agreement_expiry_fired_by_the_scheduler_lapses_the_member(make_system, event_store):
    s = make_system(event_store, clock=LATE_CLOCK)
    t = datetime(2025, 2, 1, 10, tzinfo=Z)
    _active_gold_member_with_agreement(s, t)
    end = s.app.contract("AG-1").valid_until
    s.engine.advance(end + timedelta(days=1))
    assert s.app.contract("AG-1").status == "expired"
    member = s.app.member("M1")
    assert member.vip_status == "lapsed" and not member.has_benefits
    row = _tier(s, end + timedelta(days=1))
    assert row["vip_status"] == "lapsed"
    lapsed = [c for c in queries.tier_history(s.store, "M1") if c["event"] == "VipLapsed"]
    assert [c["reason"] for c in lapsed] == ["member agreement AG-1 expired without renewal"]
    assert lapsed[0]["at"] == end.astimezone(timezone.utc).isoformat()  # at the end, not when seen


def test_a_query_after_the_agreement_ended_answers_lapsed_before_the_scheduler_records_it(make_system):
    s = make_system(clock=LATE_CLOCK)
    t = datetime(2025, 2, 1, 10, tzinfo=Z)
    _active_gold_member_with_agreement(s, t)
    end = s.app.contract("AG-1").valid_until
    s.engine.flush()
    before, after = (queries.tiers(s.store, end + delta, s.app.policy)[0] for delta in
                     (timedelta(seconds=-1), timedelta(days=1)))
    assert (before["vip_status"], before["lapse_due"]) == ("active", False)
    assert (after["vip_status"], after["lapse_due"]) == ("lapsed", True)   # computed, nothing recorded
    assert s.app.member("M1").vip_status == "active"
    s.engine.advance(end + timedelta(days=1))                             # the scheduler records it
    recorded = queries.tiers(s.store, end + timedelta(days=1), s.app.policy)[0]
    assert (recorded["vip_status"], recorded["lapse_due"]) == ("lapsed", False)


def test_renewal_makes_a_lapsed_standing_active_and_charges_the_fee_of_the_tier_held(make_system):
    s = make_system(clock=LATE_CLOCK)
    t = datetime(2025, 2, 1, 10, tzinfo=Z)
    _active_gold_member_with_agreement(s, t)
    end = s.app.contract("AG-1").valid_until
    later = end + timedelta(days=10)
    _order(s, 2, "OrderPaid", later, "O2", 5_100_000)  # platinum now (the first order left the window)
    assert s.app.member("M1").vip_status == "lapsed"
    s.engine.run(later, lambda u, c: u.renew_contract(c, "AG-1"))
    contract, member = s.app.contract("AG-1"), s.app.member("M1")
    assert contract.status == "effective" and member.vip_status == "active"
    fee = contract.invoices["renewal-1-fee"]
    assert (fee["amount_fen"], fee["kind"], fee["payer"]) == (49_900, "membership_fee", "M1")
    assert _tier(s, later)["vip_status"] == "active"
    books = queries.ledger(s.store, None, s.app.policy, contract="AG-1")
    assert books["by_contract"]["AG-1"]["receivable:M1 CNY"] == 49_900
    # A second renewal in force charges again, for the tier held then.
    s.engine.run(later + timedelta(days=1), lambda u, c: u.renew_contract(c, "AG-1"))
    assert s.app.contract("AG-1").invoices["renewal-2-fee"]["amount_fen"] == 49_900


def test_terminating_the_member_agreement_lapses_the_member(make_system):
    s = make_system(clock=LATE_CLOCK)
    t = datetime(2025, 2, 1, 10, tzinfo=Z)
    _active_gold_member_with_agreement(s, t)
    s.engine.run(t + timedelta(days=30), lambda u, c: u.terminate_contract(
        c, "AG-1", "customer withdrew"))
    assert s.app.contract("AG-1").status == "terminated"
    assert s.app.member("M1").vip_status == "lapsed"
    assert _tier(s, t + timedelta(days=30))["vip_status"] == "lapsed"
