"""The fast paths (infra/service_layer/fastpath.py) against the library's own, byte for byte.

The same inputs (upstream orders and activity by file ingest, operator commands, due tier
reviews; a member snapshot every 3 versions) run once on FAST and once on LIBRARY in two
fresh data dirs; the stored events and snapshots, every aggregate's state as loaded each
way, the read models folded each way and ``copy_member`` against the generic deepcopy must
agree. Profiles are left out of the inputs: sealing uses random nonces and keys.
"""
from __future__ import annotations

import copy
import gc
import json
import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot

from domain.base import DomainError
from domain.member import Member
from infra.service_layer.asof import VIEWS
from infra.service_layer.commands import ApplyForVip, ApproveVip, StartVipReview
from infra.service_layer.fastpath import FAST, LIBRARY, paths_named, paths_of
from infra.service_layer.handlers import handle
from infra.service_layer.replay import replay
from infra.service_layer.runner import Runner
from infra.settings import Settings
from infra.stores.readstore import MemoryStore
from tests.scenario import START, upstream_events, write_jsonl
from tests.test_batching import _ingest_all, _notes

INTERVAL = 3                                   # a member snapshot every 3 versions
COMMANDS_AT = START + timedelta(days=480)      # after every input's instant
END = START + timedelta(days=800)              # the scheduler: every review due by then
SNAPSHOT_AT = datetime(2030, 1, 1, tzinfo=timezone.utc)  # Snapshot.take stamps the wall clock
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def frozen_snapshot_clock(monkeypatch):
    monkeypatch.setattr(Snapshot, "create_timestamp", staticmethod(lambda: SNAPSHOT_AT))


def _run(make_system, tmp_path, name: str, library_path: bool = False):
    """A system in its own data dir given the inputs: ingest, VIP applications, due reviews."""
    system = make_system(name=name, batch_max_inputs=7, aggregate_map_mb=0, snapshot_interval=INTERVAL,
                         library_path=library_path)
    rows = [r for r in upstream_events(members=8, seed=11, days=420) if r["type"] != "CustomerRegistered"]
    path = tmp_path / f"{name}.jsonl"
    write_jsonl(path, rows)
    report = _ingest_all(system, path)
    assert report.applied == len(rows) and not report.rejected
    for member in sorted({r["member_id"] for r in rows}):
        for command in (ApplyForVip(member), StartVipReview(member), ApproveVip(member)):
            try:
                handle(system.engine, command, at=COMMANDS_AT)
            except DomainError:  # not qualified: the same refusal on either path
                break
    system.engine.advance(END)
    return system


def _latest_versions(app) -> dict:
    latest: dict = {}
    for _, oid, version, _, _ in _notes(app):
        latest[oid] = max(version, latest.get(oid, 0))
    return latest


def _snapshot_rows(app) -> dict:
    """Every stored snapshot: (aggregate id, version) -> (topic, state bytes)."""
    rows = {}
    for oid in _latest_versions(app):
        for s in app.snapshots.recorder.select_events(UUID(oid)):
            rows[(oid, s.originator_version)] = (s.topic, bytes(s.state))
    return rows


def _state(app, aggregate) -> tuple:
    """An aggregate's type, version and state: a member's as its snapshot's stored bytes."""
    if isinstance(aggregate, Member):
        return "Member", aggregate.version, bytes(app.mapper.to_stored_event(Snapshot.take(aggregate)).state)
    state = {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}
    return type(aggregate).__name__, aggregate.version, state


def _one_by_one(app, paths) -> dict:
    """Each aggregate read back from the store (latest snapshot, events after it) with ``paths``'s
    projector, as ``Repository.get`` does for a cold aggregate (a version given skips its cache)."""
    return {oid: _state(app, app.repository.get(UUID(oid), version=v, projector_func=paths.project))
            for oid, v in _latest_versions(app).items()}


def _views(store) -> str:
    return json.dumps({v.name: dict(store.view(v.name).items()) for v in VIEWS}, sort_keys=True, default=repr)


@contextmanager
def _on(app, paths):
    """``app`` on ``paths`` for a while (its folds ask ``app.paths``)."""
    before, app.paths = app.paths, paths
    try:
        yield app
    finally:
        app.paths = before


class _GcProbe:
    """A view that folds nothing and notes whether the cyclic collector ran during the fold."""
    name, types = "gc_probe", None

    def __init__(self):
        self.seen: set = set()

    def keys(self, event):
        self.seen.add(gc.isenabled())
        return ()


def test_paths_are_named_fast_and_library_and_vip_library_path_chooses_the_library():
    assert (paths_named("fast"), paths_named("library")) == (FAST, LIBRARY)
    assert [Settings.from_env(env).library_path for env in ({}, {"VIP_LIBRARY_PATH": "0"},
                                                            {"VIP_LIBRARY_PATH": "1"})] == [False, False, True]
    assert paths_of(object()) is FAST
    with pytest.raises(ValueError, match="library"):
        paths_named("slow")


def test_the_log_folds_to_the_same_envelopes_and_views_through_the_mapper_as_through_the_fast_decoder(
        make_system, tmp_path):
    system = _run(make_system, tmp_path, "fast")
    app = system.app
    notes = app.recorder.select_notifications(0, 100_000, inclusive_of_start=False)
    assert len(notes) > 100
    for note in notes:  # repr: an instant keeps its zone, a value its type
        assert repr(FAST.stored_envelope(app.mapper, note)) == repr(LIBRARY.stored_envelope(app.mapper, note))
    folded = {}
    for paths in (FAST, LIBRARY):
        probe = _GcProbe()
        with _on(app, paths):
            replayed = replay(app, [*VIEWS, probe])
            runner = Runner(app, MemoryStore(), VIEWS)
            runner.catch_up(flush=False)
        folded[paths.name] = (_views(replayed), _views(runner.store), probe.seen)
    assert folded["fast"][:2] == folded["library"][:2] == (_views(system.store),) * 2
    assert (folded["fast"][2], folded["library"][2], gc.isenabled()) == ({False}, {True}, True)


def test_bulk_loads_give_each_aggregate_the_state_the_library_projector_gives_it_alone(make_system, tmp_path):
    app = _run(make_system, tmp_path, "fast").app
    latest = _latest_versions(app)
    assert any(v > INTERVAL for v in latest.values()) and _snapshot_rows(app)
    bulk = FAST.load_many(app, [UUID(oid) for oid in latest])
    assert {str(k): _state(app, a) for k, a in bulk.items()} == _one_by_one(app, LIBRARY) \
        == _one_by_one(app, FAST)
    assert LIBRARY.load_many(app, [UUID(oid) for oid in latest]) == {}   # "load them one by one"


def test_copy_member_copies_what_the_generic_deepcopy_copies_and_shares_no_container(
        make_system, tmp_path, monkeypatch):
    app = _run(make_system, tmp_path, "fast").app
    loaded = FAST.load_many(app, [UUID(oid) for oid in _latest_versions(app)])
    members = [a for a in loaded.values() if isinstance(a, Member)]
    for member in members[::2]:
        member._window()  # the derived index (a slot, never in a snapshot) is copied too
    fast = [copy.deepcopy(m) for m in members]
    with monkeypatch.context() as patch:
        patch.delattr(Member, "__deepcopy__")   # the library's copy: the generic deepcopy
        generic = [copy.deepcopy(member) for member in members]
    assert len(members) >= 4 and any(hasattr(m, "_index") for m in members)
    for original, ours, theirs in zip(members, fast, generic):
        assert vars(ours) == vars(theirs) == vars(original)
        assert _index(ours) == _index(theirs) == _index(original)
        assert _state(app, ours) == _state(app, theirs)
        assert not _shared_containers(original, ours), original.member_id


def _index(member):
    index = getattr(member, "_index", None)
    return None if index is None else {name: getattr(index, name) for name in type(index).__slots__}


def _shared_containers(a, b) -> list:
    """Mutable containers (and domain objects) reachable from both ``a`` and ``b``."""
    left, right = _containers(a, {}), _containers(b, {})
    return [left[i] for i in left.keys() & right.keys()]


def _containers(obj, out: dict) -> dict:
    # by id: every list, dict, set and domain object reachable from obj (the rest is immutable)
    ours = type(obj).__module__.startswith("domain")
    if isinstance(obj, (list, dict, set)) or ours:
        if id(obj) in out:
            return out
        out[id(obj)] = obj
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif ours:
        children = [*getattr(obj, "__dict__", {}).values(),
                    *(getattr(obj, name, None) for name in getattr(type(obj), "__slots__", ()))]
    else:
        children = []
    for child in children:
        _containers(child, out)
    return out


def test_the_same_inputs_store_the_same_bytes_on_the_library_path(make_system, tmp_path):
    fast = _run(make_system, tmp_path, "fast")
    library = _run(make_system, tmp_path, "library", library_path=True)
    assert (paths_of(fast.app), paths_of(library.app)) == (FAST, LIBRARY), \
        "infra/bootstrap.py should pass VipApp(..., paths=paths_named(...)) from settings.library_path"

    # every stored event: position, aggregate, version, topic and bytes
    assert _notes(fast.app) == _notes(library.app) and len(_notes(fast.app)) > 100

    # snapshots: the library snapshots at each version that crossed an interval; FAST, from the
    # aggregate in hand, at its latest version in that batch (the same state, maybe a later
    # version): a row both hold is the same bytes, a row FAST alone holds is what the library's
    # take_snapshot makes at that version, and each lies in an interval the library snapshotted
    # (the last one included)
    ours, theirs = _snapshot_rows(fast.app), _snapshot_rows(library.app)
    assert theirs and {(o, v) for o, v in theirs} == {(o, v) for _, o, v, topic, _ in _notes(library.app)
                                                       if v % INTERVAL == 0 and topic.startswith("domain.member:")}
    for key in ours.keys() & theirs.keys():
        assert ours[key] == theirs[key], key
    for oid, version in ours.keys() - theirs.keys():
        member = library.app.repository.get(UUID(oid), version=version, projector_func=LIBRARY.project)
        made = library.app.mapper.to_stored_event(Snapshot.take(member))
        assert ours[(oid, version)] == (made.topic, bytes(made.state)), (oid, version)
    for oid in {o for o, _ in theirs}:
        assert {v // INTERVAL for o, v in ours if o == oid} <= {v // INTERVAL for o, v in theirs if o == oid}
        assert max(v for o, v in ours if o == oid) // INTERVAL == max(v for o, v in theirs if o == oid) // INTERVAL

    # every aggregate as loaded each way: FAST in bulk from its store, LIBRARY one by one from its own
    latest = _latest_versions(fast.app)
    bulk = FAST.load_many(fast.app, [UUID(o) for o in latest])
    assert {str(k): _state(fast.app, a) for k, a in bulk.items()} == _one_by_one(library.app, LIBRARY)

    # the read models: folded by each system as it went, and replayed from its log
    assert _views(fast.store) == _views(library.store)
    assert _views(replay(fast.app, VIEWS)) == _views(replay(library.app, VIEWS)) == _views(fast.store)


FAST_PATH_CALLS = {  # a bypass called directly: only fastpath.py may
    "stored_envelope": re.compile(r"(?<![.\w])stored_envelope\(|import[^\n]*\bstored_envelope\b"),
    "load_many": re.compile(r"(?<!def )(?<![.\w])load_many\(|prefetch import[^\n]*\bload_many\b"),
    "gc.disable": re.compile(r"\bgc\.disable\("),
    "Application._take_snapshots": re.compile(r"Application\._take_snapshots"),
    "a projector of its own": re.compile(r"domain_event\.mutate\("),
}


def _direct_bypasses() -> list[str]:
    found = []
    for path in sorted(p for package in ("infra", "consumers", "hosts") for p in (ROOT / package).rglob("*.py")):
        if path.name in ("fastpath.py", "envelope.py", "prefetch.py"):
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(ROOT)}: {what}" for what, pattern in FAST_PATH_CALLS.items()
                  if pattern.search(text)]
    return found


def test_no_infra_module_but_fastpath_calls_a_bypass_of_the_library():
    assert _direct_bypasses() == []
