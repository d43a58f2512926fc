"""One timeline per aggregate (DOMAIN.md "Time").

Each member, contract and complaint has its own timeline: a command dated
before its history is refused naming its latest instant, a late input is
stamped at it, a command touching two is judged against the later one, and
one aggregate's instant never moves another's stamps or fires its work
early. So the log of each aggregate is the same however the inputs of
different aggregates interleave, and whichever process applied them.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.base import DomainError
from infra.service_layer.asof import VIEWS
from infra.service_layer.engine import LateCommandError
from infra.service_layer.replay import replay
from infra.service_layer.upstream import apply_input, parse
from tests.aggregate_logs import logs_by_aggregate
from tests.conftest import FakeClock
from tests.scenario import Z

D0 = datetime(2025, 2, 1, 10, tzinfo=Z)
END = D0 + timedelta(days=800)


def _order(event_id: str, member: str, days: float, amount: int = 100_000) -> dict:
    return {"type": "OrderPaid", "event_id": event_id, "member_id": member, "order_id": event_id,
            "occurred_at": (D0 + timedelta(days=days)).isoformat(), "amount_fen": amount, "currency": "CNY"}


# Each member's inputs in the order they arrive (one partition each); the last of each is late
# for its own member. Both reach silver early, so each has an annual review inside the run.
A = [_order("a1", "A", 0, 600_000), _order("a2", "A", 200), _order("a3", "A", 370), _order("a-late", "A", 100)]
B = [_order("b1", "B", 10, 700_000), _order("b2", "B", 380), _order("b-late", "B", 120)]
INTERLEAVINGS = {
    "A then B": A + B,
    "B then A": B + A,
    "alternating": [A[0], B[0], A[1], B[1], A[2], B[2], A[3]],
}


def _apply_all(system, rows) -> None:
    for row in rows:
        assert apply_input(system.engine, parse("orders", row)) == "applied"


def _finish(system) -> dict:
    system.engine.advance(END)   # the scheduler: every review still due
    logs = logs_by_aggregate(system.app)
    for key, events in logs.items():
        stamps = [e[2] for e in events]
        assert stamps == sorted(stamps), f"{key}'s timeline only moves forward"
    return logs


def test_interleaving_inputs_of_different_members_never_changes_either_members_log(make_system, event_store):
    logs = {}
    for n, (name, rows) in enumerate(INTERLEAVINGS.items()):
        s = make_system(event_store if n == 0 else "sqlite", name=f"i{n}")
        _apply_all(s, rows)
        logs[name] = _finish(s)
    reference = logs["A then B"]
    assert set(reference) == {("member", "A"), ("member", "B")}
    for name, got in logs.items():
        assert got == reference, f"{name} gives another log than A then B"
    a_log = reference[("member", "A")]
    late = [e for e in a_log if e[4] == "a-late"][0]
    assert late[2] == D0 + timedelta(days=370)  # stamped at A's latest instant, not B's (380)
    reviews = [e[2] for e in a_log if e[0] == "TierReviewed"]
    assert reviews[0] == D0 + timedelta(days=365)  # A's review, before A's input of day 370


def test_two_processes_over_one_store_each_applying_one_members_inputs_give_the_same_logs(
        make_system, event_store):
    """Inputs split between two engines over one event store (as two consumers of a topic's
    partitions take one member each) give each member the log one process gives."""
    one = make_system("sqlite", name="one")
    _apply_all(one, A + B)
    reference = _finish(one)
    first = make_system(event_store, name="shared")
    second = make_system(event_store, name="shared")
    # Turn by turn, A's inputs on the first process and B's (dated earlier) on the second.
    for turn in range(max(len(A), len(B))):
        for system, rows in ((first, A), (second, B)):
            if turn < len(rows):
                _apply_all(system, [rows[turn]])
    second.engine.advance(END)
    first.engine.advance(END)
    assert _finish(first) == reference


def _register(system, at: datetime, member: str) -> None:
    system.engine.run(at, lambda u, c: u.register_member(c, f"reg-{member}", member, {"name": member}))


def test_one_callers_future_instant_on_a_member_neither_moves_another_members_stamps_nor_fires_its_work(
        make_system):
    now = datetime(2025, 6, 3, 10, tzinfo=Z)
    s = make_system(clock=FakeClock(now))   # the default tolerance: 5 minutes after the wall clock
    app, engine = s.app, s.engine
    for member in ("A", "B"):
        _register(s, now - timedelta(hours=1), member)
    engine.run(now - timedelta(minutes=30), lambda u, c: u.set_override(
        c, "B", "floor", "gold", "retention offer", now + timedelta(minutes=2)))
    ahead = now + timedelta(minutes=4)
    engine.check_command_at(ahead, "at")
    engine.run(ahead, lambda u, c: u.set_override(c, "A", "pin", "silver", "goodwill", now + timedelta(days=9)))

    engine.check_command_at(now, "at")   # B's own timeline is still at now - 30 min
    engine.run(now, lambda u, c: u.apply_for_vip(c, "B"))    # B is gold by its floor
    assert apply_input(engine, parse("orders", {**_order("b-now", "B", 0), "occurred_at": now.isoformat()})) \
        == "applied"
    b_log = logs_by_aggregate(app)[("member", "B")]
    assert [e[2] for e in b_log[-2:]] == [now, now]          # not A's now + 4 min
    assert app.member("B").override is not None              # its expiry (now + 2 min) did not fire
    assert "TierOverrideCleared" not in [e[0] for e in b_log]
    s.clock.at = now + timedelta(minutes=3)
    engine.tick()                                            # the scheduler, at the wall clock
    expired = [e for e in logs_by_aggregate(app)[("member", "B")] if e[0] == "TierOverrideCleared"]
    assert [e[2] for e in expired] == [now + timedelta(minutes=2)]


def test_a_command_before_its_own_aggregates_latest_instant_is_refused_naming_it_another_aggregate_is_not(
        make_system):
    s = make_system()
    app, engine = s.app, s.engine
    t = datetime(2025, 6, 3, 10, tzinfo=Z)
    _register(s, t - timedelta(hours=2), "B")
    _register(s, t, "A")
    before = app.member("A").version
    earlier = t - timedelta(hours=1)
    with pytest.raises(LateCommandError) as refused:
        engine.run(earlier, lambda u, c: u.set_override(c, "A", "pin", "gold", "vip event", t + timedelta(days=1)))
    message = str(refused.value)
    assert f"the instant {earlier.isoformat()}" in message and t.isoformat() in message and "member A" in message
    assert app.member("A").version == before                                   # nothing recorded
    engine.run(earlier, lambda u, c: u.set_override(c, "B", "pin", "gold", "vip event", t + timedelta(days=1)))
    engine.run(earlier, lambda u, c: u.draft_contract(c, "K1", "cooperation",
                                                     {"parties": [{"id": "platform"}, {"id": "P1"}]}))
    logs = logs_by_aggregate(app)
    assert logs[("member", "B")][-1][2] == earlier and logs[("contract", "K1")][0][2] == earlier


def test_filing_a_complaint_is_judged_against_the_members_timeline_not_anothers(make_system):
    """Filing reads the member's tier: before the member's latest instant it is refused, naming it;
    a later instant of another member does not matter."""
    s = make_system()
    app, engine = s.app, s.engine
    t = datetime(2025, 6, 3, 10, tzinfo=Z)
    _register(s, t, "M")
    _register(s, t + timedelta(days=5), "X")     # another member, far later
    file = lambda at: engine.run(at, lambda u, c: u.file_complaint(   # noqa: E731
        c, "C1", "M", "web", "billing", "high", "text"))
    with pytest.raises(LateCommandError) as refused:
        file(t - timedelta(minutes=1))
    assert t.isoformat() in str(refused.value) and "member M" in str(refused.value)
    assert ("complaint", "C1") not in logs_by_aggregate(app)
    file(t + timedelta(days=1))                  # after M's latest, before X's: accepted
    assert logs_by_aggregate(app)[("complaint", "C1")][0][2] == t + timedelta(days=1)


def test_paying_a_member_agreements_fee_is_judged_against_the_later_of_contract_and_member(make_system):
    s = make_system()
    app, engine = s.app, s.engine
    t = datetime(2025, 3, 3, 10, tzinfo=Z)
    assert apply_input(engine, parse("orders", {**_order("gold", "M1", 0, 2_100_000),
                                                "occurred_at": t.isoformat()})) == "applied"
    steps = [lambda u, c: u.apply_for_vip(c, "M1"), lambda u, c: u.start_vip_review(c, "M1"),
             lambda u, c: u.approve_vip(c, "M1"),
             lambda u, c: u.draft_contract(c, "VA-1", "member_agreement", {
                 "parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1"}),
             lambda u, c: u.sign_contract(c, "VA-1", "M1"), lambda u, c: u.sign_contract(c, "VA-1", "platform"),
             lambda u, c: u.issue_invoice(c, "VA-1", "FEE-1", "M1", 19_900, "CNY", "membership_fee")]
    for n, step in enumerate(steps, 1):
        engine.run(t + timedelta(minutes=n), step)
    contract_latest = t + timedelta(minutes=len(steps))
    member_latest = t + timedelta(hours=5)
    assert apply_input(engine, parse("crm", {"type": "ActivityRecorded", "event_id": "act", "member_id": "M1",
                                             "occurred_at": member_latest.isoformat(), "kind": "login"})) \
        == "applied"
    _register(s, member_latest + timedelta(days=1), "Z")   # another member's later instant does not matter
    pay = lambda at: engine.run(at, lambda u, c: u.pay_invoice(   # noqa: E731
        c, "VA-1", "FEE-1", 19_900, "CNY", "P1"))
    between = contract_latest + timedelta(hours=1)   # after the contract's latest, before the member's
    with pytest.raises(LateCommandError) as refused:
        pay(between)
    assert member_latest.isoformat() in str(refused.value) and "member M1" in str(refused.value)
    assert app.contract("VA-1").invoices["FEE-1"]["status"] != "paid"
    pay(member_latest)
    assert app.member("M1").vip_status == "active"
    logs = logs_by_aggregate(app)
    assert logs[("contract", "VA-1")][-1][2] == logs[("member", "M1")][-1][2] == member_latest


def test_a_refusal_on_a_business_rule_is_still_a_domain_error_on_the_aggregates_timeline(make_system):
    """A command at a valid instant that a rule refuses is refused by the rule, as before."""
    s = make_system()
    t = datetime(2025, 6, 3, 10, tzinfo=Z)
    _register(s, t, "M")
    with pytest.raises(DomainError) as refused:
        s.engine.run(t, lambda u, c: u.approve_vip(c, "M"))
    assert not isinstance(refused.value, LateCommandError)


def test_an_answer_as_of_an_instant_holds_each_members_events_up_to_it_whatever_the_log_order(make_system):
    """A's later events recorded before B's earlier ones do not hide B's from an as-of answer."""
    when = D0 + timedelta(days=50)
    answers = []
    for n, rows in enumerate((A + B, B + A)):
        s = make_system(name=f"asof{n}")
        _apply_all(s, rows)
        store = replay(s.app, VIEWS, until=when)
        answers.append(dict(store.view("current_tier")))
    assert answers[0] == answers[1]
    assert set(answers[0]["A"]["orders"]) == {"a1"} and set(answers[0]["B"]["orders"]) == {"b1"}
