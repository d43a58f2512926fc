"""Bounded aggregate state (issue 9 item 3): a member keeps what a window can still hold,
and a cold aggregate loads from the library's snapshot plus a bounded number of events."""
from __future__ import annotations

import copy
import itertools
import json
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.domain import Snapshot

from domain.base import Ctx
from domain.member import Member, OrderError
from domain.tiering import order_inputs, standing
from infra.policy_file import load_policy
from infra.service_layer.fastpath import FAST
from infra.service_layer.ingest import ingest_file
from infra.service_layer.upstream import apply_input, parse
from infra.service_layer.envelope import lean_envelope
from projections.members import fold_member
from projections.queries import tier_row
from tests.scenario import START, upstream_events
from domain.window import REVERSED, new_order

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
T0 = datetime(2020, 1, 6, 10, tzinfo=SH)
# Small, so a test passes a few snapshots quickly (VIP_SNAPSHOT_INTERVAL defaults to 100).
SNAPSHOT_INTERVAL = 50
_ids = itertools.count(1)


def ctx(at: datetime) -> Ctx:
    return Ctx(at=at, causation_id=f"cmd-{next(_ids)}")


def pay(m: Member, at: datetime, fen: int, order_id: str, occurred_at: datetime | None = None) -> None:
    m.record_order_paid(ctx(at), f"in-{next(_ids)}", order_id, fen, "CNY", occurred_at or at, POLICY)


def refund(m: Member, at: datetime, fen: int, order_id: str) -> None:
    m.record_order_refunded(ctx(at), f"in-{next(_ids)}", order_id, fen, "CNY", at, POLICY)


def five_years(m: Member) -> tuple[list, list]:
    """An order a week and a login every ten days for five years, each annual review run when
    due (as the scheduler does: a review still pending holds the window back); returns what was given."""
    orders, logins = [], []
    for day in range(5 * 364):
        at = T0 + timedelta(days=day)
        if m.next_review_at and m.next_review_at <= at:
            m.review(ctx(m.next_review_at), POLICY)
        if day % 7 == 0:
            week = day // 7
            pay(m, at, 10_000 + week, f"O{week}")
            orders.append(new_order(at, POLICY.month_of(at), 10_000 + week, 10_000 + week, "CNY"))
            if week % 10 == 3:
                refund(m, at + timedelta(hours=1), 5_000, f"O{week}")
                orders[-1][REVERSED] = 5_000
        if day % 10 == 0:
            m.record_activity(ctx(at + timedelta(hours=2)), f"in-{next(_ids)}", "vip_event",
                              at + timedelta(hours=2), POLICY)
            logins.append(at + timedelta(hours=2))
    return orders, logins


def full_history_standing(orders: list, logins: list, at: datetime):
    """The standing over the whole history, the way the member summed it before pruning."""
    points = POLICY.tiers.activity_points.get("vip_event", 0)
    entries, months = order_inputs(orders)
    activity = [(t, 0, points) for t in logins]
    return standing(entries + activity, months | {POLICY.month_of(t) for t in logins}, at, POLICY)


def test_a_member_with_five_years_of_history_keeps_at_most_two_windows_of_orders():
    m = Member.register(ctx(T0), "M5", None, "orders")
    orders, logins = five_years(m)
    assert len(orders) == 260 and len(logins) == 182
    week = timedelta(weeks=1)
    window = timedelta(days=POLICY.tiers.window_days)
    assert len(m.orders) <= window // week + 1             # one window of live orders
    assert len(m.closed_orders) <= window // week + 1      # one more of refundable ones
    assert len(m.entries) <= window // timedelta(days=10) + 1
    assert len(m.active_months) <= POLICY.tiers.activity_months_window + 2
    end = T0 + timedelta(weeks=259, hours=2)
    for at in (end, end + timedelta(days=1), end + timedelta(days=100)):  # no command goes back
        assert m.standing_at(at, POLICY) == full_history_standing(orders, logins, at)


def test_a_refund_of_an_order_that_left_the_window_is_accepted_and_counts_nothing():
    m = Member.register(ctx(T0), "M1", None, "orders")
    pay(m, T0, 3_000_000, "old")   # 30,000 CNY: gold, review a year on
    later = T0 + timedelta(days=400)
    m.review(ctx(T0 + timedelta(days=366)), POLICY)
    pay(m, later, 600_000, "new")  # its command moves "old" out of every window to come
    assert "old" in m.closed_orders and "old" not in m.orders
    before = m.standing_at(later, POLICY)
    with pytest.raises(OrderError, match="exceeds the 3000000 fen still paid"):
        refund(m, later, 3_000_001, "old")
    refund(m, later, 3_000_000, "old")
    assert type(m.pending_events[-1]).__name__ == "OrderRefunded"
    assert m.standing_at(later, POLICY) == before and before.spend_fen == 600_000
    assert m.closed_orders["old"][REVERSED] == 3_000_000


def test_a_refund_of_an_order_paid_more_than_two_windows_back_is_refused_saying_why():
    m = Member.register(ctx(T0), "M1", None, "orders")
    pay(m, T0, 100_000, "ancient")
    pay(m, T0 + timedelta(days=800), 100_000, "recent")
    assert "ancient" not in m.orders and "ancient" not in m.closed_orders
    with pytest.raises(OrderError, match="no longer kept"):
        refund(m, T0 + timedelta(days=801), 100_000, "ancient")


def test_a_late_review_still_looks_back_from_its_anniversary():
    """Orders after the due instant do not prune what the review's window holds."""
    m = Member.register(ctx(T0), "M1", None, "orders")
    pay(m, T0, 2_100_000, "a")                           # gold
    pay(m, T0 + timedelta(days=300), 2_100_000, "b")     # still in the window ending at the review
    due = m.next_review_at
    for n in range(30):                                  # the review has not run for 200 days
        pay(m, due + timedelta(days=200 + n), 100, f"late{n}")
    assert "b" in m.orders
    m.review(ctx(due + timedelta(days=230)), POLICY)
    reviewed = m.pending_events[-1]
    assert reviewed.standing["spend_fen"] == 2_100_000 and reviewed.to_tier == "gold"


def test_pruned_state_is_the_same_when_the_events_are_replayed():
    m = Member.register(ctx(T0), "M5", None, "orders")
    five_years(m)
    rebuilt = None
    for event in m.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert vars(rebuilt) == {k: v for k, v in vars(m).items() if k != "_ctx"}
    assert vars(copy.deepcopy(m)).keys() == vars(m).keys() - {"_ctx"}


def test_the_current_tier_row_of_five_years_stays_bounded_answers_as_the_member_and_never_changes_its_input():
    m = Member.register(ctx(T0), "M5", None, "orders")
    orders, logins = five_years(m)
    late = T0 + timedelta(weeks=260)   # and an order arriving 300 days late, behind newer ones
    pay(m, late, 7_000, "O-late", occurred_at=late - timedelta(days=300))
    pay(m, late + timedelta(days=30), 8_000, "O-after")
    row, window = None, timedelta(days=POLICY.tiers.window_days)
    for n, event in enumerate(m.collect_events()):
        before = copy.deepcopy(row)
        new = fold_member(row, lean_envelope(event, n + 1), "M5")
        assert row == before                               # the fold is pure: the old row is as it was
        row = new
    week = timedelta(weeks=1)
    # one window and the months just before it (the member itself keeps two), and the straggler
    assert len(row["orders"]) <= (window + timedelta(days=93)) // week + 2 < len(m.orders) + len(m.closed_orders)
    assert len(row["entries"]) <= window // timedelta(days=10) + 2
    for at in (late + timedelta(days=30), late + timedelta(days=60), late + timedelta(days=200)):
        answer, standing_now = tier_row(row, at, POLICY), m.standing_at(at, POLICY)
        assert (answer["window_spend_fen"], answer["window_points"], answer["active_months"]) == \
            (standing_now.spend_fen, standing_now.points, standing_now.active_months), at


def test_the_current_tier_row_keeps_an_order_before_the_day_window_whose_month_still_counts():
    # 10 calendar months can reach 305 days back (at 31 January: from 1 April), past a 300-day
    # window: the row must keep such an order for its month, as the member does.
    policy = replace(POLICY, tiers=replace(POLICY.tiers, window_days=300, activity_months_window=10))
    m = Member.register(ctx(T0), "M6", None, "orders")
    paid = [datetime(2023 + (n + 1) // 12, (n + 1) % 12 + 1, 2, 10, tzinfo=SH) for n in range(24)]
    for n, at in enumerate(paid):  # the 2nd of each month, February 2023 to January 2025
        m.record_order_paid(ctx(at), f"p{n}", f"O{n}", 1_000, "CNY", at, policy)
    last = datetime(2025, 1, 31, 10, tzinfo=SH)
    m.record_order_paid(ctx(last), "p-last", "O-last", 1_000, "CNY", last, policy)
    m.record_order_refunded(ctx(last), "r-old", "O6", 400, "CNY", last, policy)  # the row no longer holds it
    row = None
    for n, event in enumerate(m.collect_events()):
        row = fold_member(row, lean_envelope(event, n + 1), "M6")
    assert "O6" not in row["orders"] and "O6" in m.closed_orders
    assert "O14" in row["orders"]                      # 2 April 2024: before the day window, in April
    at = last + timedelta(hours=1)
    answer, now = tier_row(row, at, policy), m.standing_at(at, policy)
    assert (answer["window_spend_fen"], answer["active_months"]) == (now.spend_fen, now.active_months) \
        == (9 * 1_000 + 1_000, 10)


# -- snapshots ---------------------------------------------------------------------------


def _orders(member_id: str, count: int) -> list:
    return [parse("orders", {"type": "OrderPaid", "event_id": f"{member_id}-{n}", "member_id": member_id,
                             "order_id": f"{member_id}-o{n}", "amount_fen": 1_000 + n, "currency": "CNY",
                             "occurred_at": (START + timedelta(days=n * 3)).isoformat()})
            for n in range(count)]


def test_a_cold_member_loads_from_its_snapshot_and_fewer_events_than_the_interval(make_system, event_store):
    s = make_system(store=event_store, name="warm", snapshot_interval=SNAPSHOT_INTERVAL)
    for item in _orders("M1", 3 * SNAPSHOT_INTERVAL + 7):
        apply_input(s.engine, item)
    warm = s.app.member("M1")
    cold = make_system(store=event_store, name="warm", snapshot_interval=SNAPSHOT_INTERVAL).app  # nothing cached
    read = []
    select = cold.recorder.select_events

    def counting(*args, **kwargs):
        rows = select(*args, **kwargs)
        read.extend(rows)
        return rows

    cold.recorder.select_events = counting
    member = cold.member("M1")
    assert member.version == warm.version > 3 * SNAPSHOT_INTERVAL
    assert 0 < len(read) < SNAPSHOT_INTERVAL
    full = FAST.project(None, cold.events.get(member.id))  # every event, no snapshot
    assert vars(member) == vars(full)
    assert member.standing_at(START + timedelta(days=500), s.app.policy) == \
        full.standing_at(START + timedelta(days=500), s.app.policy)


def test_snapshots_taken_in_batches_are_the_state_the_events_give_and_read_nothing_back(
        make_system, tmp_path, monkeypatch):
    s = make_system("sqlite", snapshot_interval=SNAPSHOT_INTERVAL)
    monkeypatch.setattr(s.app, "take_snapshot", lambda *a, **k: pytest.fail("snapshot read back from the store"))
    for part in range(2):  # two files, so two batches: a snapshot in each, at versions off the interval
        path = tmp_path / f"orders{part}.jsonl"
        path.write_text("".join(json.dumps({
            "type": "OrderPaid", "event_id": f"e{part}-{n}", "member_id": f"M{n % 2}",
            "order_id": f"O{part}-{n}", "amount_fen": 1_000 + n, "currency": "CNY",
            "occurred_at": (START + timedelta(days=part * 200 + n)).isoformat()}) + "\n"
            for n in range(3 * SNAPSHOT_INTERVAL)))
        ingest_file(s.engine, "orders", str(path), progress=False)
    for member_id in ("M0", "M1"):
        aggregate_id = Member.create_id(member_id)
        snapshots = list(s.app.snapshots.get(aggregate_id))
        assert len(snapshots) == 2 and snapshots[0].originator_version % SNAPSHOT_INTERVAL != 0
        for snapshot in snapshots:
            assert "_ctx" not in snapshot.state
            replayed = FAST.project(None, s.app.events.get(aggregate_id, lte=snapshot.originator_version))
            assert vars(snapshot.mutate(None)) == vars(replayed)


def test_snapshots_of_every_aggregate_round_trip_through_the_stored_form(make_system):
    s = make_system()
    for item in sorted((parse(e["source"], e) for e in upstream_events(members=6, days=450)),
                       key=lambda i: i.occurred_at):
        apply_input(s.engine, item)
    s.engine.advance(START + timedelta(days=800))
    ids = {note.originator_id for note in s.app.recorder.select_notifications(None, 100_000)}
    kinds = set()
    for aggregate_id in ids:
        aggregate = s.app.repository.get(aggregate_id, projector_func=FAST.project)
        snapshot = Snapshot.take(aggregate)
        stored = s.app.mapper.to_stored_event(snapshot)
        again = s.app.mapper.to_domain_event(stored).mutate(None)
        assert vars(again) == vars(aggregate)
        kinds.add(type(aggregate).__name__)
    assert {"Member"} <= kinds


def test_the_timer_index_stays_proportional_to_live_timers_after_many_refreshes(make_system, tmp_path):
    """Every event touching a timer row pushes its timers again; the stale entries must not pile
    up with history (issue 9: memory flat in event count), and due work still fires in order."""
    from bench.workloads import generate_orders
    from infra.service_layer.ingest import ingest_file

    s = make_system()
    source = tmp_path / "orders.jsonl"
    generate_orders(source, 3000, 20, seed=3)
    report = ingest_file(s.engine, "orders", source, progress=False)
    assert report.applied == 3000 and not report.rejected
    index = s.engine.timers
    live = sum(len(row.get("timers", {})) for row in index.rows.values())
    assert live > 0, "the members reached a tier, so each has a review timer"
    assert len(index.heap) <= 2 * live + 64, f"{len(index.heap)} heap entries for {live} live timers"
    # The compacted index still holds every live timer and fires them, earliest first.
    fired = s.engine.advance(datetime(2027, 6, 1, tzinfo=SH))
    assert fired >= live and not index.skipped
    assert len(index.heap) <= 2 * sum(len(r.get("timers", {})) for r in index.rows.values()) + 64
    history = s.store.view("tier_history")
    assert any(c["event"] == "TierReviewed" for row in history.values() for c in row["changes"])
