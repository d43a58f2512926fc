"""Opening a store to write leaves its log as it was: the chain's start is recorded once."""
from __future__ import annotations

import hashlib
from pathlib import Path

from tests.audit_support import Raw, build_log, vip


def test_reopening_a_store_to_write_records_the_chain_start_once_and_changes_no_event_byte(
        make_system, event_store, tmp_path):
    env = build_log(make_system, event_store, tmp_path, orders=30, members=5)
    events = Path(env["VIP_DATA_DIR"]) / "events.db"
    assert vip(env, "replay", "--no-progress").exit_code == 0
    before = hashlib.sha256(events.read_bytes()).hexdigest() if event_store == "sqlite" else None
    for _ in range(3):   # each a process that opens the event store to write, and writes no event
        assert vip(env, "replay", "--no-progress").exit_code == 0
    raw = Raw(env)
    try:
        assert raw.sql("SELECT count(*) FROM event_chain_start") == [(1,)]
    finally:
        raw.close()
    if before is not None:
        assert hashlib.sha256(events.read_bytes()).hexdigest() == before
