"""The write-back map is bounded by the memory its aggregates hold, least recently kept out first."""
from __future__ import annotations

from types import SimpleNamespace

from infra.service_layer.batch import BASE_BYTES, PER_ITEM_BYTES, AggregateMap, Batch, weigh
from infra.service_layer.ingest import ingest_file
from tests.scenario import upstream_events, write_jsonl


def _member(orders: int) -> SimpleNamespace:
    return SimpleNamespace(orders=dict.fromkeys(range(orders)), closed_orders={}, entries=[])


def test_the_map_keeps_many_small_aggregates_and_evicts_the_least_recently_kept_past_its_budget():
    small, large = weigh(_member(1)), weigh(_member(100))
    assert small == BASE_BYTES + PER_ITEM_BYTES and large == BASE_BYTES + 100 * PER_ITEM_BYTES
    kept = AggregateMap(budget=20 * small)
    for n in range(10):
        kept[f"m{n}"] = _member(1)
    kept["m0"] = _member(1)                 # kept again: now the most recent
    Batch(kept, limit=1_000_000)       # a batch starts: within budget, nothing leaves
    assert len(kept) == 10 and kept.total == 10 * small
    kept["long"] = _member(100)             # one long history: the oldest small ones make room
    Batch(kept, limit=1_000_000)
    assert kept.total <= kept.budget
    assert "long" in kept and "m0" in kept and "m1" not in kept
    assert kept.total == sum(weigh(a) for a in kept.values())
    kept.pop("long")
    del kept["m0"]
    assert kept.total == sum(weigh(a) for a in kept.values()) and kept.pop("nope", None) is None
    kept.clear()
    assert kept.total == 0 and not kept.weights


def test_members_stay_warm_between_batches_within_the_budget_and_are_read_again_without_one(
        make_system, tmp_path):
    path = tmp_path / "orders.jsonl"
    write_jsonl(path, [r for r in upstream_events(members=12, seed=5, days=120)
                       if r["type"] != "CustomerRegistered"])
    loads = {}
    for name, mb in (("warm", 256), ("cold", 0)):
        system = make_system(name=name, batch_max_inputs=5, aggregate_map_mb=mb)
        calls = loads[name] = []
        get = system.app.repository.get
        system.app.repository.get = lambda aggregate_id, **kw: calls.append(aggregate_id) or get(aggregate_id, **kw)
        system.app.load_many = lambda aggregate_ids: {}     # count every load, one by one
        ingest_file(system.engine, "orders", path, progress=False)
    assert len(set(loads["warm"])) == len(loads["warm"])       # each member read once, then kept
    assert len(loads["cold"]) > 3 * len(loads["warm"])
