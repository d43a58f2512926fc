"""Shared pytest fixtures.

* ``pg_cluster`` (session): throwaway PostgreSQL 15 cluster (infra/dev/postgres.py).
* ``pg_url`` (function): a fresh, empty database on that cluster per test.
* ``kafka_broker`` (session): bootstrap string of a memory-only Tansu broker
  (infra/dev/broker.py).

Missing PostgreSQL binaries / tansu binary => the tests are skipped locally,
but fail when ``$CI`` is set (CI must never silently skip them).
"""

from __future__ import annotations

import os

import pytest

from infra.dev.postgres import PostgresBinariesMissing, start_pg_cluster


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_or_fail(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster():
    try:
        cluster = start_pg_cluster("vip")
    except PostgresBinariesMissing as exc:
        _skip_or_fail(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


# Systems built on a database, closed before that database is dropped (the
# pool would otherwise wait on connections the drop has killed).
_OPEN_ON: dict = {}


@pytest.fixture
def pg_url(pg_cluster):
    name = pg_cluster.create_database()
    url = pg_cluster.url_for(name)
    yield url
    for system in _OPEN_ON.pop(url, []):
        try:
            system.close()
        except Exception:
            pass
    try:
        pg_cluster.drop_database(name)
    except Exception:  # a test that broke its DB must not error its teardown
        pass


@pytest.fixture(scope="session")
def kafka_broker():
    from infra.dev.broker import Broker, BrokerBinaryNotFound

    try:
        broker = Broker(cluster_id="vip-test").start()
    except BrokerBinaryNotFound as exc:
        _skip_or_fail(str(exc))
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


# more fixtures below


class FakeClock:
    """The wall clock at the edge, set by the test."""

    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at


@pytest.fixture
def make_system(tmp_path):
    """Build a whole backend in a fresh data dir: ``make_system(store="sqlite"|"memory"|URL)``."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from infra.bootstrap import build
    from infra.settings import Settings

    built = []

    def make(store="sqlite", name="vip", clock=None, **overrides):
        if clock is None:
            # The default clock stands still at 2025-01-01 while scenarios run through
            # 2025-2026 (a historical replay), so it does not refuse their future
            # instants; a test of that rule passes its own clock.
            clock = FakeClock(datetime(2025, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")))
            overrides.setdefault("future_tolerance_seconds", 20 * 366 * 86400)
        settings = Settings.from_env({}, data_dir=tmp_path / name, event_store=store, **overrides)
        system = build(settings, clock=clock)
        system.clock = clock
        built.append(system)
        _OPEN_ON.setdefault(store, []).append(system)
        return system

    yield make
    for system in built:
        try:
            system.close()
        except Exception:
            pass
        for systems in _OPEN_ON.values():
            if system in systems:
                systems.remove(system)


@pytest.fixture(params=["sqlite", "postgres"])
def event_store(request):
    """Run a test on the SQLite event store and on a throwaway PostgreSQL database."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return "sqlite"
