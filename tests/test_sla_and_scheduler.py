"""SLA rules through the whole system, and the scheduler's table of timer kinds."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from domain.base import Ctx
from domain.complaint import Complaint
from infra.service_layer.scheduled import TIMER_COMMANDS as FIRE
from infra.policy_file import PolicyFileError, default_policy_text, load_policy, policy_from_dict
from projections import queries
from infra.service_layer.upstream import apply_input, parse
from tests.scenario import Z, log_of

TUESDAY = datetime(2025, 6, 3, 10, tzinfo=Z)  # business hours (2 June is the Dragon Boat holiday)


def _policy_file(tmp_path, **sla) -> str:
    data = json.loads(default_policy_text())
    data["version"] = "test-" + "-".join(f"{k}" for k in sla)
    data["sla"].update(sla)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data))
    return str(path)


def _breaches(s, complaint_id: str, at: datetime) -> dict:
    s.engine.sync(force=True)
    return {b["clock"]: b["state"] for b in queries.pending_breaches(s.store, at, s.app.policy)
            if b["complaint_id"] == complaint_id}


def _file_and_pause(s, complaint_id: str, at: datetime, paused_after: timedelta) -> None:
    s.engine.run(at, lambda u, c: u.file_complaint(c, complaint_id, "M1", "web", "billing", "medium", "t"))
    s.engine.run(at + paused_after, lambda u, c: u.wait_for_customer(c, complaint_id, "photos"))


def test_a_paused_clock_is_judged_by_the_ratio_recorded_at_filing_even_after_the_policy_changes(
        make_system, tmp_path):
    s = make_system()  # default policy: at risk at 0.8
    s.engine.run(TUESDAY, lambda u, c: u.register_member(c, "r1", "M1", {"name": "x"}))
    # A member's first response has 8 business hours: paused after 5 (62.5 % used).
    _file_and_pause(s, "C1", TUESDAY, timedelta(hours=5))
    assert _breaches(s, "C1", TUESDAY + timedelta(days=1)) == {}
    s.engine.flush()
    s.close()

    later = make_system(policy_file=_policy_file(tmp_path, at_risk_ratio=0.5))
    assert later.app.policy.sla.at_risk_ratio == 0.5
    at = TUESDAY + timedelta(days=1)
    # Filed under 0.8: still not at risk, although the policy now says 0.5.
    assert _breaches(later, "C1", at + timedelta(hours=1)) == {}
    # The same pause under the new policy is at risk: the check can tell them apart.
    _file_and_pause(later, "C2", at, timedelta(hours=5))
    assert _breaches(later, "C2", at + timedelta(hours=6)) == {"first_response": "at_risk"}


def _filed(severity: str, policy) -> Complaint:
    return Complaint.file(Ctx(at=TUESDAY, actor="member:M1"), "CP-1", "M1", "web", "billing",
                          severity, "pii:sealed", "diamond", policy)


def test_a_critical_complaint_gets_half_the_tiers_budgets_under_the_default_policy():
    policy = load_policy()
    medium, critical = _filed("medium", policy), _filed("critical", policy)
    assert medium.clocks["first_response"]["budget_s"] == 900  # diamond: 15 min (DOMAIN.md)
    assert critical.clocks["first_response"]["budget_s"] == 450
    assert critical.clocks["resolution"]["budget_s"] == 14400 // 2
    assert critical.clocks["first_response"]["deadline"] == TUESDAY + timedelta(seconds=450)
    [filed] = critical.collect_events()
    assert (filed.severity, filed.severity_factor) == ("critical", 0.5)


def test_severity_factors_come_from_the_policy_and_are_checked_on_load(tmp_path):
    policy = load_policy(_policy_file(tmp_path, severity_factors={"low": 2, "high": 0.25}))
    assert _filed("low", policy).clocks["resolution"]["budget_s"] == 28800
    assert _filed("high", policy).clocks["first_response"]["budget_s"] == 225
    assert _filed("critical", policy).clocks["first_response"]["budget_s"] == 900  # not listed: 1
    data = json.loads(default_policy_text())
    data["sla"]["severity_factors"] = {"urgent": 0.5}
    with pytest.raises(ValueError, match="urgent"):
        policy_from_dict(data)
    data["sla"]["severity_factors"] = {"high": 0}
    with pytest.raises(ValueError, match="severity_factors.high"):
        policy_from_dict(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(PolicyFileError, match="severity_factors"):
        load_policy(bad)


def test_a_policy_whose_months_window_reaches_past_the_kept_window_is_refused_saying_what_to_change():
    data = json.loads(default_policy_text())
    policy_from_dict(data)  # the default: 12 months in 365 days
    data["tiers"].update(window_days=300, activity_months_window=12)
    with pytest.raises(ValueError, match="activity_months_window must be 1 to 10 months for a window of 300"):
        policy_from_dict(data)
    data["tiers"].update(window_days=0)
    with pytest.raises(ValueError, match="window_days must be a whole number of days, at least 28"):
        policy_from_dict(data)
    with pytest.raises(ValueError, match="activity_months_window must be 1 to 10 months"):
        replace(load_policy().tiers, window_days=300)   # a policy made in code is checked too


def test_the_scheduler_table_covers_every_timer_kind_the_views_emit(make_system):
    """Work that sets every kind of timer; each kind is in the table, and each fires."""
    s = make_system()
    t, app, run = TUESDAY, s.app, s.engine.run
    apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": "e1", "member_id": "M1",
                                           "order_id": "O1", "occurred_at": t.isoformat(),
                                           "amount_fen": 2_500_000, "currency": "CNY"}))  # gold
    run(t, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "high", "t"))
    run(t, lambda u, c: u.set_override(c, "M1", "pin", "platinum", "guest", t + timedelta(days=10)),
        actor="ops:li")
    terms = {"parties": [{"id": "platform"}, {"id": "P1"}], "validity_months": 3,
             "milestones": [{"id": "MS1", "title": "launch", "due_months": 1}]}
    run(t, lambda u, c: u.draft_contract(c, "K1", "cooperation", terms))
    run(t, lambda u, c: u.sign_contract(c, "K1", "P1"))
    run(t, lambda u, c: u.sign_contract(c, "K1", "platform"))
    run(t, lambda u, c: u.issue_invoice(c, "K1", "I1", "P1", 50_000, "CNY", "service_fee"))
    emitted: set = set()
    steps = [t + timedelta(hours=h) for h in range(24 * 10)] + [t + timedelta(days=d) for d in range(10, 400)]
    for step in steps:  # fire as time passes, noting every kind of timer the view holds
        s.engine.sync(force=True)
        emitted |= {name.partition(":")[0] for row in s.store.view("timers").values()
                    for name in row["timers"]}
        s.engine.advance(step)
    assert emitted <= set(FIRE), f"timer kinds with no scheduled work: {emitted - set(FIRE)}"
    assert emitted == set(FIRE), f"table entries no view emits: {set(FIRE) - emitted}"
    assert not s.engine.timers.skipped, "a due timer's work was refused"
    fired = {e[0] for e in log_of(app)}
    assert {"TierReviewed", "TierOverrideCleared", "ComplaintSlaAtRisk", "ComplaintSlaBreached",
            "MilestoneOverdue", "InvoiceOverdue", "ContractExpired"} <= fired
