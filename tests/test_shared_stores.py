"""The stores two processes share: member keys, API keys, idempotency records, the audit key.

Each test opens the store twice, as two processes would (SQLite: the same
data dir; PostgreSQL: the event store's database, from two data dirs).
"""
from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import pytest

from domain.base import ERASED, Ctx
from infra.audit.checkpoints import AuditError, key_path, load_key, make_checkpoints, signing_key
from infra.audit.sql import AuditSql
from infra.bootstrap import open_api_keys, open_app, open_idempotency, open_key_store
from infra.service_layer.uow import UnitOfWork
from infra.settings import Settings
from infra.stores.pii import ErasedError, KeyStoreError, PiiCipher


def _settings(event_store: str, data_dir) -> Settings:
    return Settings(data_dir=data_dir, event_store=event_store)


def _two(event_store: str, tmp_path) -> tuple[Settings, Settings]:
    """Two processes' settings: the same data dir on SQLite, two empty ones on PostgreSQL."""
    if event_store == "sqlite":
        return _settings("sqlite", tmp_path / "d"), _settings("sqlite", tmp_path / "d")
    return _settings(event_store, tmp_path / "a"), _settings(event_store, tmp_path / "b")


def _key_stores(event_store, tmp_path):
    one, two = (open_key_store(s) for s in _two(event_store, tmp_path))
    one.create = True  # a new log: the first process makes the store
    one.ensure()
    return one, two


def test_a_key_destroyed_by_another_process_is_never_served_again(event_store, tmp_path):
    one, two = _key_stores(event_store, tmp_path)
    try:
        sealed = PiiCipher(one).seal("M1", "王芳")
        assert PiiCipher(two).open("M1", sealed) == "王芳"  # the other process has used the key
        assert one.destroy("M1") is True
        assert PiiCipher(two).open("M1", sealed) == ERASED
        assert PiiCipher(two).open_fields("M1", {"name": sealed}) == {"name": ERASED}
        assert two.is_destroyed("M1")
        with pytest.raises(ErasedError):
            PiiCipher(two).seal("M1", "new name")
    finally:
        one.close()
        two.close()


def test_two_processes_making_a_members_first_key_get_the_same_key(event_store, tmp_path):
    one, two = _key_stores(event_store, tmp_path)
    try:
        sealed = PiiCipher(one).seal_fields("M2", {"name": "李娜", "phone": None})
        assert PiiCipher(two).open_fields("M2", sealed) == {"name": "李娜"}
        assert PiiCipher(two).seal("M2", "x") and two.key("M2") == one.key("M2")
    finally:
        one.close()
        two.close()


@pytest.mark.postgres
def test_a_destroyed_key_leaves_no_bytes_in_the_postgresql_table(pg_url, tmp_path):
    one, _ = _key_stores(pg_url, tmp_path)
    try:
        for n in range(30):
            one.key(f"M{n}", create=True)
        key = one.key("LAST", create=True)  # the newest row: a plain VACUUM leaves it in the free space
        with psycopg.connect(pg_url, autocommit=True) as db:
            def table_bytes() -> bytes:
                db.execute("CHECKPOINT")
                path = db.execute("SELECT current_setting('data_directory') || '/' || "
                                  "pg_relation_filepath('vip_member_keys')").fetchone()[0]
                with open(path, "rb") as f:
                    return f.read()
            assert key in table_bytes()
            one.destroy("LAST")
            assert key not in table_bytes()
            assert db.execute("SELECT count(*) FROM vip_member_keys").fetchone()[0] == 30
    finally:
        one.close()


@pytest.mark.postgres
def test_keys_of_a_data_dirs_keys_db_move_into_postgresql_once(pg_url, tmp_path):
    old = open_key_store(_settings("sqlite", tmp_path / "d"))
    old.create = True
    sealed = PiiCipher(old).seal("M1", "王芳")
    old.destroy("M9")
    old.close()
    moved = open_key_store(_settings(pg_url, tmp_path / "d"))  # tables missing: filled from keys.db
    try:
        assert PiiCipher(moved).open("M1", sealed) == "王芳" and moved.is_destroyed("M9")
    finally:
        moved.close()
    elsewhere = open_key_store(_settings(pg_url, tmp_path / "empty"))
    try:
        assert PiiCipher(elsewhere).open("M1", sealed) == "王芳"
    finally:
        elsewhere.close()


def _register(app, input_id: str, member_id: str, name: str) -> None:
    """Register a member through a unit of work of its own (no engine: the stores alone)."""
    uow = UnitOfWork(app, {})
    uow.register_member(Ctx(datetime.now(timezone.utc)), input_id, member_id, {"name": name})
    uow.commit()


@pytest.mark.postgres
def test_missing_key_tables_beside_a_log_with_events_are_an_error_not_a_new_store(pg_url, tmp_path):
    settings = _settings(pg_url, tmp_path / "d")
    app, keys = open_app(settings)
    _register(app, "reg-1", "M1", "王芳")
    keys.close()
    app.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("DROP TABLE vip_member_keys")
    app, keys = open_app(_settings(pg_url, tmp_path / "other"))
    try:
        with pytest.raises(KeyStoreError, match=r"vip_member_keys\) is missing"):
            keys.key("M1")
    finally:
        keys.close()
        app.close()


def test_an_api_key_made_in_one_process_works_in_another_and_its_revocation_too(event_store, tmp_path):
    first, second = (open_api_keys(s) for s in _two(event_store, tmp_path))
    try:
        key_id, token = first.create("agent", "agent-7")
        assert second.verify(token).subject == "agent-7"
        second.revoke(key_id)
        assert first.verify(token) is None
    finally:
        first.close()
        second.close()


def test_an_idempotency_record_is_seen_by_another_process(event_store, tmp_path):
    first, second = (open_idempotency(s) for s in _two(event_store, tmp_path))
    try:
        assert first.reserve("key_a", "k-1", "fp") is True
        assert second.reserve("key_a", "k-1", "fp") is False  # in flight in the other process
        first.finish("key_a", "k-1", 201, {"complaint_id": "C-1"}, '"1"')
        stored = second.get("key_a", "k-1")
        assert (stored.state, stored.status, stored.body) == ("done", 201, {"complaint_id": "C-1"})
    finally:
        first.close()
        second.close()


def test_a_signer_without_the_key_that_signed_the_checkpoints_signs_nothing(event_store, tmp_path):
    one, two = _two(event_store, tmp_path)
    app, keys = open_app(one)
    try:
        _register(app, "reg-1", "M1", "王芳")
        sql = AuditSql(app.recorder)
        assert make_checkpoints(sql, signing_key(sql, key_path(one.data_dir, {})), 1)
        _register(app, "reg-2", "M2", "李娜")
        missing = tmp_path / "elsewhere" / "audit.key"  # a process with a data dir of its own
        with pytest.raises(AuditError, match="no new key is made"):
            signing_key(sql, missing)
        assert not missing.exists()
        other = tmp_path / "other.key"
        with pytest.raises(AuditError, match="did not sign the log's last checkpoint"):
            make_checkpoints(sql, load_key(other, create=True), 1)
        assert len(sql.checkpoints()) == 1
        assert make_checkpoints(sql, signing_key(sql, key_path(one.data_dir, {})), 1)
    finally:
        keys.close()
        app.close()
