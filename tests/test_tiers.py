"""The test tiers (tests/tiers.py): what makes a test integration, and that deselecting a
resource's mark really keeps the resource from starting."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers import INTEGRATION_MODULES, SLOW_TESTS, require_mark, tier_marks

TESTS = Path(__file__).parent


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=TESTS.parent, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600)


def test_a_test_on_postgresql_or_the_broker_is_integration_with_the_resource_mark():
    assert tier_marks("test_codec.py", "t", ["tmp_path", "pg_url"], []) == {"postgres", "integration"}
    assert tier_marks("test_codec.py", "t", ["pg_cluster"], []) == {"postgres", "integration"}
    assert tier_marks("test_codec.py", "t", ["kafka_broker", "make_system"], []) == {"kafka", "integration"}


def test_a_test_marked_for_a_resource_by_hand_or_by_its_parameter_is_integration():
    for mark in ("postgres", "kafka", "browser"):
        assert tier_marks("test_codec.py", "t", ["event_store"], [mark]) == {"integration"}


def test_a_test_in_an_integration_module_or_named_slow_is_integration_and_any_other_is_unit():
    module, name = next(iter(SLOW_TESTS)).split("::")
    assert tier_marks(module, name, [], []) == {"integration"}
    assert tier_marks(module, "test_something_else", [], []) == {"unit"}
    assert tier_marks(next(iter(INTEGRATION_MODULES)), "t", ["tmp_path"], []) == {"integration"}
    assert tier_marks("test_codec.py", "t", ["tmp_path", "make_system", "event_store"], []) == {"unit"}
    assert tier_marks("test_codec.py", "t", [], ["integration"]) == set()


def test_every_module_and_test_the_tiers_name_exists():
    for module in INTEGRATION_MODULES:
        assert (TESTS / module).is_file(), f"tests/tiers.py names {module}, which is gone"
    for entry in SLOW_TESTS:
        module, name = entry.split("::")
        tree = ast.parse((TESTS / module).read_text())
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in names, f"tests/tiers.py names {entry}, which is gone"


def test_every_module_that_drives_chromium_is_marked_browser():
    for module in sorted(TESTS.glob("test_*.py")):
        source = module.read_text()
        if "playwright" in source and module.name != Path(__file__).name:
            assert "pytest.mark.browser" in source, f"{module.name} drives Chromium unmarked"


def test_a_test_gets_its_tier_mark_at_collection(request):
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None


def test_a_test_without_the_postgres_mark_is_refused_postgresql(request):
    with pytest.raises(pytest.fail.Exception, match="without the 'postgres' mark"):
        require_mark(request.node, "postgres", "PostgreSQL")
    require_mark(request.node, "unit", "nothing")  # a mark it carries lets it through


@pytest.mark.integration
def test_not_postgres_runs_the_event_store_tests_on_sqlite_without_starting_postgresql():
    # No PostgreSQL binaries and CI set: a test that still reached PostgreSQL would fail.
    run = _pytest("-m", "not postgres", "tests/test_erasure_free_text.py", CI="1", VIP_PG_BIN="/nonexistent")
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout and "error" not in run.stdout


@pytest.mark.integration
def test_every_collected_test_has_one_tier_and_the_fast_tier_starts_nothing():
    run = _pytest("--collect-only", "-m", "(unit and (integration or postgres or kafka or browser))"
                  " or not (unit or integration)")
    assert run.returncode == 5, run.stdout[-3000:]  # 5: no test collected
    assert "no tests collected" in run.stdout
