"""Shared pytest fixtures, and the tiers (``tests/tiers.py``) given to every test.

* ``pg_cluster`` (session): throwaway PostgreSQL 15 cluster (infra/dev/postgres.py).
* ``pg_url`` (function): a fresh, empty database on that cluster per test; a test that reaches
  it must carry the ``postgres`` mark (its fixtures give it; a parameter needs
  ``pytest.param(..., marks=pytest.mark.postgres)``), so ``-m "not postgres"`` never starts it.
* ``kafka_broker`` (session): bootstrap string of a memory-only Tansu broker
  (infra/dev/broker.py).
* ``make_system`` (function): a whole backend in a fresh data dir on a :class:`FakeClock`.
* ``event_store`` (function): ``"sqlite"``, then a PostgreSQL url (marked ``postgres``).

Missing PostgreSQL binaries / tansu binary => the tests are skipped locally,
but fail when ``$CI`` is set (CI must never silently skip them).
"""

from __future__ import annotations

import os

import pytest

from infra.dev.postgres import PostgresBinariesMissing, start_pg_cluster
from tests.tiers import INTEGRATION_MODULES, require_mark, tier_marks

# A unit test slower than this (setup and call) is named at the end of the run.
UNIT_SECONDS = 1.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_or_fail(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


def pytest_ignore_collect(collection_path, config):
    # The fast tier alone (-m unit) does not even import the integration modules (schemathesis,
    # Playwright, DuckDB, ...): a few seconds of its minute.
    if config.getoption("markexpr") == "unit" and collection_path.name in INTEGRATION_MODULES:
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these marks
def pytest_collection_modifyitems(items):
    for item in items:
        given = {mark.name for mark in item.iter_markers()}
        module = item.path.name
        for name in sorted(tier_marks(module, item.originalname, item.fixturenames, given)):
            item.add_marker(name)


# Seconds each unit test spent in setup and call (a module fixture's cost lands on its first test).
_UNIT_SPENT: dict = {}


def pytest_runtest_logreport(report):
    if report.when in ("setup", "call") and "unit" in report.keywords:
        _UNIT_SPENT[report.nodeid] = _UNIT_SPENT.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    slow = sorted(((s, n) for n, s in _UNIT_SPENT.items() if s > UNIT_SECONDS), reverse=True)
    if slow:
        terminalreporter.write_line(f"unit tests over {UNIT_SECONDS:g} s: move them out of the fast tier "
                                    "(tests/tiers.py: SLOW_TESTS or INTEGRATION_MODULES)")
        for seconds, nodeid in slow:
            terminalreporter.write_line(f"  {seconds:.2f}s {nodeid}")


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
def pg_url(request):
    require_mark(request.node, "postgres", "PostgreSQL")  # before the cluster starts
    pg_cluster = request.getfixturevalue("pg_cluster")
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def event_store(request):
    """Run a test on the SQLite event store and on a throwaway PostgreSQL database."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return "sqlite"
