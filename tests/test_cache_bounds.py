"""The audit chain cache and the view-row cache are bounded by memory, not by a count."""
from __future__ import annotations

from types import SimpleNamespace

from infra.audit.chain import ENTRY_BYTES, ZERO, ChainCache, event_hash, link
from infra.stores import keyed_rows
from infra.stores.keyed_rows import KeyedRows


def _stored(oid: str, version: int) -> SimpleNamespace:
    return SimpleNamespace(originator_id=oid, originator_version=version, topic="t", state=f"{oid}{version}".encode())


def test_the_chain_cache_holds_as_many_aggregates_as_its_megabytes_allow():
    assert ChainCache(megabytes=1).size == 2**20 // ENTRY_BYTES
    assert ChainCache(megabytes=64).size == 64 * 2**20 // ENTRY_BYTES
    assert ChainCache(size=3).size == 3


def test_an_aggregate_pushed_out_of_the_chain_cache_is_linked_from_the_chain_table():
    cache = ChainCache(megabytes=2 * ENTRY_BYTES / 2**20)  # room for two aggregates
    table: dict = {}

    def commit(events):
        rows = link(events, cache, lambda keys: {k: table[k] for k in keys if k in table},
                    lambda wanted: {})
        cache.stage(rows)
        cache.commit()
        table.update({(o, v): h for o, v, h in rows})
        return rows

    first = commit([_stored("a", 1), _stored("b", 1), _stored("c", 1)])
    assert cache.get("a", 1) is None and cache.get("c", 1) is not None  # "a" went first
    looked_up = []
    rows = link([_stored("a", 2)], cache, lambda keys: looked_up.extend(keys) or {k: table[k] for k in keys},
                lambda wanted: {})
    assert looked_up == [("a", 1)]
    assert rows[0][2] == event_hash(first[0][2], "t", "a", 2, b"a2") != event_hash(ZERO, "t", "a", 2, b"a2")


class _Store:
    """A keyed store of ``count`` rows of ``size`` bytes of JSON each, every read counted."""

    def __init__(self, count: int, size: int) -> None:
        self.rows = {f"k{i}": {"v": "x" * size} for i in range(count)}
        self.reads = 0

    def fetch(self, view, key):
        self.reads += 1
        return self.rows.get(key)

    def fetch_many(self, view, keys):
        self.reads += len(keys)
        return {k: self.rows[k] for k in keys if k in self.rows}


def _cached_after_commit(size: int, monkeypatch) -> int:
    monkeypatch.setattr(keyed_rows, "CACHE_MB", 8)
    store = _Store(20_000, size)
    rows = KeyedRows(store, "view")
    rows["k0"] = {"v": "x" * size}  # a commit writes one row: the estimate follows it
    rows.changes()
    rows.settle()
    rows.prefetch(list(store.rows))
    return len(rows.cache)


def test_a_view_of_small_rows_keeps_more_of_them_than_a_view_of_large_rows(monkeypatch):
    small, large = _cached_after_commit(50, monkeypatch), _cached_after_commit(2_000, monkeypatch)
    assert small > 2 * large
    assert large >= 1_000  # the floor: a view of very large rows still keeps some


def test_a_row_pushed_out_of_the_view_cache_is_read_again(monkeypatch):
    monkeypatch.setattr(keyed_rows, "CACHE_MB", 1)
    store = _Store(20_000, 2_000)
    rows = KeyedRows(store, "view")
    rows.prefetch(list(store.rows))
    assert len(rows.cache) == rows.cache_rows < 20_000
    before = store.reads
    assert rows["k0"] == store.rows["k0"]  # the oldest left the cache
    assert store.reads == before + 1
    assert rows["k19999"] == store.rows["k19999"]  # the newest is still cached
    assert store.reads == before + 1
