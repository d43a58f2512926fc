"""One serve per SQLite data dir; on PostgreSQL one relay at a time, with failover."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.kafka.relay import RelayLeader
from infra.settings import Settings
from infra.stores.leases import AdvisoryLease, LeaseHeldError, relay_lease, serve_lease

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_serve_on_the_same_sqlite_store_is_refused_with_a_pointer_to_postgresql(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path / "d")
    held = serve_lease(settings)
    try:
        env = {**os.environ, "VIP_DATA_DIR": str(tmp_path / "d"), "VIP_EVENT_STORE": "sqlite",
               "VIP_KAFKA_BOOTSTRAP": "127.0.0.1:9"}   # refused before any broker is asked
        done = subprocess.run([sys.executable, "-m", "hosts.main", "serve"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert f"another vip serve (pid {os.getpid()})" in done.stderr
        assert "VIP_EVENT_STORE=postgresql://" in done.stderr and "Traceback" not in done.stderr
    finally:
        held.release()
    again = serve_lease(settings)          # a serve that stopped (or died) frees the data dir
    assert again is not None
    again.release()


def test_commands_beside_a_serve_on_sqlite_are_not_refused(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path / "d")
    held = serve_lease(settings)
    try:
        env = {**os.environ, "VIP_DATA_DIR": str(tmp_path / "d"), "VIP_EVENT_STORE": "sqlite"}
        done = subprocess.run([sys.executable, "-m", "hosts.main", "tiers", "--json"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        held.release()


def test_only_one_process_holds_the_relay_lease_and_another_takes_over_when_it_ends(pg_url):
    settings = Settings.from_env({}, event_store=pg_url, topic_prefix="lease-test")
    first, second = relay_lease(settings), relay_lease(settings)
    assert isinstance(first, AdvisoryLease)
    assert first.acquire() is True
    assert second.acquire() is False
    leaders = [RelayLeader(first), RelayLeader(second)]
    assert [leader.leads() for leader in leaders] == [True, False]
    first._conn.close()                    # the publishing process's session ends (it died)
    leaders[1].checked = 0.0
    assert leaders[1].leads() is True      # failover: the other process publishes now
    leaders[0].checked = 0.0
    assert leaders[0].leads() is False     # and the old one knows it lost the lease
    second.release()


def test_sqlite_and_memory_stores_need_no_relay_lease(tmp_path):
    assert relay_lease(Settings.from_env({}, data_dir=tmp_path)) is None
    assert RelayLeader(None).leads() is True
    with pytest.raises(LeaseHeldError):
        held = serve_lease(Settings.from_env({}, data_dir=tmp_path / "x"))
        try:
            serve_lease(Settings.from_env({}, data_dir=tmp_path / "x"))
        finally:
            held.release()


def test_processes_starting_together_on_a_fresh_postgresql_store_all_open_it(pg_url, tmp_path):
    # Table creation is not safe twice at once (seen: "Failed to record tracking for __migration__ 1"
    # in a second serve, "relation vip_streams_rows already exists" in a second worker); the schema
    # lock makes the processes take turns. Each opens the event store, the read store and the stream store.
    script = ("import sys; from pathlib import Path; from infra.bootstrap import open_app, open_views; from projections.views import VIEWS;"
              "from infra.settings import Settings; from infra.stores.streamstore import open_stream_store;"
              "s = Settings.from_env({}, data_dir=Path(sys.argv[1]), event_store=sys.argv[2],"
              " streams_store=sys.argv[2]);"
              "app, keys = open_app(s); views = open_views(s); streams = open_stream_store(s, views=VIEWS);"
              "[x.close() for x in (app, keys, views, streams)]; print('opened')")
    data = tmp_path / "data"
    data.mkdir()
    runs = [subprocess.Popen([sys.executable, "-c", script, str(data), pg_url], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(4)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert all("opened" in out for out in outputs)
