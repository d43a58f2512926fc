"""Replay and audit: every read model rebuilds from the log, and as-of answers equal a replay."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from click.testing import CliRunner

from hosts.main import main
from infra.dev.demo import run_demo
from infra.service_layer.replay import rebuild, replay
from infra.service_layer.upstream import apply_input, parse
from projections import queries
from projections.views import VIEWS
from tests.aggregate_logs import logs_by_aggregate
from tests.scenario import START, Z, upstream_events


def _inputs(events):
    return sorted((parse(e["source"], e) for e in events), key=lambda i: i.occurred_at)


def _answers(store, at, policy):
    return {"tiers": queries.tiers(store, at, policy),
            "breaches": queries.pending_breaches(store, at, policy),
            "ledger": queries.ledger(store, at, policy),
            "kpis": queries.complaint_kpis(store, policy),
            "overdue": queries.overdue(store, at)}


def test_as_of_answers_equal_what_a_system_fed_only_up_to_then_says(make_system):
    """Audit replay: the full log replayed to T answers as a system that stopped at T did."""
    events = upstream_events(members=8, days=450)
    full = make_system(name="full")
    for item in _inputs(events):
        apply_input(full.engine, item)
    full.engine.advance(START + timedelta(days=800))
    for cut in (60, 200, 390, 470):
        at = START + timedelta(days=cut)
        partial = make_system(name=f"cut{cut}")
        for item in _inputs(events):
            if item.occurred_at <= at:
                apply_input(partial.engine, item)
        partial.engine.advance(at)
        partial.engine.flush()
        as_of = replay(full.app, VIEWS, until=at)
        assert _answers(as_of, at, full.app.policy) == _answers(partial.store, at, partial.app.policy)


def test_demo_year_replay_equals_the_live_read_store_and_balances(make_system):
    s = make_system()
    end = run_demo(s, members=150, seed=11, progress=False)
    s.engine.flush()
    live = _answers(s.store, end, s.app.policy)
    rebuilt = replay(s.app, VIEWS)
    assert _answers(rebuilt, end, s.app.policy) == live
    assert all(t["balanced"] for t in live["ledger"]["trial_balance"].values())
    assert live["ledger"]["postings"] > 0 and live["kpis"]
    count = rebuild(s)
    assert count == s.app.recorder.max_notification_id()
    assert _answers(s.store, end, s.app.policy) == live


def test_ledger_as_of_filtering_equals_a_replay_to_that_instant(make_system):
    s = make_system()
    end = run_demo(s, members=80, seed=5, progress=False)
    s.engine.flush()
    for month in (3, 6, 9):
        at = datetime(2025, month, 15, tzinfo=end.tzinfo)
        filtered = queries.ledger(s.store, at, s.app.policy)
        replayed = queries.ledger(replay(s.app, VIEWS, until=at), at, s.app.policy)
        assert json.dumps(filtered, sort_keys=True) == json.dumps(replayed, sort_keys=True)


def test_a_duplicated_event_posts_nothing_twice(make_system):
    from infra.service_layer.runner import apply
    s = make_system()
    run_demo(s, members=40, seed=2, progress=False)
    s.engine.flush()
    before = json.dumps(dict(s.store.view("ledger")), sort_keys=True)
    from infra.service_layer.envelope import envelope
    for note in s.app.recorder.select_notifications(None, 100_000):
        event = envelope(s.app.mapper.to_domain_event(note), note.id)
        if event["aggregate"] == "contract":
            apply(s.store, [v for v in VIEWS if v.name == "ledger"], event)
    assert json.dumps(dict(s.store.view("ledger")), sort_keys=True) == before


def _counting(view, calls):
    def fold(row, event, key):
        calls[(view.name, event["type"])] = calls.get((view.name, event["type"]), 0) + 1
        return view.fold(row, event, key)
    return replace(view, fold=fold)


def test_every_view_skipping_the_event_types_it_never_folds_replays_the_same_rows(make_system):
    """A view's ``types`` only skip events whose fold would change no row: the rows of a
    replay that asks every fold about every event are the same, view by view, row by row."""
    s = make_system()
    run_demo(s, members=60, seed=5, progress=False)
    filtered = replay(s.app, VIEWS)
    every = replay(s.app, [replace(v, types=None) for v in VIEWS])
    assert all(filtered.view(v.name) for v in VIEWS)  # the demo log reaches every view
    assert {v.name: filtered.view(v.name) for v in VIEWS} == {v.name: every.view(v.name) for v in VIEWS}


def test_an_order_is_folded_by_the_current_tier_alone(make_system):
    """The replay's bulk (orders) costs one fold each, not one per view."""
    s = make_system()
    for item in _inputs(upstream_events(members=3, days=40)):
        apply_input(s.engine, item)
    calls: dict = {}
    replay(s.app, [_counting(v, calls) for v in VIEWS])
    assert calls[("current_tier", "OrderPaid")] > 0
    assert {view for view, kind in calls if kind == "OrderPaid"} == {"current_tier"}


def test_replay_as_of_counts_the_events_it_folded_when_later_ones_sit_between_them(make_system, event_store):
    """With a timeline per aggregate, A's event after T is logged before B's event before T:
    `vip replay --as-of T` says how many events it folded, not the log position it reached."""
    s = make_system(event_store)
    day = datetime(2025, 3, 1, 10, tzinfo=Z)
    orders = [("a1", "A", 0), ("a2", "A", 200), ("b1", "B", 10)]   # logged in this order
    for event_id, member, days in orders:
        apply_input(s.engine, parse("orders", {
            "type": "OrderPaid", "event_id": event_id, "member_id": member, "order_id": event_id,
            "occurred_at": (day + timedelta(days=days)).isoformat(), "amount_fen": 10_000, "currency": "CNY"}))
    s.engine.flush()
    at = day + timedelta(days=50)
    stamps = sorted((e[2], e[0]) for events in logs_by_aggregate(s.app).values() for e in events)
    folded = sum(1 for stamp, _ in stamps if stamp <= at)
    assert 0 < folded < s.app.recorder.max_notification_id()
    env = {"VIP_DATA_DIR": str(s.settings.data_dir), "VIP_EVENT_STORE": event_store}
    out = CliRunner().invoke(main, ["replay", "--as-of", at.isoformat(), "--json", "--no-progress"], env=env)
    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    assert answer["events_replayed"] == folded
    assert {r["member_id"] for r in answer["tiers"]} == {"A", "B"}
