"""An untouched log of 100,000 events verifies clean (built through the real recorder: chain rows,
cache and batched lookups as ingest writes them; about 10 s on SQLite, 40 s on PostgreSQL here)."""
from __future__ import annotations

from bench.audit import fill
from tests.audit_support import verify_json, vip


def test_an_untouched_log_of_100k_events_verifies_clean(make_system, event_store):
    system = make_system(event_store)
    assert fill(system.app, 100_000) == 100_000
    system.close()
    env = {"VIP_DATA_DIR": str(system.settings.data_dir), "VIP_EVENT_STORE": event_store,
           "VIP_CHECKPOINT_EVERY": "10000"}
    assert vip(env, "checkpoint").exit_code == 0
    code, report = verify_json(env)
    assert (code, report["events"], report["checkpoints"], report["problems"]) == (0, 100_000, 10, 0)
