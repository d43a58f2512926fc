"""The stream processors' folds give the embedded runner's answers, effectively once (no broker)."""
from __future__ import annotations

import asyncio
import json
import dataclasses
import random
import sqlite3
import time
import zlib
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from consumers.stream_fold import PARKED, VERSIONS, Batch, Folder
from consumers.streams import send_dead_letters
from hosts.main import main
from infra.cli.common import summarise
from infra.dev.demo import run_demo
from infra.policy_file import load_policy
from infra.service_layer.envelope import envelope
from infra.settings import Settings
from infra.stores.leases import LeaseHeldError
from infra.stores.streamstore import LostPartitionError, ViewVersionsChangedError, open_stream_store, worker_lease
from projections.views import VIEWS
from schemas.events import decode_event, encode_event


def _messages(app, partitions: int = 3):
    """The log as the relay publishes it: per aggregate topic, partitioned by key."""
    out = []
    offsets: dict = {}
    for note in app.recorder.select_notifications(None, 1_000_000):
        event = envelope(app.mapper.to_domain_event(note), note.id)
        topic = f"vip.{event['aggregate']}.events.v1"
        partition = zlib.crc32(event["key"].encode()) % partitions
        offset = offsets.get((topic, partition), -1) + 1
        offsets[(topic, partition)] = offset
        out.append(SimpleNamespace(topic=topic, partition=partition, offset=offset,
                                   key=event["key"].encode(), value=encode_event(event), headers=[]))
    return out


def _store(tmp_path, url=None, **kw):
    settings = Settings(data_dir=tmp_path, streams_store=url)
    return open_stream_store(settings, views=VIEWS, **kw)


def _views(store) -> dict:
    """Every view's committed rows, as the query functions read them."""
    return {view.name: dict(store.view(view.name).items()) for view in VIEWS
            if any(True for _ in store.view(view.name).items())}


def _embedded(system) -> dict:
    return {name: rows for name, rows in system.store.rows.items() if rows}


def _fold_all(folder, messages, size=50):
    for start in range(0, len(messages), size):
        batch = folder.fold_batch(messages[start:start + size])
        folder.commit(batch)


def test_folding_the_topics_equals_the_embedded_read_store_despite_redeliveries(make_system, tmp_path):
    s = make_system()
    run_demo(s, members=60, seed=9, progress=False)
    s.engine.flush()
    messages = _messages(s.app)
    rng = random.Random(1)
    # Partitions interleave freely; within one the order holds. Some batches come twice.
    queues = {}
    for m in messages:
        queues.setdefault((m.topic, m.partition), []).append(m)
    store = _store(tmp_path)
    folder = Folder(store, VIEWS)
    outcomes = {"applied": 0, "redelivered": 0}
    while queues:
        batch_messages = []
        for tp in rng.sample(sorted(queues), k=min(2, len(queues))):
            taken, queues[tp] = queues[tp][:5], queues[tp][5:]
            if not queues[tp]:
                del queues[tp]
            batch_messages += taken
        for _ in range(2 if rng.random() < 0.2 else 1):  # a consumer restart redelivers
            batch = folder.fold_batch(batch_messages)
            folder.commit(batch)
            for name in outcomes:
                outcomes[name] += batch.outcomes[name]
    assert outcomes["applied"] == len(messages) and outcomes["redelivered"] > 0
    store.close()
    reopened = _store(tmp_path, read_only=True)
    assert _views(reopened) == _embedded(s)
    assert sum(reopened.offsets().values()) == len(messages)
    # The query functions answer from the read-only stream store as from the embedded one.
    at, policy = datetime(2031, 1, 1, tzinfo=timezone.utc), load_policy()
    assert summarise(reopened, at, policy) == summarise(s.store, at, policy)
    reopened.close()


def test_a_store_of_other_view_versions_is_emptied_and_folded_again(make_system, tmp_path):
    s = make_system()
    run_demo(s, members=10, seed=8, progress=False)
    messages = _messages(s.app)
    store = _store(tmp_path)
    _fold_all(Folder(store, VIEWS), messages)
    store.close()
    newer = [dataclasses.replace(v, version=v.version + 1) if v.name == "ledger" else v for v in VIEWS]
    store = open_stream_store(Settings(data_dir=tmp_path), views=newer)
    assert store.offsets() == {} and store.row_counts() == {}
    _fold_all(Folder(store, newer), messages)
    assert _views(store) == _embedded(s)
    store.close()


def test_every_row_is_owned_by_the_partition_of_one_aggregate(make_system):
    """Rows are keyed by the event's aggregate or the event's id: two aggregates never share a row,
    so only the owner of one partition ever writes a given row."""
    s = make_system()
    run_demo(s, members=40, seed=5, progress=False)
    owner: dict = {}
    for message in _messages(s.app):
        event = decode_event(message.value)
        own = {event["key"], f"{event['aggregate']}:{event['key']}", event["id"]}
        for view in VIEWS:
            for key in view.keys(event):
                assert key in own, (view.name, key, event["type"])
                aggregate = (event["aggregate"], event["key"])
                assert owner.setdefault((view.name, key), aggregate) == aggregate
    assert {name for name, _ in owner} >= {"ledger", "current_tier", "complaints", "contracts"}


def test_a_duplicate_published_at_a_new_offset_changes_nothing(make_system, tmp_path):
    """After a relay crash the same event may be published again; its version was applied."""
    s = make_system()
    run_demo(s, members=20, seed=3, progress=False)
    messages = _messages(s.app)
    store = _store(tmp_path)
    folder = Folder(store, VIEWS)
    _fold_all(folder, messages)
    before = _views(store)
    again = messages[len(messages) // 2]
    last = max(m.offset for m in messages if (m.topic, m.partition) == (again.topic, again.partition))
    batch = folder.fold_batch([SimpleNamespace(**{**vars(again), "offset": last + 1})])
    folder.commit(batch)
    assert batch.outcomes["duplicate"] == 1 and _views(store) == before
    store.close()


def test_a_fold_that_fails_leaves_no_partial_rows_and_goes_to_the_dead_letters(make_system, tmp_path):
    s = make_system()
    run_demo(s, members=10, seed=4, progress=False)
    messages = [m for m in _messages(s.app, partitions=1) if m.topic == "vip.member.events.v1"]
    store = _store(tmp_path)
    broken = SimpleNamespace(name="tier_history", keys=VIEWS[1].keys, version=1, index=None,
                             fold=lambda row, event, key: 1 / 0)
    views = [VIEWS[0], broken] + VIEWS[2:]  # current_tier folds first, then the broken view raises
    folder = Folder(store, views)
    first = messages[0]
    batch = folder.fold_batch([first])
    folder.commit(batch)
    assert batch.outcomes["dead"] == 1 and "ZeroDivisionError" in batch.dead[0][1]
    assert batch.dead[0][0] is first
    key = decode_event(first.value)["key"]
    assert store.get("current_tier", key) is None  # the first view's row was not kept
    assert store.offset(first.topic, first.partition) == 1  # consumed: the DLQ holds it
    garbage = SimpleNamespace(topic=first.topic, partition=0, offset=1, key=b"x", value=b"\x00bad", headers=[])
    batch = folder.fold_batch([garbage])
    assert batch.outcomes["dead"] == 1 and not any(store.view(v.name).dirty for v in VIEWS)
    store.close()


def test_a_version_gap_is_parked_and_folded_when_it_fills(make_system, tmp_path):
    s = make_system()
    run_demo(s, members=10, seed=6, progress=False)
    messages = [m for m in _messages(s.app, partitions=1) if m.topic == "vip.member.events.v1"]
    member = decode_event(messages[0].value)["key"]
    mine = [m for m in messages if decode_event(m.value)["key"] == member]
    assert len(mine) >= 3
    store = _store(tmp_path)
    folder = Folder(store, VIEWS)
    # Version 2 (and later) arrive before version 1 (the relay re-sent version 1 after them).
    late = [SimpleNamespace(**{**vars(m), "offset": i}) for i, m in enumerate(mine[1:] + mine[:1])]
    batch = folder.fold_batch(late[:-1])
    folder.commit(batch)
    assert batch.outcomes["parked"] == len(mine) - 1 and store.get("current_tier", member) is None
    store.close()
    store = _store(tmp_path)  # parked events are stored with the batch
    folder = Folder(store, VIEWS)
    assert len(store.get(PARKED, f"member:{member}")["events"]) == len(mine) - 1
    folder.commit(folder.fold_batch(late[-1:]))
    assert store.get(VERSIONS, f"member:{member}") == {"v": len(mine)}
    assert store.get(PARKED, f"member:{member}") is None
    assert store.get("current_tier", member) == s.store.get("current_tier", member)
    assert store.get("tier_history", member) == s.store.get("tier_history", member)
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_batch_of_a_worker_that_lost_its_partition_rolls_back(make_system, tmp_path, backend, request):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    s = make_system()
    run_demo(s, members=10, seed=2, progress=False)
    messages = [m for m in _messages(s.app, partitions=1) if m.topic == "vip.member.events.v1"]
    zombie_store, owner_store = _store(tmp_path, url), _store(tmp_path, url)
    zombie, owner = Folder(zombie_store, VIEWS), Folder(owner_store, VIEWS)
    zombie.commit(zombie.fold_batch(messages[:3]))
    owner.commit(owner.fold_batch(messages[:6]))  # the partition's new owner moved on
    batch = zombie.fold_batch(messages[3:8])
    with pytest.raises(LostPartitionError):
        zombie.commit(batch)
    assert batch.seeks == {(messages[0].topic, 0): 6}  # where the stored offset is now
    assert owner_store.offset(messages[0].topic, 0) == 6
    assert not any(zombie_store.view(v.name).dirty or zombie_store.view(v.name).cache for v in VIEWS)
    owner.commit(owner.fold_batch(messages[6:]))
    reader = _store(tmp_path, url, read_only=True)
    expected = Folder(_store(tmp_path / "x"), VIEWS)
    _fold_all(expected, messages)
    assert _views(reader) == _views(expected.store)
    for store in (zombie_store, owner_store, reader, expected.store):
        store.close()


def test_a_second_worker_on_a_sqlite_store_is_refused_with_a_pointer_to_postgresql(tmp_path):
    settings = Settings(data_dir=tmp_path)
    lease = worker_lease(settings)
    try:
        with pytest.raises(LeaseHeldError, match="VIP_STREAMS_STORE=postgresql://"):
            worker_lease(settings)
    finally:
        lease.release()
    assert worker_lease(Settings(data_dir=tmp_path, streams_store="postgresql://u@h/db")) is None


def test_dead_letters_are_sent_off_the_event_loop_and_acknowledged_before_it_returns():
    """A slow broker acknowledgement must not stall Faust's loop (heartbeats, rebalances)."""
    acked = []

    class SlowAck:
        def get(self, timeout):
            time.sleep(0.3)
            acked.append(timeout)

    class Producer:
        def send(self, topic, key, value, headers):
            assert topic == "vip.member.events.v1.dlq" and dict(headers)["dlq_reason"] == b"bad"
            return SlowAck()

    message = SimpleNamespace(topic="vip.member.events.v1", partition=2, offset=7, key=b"k", value=b"v", headers=[])
    batch = Batch(0, dead=[(message, "bad")])

    async def run() -> int:
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1
        ticker = asyncio.create_task(tick())
        await send_dead_letters(Producer(), batch)
        ticker.cancel()
        return ticks

    assert asyncio.run(run()) >= 10 and len(acked) == 1


def _demo_in_both_stores(make_system, tmp_path, members: int):
    """A demo folded by the embedded runner and by a stream worker into ``tmp_path/data``; the
    system, still open."""
    s = make_system(name="data")
    run_demo(s, members=members, seed=4, progress=False)
    s.engine.flush()
    store = _store(tmp_path / "data")
    _fold_all(Folder(store, VIEWS), _messages(s.app))
    store.close()
    return s


def test_queries_answer_the_same_from_the_stream_store_with_vip_query_views_streams(make_system, tmp_path):
    s = _demo_in_both_stores(make_system, tmp_path, members=40)
    member = sorted(s.store.view("tier_history"))[0]  # a member whose tier changed
    s.close()
    runner = CliRunner()
    base = {"VIP_DATA_DIR": str(tmp_path / "data"), "VIP_EVENT_STORE": "sqlite"}
    for args in (["tiers"], ["ledger"], ["kpis"], ["breaches"], ["overdue"], ["tier", member],
                 ["tier-history", member]):
        answers = []
        for views in ("embedded", "streams"):
            result = runner.invoke(main, [*args, "--json"], env={**base, "VIP_QUERY_VIEWS": views},
                                   catch_exceptions=False)
            assert result.exit_code == 0, result.output
            answers.append(_without_instants(json.loads(result.output)))
        assert answers[0] == answers[1], args
        assert answers[0] or args[0] in ("breaches", "overdue"), args  # none open at the wall clock


def _without_instants(value):
    """Answers computed a few milliseconds apart differ only in their own "as of" instant."""
    if isinstance(value, dict):
        return {k: _without_instants(v) for k, v in value.items() if k not in ("as_of", "at")}
    if isinstance(value, list):
        return [_without_instants(v) for v in value]
    return value


def test_queries_from_a_stream_store_of_other_view_versions_are_refused_not_served(make_system, tmp_path):
    _demo_in_both_stores(make_system, tmp_path, members=10).close()
    db = sqlite3.connect(tmp_path / "data" / "streams.db")
    with db:
        db.execute("UPDATE vip_streams_view_versions SET version = version + 1 WHERE name = 'ledger'")
    db.close()
    result = CliRunner().invoke(main, ["ledger", "--json"], env={
        "VIP_DATA_DIR": str(tmp_path / "data"), "VIP_EVENT_STORE": "sqlite", "VIP_QUERY_VIEWS": "streams"})
    assert result.exit_code == 1
    assert "ledger folded by another version" in result.output and "Traceback" not in result.output
    bad = CliRunner().invoke(main, ["tiers"], env={"VIP_DATA_DIR": str(tmp_path / "data"),
                                                   "VIP_QUERY_VIEWS": "kafka"})
    assert bad.exit_code == 1 and "VIP_QUERY_VIEWS='kafka': use embedded or streams" in bad.output


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_worker_whose_store_was_taken_over_by_other_view_versions_writes_nothing(make_system, tmp_path,
                                                                                   backend, request):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    s = make_system()
    run_demo(s, members=10, seed=2, progress=False)
    messages = [m for m in _messages(s.app, partitions=1) if m.topic == "vip.member.events.v1"]
    old_store = _store(tmp_path, url)
    old = Folder(old_store, VIEWS)
    old.commit(old.fold_batch(messages[:3]))
    # A worker with a new version of a view starts: it empties the store and folds from scratch.
    newer = [dataclasses.replace(v, version=v.version + 1) if v.name == "ledger" else v for v in VIEWS]
    new_store = open_stream_store(Settings(data_dir=tmp_path, streams_store=url), views=newer)
    assert new_store.offsets() == {}
    batch = old.fold_batch(messages[3:8])
    with pytest.raises(ViewVersionsChangedError, match="another worker runs other code"):
        old.commit(batch)
    assert new_store.offsets() == {} and new_store.row_counts() == {}  # nothing of the old code landed
    for store in (old_store, new_store):
        store.close()
