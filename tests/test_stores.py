"""The same scenario gives the same answers on POPO, SQLite and PostgreSQL event stores."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from infra.bootstrap import build
from infra.dev.demo import run_demo
from infra.service_layer.replay import replay
from infra.service_layer.runner import Runner
from infra.stores.readstore import SqliteReadStore
from projections import queries
from projections.views import VIEWS
from tests.scenario import START


def _summary(system, end):
    policy = system.app.policy
    store = system.store
    return json.dumps({"tiers": queries.tiers(store, end, policy),
                       "breaches": queries.pending_breaches(store, end, policy),
                       "ledger": queries.ledger(store, end, policy),
                       "kpis": queries.complaint_kpis(store, policy),
                       "overdue": queries.overdue(store, end)}, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from infra.settings import Settings
    system = build(Settings.from_env({}, data_dir=tmp_path_factory.mktemp("ref"), event_store="memory"))
    end = run_demo(system, members=120, seed=21, progress=False)
    system.engine.flush()
    yield _summary(system, end), system.app.recorder.max_notification_id()
    system.close()


def test_sqlite_event_store_gives_the_reference_answers(make_system, reference):
    s = make_system("sqlite")
    end = run_demo(s, members=120, seed=21, progress=False)
    s.engine.flush()
    assert (_summary(s, end), s.app.recorder.max_notification_id()) == reference


@pytest.mark.postgres
def test_postgresql_saves_record_tracking_with_the_events(make_system, pg_url, monkeypatch):
    """The library's stored-function path drops tracking rows, so the settings keep it off
    even when the process environment turns it on."""
    from eventsourcing.persistence import Tracking
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    s = make_system(pg_url)
    assert s.app.recorder.datastore.enable_db_functions is False
    s.engine.run(START, lambda u, c: u.register_member(c, "r", "M1", {"name": "x"}))
    with s.engine.unit_of_work() as uow:
        member = uow.member("M1")
        member.update_profile(s.engine.ctx(START), "u1", {"email": s.app.cipher.seal("M1", "a@b.cn")})
        uow.save_tracked(Tracking("kafka:t:0", 42), member)
    assert s.app.recorder.max_tracking_id("kafka:t:0") == 42


@pytest.mark.postgres
def test_postgresql_event_store_gives_the_reference_answers(make_system, pg_url, reference):
    s = make_system(pg_url)
    end = run_demo(s, members=120, seed=21, progress=False)
    s.engine.flush()
    assert (_summary(s, end), s.app.recorder.max_notification_id()) == reference
    rebuilt = replay(s.app, VIEWS)
    assert rebuilt.view("ledger") == s.store.view("ledger")


def test_a_crash_before_the_view_commit_replays_the_batch_exactly_once(make_system):
    """Rows and the tracking position commit together: a lost batch is redone, never doubled."""
    s = make_system("sqlite")
    end = run_demo(s, members=60, seed=4, progress=False)
    s.engine.flush()
    expected = _summary(s, end)
    settings = s.settings
    # More events arrive; the runner folds them in memory, then the process dies before commit.
    s.engine.run(end + timedelta(days=1), lambda u, c: u.register_member(c, "late-reg", "MX", {"name": "x"}))
    s.engine.runner.catch_up(flush=False)
    s.app.close()
    s.store.db.close()

    fresh = build(settings, clock=s.clock)
    try:
        assert fresh.store.get("current_tier", "MX") is not None  # caught up on start
        fresh.engine.flush()
        store = SqliteReadStore(settings.data_dir / "read.db")
        try:
            reference = replay(fresh.app, VIEWS)
            assert store.rows == {k: v for k, v in reference.rows.items()}
        finally:
            store.close()
        del expected
    finally:
        fresh.close()


def test_two_processes_committing_the_same_store_never_double_a_fold(make_system):
    s = make_system("sqlite")
    run_demo(s, members=30, seed=8, progress=False)
    s.engine.flush()
    other = SqliteReadStore(s.settings.data_dir / "read.db")
    stale = Runner(s.app, other, VIEWS)
    s.engine.run(START + timedelta(days=400), lambda u, c: u.register_member(c, "r", "MZ", {"name": "z"}))
    s.engine.flush()  # this process commits first
    s.engine.run(START + timedelta(days=401), lambda u, c: u.register_member(c, "r2", "MY", {"name": "y"}))
    stale.catch_up()  # started at the older position: must reload, not overwrite
    reference = replay(s.app, VIEWS)
    assert other.rows == reference.rows
    other.close()


def _order(s, n, member, at, amount=1000):
    from infra.service_layer.upstream import apply_input, parse
    apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": f"e{n}", "member_id": member,
                                           "order_id": f"o{n}", "occurred_at": at.isoformat(),
                                           "amount_fen": amount, "currency": "CNY"}))


def test_a_runner_that_finds_the_store_moved_on_mid_batch_folds_nothing_twice(make_system):
    """A stale commit in the middle of a long catch-up reloads; the rest of the batch is not re-folded."""
    s = make_system("sqlite")
    for n in range(5200):  # more rows than one mid-loop commit holds
        _order(s, n, f"M{n}", START + timedelta(seconds=n))
    late = SqliteReadStore(s.settings.data_dir / "read.db")  # opened before anyone committed
    s.engine.flush()
    Runner(s.app, late, VIEWS).catch_up()
    assert all(len(row["orders"]) == 1 for row in late.view("current_tier").values())
    late.close()


def test_timers_set_after_a_reload_still_fire(make_system):
    """Another process's commit makes this one reload; its timer index must follow the new rows."""
    a = make_system("sqlite", name="shared")
    b = make_system("sqlite", name="shared")
    _order(b, 1, "MB", START, 10_000)
    b.engine.flush()
    _order(a, 2, "MA", START + timedelta(hours=1), 10_000)
    a.engine.flush()  # stale: reloads
    _order(a, 3, "MC", START + timedelta(days=1), 600_000)  # silver; review due a year later
    assert a.engine.advance(START + timedelta(days=800)) == 1
    assert a.app.member("MC").tier == "member"
