"""Business rules of the Member aggregate: orders, tiers, annual review, VIP workflow, overrides.

Pure domain tests: aggregates are built directly, commands take a ``Ctx``,
and the state and the collected events are inspected. No database, no bus.
"""
from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.base import Ctx, DomainError, aggregate_id
from domain.member import (
    Member,
    MemberError,
    NotQualifiedError,
    OrderError,
    WorkflowError,
)
from domain.tiering import months_back
from infra.policy_file import load_policy
from domain.window import CANCELLED, PAID, REVERSED

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=SH)
YUAN = 100  # fen per CNY

_ids = itertools.count(1)


def ctx(at: datetime, actor: str = "system") -> Ctx:
    return Ctx(at=at, actor=actor, causation_id=f"cmd-{next(_ids)}")


def new_member(at: datetime = T0, member_id: str = "M1", source: str = "crm") -> Member:
    profile = {"name": "Li Lei"} if source == "crm" else None
    return Member.register(ctx(at, "crm"), member_id, profile, source)


def pay(member: Member, at: datetime, cny: int, order_id: str | None = None,
        occurred_at: datetime | None = None, policy=POLICY) -> str:
    order_id = order_id or f"O{next(_ids)}"
    member.record_order_paid(ctx(at), f"in-{next(_ids)}", order_id, cny * YUAN, "CNY",
                             occurred_at or at, policy)
    return order_id


def act(member: Member, at: datetime, kind: str = "login", occurred_at: datetime | None = None,
        policy=POLICY) -> None:
    member.record_activity(ctx(at), f"in-{next(_ids)}", kind, occurred_at or at, policy)


def names(events) -> list[str]:
    return [type(e).__name__ for e in events]


def state(aggregate) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k not in ("_ctx", "_pending_events")}


def vip_member(cny: int = 25_000, at: datetime = T0) -> Member:
    """A member whose spend gives the tier of ``cny`` and who is an active VIP."""
    m = new_member(at)
    pay(m, at, cny)
    m.apply_for_vip(ctx(at), POLICY)
    m.start_review(ctx(at, "reviewer:wang"))
    m.approve(ctx(at, "reviewer:wang"), POLICY)
    m.record_agreement_signed(ctx(at), "AG-1")
    if m.fee_due_fen:
        m.record_fee_paid(ctx(at), m.fee_due_fen, "CNY", "pay-1", POLICY)
    assert m.vip_status == "active"
    m.collect_events()
    return m


# -- registration --------------------------------------------------------------


def test_crm_registration_opens_a_registered_member_with_a_stable_id():
    m = new_member()
    assert m.id == aggregate_id("member", "M1")
    assert m.registered is True
    assert m.profile == {"name": "Li Lei"}
    assert (m.tier, m.vip_status) == ("member", "none")
    [created] = m.collect_events()
    assert type(created).__name__ == "MemberRegistered"
    assert created.timestamp == T0
    assert created.meta["key"] == "M1"


def test_member_first_seen_in_an_order_is_registered_later_exactly_once():
    m = new_member(source="orders")
    assert m.registered is False
    m.fill_registration(ctx(T0 + timedelta(hours=1)), "crm-1", {"name": "Han Meimei"})
    assert m.registered is True and m.profile["name"] == "Han Meimei"
    with pytest.raises(MemberError, match="already registered"):
        m.fill_registration(ctx(T0 + timedelta(hours=2)), "crm-2", {"name": "x"})


def test_registration_refuses_an_empty_id_and_unknown_profile_fields():
    with pytest.raises(MemberError):
        Member.register(ctx(T0), "  ", None, "crm")
    with pytest.raises(MemberError, match="unknown profile fields"):
        Member.register(ctx(T0), "M2", {"name": "a", "id_card": "110..."}, "crm")


# -- orders ---------------------------------------------------------------------


def test_paid_refunded_and_cancelled_orders_move_net_spend():
    m = new_member()
    o1 = pay(m, T0, 3_000)
    o2 = pay(m, T0 + timedelta(days=1), 1_000)
    m.record_order_refunded(ctx(T0 + timedelta(days=2)), "r1", o1, 500 * YUAN, "CNY",
                            T0 + timedelta(days=2), POLICY)
    m.record_order_cancelled(ctx(T0 + timedelta(days=3)), "c1", o2, T0 + timedelta(days=3))
    now = m.standing_at(T0 + timedelta(days=3), POLICY)
    assert now.spend_fen == 2_500 * YUAN
    assert now.points == 2_500  # one point per CNY of net spend
    assert (m.orders[o1][PAID], m.orders[o1][REVERSED]) == (300_000, 50_000)
    assert m.orders[o2][CANCELLED] is True and m.orders[o2][REVERSED] == 100_000


def test_over_refund_is_refused_with_a_message_naming_the_amounts():
    m = new_member()
    o1 = pay(m, T0, 3_000)
    m.record_order_refunded(ctx(T0), "r1", o1, 1_000, "CNY", T0, POLICY)
    with pytest.raises(OrderError) as err:
        m.record_order_refunded(ctx(T0), "r2", o1, 299_001, "CNY", T0, POLICY)
    assert "299001" in str(err.value) and "299000" in str(err.value) and o1 in str(err.value)
    assert m.orders[o1][REVERSED] == 1_000  # nothing recorded by the refused refund


def test_refund_of_an_unknown_order_is_refused():
    m = new_member()
    with pytest.raises(OrderError, match="no recorded payment"):
        m.record_order_refunded(ctx(T0), "r1", "NOPE", 100, "CNY", T0, POLICY)


def test_cancelled_order_cannot_be_cancelled_again_or_refunded():
    m = new_member()
    o1 = pay(m, T0, 1_000)
    m.record_order_cancelled(ctx(T0), "c1", o1, T0)
    with pytest.raises(OrderError, match="already cancelled"):
        m.record_order_cancelled(ctx(T0), "c2", o1, T0)
    with pytest.raises(OrderError, match="exceeds"):
        m.record_order_refunded(ctx(T0), "r1", o1, 1, "CNY", T0, POLICY)


def test_orders_refuse_malformed_currencies_bad_amounts_duplicates_and_naive_times():
    m = new_member()
    for bad in ("usd", "US", "", None):
        with pytest.raises(OrderError, match="currency"):
            m.record_order_paid(ctx(T0), "i1", "O1", 100, bad, T0, POLICY)
    for bad in (0, -5, 12.5, True):
        with pytest.raises(OrderError, match="positive whole number"):
            m.record_order_paid(ctx(T0), "i1", "O1", bad, "CNY", T0, POLICY)
    with pytest.raises(DomainError, match="timezone-aware"):
        m.record_order_paid(ctx(T0), "i1", "O1", 100, "CNY", datetime(2025, 3, 1, 10), POLICY)
    with pytest.raises(DomainError, match="timezone-aware"):
        Ctx(at=datetime(2025, 3, 1, 10))
    pay(m, T0, 10, order_id="O1")
    with pytest.raises(OrderError, match="already recorded"):
        pay(m, T0, 10, order_id="O1")
    with pytest.raises(OrderError, match="currency"):
        m.record_order_refunded(ctx(T0), "r1", "O1", 100, "EUR", T0, POLICY)


# -- tier rules -----------------------------------------------------------------


def test_an_order_exactly_365_days_before_t_does_not_count():
    t = datetime(2026, 3, 1, 10, 0, tzinfo=SH)
    m = new_member(t - timedelta(days=400))
    pay(m, t - timedelta(days=365), 3_000)
    pay(m, t, 3_000)
    assert m.standing_at(t, POLICY).spend_fen == 3_000 * YUAN
    assert m.tier == "member"


def test_an_order_one_microsecond_inside_the_window_counts_and_upgrades():
    t = datetime(2026, 3, 1, 10, 0, tzinfo=SH)
    m = new_member(t - timedelta(days=400))
    pay(m, t - timedelta(days=365) + timedelta(microseconds=1), 3_000)
    pay(m, t, 3_000)
    assert m.standing_at(t, POLICY).spend_fen == 6_000 * YUAN
    assert m.tier == "silver"


def test_upgrade_takes_effect_at_the_qualifying_order_and_records_why():
    m = new_member()
    pay(m, T0, 4_000)
    m.collect_events()
    at = T0 + timedelta(days=20, hours=3)
    pay(m, at, 17_000)  # 21,000 CNY in the window: gold
    events = m.collect_events()
    assert names(events) == ["OrderPaid", "TierUpgraded"]
    upgraded = events[-1]
    assert upgraded.timestamp == at
    assert (upgraded.from_tier, upgraded.to_tier) == ("member", "gold")
    assert upgraded.policy_version == POLICY.version == "default-2025.1"
    assert upgraded.standing == {"spend_fen": 2_100_000, "points": 21_000, "active_months": 1}
    assert m.tier == "gold" and m.tier_since == at
    assert m.first_silver_at == at
    assert m.next_review_at == datetime(2026, 3, 21, 13, 0, tzinfo=SH)


def test_points_route_reaches_a_tier_the_spend_route_does_not():
    m = new_member()
    pay(m, T0, 4_000)  # 4,000 points; spend alone gives member
    for day in range(5):  # 5 VIP events x 200 points by policy
        act(m, T0 + timedelta(days=day + 1), "vip_event")
    now = m.standing_at(T0 + timedelta(days=5), POLICY)
    assert (now.spend_fen, now.points) == (400_000, 5_000)
    assert m.tier == "silver"


def test_the_higher_of_spend_and_points_routes_wins():
    m = new_member()
    pay(m, T0, 19_000)
    assert m.tier == "silver"  # spend 19,000 CNY is silver
    act(m, T0 + timedelta(hours=1), "vip_event")
    act(m, T0 + timedelta(hours=2), "vip_event")
    act(m, T0 + timedelta(hours=3), "review")
    act(m, T0 + timedelta(hours=4), "review")
    act(m, T0 + timedelta(hours=5), "login")
    assert m.standing_at(T0 + timedelta(hours=5), POLICY).points == 19_501
    assert m.tier == "silver"
    for h in range(6, 505):  # 499 more logins: 20,000 points
        act(m, T0 + timedelta(hours=h), "login")
    assert m.tier == "gold"


def test_activity_points_come_from_the_policy_and_are_recorded_with_its_version():
    policy = dataclasses.replace(
        POLICY, version="test-activity",
        tiers=dataclasses.replace(POLICY.tiers, activity_points={"login": 5000}))
    m = new_member()
    act(m, T0, "login", policy=policy)
    events = m.collect_events()
    assert names(events) == ["MemberRegistered", "ActivityRecorded", "TierUpgraded"]
    assert events[1].points == 5000 and events[1].policy_version == "test-activity"
    assert events[2].policy_version == "test-activity"
    assert m.tier == "silver"


def _diamond_candidate(t: datetime) -> Member:
    """100,000 CNY spend and login activity in 5 Shanghai months (Jun-Oct 2025)."""
    m = new_member(datetime(2025, 6, 1, 9, 0, tzinfo=SH))
    pay(m, datetime(2025, 6, 10, 12, 0, tzinfo=SH), 100_000)
    for month in (6, 7, 8, 9, 10):
        act(m, datetime(2025, month, 15, 12, 0, tzinfo=SH))
    assert m.tier == "platinum"  # spend reaches diamond, activity (5 months) does not
    return m


def test_diamond_counts_an_activity_in_its_shanghai_month_not_its_utc_month():
    """DOMAIN: 6 of the 12 calendar months ending with t's month, in Asia/Shanghai."""
    t = datetime(2026, 2, 15, 12, 0, tzinfo=SH)  # window months 2025-03 .. 2026-02
    m = _diamond_candidate(t)
    # 2025-02-28 17:00 UTC is 2025-03-01 01:00 in Shanghai: inside the window.
    act(m, t, occurred_at=datetime(2025, 2, 28, 17, 0, tzinfo=timezone.utc))
    assert m.standing_at(t, POLICY).active_months == 6
    assert m.tier == "diamond"


def test_diamond_does_not_count_an_activity_whose_shanghai_month_is_outside_the_window():
    t = datetime(2026, 2, 15, 12, 0, tzinfo=SH)
    m = _diamond_candidate(t)
    # 2025-02-28 15:00 UTC is 23:00 the same day in Shanghai: month 2025-02, outside.
    act(m, t, occurred_at=datetime(2025, 2, 28, 15, 0, tzinfo=timezone.utc))
    assert m.standing_at(t, POLICY).active_months == 5
    assert m.tier == "platinum"


def test_activity_window_ends_with_the_shanghai_month_of_t():
    t = datetime(2026, 1, 31, 16, 30, tzinfo=timezone.utc)  # 2026-02-01 00:30 in Shanghai
    window = months_back(t, 12, POLICY)
    assert len(window) == 12
    assert "2026-02" in window and "2025-03" in window
    assert "2025-02" not in window


def test_diamond_by_the_points_route_also_needs_six_active_months():
    m = new_member(datetime(2025, 5, 1, tzinfo=SH))
    pay(m, datetime(2025, 5, 2, tzinfo=SH), 99_000)
    for month in (5, 6, 7, 8, 9):
        act(m, datetime(2025, month, 20, tzinfo=SH), "vip_event")
    assert m.standing_at(datetime(2025, 9, 20, tzinfo=SH), POLICY).points == 100_000
    assert m.tier == "platinum"
    act(m, datetime(2025, 10, 3, tzinfo=SH))
    assert m.tier == "diamond"


def test_a_month_with_a_paid_order_counts_as_active_for_diamond():
    """Issue 2 §4: a month counts when the member had a paid order or CRM activity in it."""
    m = new_member(datetime(2025, 1, 1, tzinfo=SH))
    for month in range(1, 7):  # six monthly purchases, no CRM activity at all
        pay(m, datetime(2025, month, 10, tzinfo=SH), 20_000)
    assert m.tier == "diamond"


# -- annual review ----------------------------------------------------------------


def test_review_is_refused_before_it_is_due_and_allowed_at_the_anniversary():
    """Seed 002 §2.3.1 via the annual review at the anniversary of first reaching silver."""
    m = new_member()
    pay(m, T0, 6_000)
    due = datetime(2026, 3, 1, 10, 0, tzinfo=SH)
    assert m.next_review_at == due
    with pytest.raises(MemberError, match="no review due"):
        m.review(ctx(due - timedelta(microseconds=1)), POLICY)
    m.review(ctx(due), POLICY)
    assert m.next_review_at is None  # fell to member: no further review


def test_review_without_any_tier_is_refused():
    m = new_member()
    with pytest.raises(MemberError, match="no review due"):
        m.review(ctx(T0 + timedelta(days=400)), POLICY)


def test_review_lowers_by_at_most_one_step_and_is_stamped_at_the_anniversary():
    m = new_member()
    act(m, T0)
    pay(m, T0, 100_000)
    for month in range(4, 9):
        act(m, datetime(2025, month, 5, tzinfo=SH))
    assert m.tier == "diamond"
    m.collect_events()
    due = datetime(2026, 3, 1, 10, 0, tzinfo=SH)
    late = due + timedelta(days=3)  # the scheduler ran late
    m.review(ctx(late), POLICY)
    [reviewed] = m.collect_events()
    assert (reviewed.from_tier, reviewed.to_tier) == ("diamond", "platinum")
    assert reviewed.review_at == due and m.tier_since == due
    assert reviewed.policy_version == POLICY.version
    assert reviewed.standing["spend_fen"] == 0
    assert m.next_review_at == datetime(2027, 3, 1, 10, 0, tzinfo=SH)
    m.review(ctx(datetime(2027, 3, 1, 10, 0, tzinfo=SH)), POLICY)
    assert m.tier == "gold"


def test_review_downgrade_steps_come_from_the_policy():
    policy = dataclasses.replace(
        POLICY, version="two-steps", tiers=dataclasses.replace(POLICY.tiers, max_downgrade_steps=2))
    m = new_member()
    pay(m, T0, 60_000)
    assert m.tier == "platinum"
    m.review(ctx(datetime(2026, 3, 1, 10, 0, tzinfo=SH)), policy)
    assert m.tier == "silver"


def test_review_keeps_the_tier_when_the_standard_is_still_met():
    m = new_member()
    pay(m, T0, 25_000)
    pay(m, datetime(2026, 2, 1, tzinfo=SH), 25_000)  # 50,000 CNY in the window: platinum
    assert m.tier == "platinum"
    m.collect_events()
    m.review(ctx(datetime(2026, 3, 1, 10, 0, tzinfo=SH)), POLICY)
    [reviewed] = m.collect_events()
    # at the anniversary only the February order is in the window: 25,000 CNY is gold
    assert (reviewed.from_tier, reviewed.to_tier) == ("platinum", "gold")


def test_review_never_raises_a_tier():
    """A new policy with lower thresholds does not upgrade at review; only events upgrade."""
    m = new_member()
    pay(m, T0, 6_000)
    assert m.tier == "silver"
    generous = dataclasses.replace(POLICY, version="generous", tiers=dataclasses.replace(
        POLICY.tiers, rules=tuple(
            dataclasses.replace(r, min_spend_fen=r.min_spend_fen // 10, min_points=r.min_points // 10)
            for r in POLICY.tiers.rules)))
    pay(m, datetime(2026, 2, 1, tzinfo=SH), 6_000, policy=POLICY)
    assert m.tier == "silver"  # 12,000 CNY under the policy in force
    due = datetime(2026, 3, 1, 10, 0, tzinfo=SH)
    assert m.standing_at(due, generous).tier == "platinum"
    m.collect_events()
    m.review(ctx(due), generous)
    [reviewed] = m.collect_events()
    assert (reviewed.from_tier, reviewed.to_tier) == ("silver", "silver")
    assert m.tier == "silver"


def test_silver_falling_to_member_at_review_disqualifies_vip_status():
    """Seed 002 §2.3.1: VIP status is lost automatically when the standard is no longer met."""
    m = vip_member(cny=6_000)
    assert m.tier == "silver" and m.has_benefits
    m.review(ctx(datetime(2026, 3, 1, 10, 0, tzinfo=SH)), POLICY)
    events = m.collect_events()
    assert names(events) == ["TierReviewed", "VipDisqualified"]
    assert events[1].policy_version == POLICY.version
    assert m.tier == "member" and m.vip_status == "disqualified"
    assert not m.has_benefits


def test_falling_to_member_without_vip_standing_records_no_disqualification():
    m = new_member()
    pay(m, T0, 6_000)
    m.collect_events()
    m.review(ctx(datetime(2026, 3, 1, 10, 0, tzinfo=SH)), POLICY)
    assert names(m.collect_events()) == ["TierReviewed"]
    assert m.vip_status == "none"


def test_refund_never_lowers_the_tier_before_the_annual_review():
    m = new_member()
    o1 = pay(m, T0, 25_000)
    assert m.tier == "gold"
    m.collect_events()
    m.record_order_refunded(ctx(T0 + timedelta(days=10)), "r1", o1, 24_000 * YUAN, "CNY",
                            T0 + timedelta(days=10), POLICY)
    assert names(m.collect_events()) == ["OrderRefunded"]
    assert m.tier == "gold"
    assert m.standing_at(T0 + timedelta(days=10), POLICY).tier == "member"
    m.review(ctx(datetime(2026, 3, 1, 10, 0, tzinfo=SH)), POLICY)
    assert m.tier == "silver"  # one step at review, even though the standing is member


# -- VIP workflow ---------------------------------------------------------------------


def test_vip_workflow_apply_review_approve_sign_and_pay_activates():
    """Seed 002 §2.2.1-§2.2.3 (apply, review, sign); seed 000 §2.1 (fee paid)."""
    m = new_member()
    pay(m, T0, 25_000)
    m.collect_events()
    m.apply_for_vip(ctx(T0), POLICY)
    assert m.vip_status == "applied"
    m.start_review(ctx(T0, "reviewer:wang"))
    assert m.vip_status == "under_review"
    m.approve(ctx(T0, "reviewer:wang"), POLICY)
    assert m.vip_status == "approved" and m.fee_due_fen == 19_900
    m.record_agreement_signed(ctx(T0), "AG-1")
    assert m.vip_status == "approved" and not m.has_benefits  # fee not yet paid
    m.record_fee_paid(ctx(T0), 10_000, "CNY", "pay-1", POLICY)
    assert m.vip_status == "approved"
    m.record_fee_paid(ctx(T0), 9_900, "CNY", "pay-2", POLICY)
    assert m.vip_status == "active" and m.has_benefits
    events = m.collect_events()
    assert names(events) == ["VipApplied", "VipReviewStarted", "VipApproved", "VipAgreementSigned",
                             "VipFeePaid", "VipFeePaid", "VipActivated"]
    assert events[2].reviewer == "reviewer:wang" and events[2].tier == "gold"
    assert events[-1].agreement_id == "AG-1"


def test_silver_has_no_fee_so_signing_the_agreement_activates():
    m = new_member()
    pay(m, T0, 6_000)
    m.apply_for_vip(ctx(T0), POLICY)
    m.start_review(ctx(T0, "reviewer:wang"))
    m.approve(ctx(T0, "reviewer:wang"), POLICY)
    assert m.fee_due_fen == 0 and m.vip_status == "approved"
    m.record_agreement_signed(ctx(T0), "AG-1")
    assert m.vip_status == "active"


def test_apply_is_refused_when_not_qualified_naming_what_is_needed():
    """Seed 002 §2.1.1: the annual spend or points standard must be met."""
    m = new_member()
    pay(m, T0, 1_234)
    with pytest.raises(NotQualifiedError) as err:
        m.apply_for_vip(ctx(T0), POLICY)
    msg = str(err.value)
    assert "123400 fen" in msg and "1234 points" in msg
    assert "500000 fen" in msg and "5000 points" in msg
    assert m.vip_status == "none"


def test_workflow_steps_out_of_order_are_refused():
    m = new_member()
    pay(m, T0, 6_000)
    with pytest.raises(WorkflowError):
        m.start_review(ctx(T0))
    m.apply_for_vip(ctx(T0), POLICY)
    with pytest.raises(WorkflowError, match="cannot apply"):
        m.apply_for_vip(ctx(T0), POLICY)
    with pytest.raises(WorkflowError):
        m.approve(ctx(T0), POLICY)
    with pytest.raises(WorkflowError):
        m.record_agreement_signed(ctx(T0), "AG-1")
    with pytest.raises(WorkflowError):
        m.terminate_rights(ctx(T0), "breach")


def test_rejection_needs_a_reason_and_allows_a_new_application():
    m = new_member()
    pay(m, T0, 6_000)
    m.apply_for_vip(ctx(T0), POLICY)
    m.start_review(ctx(T0, "reviewer:wang"))
    with pytest.raises(WorkflowError, match="reason"):
        m.reject(ctx(T0, "reviewer:wang"), "  ")
    m.reject(ctx(T0, "reviewer:wang"), "documents incomplete")
    assert m.vip_status == "rejected"
    m.apply_for_vip(ctx(T0 + timedelta(days=1)), POLICY)
    assert m.vip_status == "applied"


def test_revoke_needs_a_reason_and_a_standing_to_revoke():
    """Seed 002 §2.3.2: the company may cancel VIP status, with a reason."""
    m = vip_member()
    with pytest.raises(WorkflowError, match="reason"):
        m.revoke(ctx(T0, "ops:zhao"), "")
    m.revoke(ctx(T0, "ops:zhao"), "abuse of returns")
    [revoked] = m.collect_events()
    assert revoked.reason == "abuse of returns" and revoked.actor == "ops:zhao"
    assert m.vip_status == "revoked" and not m.has_benefits
    with pytest.raises(WorkflowError, match="no VIP standing"):
        m.revoke(ctx(T0, "ops:zhao"), "again")
    m.apply_for_vip(ctx(T0 + timedelta(days=30)), POLICY)
    assert m.vip_status == "applied" and m.fee_paid_fen == 0 and m.agreement_id is None


def test_breach_terminates_rights_and_a_new_application_restarts_the_workflow():
    """Seed 002 §4.3.2: a customer in breach of the agreement loses the rights."""
    m = vip_member()
    with pytest.raises(WorkflowError, match="reason"):
        m.terminate_rights(ctx(T0, "ops:zhao"), " ")
    m.terminate_rights(ctx(T0, "ops:zhao"), "resold VIP trial products")
    assert m.vip_status == "terminated" and not m.has_benefits
    m.apply_for_vip(ctx(T0 + timedelta(days=60)), POLICY)
    m.start_review(ctx(T0 + timedelta(days=60), "reviewer:wang"))
    m.approve(ctx(T0 + timedelta(days=60), "reviewer:wang"), POLICY)
    assert m.fee_due_fen == 19_900 and m.fee_paid_fen == 0  # the fee is owed again


def test_disqualified_member_reapplies_once_qualified_again():
    m = vip_member(cny=6_000)
    m.review(ctx(datetime(2026, 3, 1, 10, 0, tzinfo=SH)), POLICY)
    assert m.vip_status == "disqualified"
    with pytest.raises(NotQualifiedError):
        m.apply_for_vip(ctx(datetime(2026, 3, 2, tzinfo=SH)), POLICY)
    pay(m, datetime(2026, 4, 1, tzinfo=SH), 7_000)
    assert m.tier == "silver"
    assert m.next_review_at == datetime(2027, 3, 1, 10, 0, tzinfo=SH)  # anniversary of first silver
    m.apply_for_vip(ctx(datetime(2026, 4, 2, tzinfo=SH)), POLICY)
    assert m.vip_status == "applied"


def test_a_fee_paid_in_another_currency_does_not_count_toward_the_cny_fee():
    """Seed 000 §2.1: VIP users are those who paid the (CNY) fee."""
    m = new_member()
    pay(m, T0, 25_000)
    m.apply_for_vip(ctx(T0), POLICY)
    m.start_review(ctx(T0, "reviewer:wang"))
    m.approve(ctx(T0, "reviewer:wang"), POLICY)
    m.record_agreement_signed(ctx(T0), "AG-1")
    try:
        m.record_fee_paid(ctx(T0), 19_900, "JPY", "pay-1", POLICY)
    except DomainError:
        pass
    assert m.vip_status == "approved"


# -- manual overrides -------------------------------------------------------------------


def test_override_needs_a_kind_reason_named_actor_and_future_expiry():
    m = new_member()
    later = T0 + timedelta(days=30)
    with pytest.raises(MemberError, match="kind"):
        m.set_override(ctx(T0, "ops:zhao"), "boost", "gold", "vip guest", later)
    with pytest.raises(MemberError, match="reason"):
        m.set_override(ctx(T0, "ops:zhao"), "pin", "gold", " ", later)
    with pytest.raises(MemberError, match="named actor"):
        m.set_override(ctx(T0, "system"), "pin", "gold", "vip guest", later)
    with pytest.raises(MemberError, match="expire after"):
        m.set_override(ctx(T0, "ops:zhao"), "pin", "gold", "vip guest", T0)
    with pytest.raises(DomainError, match="timezone-aware"):
        m.set_override(ctx(T0, "ops:zhao"), "pin", "gold", "vip guest", datetime(2025, 4, 1))
    assert m.override is None and names(m.collect_events()) == ["MemberRegistered"]


def test_pin_sets_the_effective_tier_and_floor_only_raises_it():
    m = new_member()
    pay(m, T0, 25_000)  # gold
    later = T0 + timedelta(days=30)
    m.set_override(ctx(T0, "ops:zhao"), "pin", "silver", "investigation", later)
    assert (m.tier, m.effective_tier) == ("gold", "silver")
    assert m.override["actor"] == "ops:zhao" and m.override["expires_at"] == later
    m.set_override(ctx(T0, "ops:zhao"), "floor", "silver", "courtesy", later)
    assert m.effective_tier == "gold"  # a floor below the tier changes nothing
    m.set_override(ctx(T0, "ops:zhao"), "floor", "diamond", "celebrity", later)
    assert m.effective_tier == "diamond"


def test_pin_to_member_removes_benefits_of_an_active_vip():
    m = vip_member()
    m.set_override(ctx(T0, "ops:zhao"), "pin", "member", "fraud check", T0 + timedelta(days=7))
    assert m.vip_status == "active" and not m.has_benefits


def test_floor_override_lets_a_member_apply_for_vip():
    m = new_member()
    m.set_override(ctx(T0, "ops:zhao"), "floor", "gold", "partner referral", T0 + timedelta(days=90))
    m.apply_for_vip(ctx(T0), POLICY)
    [*_, applied] = m.collect_events()
    assert applied.tier == "gold"


def test_override_expires_only_at_or_after_its_expiry():
    m = new_member()
    expiry = T0 + timedelta(days=30)
    m.set_override(ctx(T0, "ops:zhao"), "pin", "gold", "trial", expiry)
    with pytest.raises(MemberError, match="no override expiring"):
        m.expire_override(ctx(expiry - timedelta(microseconds=1)))
    assert m.effective_tier == "gold"
    m.collect_events()
    m.expire_override(ctx(expiry))
    [cleared] = m.collect_events()
    assert cleared.reason == "expired" and cleared.timestamp == expiry
    assert m.override is None and m.effective_tier == "member"
    with pytest.raises(MemberError):
        m.expire_override(ctx(expiry))
    with pytest.raises(MemberError, match="no tier override"):
        m.clear_override(ctx(expiry, "ops:zhao"), "done")


# -- determinism ---------------------------------------------------------------------------


def test_replaying_the_events_rebuilds_the_same_member():
    m = new_member(datetime(2025, 5, 1, tzinfo=SH))
    o1 = pay(m, datetime(2025, 5, 2, tzinfo=SH), 100_000)
    for month in range(5, 11):
        act(m, datetime(2025, month, 20, tzinfo=SH), "vip_event")
    m.record_order_refunded(ctx(datetime(2025, 11, 1, tzinfo=SH)), "r1", o1, 10_000, "CNY",
                            datetime(2025, 11, 1, tzinfo=SH), POLICY)
    m.apply_for_vip(ctx(datetime(2025, 11, 2, tzinfo=SH)), POLICY)
    m.start_review(ctx(datetime(2025, 11, 2, tzinfo=SH), "reviewer:wang"))
    m.approve(ctx(datetime(2025, 11, 3, tzinfo=SH), "reviewer:wang"), POLICY)
    m.record_agreement_signed(ctx(datetime(2025, 11, 3, tzinfo=SH)), "AG-9")
    m.record_fee_paid(ctx(datetime(2025, 11, 4, tzinfo=SH)), 99_900, "CNY", "pay-9", POLICY)
    m.set_override(ctx(datetime(2025, 11, 5, tzinfo=SH), "ops:zhao"), "floor", "diamond", "x",
                   datetime(2025, 12, 5, tzinfo=SH))
    m.review(ctx(datetime(2026, 5, 2, tzinfo=SH)), POLICY)
    assert m.tier == "platinum" and m.vip_status == "active"
    events = m.collect_events()
    rebuilt = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    assert state(rebuilt) == state(m)
    assert rebuilt.effective_tier == m.effective_tier == "diamond"


def test_a_deep_copy_of_a_member_shares_no_mutable_state():
    """The repository's cache hands out deep copies; a command on one must not touch the other."""
    import copy
    m = new_member()
    pay(m, T0, 6_000)
    m.collect_events()
    clone = copy.deepcopy(m)
    pay(clone, T0 + timedelta(days=1), 30_000)
    assert len(m.orders) == 1 and len(clone.orders) == 2
    assert m.tier == "silver" and clone.tier == "gold"
    assert m.orders.keys() != clone.orders.keys()
    assert m.pending_events == [] and clone.pending_events


# -- refunds at their order's instant, active months, other currencies (issue 6) ----


def test_refund_reverses_its_own_order_at_its_occurred_at():
    """Issue 6: 10,000 CNY paid 2025-01-05, refunded 2025-06-01, 6,000 CNY paid 2025-12-01."""
    first = datetime(2025, 1, 5, 10, tzinfo=SH)
    m = new_member(first)
    big = pay(m, first, 10_000)
    refund_at = datetime(2025, 6, 1, 10, tzinfo=SH)
    m.record_order_refunded(ctx(refund_at), "r1", big, 10_000 * YUAN, "CNY", refund_at, POLICY)
    pay(m, datetime(2025, 12, 1, 10, tzinfo=SH), 6_000)
    # The refunded order has left the window and taken its refund with it.
    assert m.standing_at(datetime(2026, 1, 6, 10, tzinfo=SH), POLICY).spend_fen == 6_000 * YUAN
    assert m.standing_at(datetime(2025, 12, 2, tzinfo=SH), POLICY).spend_fen == 6_000 * YUAN
    m.review(ctx(m.next_review_at), POLICY)
    reviewed = m.collect_events()[-1]
    assert type(reviewed).__name__ == "TierReviewed"
    assert (reviewed.from_tier, reviewed.to_tier) == ("silver", "silver")
    assert reviewed.standing["spend_fen"] == 6_000 * YUAN


def test_a_refund_never_lowers_the_spend_of_other_orders():
    m = new_member()
    old = pay(m, T0, 3_000)
    pay(m, T0 + timedelta(days=200), 2_000)
    later = T0 + timedelta(days=370)  # the first order is out of the window, the second in
    m.record_order_refunded(ctx(later), "r1", old, 3_000 * YUAN, "CNY", later, POLICY)
    assert m.standing_at(later, POLICY).spend_fen == 2_000 * YUAN


def test_a_cancelled_or_fully_refunded_order_does_not_make_its_month_active():
    """Issue 6: cancelled 1-fen orders made months active and lifted a member to diamond."""
    m = new_member()
    for month in range(5):
        at = T0 + timedelta(days=31 * month)
        tiny = f"tiny-{month}"
        m.record_order_paid(ctx(at), f"p{month}", tiny, 1, "CNY", at, POLICY)
        if month % 2:
            m.record_order_cancelled(ctx(at), f"c{month}", tiny, at)
        else:
            m.record_order_refunded(ctx(at), f"r{month}", tiny, 1, "CNY", at, POLICY)
    big_at = T0 + timedelta(days=31 * 5)
    pay(m, big_at, 100_000)
    now = m.standing_at(big_at, POLICY)
    assert now.active_months == 1 and m.tier == "platinum"


def test_a_partly_refunded_order_keeps_its_month_active():
    m = new_member()
    o1 = pay(m, T0, 100)
    m.record_order_refunded(ctx(T0), "r1", o1, 99 * YUAN, "CNY", T0, POLICY)
    assert m.standing_at(T0, POLICY).active_months == 1
    m.record_order_cancelled(ctx(T0), "c1", o1, T0)
    assert m.standing_at(T0, POLICY).active_months == 0


def test_an_order_in_another_currency_is_recorded_but_counts_nothing_without_a_conversion():
    m = new_member()
    m.collect_events()
    m.record_order_paid(ctx(T0), "i1", "O-usd", 1_000_000, "USD", T0, POLICY)
    [paid] = m.collect_events()
    assert (paid.currency, paid.amount_fen, paid.counted_fen) == ("USD", 1_000_000, 0)
    assert paid.policy_version == POLICY.version
    now = m.standing_at(T0, POLICY)
    assert (now.spend_fen, now.points, now.active_months, m.tier) == (0, 0, 0, "member")
    m.record_order_refunded(ctx(T0), "r1", "O-usd", 500_000, "USD", T0, POLICY)  # recorded too
    assert m.orders["O-usd"][REVERSED] == 500_000


def test_an_order_in_another_currency_counts_through_the_conversion_the_policy_states():
    rates = dataclasses.replace(POLICY.tiers, conversions={"USD": 7_200_000})  # 7.2 CNY per USD
    policy = dataclasses.replace(POLICY, version="test-usd", tiers=rates)
    m = new_member()
    m.collect_events()
    m.record_order_paid(ctx(T0), "i1", "O-usd", 100_000, "USD", T0, policy)  # 1,000 USD
    [paid, upgraded] = m.collect_events()
    assert paid.counted_fen == 720_000 and paid.policy_version == "test-usd"
    assert upgraded.to_tier == "silver"
    m.record_order_refunded(ctx(T0), "r1", "O-usd", 25_000, "USD", T0, policy)
    assert m.standing_at(T0, policy).spend_fen == 540_000  # three quarters still count
    with pytest.raises(OrderError, match="refund currency"):
        m.record_order_refunded(ctx(T0), "r2", "O-usd", 100, "CNY", T0, policy)


# -- the VIP standing follows the member agreement (seed 002 §9, §12) ---------------


def test_the_standing_lapses_with_its_agreement_and_a_renewal_makes_it_active_with_the_tier_fee():
    m = vip_member(25_000)  # gold, agreement AG-1
    m.lapse(ctx(T0 + timedelta(days=1)), "AG-other", "another agreement ended")
    assert m.collect_events() == [] and m.vip_status == "active"
    m.lapse(ctx(T0 + timedelta(days=1)), "AG-1", "member agreement AG-1 expired without renewal")
    [lapsed] = m.collect_events()
    assert type(lapsed).__name__ == "VipLapsed" and m.vip_status == "lapsed" and not m.has_benefits
    pay(m, T0 + timedelta(days=2), 30_000)  # platinum by now
    m.collect_events()
    fee = m.renew_standing(ctx(T0 + timedelta(days=3)), "AG-1", POLICY)
    [renewed] = m.collect_events()
    assert fee == renewed.fee_due_fen == POLICY.tiers.fee_for("platinum") == 49_900
    assert renewed.tier == "platinum" and renewed.policy_version == POLICY.version
    assert m.vip_status == "active"


def test_a_standing_lost_otherwise_is_not_restored_by_renewing_the_agreement():
    m = vip_member(25_000)
    m.revoke(ctx(T0 + timedelta(days=1), "ops"), "fraud")
    with pytest.raises(WorkflowError, match="applies again"):
        m.renew_standing(ctx(T0 + timedelta(days=2)), "AG-1", POLICY)
    m.lapse(ctx(T0 + timedelta(days=2)), "AG-1", "terminated")
    assert m.vip_status == "revoked"


# -- the VIP workflow table -------------------------------------------------------------


def test_every_vip_status_a_command_can_reach_is_in_the_workflow_table():
    from domain import vip_workflow as flow
    for action, (allowed_from, to) in flow.TRANSITIONS.items():
        assert to in flow.STATUSES and set(allowed_from) <= set(flow.STATUSES), action
    # Every ended standing may apply again; a standing in progress or held may not.
    assert all(flow.allowed(s, "apply") for s in ("none", "rejected", "revoked", "lapsed"))
    assert not any(flow.allowed(s, "apply") for s in flow.IN_PROGRESS_OR_HELD)


def test_a_command_refused_by_the_workflow_table_names_the_status_it_needs():
    m = new_member()
    with pytest.raises(WorkflowError, match="VIP status is none, needs under_review"):
        m.approve(Ctx(at=T0, actor="reviewer"), POLICY)
    with pytest.raises(WorkflowError, match="needs active"):
        m.terminate_rights(Ctx(at=T0, actor="ops"), "breach")
