"""The keyed read store: rows read by key on demand, listings through an index, views versioned
and rebuilt alone, the same on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner

from hosts.main import main
from infra.bootstrap import build
from infra.dev.demo import run_demo
from infra.service_layer.envelope import envelope, lean_envelope
from infra.service_layer.replay import rebuild_views, replay
from infra.stores.keyed import STAGING, KeyedRows
from infra.stores.readstore import SqliteReadStore
from projections import queries
from projections.members import CURRENT_TIER
from projections.views import VIEWS
from tests.scenario import START
from domain.window import AT, PAID


def _answers(store, at, policy) -> str:
    return json.dumps({"tiers": queries.tiers(store, at, policy),
                       "breaches": queries.pending_breaches(store, at, policy),
                       "ledger": queries.ledger(store, at, policy),
                       "kpis": queries.complaint_kpis(store, policy),
                       "overdue": queries.overdue(store, at)}, sort_keys=True, default=str)


@pytest.fixture
def demo(make_system, event_store):
    s = make_system(event_store)
    end = run_demo(s, members=40, seed=3, progress=False)
    s.engine.flush()
    return s, end


def test_the_keyed_store_answers_every_query_like_a_replay(demo):
    s, end = demo
    for at in (end, end + timedelta(days=30), START + timedelta(days=100)):
        assert _answers(s.store, at, s.app.policy) == _answers(replay(s.app, VIEWS), at, s.app.policy)


def test_opening_the_store_reads_no_rows_and_a_get_reads_one(demo):
    s, _ = demo
    store = SqliteReadStore(s.settings.data_dir / "read.db", read_only=True, views=VIEWS) \
        if not s.settings.event_store.startswith("postgres") else s.store
    store.reload() if store is s.store else None
    rows = store.view("current_tier")
    assert isinstance(rows, KeyedRows) and not rows.cache and not rows.dirty
    member = next(iter(rows))
    assert store.get("current_tier", member)["member_id"] == member
    assert list(rows.cache) == [member]


def test_breaches_reads_only_complaints_whose_alert_instant_has_come(demo):
    s, end = demo
    complaints = s.store.view("complaints")
    now = (end + timedelta(days=1)).isoformat()
    candidates = list(s.store.listing("complaints", now))
    open_rows = [r for r in complaints.values() if r["status"] not in ("resolved", "closed")]
    assert len(candidates) <= len(open_rows)
    answer = queries.pending_breaches(s.store, end + timedelta(days=1), s.app.policy)
    assert {b["complaint_id"] for b in answer} <= {r["complaint_id"] for r in candidates}


def test_a_changed_view_rebuilds_alone_at_the_next_writing_open(make_system):
    s = make_system("sqlite")
    run_demo(s, members=30, seed=5, progress=False)
    s.engine.flush()
    path = s.settings.data_dir / "read.db"
    s.close()
    db = sqlite3.connect(path)
    ledger_before = db.execute("SELECT key, data FROM rows WHERE view = 'ledger' ORDER BY key").fetchall()
    db.execute("UPDATE view_versions SET version = 0 WHERE name = 'current_tier'")
    db.execute("UPDATE rows SET data = '{}' WHERE view = 'current_tier'")  # the old shape
    db.commit()
    db.close()

    again = build(s.settings, clock=s.clock)
    try:
        assert dict(again.store.view("current_tier")) == replay(again.app, VIEWS).view("current_tier")
        assert again.store.versions["current_tier"][0] == CURRENT_TIER.version
        db = sqlite3.connect(path)
        assert db.execute("SELECT key, data FROM rows WHERE view = 'ledger' ORDER BY key").fetchall() \
            == ledger_before  # the other views were not touched
        assert not db.execute("SELECT count(*) FROM rows WHERE view LIKE ?", (f"%{STAGING}",)).fetchone()[0]
        db.close()
    finally:
        again.close()


def test_a_query_on_a_view_of_another_version_answers_from_a_replay_and_writes_nothing(make_system):
    s = make_system("sqlite")
    end = run_demo(s, members=30, seed=6, progress=False)
    s.engine.flush()
    path = s.settings.data_dir / "read.db"
    s.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE view_versions SET version = 0 WHERE name = 'complaints'")
    db.execute("DELETE FROM rows WHERE view = 'complaints'")  # half built by another version
    db.commit()
    db.close()
    before = path.read_bytes()

    reader = build(s.settings, clock=s.clock, read_only=True)
    try:
        reference = replay(reader.app, VIEWS)
        assert queries.pending_breaches(reader.store, end, reader.app.policy) == \
            queries.pending_breaches(reference, end, reader.app.policy)
        assert queries.complaint_kpis(reader.store, reader.app.policy) == \
            queries.complaint_kpis(reference, reader.app.policy)
    finally:
        reader.close()
    assert path.read_bytes() == before


def test_an_interrupted_rebuild_leaves_the_old_rows_served_and_the_next_one_finishes(make_system, monkeypatch):
    s = make_system("sqlite")
    run_demo(s, members=30, seed=9, progress=False)
    s.engine.flush()
    store = s.store
    old = dict(store.view("tier_history"))

    def crash(*args, **kwargs):
        raise RuntimeError("killed before the swap")
    monkeypatch.setattr(store, "swap", crash)
    monkeypatch.setattr("infra.service_layer.replay.STAGE_ROWS", 5)  # staging rows hit the file
    with pytest.raises(RuntimeError):
        rebuild_views(s.app, store, [v for v in VIEWS if v.name == "tier_history"])
    staged = store.sql("SELECT count(*) FROM {rows} WHERE view = ?", (f"tier_history{STAGING}",)).fetchone()[0]
    assert staged > 0
    other = SqliteReadStore(s.settings.data_dir / "read.db", read_only=True, views=VIEWS)
    assert dict(other.view("tier_history")) == old  # readers see the old rows, never the half-built ones
    other.close()
    monkeypatch.undo()
    rebuild_views(s.app, store, [v for v in VIEWS if v.name == "tier_history"])
    assert not store.sql("SELECT count(*) FROM {rows} WHERE view = ?", (f"tier_history{STAGING}",)).fetchone()[0]
    assert dict(store.view("tier_history")) == replay(s.app, VIEWS).view("tier_history")


def test_vip_rebuild_view_rebuilds_that_view_from_the_log(make_system):
    s = make_system("sqlite")
    run_demo(s, members=20, seed=4, progress=False)
    s.close()
    env = {"VIP_DATA_DIR": str(s.settings.data_dir), "VIP_FUTURE_TOLERANCE_SECONDS": str(20 * 366 * 86400)}
    db = sqlite3.connect(s.settings.data_dir / "read.db")
    db.execute("DELETE FROM rows WHERE view = 'contracts'")
    db.commit()
    db.close()
    result = CliRunner().invoke(main, ["rebuild", "contracts", "--json", "--no-progress"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rebuilt"] == ["contracts"]
    again = build(replace(s.settings), clock=s.clock, read_only=True)
    try:
        assert dict(again.store.view("contracts")) == replay(again.app, VIEWS).view("contracts")
    finally:
        again.close()
    bad = CliRunner().invoke(main, ["rebuild", "nonesuch"], env=env)
    assert bad.exit_code == 2 and "nonesuch" in bad.output


def test_the_current_tier_row_keeps_only_what_a_window_can_still_hold(make_system):
    from infra.service_layer.upstream import apply_input, parse
    s = make_system("sqlite")
    for n in range(6):  # one order a year: the old ones leave the row as time moves on
        at = START + timedelta(days=365 * n)
        apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": f"e{n}", "member_id": "MK",
                                               "order_id": f"o{n}", "occurred_at": at.isoformat(),
                                               "amount_fen": 1000, "currency": "CNY"}))
    s.engine.flush()
    row = s.store.get("current_tier", "MK")
    assert "o0" not in row["orders"] and "o5" in row["orders"]  # pruned at the member's horizon
    assert len(json.dumps(row)) < 2000
    at = START + timedelta(days=365 * 5 + 1)
    answer = queries.tier_row(row, at, s.app.policy)
    member = s.app.member("MK")
    assert answer["window_spend_fen"] == sum(o[PAID] for o in member.orders.values()
                                             if at - timedelta(days=365) < o[AT] <= at)


def test_replay_envelopes_make_the_event_id_only_when_it_is_read(make_system):
    s = make_system("sqlite")
    run_demo(s, members=3, seed=1, progress=False)
    note = s.app.recorder.select_notifications(0, 1, inclusive_of_start=False)[0]
    event = s.app.mapper.to_domain_event(note)
    lean, full = lean_envelope(event, note.id), envelope(event, note.id)
    assert "id" not in lean and "aggregate_id" not in lean
    assert lean["id"] == full["id"] and lean.get("aggregate_id") == full["aggregate_id"]
    assert dict(lean) == full


def test_postgres_read_store_lives_beside_the_event_store_and_rebuilds_a_changed_view_alone(make_system, pg_url):
    import psycopg
    s = make_system(pg_url)
    end = run_demo(s, members=20, seed=12, progress=False)
    s.engine.flush()
    assert type(s.store).__name__ == "PostgresReadStore"
    s.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        ledger_before = db.execute("SELECT key, data FROM vip_read_rows WHERE view = 'ledger' ORDER BY key").fetchall()
        db.execute("UPDATE vip_read_view_versions SET version = 0 WHERE name = 'complaints'")
        db.execute("DELETE FROM vip_read_rows WHERE view = 'complaints'")
    reader = build(s.settings, clock=s.clock, read_only=True)
    try:  # served from a replay in memory, the tables untouched
        reference = replay(reader.app, VIEWS)
        assert queries.pending_breaches(reader.store, end, reader.app.policy) == \
            queries.pending_breaches(reference, end, reader.app.policy)
    finally:
        reader.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert not db.execute("SELECT count(*) FROM vip_read_rows WHERE view = 'complaints'").fetchone()[0]
    writer = build(s.settings, clock=s.clock)
    try:  # the next writing open rebuilds it alone
        assert dict(writer.store.view("complaints")) == replay(writer.app, VIEWS).view("complaints")
        assert writer.store.position_of("complaints") == writer.store.position
    finally:
        writer.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT key, data FROM vip_read_rows WHERE view = 'ledger' ORDER BY key").fetchall() \
            == ledger_before
