"""Issue 17 items 4 and 5 and DOMAIN.md's settled rules, through the whole backend.

Real event store (SQLite and PostgreSQL), the engine's timers, the real folds and the
query functions the CLI answers with (``vip kpis``, ``vip breaches``, ``vip replay``
summarise them the same way). Items 1 and 2 (compensation, settlement) are in
tests/test_settled_claims.py.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.base import DomainError
from infra.cli.common import summarise
from infra.service_layer.replay import history, replay
from infra.service_layer.upstream import apply_input, parse
from projections import queries
from projections.views import VIEWS
from tests.conftest import FakeClock
from tests.scenario import Z

CLOCK = FakeClock(datetime(2026, 12, 1, tzinfo=Z))
US = timedelta(microseconds=1)


def _order(s, n: int, kind: str, at: datetime, order_id: str, amount_fen: int | None = None,
           member: str = "M1") -> None:
    record = {"type": kind, "event_id": f"o{n}", "member_id": member, "order_id": order_id,
              "occurred_at": at.isoformat()}
    if amount_fen is not None:
        record.update(amount_fen=amount_fen, currency="CNY")
    apply_input(s.engine, parse("orders", record))


def _active_vip(s, t: datetime, amount_fen: int, fee_fen: int = 0) -> None:
    """M1 pays ``amount_fen`` at ``t``, applies, is approved, signs and pays the fee: active VIP."""
    _order(s, 1, "OrderPaid", t, "O1", amount_fen)
    s.engine.run(t, lambda u, c: u.apply_for_vip(c, "M1"))
    s.engine.run(t, lambda u, c: u.start_vip_review(c, "M1"))
    s.engine.run(t, lambda u, c: u.approve_vip(c, "M1"))
    terms = {"parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1", "validity_months": 36}
    s.engine.run(t, lambda u, c: u.draft_contract(c, "AG-1", "member_agreement", terms))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "AG-1", "M1"))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "AG-1", "platform"))
    if fee_fen:
        s.engine.run(t, lambda u, c: u.issue_invoice(c, "AG-1", "FEE-1", "M1", fee_fen, "CNY",
                                                       "membership_fee"))
        s.engine.run(t, lambda u, c: u.pay_invoice(c, "AG-1", "FEE-1", fee_fen, "CNY", "P1"))
    assert s.app.member("M1").vip_status == "active"
    _books_square(s)


def _books_square(s) -> None:
    """The trial balance is zero and nothing invoiced and paid is still receivable."""
    s.engine.flush()
    books = queries.ledger(s.store, None, s.app.policy)
    assert all(t["balanced"] for t in books["trial_balance"].values())
    assert all(v == 0 for p in books["by_party"].values() for k, v in p.items() if k.startswith("receivable"))


def _clock_answers(s, at: datetime) -> dict:
    """What `vip breaches`, `vip kpis` and `vip overdue --as-of at` answer, and `vip replay --as-of at`."""
    store = replay(s.app, VIEWS, until=at)
    policy = s.app.policy
    return {"breaches": queries.pending_breaches(store, at, policy),
            "kpis": queries.complaint_kpis(store, policy, at),
            "overdue": queries.overdue(store, at),
            "replay": {k: v for k, v in summarise(store, at, policy).items()
                       if k in ("pending_breaches", "kpis", "overdue")}}


# -- item 4: clock-dependent answers do not depend on when the scheduler ran -------------------


def test_breach_answers_as_of_an_instant_do_not_depend_on_when_the_scheduler_ran(make_system, event_store):
    """Item 4: a gold complaint filed 2025-09-10 10:00, acknowledged, then nothing; asked as of 09-12
    before the scheduler ran, after it ran, and after later input: the same answers, equal to replay."""
    filed, asked = datetime(2025, 9, 10, 10, tzinfo=Z), datetime(2025, 9, 12, tzinfo=Z)
    s = make_system(event_store, clock=CLOCK)
    _active_vip(s, datetime(2025, 9, 1, 10, tzinfo=Z), 2_500_000, 19_900)
    s.engine.run(filed, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "medium", "x"))
    s.engine.run(filed + timedelta(minutes=30), lambda u, c: u.acknowledge_complaint(c, "C1"))
    fed_until_t = _clock_answers(s, asked)                  # nothing after T, no tick yet
    [breach] = fed_until_t["breaches"]
    assert (breach["clock"], breach["state"], breach["status"]) == ("resolution", "breached", "escalated")
    [kpi] = fed_until_t["kpis"]
    assert (kpi["tier"], kpi["filed"], kpi["breached"]) == ("gold", 1, 1)
    assert fed_until_t["replay"] == {"pending_breaches": fed_until_t["breaches"],
                                     "kpis": fed_until_t["kpis"], "overdue": fed_until_t["overdue"]}
    s.clock.at = datetime(2025, 9, 20, tzinfo=Z)
    s.engine.tick()                                         # the scheduler records the breach now
    assert _clock_answers(s, asked) == fed_until_t          # ... and changes no answer about T
    s.engine.run(datetime(2025, 9, 21, 10, tzinfo=Z), lambda u, c: u.resolve_complaint(c, "C1", "done"))
    assert _clock_answers(s, asked) == fed_until_t          # the full system as of T says the same
    recorded = [e for e in history(s.app, "complaint", "C1") if e["type"] == "ComplaintSlaBreached"]
    assert [e["data"]["deadline"] for e in recorded] == [filed + timedelta(hours=24)]
    _books_square(s)


def test_kpis_of_the_read_store_count_a_breach_the_scheduler_has_not_recorded(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    filed = datetime(2025, 9, 10, 10, tzinfo=Z)
    _active_vip(s, datetime(2025, 9, 1, 10, tzinfo=Z), 2_500_000, 19_900)
    s.engine.run(filed, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "medium", "x"))
    s.engine.flush()
    deadline = filed + timedelta(hours=1)
    at_deadline, after = queries.complaint_kpis(s.store, s.app.policy, deadline), \
        queries.complaint_kpis(s.store, s.app.policy, deadline + US)
    assert (at_deadline[0]["breached"], after[0]["breached"]) == (0, 1)
    [row] = queries.complaint_rows(s.store, deadline + US)
    assert (row["status"], row["escalation_level"], row["breached"]) == ("escalated", 1, ["first_response"])


# -- settled: a deadline is met at it and missed only after it ------------------------------------


def test_an_acknowledgement_at_the_deadline_meets_it_and_nothing_is_breached(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    filed = datetime(2025, 9, 10, 10, tzinfo=Z)
    _active_vip(s, datetime(2025, 9, 1, 10, tzinfo=Z), 2_500_000, 19_900)
    s.engine.run(filed, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "medium", "x"))
    deadline = filed + timedelta(hours=1)
    s.engine.flush()
    states = {b["clock"]: b["state"] for b in queries.pending_breaches(s.store, deadline, s.app.policy)}
    assert states["first_response"] == "at_risk"   # at the deadline: not yet breached
    s.engine.run(deadline, lambda u, c: u.acknowledge_complaint(c, "C1"))
    complaint = s.app.complaint("C1")
    assert complaint.clocks["first_response"]["met"] is True and complaint.status == "acknowledged"
    assert "ComplaintSlaBreached" not in [e["type"] for e in history(s.app, "complaint", "C1")]


def test_an_invoice_is_overdue_only_after_its_due_instant(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    t = datetime(2025, 3, 3, 10, tzinfo=Z)
    terms = {"parties": [{"id": "platform"}, {"id": "SP"}], "revenue_share": {"platform": 7000, "SP": 3000},
             "milestones": [{"id": "m1", "due_at": (t + timedelta(days=5)).isoformat()}]}
    s.engine.run(t, lambda u, c: u.draft_contract(c, "CO-1", "cooperation", terms))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "CO-1", "SP"))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "CO-1", "platform"))
    due = t + timedelta(days=10)
    s.engine.run(t, lambda u, c: u.issue_invoice(c, "CO-1", "I1", "SP", 10_000, "CNY", "service_fee", due))
    s.engine.advance(due)                                   # nothing fires at the due instant itself
    s.engine.flush()
    assert queries.overdue(s.store, due)["invoices"] == []
    assert s.app.contract("CO-1").invoices["I1"]["status"] == "open"
    assert [m["milestone"] for m in queries.overdue(s.store, due)["milestones"]] == ["m1"]
    s.engine.run(due, lambda u, c: u.pay_invoice(c, "CO-1", "I1", 10_000, "CNY", "PAY-1"))
    assert "InvoiceOverdue" not in [e["type"] for e in history(s.app, "contract", "CO-1")]
    s.engine.run(due + timedelta(days=1), lambda u, c: u.issue_invoice(
        c, "CO-1", "I2", "SP", 5_000, "CNY", "service_fee", due + timedelta(days=2)))
    s.engine.advance(due + timedelta(days=2) + US)
    s.engine.flush()
    assert [i["invoice"] for i in queries.overdue(s.store, due + timedelta(days=2) + US)["invoices"]] == ["I2"]
    books = queries.ledger(s.store, None, s.app.policy)
    assert books["trial_balance"]["CNY"]["balanced"]
    assert books["by_party"]["SP"]["receivable CNY"] == 5_000  # only the open invoice is owed


# -- item 5 and fees: the effective tier decides -------------------------------------------------


def test_the_annual_review_keeps_a_standing_the_floor_override_holds(make_system, event_store):
    """Item 5: a silver VIP whose order is refunded, floored at gold until 2026-06-01, at the review."""
    s = make_system(event_store, clock=CLOCK)
    _active_vip(s, datetime(2025, 1, 10, 10, tzinfo=Z), 600_000)
    _order(s, 2, "OrderRefunded", datetime(2025, 3, 1, 10, tzinfo=Z), "O1", 600_000)
    s.engine.run(datetime(2025, 12, 1, tzinfo=Z), lambda u, c: u.set_override(
        c, "M1", "floor", "gold", "key account", datetime(2026, 6, 1, tzinfo=Z)), actor="ops:zhao")
    after_review = datetime(2026, 1, 11, 9, tzinfo=Z)
    s.engine.run(after_review, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "medium", "x"))
    member = s.app.member("M1")
    assert (member.tier, member.effective_tier, member.vip_status) == ("member", "gold", "active")
    assert s.app.complaint("C1").tier == "gold"                 # served with the gold SLA
    with pytest.raises(DomainError, match="cannot apply"):
        s.engine.run(after_review, lambda u, c: u.apply_for_vip(c, "M1"))
    # The standard is judged again at the next anniversary, when the floor has expired.
    s.engine.advance(datetime(2027, 1, 11, tzinfo=Z))
    assert s.app.member("M1").vip_status == "disqualified"
    _books_square(s)


def test_fees_follow_the_effective_tier(make_system, event_store):
    """Settled: approval and renewal charge the fee of the tier the override gives."""
    s = make_system(event_store, clock=CLOCK)
    t = datetime(2025, 2, 1, 10, tzinfo=Z)
    _order(s, 1, "OrderPaid", t, "O1", 600_000)                # silver: no fee of its own
    s.engine.run(t, lambda u, c: u.set_override(
        c, "M1", "floor", "platinum", "partner referral", t + timedelta(days=900)), actor="ops:zhao")
    s.engine.run(t, lambda u, c: u.apply_for_vip(c, "M1"))
    s.engine.run(t, lambda u, c: u.start_vip_review(c, "M1"))
    s.engine.run(t, lambda u, c: u.approve_vip(c, "M1"))
    assert s.app.member("M1").fee_due_fen == s.app.policy.tiers.fee_for("platinum") == 49_900
    terms = {"parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1", "validity_months": 12}
    s.engine.run(t, lambda u, c: u.draft_contract(c, "AG-1", "member_agreement", terms))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "AG-1", "M1"))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "AG-1", "platform"))
    s.engine.run(t, lambda u, c: u.issue_invoice(c, "AG-1", "FEE-1", "M1", 49_900, "CNY", "membership_fee"))
    s.engine.run(t, lambda u, c: u.pay_invoice(c, "AG-1", "FEE-1", 49_900, "CNY", "P1"))
    assert s.app.member("M1").vip_status == "active"
    s.engine.run(t + timedelta(days=30), lambda u, c: u.renew_contract(c, "AG-1"))
    assert s.app.contract("AG-1").invoices["renewal-1-fee"]["amount_fen"] == 49_900
    s.engine.run(t + timedelta(days=31), lambda u, c: u.pay_invoice(
        c, "AG-1", "renewal-1-fee", 49_900, "CNY", "P2"))
    s.engine.flush()
    books = queries.ledger(s.store, None, s.app.policy)
    assert books["trial_balance"]["CNY"]["balanced"] and books["by_party"]["M1"]["receivable CNY"] == 0


def test_member_orders_never_post_to_the_ledger(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    t = datetime(2025, 2, 1, 10, tzinfo=Z)
    _order(s, 1, "OrderPaid", t, "O1", 2_500_000)
    _order(s, 2, "OrderRefunded", t + timedelta(days=1), "O1", 500_000)
    s.engine.flush()
    books = queries.ledger(s.store, None, s.app.policy)
    assert books["postings"] == 0 and books["accounts"] == {}


# -- settled: KPIs and ratings ----------------------------------------------------------------


def test_kpis_measure_business_seconds_by_the_tier_and_shanghai_month_of_filing(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    friday = datetime(2025, 6, 6, 17, tzinfo=Z)               # a working Friday, one hour before closing
    _order(s, 1, "OrderPaid", friday - timedelta(days=1), "O1", 100)   # M1 is a plain member
    s.engine.run(friday, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "medium", "x"))
    monday = datetime(2025, 6, 9, 10, tzinfo=Z)
    s.engine.run(monday, lambda u, c: u.acknowledge_complaint(c, "C1"))
    s.engine.run(monday + timedelta(hours=1), lambda u, c: u.resolve_complaint(c, "C1", "done"))
    # M1 becomes a gold VIP; a complaint filed 00:30 on 1 July in Shanghai (30 June in UTC).
    _active_vip_after(s, datetime(2025, 6, 20, 10, tzinfo=Z))
    july = datetime(2025, 7, 1, 0, 30, tzinfo=Z)
    s.engine.run(july, lambda u, c: u.file_complaint(c, "C2", "M1", "web", "billing", "medium", "x"))
    s.engine.run(july + timedelta(minutes=20), lambda u, c: u.acknowledge_complaint(c, "C2"))
    s.engine.flush()
    answer = queries.complaint_kpis(s.store, s.app.policy, july + timedelta(hours=1))
    kpis = {(k["tier"], k["month"]): k for k in answer}
    assert set(kpis) == {("member", "2025-06"), ("gold", "2025-07")}
    member = kpis[("member", "2025-06")]                         # still grouped by the tier at filing
    assert member["first_response_p50_s"] == 2 * 3600           # Fri 17-18 and Mon 9-10, not 65 h
    assert member["resolution_p50_s"] == 3 * 3600 and member["breached"] == 0
    assert kpis[("gold", "2025-07")]["first_response_p50_s"] == 20 * 60


def _active_vip_after(s, t: datetime) -> None:
    _order(s, 2, "OrderPaid", t, "O2", 2_500_000)
    for step in ("apply_for_vip", "start_vip_review", "approve_vip"):
        s.engine.run(t, lambda u, c, step=step: getattr(u, step)(c, "M1"))
    terms = {"parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1", "validity_months": 12}
    s.engine.run(t, lambda u, c: u.draft_contract(c, "AG-1", "member_agreement", terms))
    for party in ("M1", "platform"):
        s.engine.run(t, lambda u, c, party=party: u.sign_contract(c, "AG-1", party))
    s.engine.run(t, lambda u, c: u.issue_invoice(c, "AG-1", "FEE-1", "M1", 19_900, "CNY", "membership_fee"))
    s.engine.run(t, lambda u, c: u.pay_invoice(c, "AG-1", "FEE-1", 19_900, "CNY", "P1"))
    assert s.app.member("M1").has_benefits


def test_reopening_keeps_the_earlier_rating_in_history_and_asks_for_a_new_one(make_system, event_store):
    s = make_system(event_store, clock=CLOCK)
    t = datetime(2025, 9, 1, 10, tzinfo=Z)
    _active_vip(s, t, 2_500_000, 19_900)
    s.engine.run(t, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "medium", "x"))
    s.engine.run(t + timedelta(hours=1), lambda u, c: u.resolve_complaint(c, "C1", "refunded"))
    s.engine.run(t + timedelta(hours=2), lambda u, c: u.rate_complaint(c, "C1", 2), actor="member:M1")
    s.engine.run(t + timedelta(hours=3), lambda u, c: u.reopen_complaint(c, "C1", "not fixed"))
    s.engine.flush()
    [row] = queries.complaint_rows(s.store, t + timedelta(hours=3))
    assert (row["status"], row["rating"]) == ("reopened", None)  # a new rating is asked for
    assert queries.complaint_kpis(s.store, s.app.policy, t + timedelta(hours=3))[0]["rated"] == 0
    s.engine.run(t + timedelta(hours=4), lambda u, c: u.resolve_complaint(c, "C1", "fixed"))
    s.engine.run(t + timedelta(hours=5), lambda u, c: u.rate_complaint(c, "C1", 5), actor="member:M1")
    rated = [e["data"]["score"] for e in history(s.app, "complaint", "C1") if e["type"] == "ComplaintRated"]
    assert rated == [2, 5]                                       # the earlier rating stays in history
    s.engine.flush()
    [kpi] = queries.complaint_kpis(s.store, s.app.policy, t + timedelta(hours=5))
    assert (kpi["satisfaction_avg"], kpi["rated"]) == (5, 1)
    _books_square(s)
