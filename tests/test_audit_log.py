"""A log auditors can verify (issue 20): `vip verify` names the first changed, missing,
reordered or inserted event, and a truncated log, on SQLite and PostgreSQL."""
from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from infra.audit.sql import AuditSql
from infra.audit.verify import verify
from tests.audit_support import Raw, build_log, verify_json, vip


@pytest.fixture
def log(make_system, event_store, tmp_path):
    """A real log of ~350 events, checkpointed every 100 ids up to its end, and raw access to it."""
    env = build_log(make_system, event_store, tmp_path)
    made = vip(env, "checkpoint")
    assert made.exit_code == 0, made.output + made.stderr
    raw = Raw(env)
    yield env, raw
    raw.close()


def test_an_untouched_log_verifies_clean_with_its_checkpoints(log):
    env, raw = log
    result = vip(env, "verify", "--no-progress")
    assert result.exit_code == 0, result.output
    events = raw.max_id()
    assert result.stdout.strip() == f"verified: {events:,} events checked, 4 checkpoints verified"
    code, report = verify_json(env)
    assert (code, report["events"], report["checkpoints"], report["unchained"]) == (0, events, 4, 0)


def test_a_changed_event_is_named(log):
    env, raw = log
    oid, ids = raw.aggregate_with(3)
    [(state,)] = raw.sql("SELECT state FROM {events} WHERE {id} = ?", (ids[1],))
    forged = bytes(state).replace(b'"CNY"', b'"USD"')
    assert forged != bytes(state)
    raw.sql("UPDATE {events} SET state = ? WHERE {id} = ?", (forged, ids[1]))
    code, report = verify_json(env)
    assert code == 1
    first = report["first"]
    assert (first["kind"], first["position"], first["aggregate"], first["version"]) == \
        ("changed", ids[1], raw.oid(oid), 2)
    # the checkpoint over it no longer folds to its signed root either, but later in the log
    assert any(f["kind"] == "checkpoint" for f in report["findings"])


def test_a_deleted_event_is_named_with_where_it_stood(log):
    env, raw = log
    oid, ids = raw.aggregate_with(3)
    raw.sql("DELETE FROM {events} WHERE {id} = ?", (ids[1],))
    code, report = verify_json(env)
    first = report["first"]
    assert code == 1
    assert (first["kind"], first["after"], first["aggregate"], first["version"]) == \
        ("missing", ids[0], raw.oid(oid), 2)


def test_reordered_events_are_named(log):
    env, raw = log
    oid, ids = raw.aggregate_with(3)
    a, b = ids[1], ids[2]       # versions 2 and 3 swap places in the log
    raw.sql("UPDATE {events} SET {id} = -1 WHERE {id} = ?", (a,))
    raw.sql("UPDATE {events} SET {id} = ? WHERE {id} = ?", (a, b))
    raw.sql("UPDATE {events} SET {id} = ? WHERE {id} = -1", (b,))
    code, report = verify_json(env)
    first = report["first"]
    assert code == 1
    assert (first["kind"], first["position"], first["aggregate"], first["version"]) == \
        ("reordered", a, raw.oid(oid), 3)


def test_swapped_event_bodies_are_named(log):
    env, raw = log
    _, ids = raw.aggregate_with(3)
    [(s2,)] = raw.sql("SELECT state FROM {events} WHERE {id} = ?", (ids[1],))
    [(s3,)] = raw.sql("SELECT state FROM {events} WHERE {id} = ?", (ids[2],))
    raw.sql("UPDATE {events} SET state = ? WHERE {id} = ?", (bytes(s3), ids[1]))
    raw.sql("UPDATE {events} SET state = ? WHERE {id} = ?", (bytes(s2), ids[2]))
    code, report = verify_json(env)
    assert code == 1 and (report["first"]["kind"], report["first"]["position"]) == ("changed", ids[1])


def test_an_inserted_event_is_named(log):
    env, raw = log
    _, ids = raw.aggregate_with(1)
    forged = uuid.uuid4()
    raw.sql("INSERT INTO {events} (originator_id, originator_version, topic, state)"
            " SELECT ?, 1, topic, state FROM {events} WHERE {id} = ?",
            (forged if raw.pg else forged.hex, ids[0]))
    code, report = verify_json(env)
    first = report["first"]
    assert code == 1
    assert (first["kind"], first["position"], first["aggregate"], first["version"]) == \
        ("inserted", raw.max_id(), forged.hex, 1)


def test_a_log_cut_short_after_a_checkpoint_is_named(log):
    env, raw = log
    end = raw.max_id()
    # a careful forger removes the tail's chain rows too: only the checkpoint knows
    raw.sql("DELETE FROM event_chain WHERE EXISTS (SELECT 1 FROM {events} e WHERE"
            " e.originator_id = event_chain.originator_id AND e.originator_version ="
            " event_chain.originator_version AND e.{id} > ?)", (end - 3,))
    raw.sql("DELETE FROM {events} WHERE {id} > ?", (end - 3,))
    code, report = verify_json(env)
    first = report["first"]
    assert code == 1
    assert (first["kind"], first["position"]) == ("truncated", end - 2)
    assert f"covers up to {end}" in first["detail"]


def test_a_forged_checkpoint_is_named(log):
    env, raw = log
    raw.sql("UPDATE log_checkpoints SET to_id = to_id + 1 WHERE from_id = 1")
    code, report = verify_json(env)
    assert code == 1 and report["first"]["kind"] == "checkpoint" and "signature" in report["first"]["detail"]


def test_verifying_from_a_position_checks_from_its_checkpoint_on(log):
    env, raw = log
    oid, ids = raw.aggregate_with(3)
    [(state,)] = raw.sql("SELECT state FROM {events} WHERE {id} = ?", (ids[1],))
    raw.sql("UPDATE {events} SET state = ? WHERE {id} = ?", (bytes(state) + b" ", ids[1]))
    next_checkpoint = ((ids[1] - 1) // 100 + 1) * 100 + 1
    code, report = verify_json(env, "--from", str(next_checkpoint))
    assert code == 0 and report["events"] == raw.max_id() - next_checkpoint + 1
    code, report = verify_json(env, "--from", str(ids[1]))
    assert code == 1 and report["first"]["position"] == ids[1]


def test_erasure_keeps_the_log_verifying(log):
    env, raw = log
    erased = vip(env, "erase", "member", "M0000001", "--at", "2026-01-01T00:00:00+08:00")
    assert erased.exit_code == 0, erased.output + erased.stderr
    assert vip(env, "checkpoint").exit_code == 0
    code, report = verify_json(env)
    assert code == 0 and report["events"] == raw.max_id(), report["summary"]


def test_the_scheduler_signs_the_checkpoints_that_fell_due(make_system, event_store, tmp_path):
    env = build_log(make_system, event_store, tmp_path)
    assert vip(env, "tick").exit_code == 0
    code, report = verify_json(env)
    end = Raw(env).max_id()
    assert code == 0 and report["checkpoints"] == end // 100   # full ranges only; the rest waits


def test_events_stored_before_chaining_are_reported_once_then_adopted(make_system, event_store, tmp_path):
    env = build_log(make_system, event_store, tmp_path)
    raw = Raw(env)
    legacy = raw.max_id()
    raw.sql("DELETE FROM event_chain")                       # a log written before this change
    raw.sql("UPDATE event_chain_start SET position = ?", (legacy,))
    more = build_log(make_system, event_store, tmp_path, orders=50, seed=12)  # the upgraded code writes on
    assert more == env and raw.max_id() > legacy
    code, report = verify_json(env)
    assert code == 0 and report["unchained"] == legacy
    assert f"unchained before position {legacy + 1}" in report["summary"]
    adopted = vip(env, "verify", "--adopt", "--no-progress")
    assert adopted.exit_code == 0 and "attested only from" in adopted.stderr
    code, report = verify_json(env)
    assert code == 0 and report["unchained"] == 0 and report["adopted_at"]
    _, ids = raw.aggregate_with(2)
    raw.sql("DELETE FROM {events} WHERE {id} = ?", (ids[0],))  # adopted events are attested now
    code, report = verify_json(env)
    assert code == 1 and report["first"]["kind"] == "missing"
    raw.close()


def test_a_refused_write_leaves_no_hash_behind(make_system, event_store):
    """A conflicting save's hashes never enter the cache: the next event links to what was stored."""
    first = make_system(event_store).app.recorder
    second = type(first)(first.datastore, events_table_name=first.events_table_name)  # its own cache
    oid = uuid.uuid4()

    def stored(version: int, body: bytes) -> StoredEvent:
        return StoredEvent(oid, version, "tests.audit:Forged", body)

    first.insert_events([stored(1, b"one")])
    with pytest.raises(IntegrityError):
        first.insert_events([stored(1, b"again"), stored(2, b"never stored")])
    first.insert_events([], tracking=Tracking("tests", 1))   # a save of nothing but a position
    second.insert_events([stored(2, b"two")])                  # another process writes version 2
    first.insert_events([stored(3, b"three")])
    report = verify(AuditSql(first), None)
    assert report.clean, report.summary()
