"""The two test tiers, given to every test at collection by ``tests/conftest.py``.

* ``unit``, the fast tier: ``bash scripts/test.sh -m unit`` (under a minute). Domain rules,
  services on the in-memory or SQLite store, folds, codecs; no test of it takes over a second.
* ``integration``: the rest. A throwaway PostgreSQL (``postgres``), the broker (``kafka``),
  headless Chromium (``browser``), subprocesses and servers, and every test that takes over a
  second (``bash scripts/test.sh -m unit --durations=20`` shows the slowest; a unit test over
  a second is named at the end of the run).

A test is ``integration`` when it uses a PostgreSQL or broker fixture, carries one of those
three marks (a parameter's mark counts: ``pytest.param("postgres", marks=pytest.mark.postgres)``),
sits in a module of :data:`INTEGRATION_MODULES` or is named in :data:`SLOW_TESTS`; every other
test is ``unit``. ``bash scripts/test.sh`` runs both tiers.
"""
from __future__ import annotations

from collections.abc import Iterable

import pytest

# Fixtures that start something outside the process, and the mark each implies.
FIXTURE_MARKS = {"pg_cluster": "postgres", "pg_url": "postgres", "kafka_broker": "kafka"}
RESOURCE_MARKS = ("postgres", "kafka", "browser")

# Modules whose every test is integration: they start processes or servers, drive many inputs
# through the system on purpose (fuzzing, scale, benchmarks), build a simulated year in a
# fixture, or take over two seconds together.
INTEGRATION_MODULES = frozenset({
    "test_analytics_export.py",    # a simulated year exported and read by DuckDB
    "test_api.py",                 # the HTTP API end to end (7 s)
    "test_api_concurrency.py",     # requests on threads, held mid-command, over several engines
    "test_api_fuzz.py",            # Hypothesis state machine over the whole API
    "test_api_roles.py",           # every route for every role over HTTP (13 s together)
    "test_api_safety.py",          # hostile input over HTTP, signing the largest terms (12 s)
    "test_api_schema.py",          # schemathesis over the OpenAPI document
    "test_api_verify.py",          # the log verified over HTTP
    "test_audit_log.py",           # tamper evidence: every kind of damage to a stored log (5 s)
    "test_audit_scale.py",         # 100k events verified
    "test_bench_smoke.py",         # the benchmarks, small
    "test_cli.py",                 # the vip command end to end (4 s)
    "test_cli_lists.py",           # the vip command's lists and errors as an operator types them
    "test_cli_units.py",           # tables of a simulated year
    "test_cluster_script.py",      # a cluster of processes
    "test_console_api.py",         # the console's pages over HTTP (5 s)
    "test_concurrency.py",         # processes ingesting at once
    "test_fuzz_inputs.py",         # Hypothesis over the input path
    "test_keyed_store.py",         # read stores filled and rebuilt from a year's log
    "test_leases.py",              # processes racing for leases
    "test_read_store_recovery.py", # damaged read stores rebuilt from the log
    "test_replay.py",              # replays of a simulated year
    "test_schema_registry_api.py", # the registry served over HTTP
    "test_store_faults.py",        # damaged stores and full disks through the CLI
    "test_stores.py",              # reference answers from every store
    "test_streams.py",             # stream workers over a simulated year
})

# Tests over a second in a module that is otherwise fast ("module::function", every parameter).
SLOW_TESTS = frozenset({
    "test_batching.py::test_a_batch_killed_midway_commits_nothing_and_a_rerun_gives_the_uninterrupted_log",
    "test_batching.py::test_the_log_is_identical_event_for_event_whatever_the_batch_size",
    "test_bounded_state.py::test_a_cold_member_loads_from_its_snapshot_and_fewer_events_than_the_interval",
    "test_bounded_state.py::test_the_timer_index_stays_proportional_to_live_timers_after_many_refreshes",
    "test_calendar.py::test_add_and_elapsed_round_trip_over_random_starts_and_durations",
    "test_engine.py::test_a_shuffled_file_gives_the_same_log_as_the_same_events_arriving_live",
    "test_envelope.py::test_a_recorded_event_decodes_to_the_envelope_its_domain_event_gives",
    "test_ingest.py::test_ingest_memory_does_not_grow_with_the_file_only_the_open_batch",
    "test_prefetch.py::test_cold_members_are_loaded_in_bulk_and_the_log_is_the_same_as_loading_them_one_by_one",
    "test_queries_readonly.py::test_every_query_works_on_a_read_only_data_dir_and_writes_nothing",
    "test_revenue_share_reversal.py::"
    "test_any_sequence_of_partial_credits_reverses_exactly_the_shares_of_a_fully_credited_invoice",
    "test_window_sums.py::"
    "test_running_sums_give_the_walked_standing_through_late_orders_refunds_cancels_and_reviews",
})


def tier_marks(module: str, name: str, fixturenames: Iterable[str], marks: Iterable[str]) -> set[str]:
    """The marks test ``module::name`` should add to the ``marks`` it carries: the resource
    marks its fixtures imply, and its tier."""
    given = set(marks)
    implied = {FIXTURE_MARKS[f] for f in fixturenames if f in FIXTURE_MARKS}
    slow = module in INTEGRATION_MODULES or f"{module}::{name}" in SLOW_TESTS
    integration = slow or "integration" in given or bool((given | implied) & set(RESOURCE_MARKS))
    return (implied | {"integration" if integration else "unit"}) - given


def require_mark(node, mark: str, what: str) -> None:
    """Fail test ``node`` unless it carries ``mark``: without it, ``-m "not <mark>"`` would not
    deselect it and ``what`` would start anyway."""
    if node.get_closest_marker(mark) is None:
        pytest.fail(f"{node.nodeid} starts {what} without the {mark!r} mark, so -m 'not {mark}' would "
                    f"not deselect it: mark it (a parameter: pytest.param(..., marks=pytest.mark.{mark}))",
                    pytrace=False)
