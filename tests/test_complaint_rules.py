"""Business rules of the Complaint aggregate and its SLA clocks.

Pure domain tests: complaints are filed directly with the default policy and
driven with ``Ctx``; the calendars come from the policy (7x24 for VIP tiers,
cn-business for members). Seed 002 §3.2, §3.3, §5.3 and §7.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.base import Ctx, DomainError, aggregate_id
from domain.complaint import Complaint, ComplaintError
from infra.policy_file import load_policy

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
ALWAYS = POLICY.calendar("7x24")
BIZ = POLICY.calendar("cn-business")
T = datetime(2025, 3, 10, 10, 0, tzinfo=SH)  # a Monday, inside business hours
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)


def ctx(at: datetime, actor: str = "agent:chen") -> Ctx:
    return Ctx(at=at, actor=actor)


def file(tier: str = "diamond", at: datetime = T, channel: str = "web", severity: str = "high",
         category: str = "delivery", complaint_id: str = "CP-1") -> Complaint:
    return Complaint.file(ctx(at, "member:M1"), complaint_id, "M1", channel, category, severity,
                          "pii:sealed-text", tier, POLICY)


def names(events) -> list[str]:
    return [type(e).__name__ for e in events]


def cal(c: Complaint):
    return POLICY.calendar(c.calendar_id)


# -- filing ---------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["phone", "web", "email", "app"])
def test_complaint_can_be_filed_through_each_channel(channel):
    """Seed 002 §3.3.1 / §7.1: phone, web (network), email, and the app."""
    c = file(channel=channel)
    [filed] = c.collect_events()
    assert filed.channel == channel and c.status == "filed" and c.is_open


@pytest.mark.parametrize("channel", ["wechat", "fax", "", "Phone"])
def test_filing_refuses_an_unknown_channel(channel):
    with pytest.raises(ComplaintError, match="channel"):
        file(channel=channel)


def test_filing_validates_severity_category_and_tier():
    with pytest.raises(ComplaintError, match="severity"):
        file(severity="urgent")
    with pytest.raises(ComplaintError, match="category"):
        file(category="   ")
    with pytest.raises((ComplaintError, ValueError), match="tier"):
        file(tier="vip")


def test_filing_records_tier_calendar_policy_version_and_time():
    c = file(tier="gold")
    [filed] = c.collect_events()
    assert c.id == aggregate_id("complaint", "CP-1")
    assert filed.timestamp == T and filed.meta["actor"] == "member:M1"
    assert (filed.tier, filed.calendar, filed.policy_version) == ("gold", "7x24", POLICY.version)
    assert filed.at_risk_ratio == 0.8
    assert c.clocks["first_response"]["budget_s"] == 3600
    assert c.clocks["resolution"]["budget_s"] == 86400


# -- SLA budgets from the policy ------------------------------------------------------


@pytest.mark.parametrize("tier, first_response, resolution", [
    ("diamond", timedelta(minutes=15), timedelta(hours=4)),
    ("platinum", timedelta(minutes=30), timedelta(hours=8)),
    ("gold", timedelta(hours=1), timedelta(hours=24)),
    ("silver", timedelta(hours=2), timedelta(hours=48)),
])
def test_vip_tiers_run_on_7x24_with_at_risk_at_80_and_deadline_at_100_percent(
        tier, first_response, resolution):
    """Seed 002 §3.2.1 (7x24 dedicated service) and §3.2.2 (priority by tier)."""
    c = file(tier=tier)
    fr, res = c.clocks["first_response"], c.clocks["resolution"]
    assert c.calendar_id == "7x24"
    assert fr["deadline"] == T + first_response
    assert fr["at_risk_at"] == T + first_response * 0.8
    assert res["deadline"] == T + resolution
    assert res["at_risk_at"] == T + resolution * 0.8


def test_higher_tiers_get_strictly_tighter_budgets():
    """Seed 002 §3.2.2: VIP consultations and complaints are handled with priority."""
    budgets = [(POLICY.sla.target(t).first_response_s, POLICY.sla.target(t).resolution_s)
               for t in ("diamond", "platinum", "gold", "silver")]
    assert budgets == sorted(budgets) and len(set(budgets)) == 4
    assert all(POLICY.sla.target(t).calendar == "7x24"
               for t in ("diamond", "platinum", "gold", "silver"))


def test_vip_clock_runs_through_nights_and_public_holidays():
    """Seed 002 §3.4.1: service time is 7x24."""
    start = datetime(2025, 10, 1, 23, 0, tzinfo=SH)  # National Day, at night
    c = file(tier="silver", at=start)
    assert c.clocks["first_response"]["deadline"] == datetime(2025, 10, 2, 1, 0, tzinfo=SH)
    assert c.clocks["resolution"]["deadline"] == datetime(2025, 10, 3, 23, 0, tzinfo=SH)


def test_member_clock_counts_business_hours_and_skips_the_weekend():
    """DOMAIN: member (non-VIP) gets 8 business hours / 5 business days."""
    friday = datetime(2025, 3, 7, 17, 0, tzinfo=SH)
    c = file(tier="member", at=friday)
    fr, res = c.clocks["first_response"], c.clocks["resolution"]
    assert c.calendar_id == "cn-business"
    assert fr["deadline"] == datetime(2025, 3, 10, 16, 0, tzinfo=SH)  # 1 h Fri + 7 h Mon
    assert fr["at_risk_at"] == datetime(2025, 3, 10, 14, 24, tzinfo=SH)  # 6.4 h
    assert res["deadline"] == datetime(2025, 3, 14, 17, 0, tzinfo=SH)  # 45 h
    assert res["at_risk_at"] == datetime(2025, 3, 13, 17, 0, tzinfo=SH)  # 36 h


def test_member_clock_filed_at_night_starts_at_the_next_opening():
    c = file(tier="member", at=datetime(2025, 3, 5, 22, 0, tzinfo=SH))
    assert c.clocks["first_response"]["deadline"] == datetime(2025, 3, 6, 17, 0, tzinfo=SH)


def test_member_clock_skips_holidays_and_counts_make_up_working_days():
    before_holiday = datetime(2025, 9, 30, 17, 0, tzinfo=SH)  # National Day: 1-8 October
    c = file(tier="member", at=before_holiday)
    assert c.clocks["first_response"]["deadline"] == datetime(2025, 10, 9, 16, 0, tzinfo=SH)
    saturday = datetime(2025, 9, 27, 12, 0, tzinfo=SH)  # Sunday 28 September is a working day
    c = file(tier="member", at=saturday, complaint_id="CP-2")
    assert c.clocks["first_response"]["deadline"] == datetime(2025, 9, 28, 17, 0, tzinfo=SH)


# -- handling ----------------------------------------------------------------------


def test_acknowledge_stops_only_the_first_response_clock():
    c = file()
    c.acknowledge(ctx(T + 10 * MIN), ALWAYS)
    fr, res = c.clocks["first_response"], c.clocks["resolution"]
    assert c.status == "acknowledged"
    assert fr["stopped_at"] == T + 10 * MIN and fr["used_s"] == 600 and fr["met"] is True
    assert res.get("stopped_at") is None and res["deadline"] == T + 4 * HOUR
    with pytest.raises(ComplaintError, match="already acknowledged"):
        c.acknowledge(ctx(T + 11 * MIN), ALWAYS)


def test_assign_and_manual_escalation_need_an_agent_and_a_reason():
    c = file()
    with pytest.raises(ComplaintError):
        c.assign(ctx(T), " ")
    c.assign(ctx(T), "agent:chen")
    assert (c.status, c.assignee) == ("assigned", "agent:chen")
    with pytest.raises(ComplaintError, match="reason"):
        c.escalate(ctx(T), "")
    c.escalate(ctx(T + MIN), "customer threatens to cancel")
    c.escalate(ctx(T + 2 * MIN), "supervisor unavailable")
    events = c.collect_events()[-2:]
    assert [(e.level, e.automatic) for e in events] == [(1, False), (2, False)]
    assert c.status == "escalated" and c.escalation_level == 2


# -- waiting for the customer ----------------------------------------------------------


def test_waiting_pauses_clocks_and_reply_resumes_with_the_remaining_budget_on_7x24():
    c = file(tier="diamond")
    c.assign(ctx(T + MIN), "agent:chen")
    c.wait_for_customer(ctx(T + 5 * MIN), "need the order number", ALWAYS)
    fr = c.clocks["first_response"]
    assert c.status == "waiting"
    assert fr["used_s"] == 300 and fr["deadline"] is None and fr["paused_at"] == T + 5 * MIN
    with pytest.raises(ComplaintError, match="already waiting"):
        c.wait_for_customer(ctx(T + 6 * MIN), "again", ALWAYS)
    with pytest.raises(ComplaintError, match="not breached"):
        c.mark_breached(ctx(T + 30 * MIN), "first_response")  # paused clocks do not breach
    c.customer_replied(ctx(T + 65 * MIN), ALWAYS)
    fr, res = c.clocks["first_response"], c.clocks["resolution"]
    assert c.status == "assigned"  # back to where it was
    assert fr["used_s"] == 300
    assert fr["deadline"] == T + 75 * MIN  # original deadline + 60 paused minutes
    assert fr["at_risk_at"] == T + 72 * MIN  # 720 s budget share - 300 s used, from the reply
    assert res["deadline"] == T + 4 * HOUR + 60 * MIN
    with pytest.raises(ComplaintError, match="not waiting"):
        c.customer_replied(ctx(T + 66 * MIN), ALWAYS)


def test_waiting_on_business_hours_keeps_used_working_time():
    c = file(tier="member")  # Monday 10:00
    c.acknowledge(ctx(T + HOUR), BIZ)
    c.wait_for_customer(ctx(T + 2 * HOUR), "need photos", BIZ)  # Monday 12:00
    res = c.clocks["resolution"]
    assert res["used_s"] == 2 * 3600 and res["deadline"] is None
    reply = datetime(2025, 3, 11, 10, 0, tzinfo=SH)  # Tuesday 10:00
    c.customer_replied(ctx(reply), BIZ)
    res = c.clocks["resolution"]
    assert res["used_s"] == 2 * 3600
    assert res["deadline"] == BIZ.add(reply, 162000 - 7200)
    assert res["deadline"] == datetime(2025, 3, 17, 17, 0, tzinfo=SH)  # 43 working hours on


def test_escalating_while_waiting_keeps_the_clocks_paused():
    c = file()
    c.wait_for_customer(ctx(T + MIN), "need info", ALWAYS)
    c.escalate(ctx(T + 2 * MIN), "VIP called the hotline")
    assert c.status == "waiting" and c.escalation_level == 1
    assert c.clocks["resolution"]["deadline"] is None


# -- at risk and breach -------------------------------------------------------------------


def test_at_risk_is_marked_only_from_its_instant_and_once():
    c = file(tier="diamond")
    with pytest.raises(ComplaintError, match="not at risk"):
        c.mark_at_risk(ctx(T + 12 * MIN - US), "first_response")
    c.collect_events()
    c.mark_at_risk(ctx(T + 12 * MIN), "first_response")
    [risk] = c.collect_events()
    assert (risk.clock, risk.at_risk_at, risk.deadline) == ("first_response", T + 12 * MIN,
                                                            T + 15 * MIN)
    with pytest.raises(ComplaintError, match="not at risk"):
        c.mark_at_risk(ctx(T + 13 * MIN), "first_response")
    with pytest.raises(ComplaintError, match="unknown clock"):
        c.mark_at_risk(ctx(T + 13 * MIN), "coffee")


def test_breach_is_marked_only_at_or_after_the_deadline_and_records_the_deadline():
    """DOMAIN: breach time is the exact deadline, never the moment someone looked."""
    c = file(tier="diamond")
    with pytest.raises(ComplaintError, match="not breached"):
        c.mark_breached(ctx(T + 15 * MIN - US), "first_response")
    c.collect_events()
    looked = T + 47 * MIN  # the scheduler ran late
    c.mark_breached(ctx(looked), "first_response")
    breached, escalated = c.collect_events()
    assert type(breached).__name__ == "ComplaintSlaBreached"
    assert breached.deadline == T + 15 * MIN and breached.timestamp == looked
    assert type(escalated).__name__ == "ComplaintEscalated"
    assert (escalated.level, escalated.automatic) == (1, True)
    assert c.status == "escalated" and c.clocks["first_response"]["breached"] is True
    with pytest.raises(ComplaintError, match="not breached"):
        c.mark_breached(ctx(looked), "first_response")


def test_a_breach_is_refused_at_the_deadline_and_recorded_just_after_it():
    """DOMAIN.md settled rules: a deadline is met at it and breached only after it."""
    c = file(tier="platinum")
    with pytest.raises(ComplaintError, match="not breached"):
        c.mark_breached(ctx(T + 8 * HOUR), "resolution")
    c.mark_breached(ctx(T + 8 * HOUR + US), "resolution")
    assert c.clocks["resolution"]["breached"] is True


def test_a_breached_clock_is_not_met_when_it_stops():
    c = file(tier="diamond")
    c.mark_breached(ctx(T + 16 * MIN), "first_response")
    c.acknowledge(ctx(T + 17 * MIN), ALWAYS)
    fr = c.clocks["first_response"]
    assert fr["met"] is False and fr["used_s"] == 17 * 60


# -- resolution, rating, closing, reopening ---------------------------------------------------


def test_resolve_stops_both_clocks_and_needs_a_result():
    """Seed 002 §7.3: the handling result is recorded."""
    c = file(tier="gold")
    with pytest.raises(ComplaintError, match="result"):
        c.resolve(ctx(T + HOUR), " ", ALWAYS)
    c.resolve(ctx(T + 3 * HOUR), "refund issued", ALWAYS)
    fr, res = c.clocks["first_response"], c.clocks["resolution"]
    assert c.status == "resolved" and not c.is_open
    assert fr["stopped_at"] == res["stopped_at"] == T + 3 * HOUR
    assert fr["met"] is False  # never acknowledged within the hour
    assert res["met"] is True and res["used_s"] == 3 * 3600
    with pytest.raises(ComplaintError, match="resolved"):
        c.assign(ctx(T + 4 * HOUR), "agent:li")


def test_resolving_while_waiting_does_not_count_the_waiting_time():
    c = file(tier="gold")
    c.acknowledge(ctx(T + 10 * MIN), ALWAYS)
    c.wait_for_customer(ctx(T + HOUR), "need receipt", ALWAYS)
    c.resolve(ctx(T + 30 * HOUR), "customer confirmed by phone", ALWAYS)
    res = c.clocks["resolution"]
    assert res["used_s"] == 3600 and res["met"] is True


def test_rating_is_1_to_5_and_only_after_resolution():
    """Seed 002 §5.3.1: the customer gives feedback on service quality."""
    c = file()
    with pytest.raises(ComplaintError, match="only after"):
        c.rate(ctx(T, "member:M1"), 5)
    c.resolve(ctx(T + HOUR), "replaced", ALWAYS)
    for bad in (0, 6, True, 4.5, "5"):
        with pytest.raises(ComplaintError, match="1-5"):
            c.rate(ctx(T + 2 * HOUR, "member:M1"), bad)
    c.collect_events()
    c.rate(ctx(T + 2 * HOUR, "member:M1"), 4)
    [rated] = c.collect_events()
    assert rated.score == 4 and c.rating == 4
    with pytest.raises(ComplaintError, match="already rated"):
        c.rate(ctx(T + 3 * HOUR, "member:M1"), 5)


def test_close_only_after_resolution_and_rating_still_possible_after_close():
    c = file()
    with pytest.raises(ComplaintError, match="only a resolved"):
        c.close(ctx(T))
    c.resolve(ctx(T + HOUR), "done", ALWAYS)
    c.close(ctx(T + 2 * HOUR))
    assert c.status == "closed"
    with pytest.raises(ComplaintError, match="only a resolved"):
        c.close(ctx(T + 3 * HOUR))
    c.rate(ctx(T + 3 * HOUR, "member:M1"), 2)
    assert c.rating == 2
    for command in (lambda: c.acknowledge(ctx(T + 4 * HOUR), ALWAYS),
                    lambda: c.escalate(ctx(T + 4 * HOUR), "x"),
                    lambda: c.wait_for_customer(ctx(T + 4 * HOUR), "x", ALWAYS),
                    lambda: c.resolve(ctx(T + 4 * HOUR), "x", ALWAYS)):
        with pytest.raises(ComplaintError):
            command()


def test_reopen_resumes_the_resolution_clock_with_used_time_kept():
    c = file(tier="diamond")
    c.acknowledge(ctx(T + 5 * MIN), ALWAYS)
    c.resolve(ctx(T + HOUR), "explained", ALWAYS)
    c.rate(ctx(T + 2 * HOUR, "member:M1"), 1)
    c.close(ctx(T + 3 * HOUR))
    with pytest.raises(ComplaintError, match="reason"):
        c.reopen(ctx(T + 10 * HOUR), "", ALWAYS)
    c.reopen(ctx(T + 10 * HOUR), "same fault again", ALWAYS)
    res, fr = c.clocks["resolution"], c.clocks["first_response"]
    assert c.status == "reopened" and c.is_open and c.rating is None
    assert res["used_s"] == 3600 and res.get("stopped_at") is None
    assert res["deadline"] == T + 10 * HOUR + 3 * HOUR  # 4 h budget - 1 h used
    assert res["at_risk_at"] == T + 10 * HOUR + timedelta(seconds=11520 - 3600)
    assert fr["stopped_at"] == T + 5 * MIN  # first response stays answered
    c.resolve(ctx(T + 11 * HOUR), "fixed for good", ALWAYS)
    assert c.clocks["resolution"]["used_s"] == 2 * 3600
    c.rate(ctx(T + 12 * HOUR, "member:M1"), 5)
    assert c.rating == 5


def test_an_open_complaint_cannot_be_reopened():
    c = file()
    with pytest.raises(ComplaintError, match="only a resolved or closed"):
        c.reopen(ctx(T + HOUR), "why", ALWAYS)


# -- determinism ---------------------------------------------------------------------------


def test_replay_rebuilds_the_same_complaint_and_past_events_stay_unchanged():
    c = file(tier="member")
    c.acknowledge(ctx(T + HOUR), BIZ)
    c.assign(ctx(T + HOUR), "agent:chen")
    c.wait_for_customer(ctx(T + 2 * HOUR), "need photos", BIZ)
    c.customer_replied(ctx(T + 26 * HOUR), BIZ)
    assert c.clocks["resolution"]["at_risk_at"] == datetime(2025, 3, 17, 10, 0, tzinfo=SH)
    c.mark_at_risk(ctx(datetime(2025, 3, 17, 10, 0, tzinfo=SH)), "resolution")
    c.resolve(ctx(datetime(2025, 3, 17, 12, 0, tzinfo=SH)), "replaced", BIZ)
    c.reopen(ctx(datetime(2025, 3, 18, 9, 0, tzinfo=SH)), "broke again", BIZ)
    events = c.collect_events()
    filed = events[0]
    assert filed.clocks["resolution"]["used_s"] == 0.0
    assert "stopped_at" not in filed.clocks["resolution"]
    assert filed.clocks["first_response"]["running_since"] == T
    rebuilt = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    keep = lambda agg: {k: v for k, v in vars(agg).items() if k not in ("_ctx", "_pending_events")}
    assert keep(rebuilt) == keep(c)
    assert cal(rebuilt) is BIZ


def test_commands_refuse_naive_times():
    with pytest.raises(DomainError, match="timezone-aware"):
        Ctx(at=datetime(2025, 3, 10, 10, 0))
