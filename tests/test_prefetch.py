"""A batch loads its cold members in bulk (infra.service_layer.prefetch): same log, fewer reads."""
from __future__ import annotations

from tests.scenario import write_jsonl
from tests.test_batching import _ingest_all, _notes, _rows


def _counting_loads(app) -> list:
    """Count the repository's one-aggregate loads (each a snapshot and an events query)."""
    calls, get = [], app.repository.get

    def counted(*args, **kwargs):
        calls.append(args[0])
        return get(*args, **kwargs)
    app.repository.get = counted
    return calls


def test_cold_members_are_loaded_in_bulk_and_the_log_is_the_same_as_loading_them_one_by_one(
        make_system, tmp_path):
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, _rows())
    # A map of no memory is emptied at every batch, so the members of each batch of 7
    # are cold; snapshots every 5 versions make the bulk read start from snapshots too.
    bulk = make_system(name="bulk", batch_max_inputs=7, aggregate_map_mb=0, snapshot_interval=5)
    single = make_system(name="single", batch_max_inputs=7, aggregate_map_mb=0, snapshot_interval=5)
    single.app.load_many = lambda aggregate_ids: {}      # the per-aggregate path only
    bulk_loads, single_loads = _counting_loads(bulk.app), _counting_loads(single.app)
    reports = [_ingest_all(system, path) for system in (bulk, single)]

    assert _notes(bulk.app) == _notes(single.app)
    assert [(r.applied, r.duplicates, len(r.rejected)) for r in reports] == \
        [(reports[0].applied, 1, 1)] * 2
    snapshots = bulk.app.snapshots.recorder
    assert any(snapshots.select_events(i, limit=1) for i in set(single_loads))
    # one by one: a load per cold member per batch; in bulk only what a batch did not name
    # up front (members whose review timer fires between the inputs, or that a refused line
    # evicted) is loaded alone
    assert len(single_loads) > 100
    assert len(bulk_loads) < len(single_loads) / 3


def test_a_member_first_seen_in_a_batch_is_known_absent_without_a_read(make_system, tmp_path):
    system = make_system(batch_max_inputs=50)
    loads = _counting_loads(system.app)
    rows = [{"event_id": f"e{n}", "type": "OrderPaid", "member_id": f"NEW{n % 10}", "order_id": f"o{n}",
             "occurred_at": f"2025-03-01T10:{n:02d}:00+08:00", "amount_fen": 10_000, "currency": "CNY"}
            for n in range(40)]
    path = tmp_path / "new.jsonl"
    write_jsonl(path, rows)
    report = _ingest_all(system, path)
    assert report.applied == 40 and loads == []
    assert system.app.member("NEW3").orders.keys() == {f"o{n}" for n in range(3, 40, 10)}


def test_a_batch_reads_the_view_rows_of_its_cold_members_in_bulk_and_folds_the_same_rows(
        make_system, tmp_path):
    rows = [{"event_id": f"e{n}", "type": "OrderPaid", "member_id": f"C{n % 30}", "order_id": f"o{n}",
             "occurred_at": f"2025-03-{1 + n // 60:02d}T10:{n % 60:02d}:00+08:00",
             "amount_fen": 300_000, "currency": "CNY"} for n in range(240)]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_jsonl(first, rows[:120], shuffle_seed=None)
    write_jsonl(second, rows[120:], shuffle_seed=None)
    expected = make_system(name="expected", batch_max_inputs=50)
    for path in (first, second):
        _ingest_all(expected, path)
    _ingest_all(make_system(name="cold", batch_max_inputs=50), first)
    cold = make_system(name="cold", batch_max_inputs=50)   # a new process: nothing cached
    fetched, fetch = [], cold.store.fetch
    cold.store.fetch = lambda view, key: fetched.append((view, key)) or fetch(view, key)
    _ingest_all(cold, second)
    assert [f for f in fetched if f[0] in ("current_tier", "tier_history", "timers")] == []
    cold.engine.flush()
    for view in ("current_tier", "tier_history", "timers"):
        assert dict(cold.store.view(view).items()) == dict(expected.store.view(view).items())
