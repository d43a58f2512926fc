"""`vip export parquet`: what DuckDB reads back from the files answers as the project does.

A simulated year (the demo, through the real command path) is exported with
the CLI and loaded with DuckDB, which knows nothing of the project: revenue
per account and the tier distribution equal `vip ledger` and `vip tiers`.
"""
from __future__ import annotations

import json
import os
import stat

import duckdb
import pytest
from click.testing import CliRunner

from hosts.main import main


@pytest.fixture
def demo(tmp_path, event_store):
    env = {"VIP_DATA_DIR": str(tmp_path / "data"), "VIP_EVENT_STORE": event_store}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output
    run("demo", "--members", "120", "--no-progress", "--json")
    return run


def _parquet(root, table: str) -> str:
    return f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true)"


def test_duckdb_answers_revenue_and_tiers_from_the_export_as_the_project_does(demo, tmp_path):
    out = tmp_path / "export"
    report = json.loads(demo("export", "parquet", str(out), "--json", "--no-progress"))
    ledger = json.loads(demo("ledger", "--json"))
    tiers = json.loads(demo("tiers", "--json"))
    con = duckdb.connect()

    balances = dict(con.execute(
        f"SELECT account, sum(debit_fen - credit_fen)::BIGINT FROM {_parquet(out, 'views/ledger_lines')} "
        "WHERE currency = 'CNY' GROUP BY account").fetchall())
    assert balances and balances == ledger["accounts"]["CNY"]
    by_month = con.execute(
        f"SELECT month, sum(credit_fen - debit_fen)::BIGINT FROM {_parquet(out, 'views/ledger_lines')} "
        "WHERE account = 'revenue:service_fee' GROUP BY month ORDER BY month").fetchall()
    assert by_month and by_month == [(m, v["revenue:service_fee CNY"]) for m, v in ledger["revenue_by_month"].items()
                        if "revenue:service_fee CNY" in v]

    distribution = dict(con.execute(
        f"SELECT tier, count(*) FROM {_parquet(out, 'views/current_tier')} GROUP BY tier").fetchall())
    expected: dict = {}
    for row in tiers:
        expected[row["tier"]] = expected.get(row["tier"], 0) + 1
    assert distribution == expected

    # The event tables are typed from the Avro schemas and hold every event of the log.
    paid = con.execute(f"SELECT count(*), sum(amount_fen), typeof(any_value(occurred_at)) "
                       f"FROM {_parquet(out, 'events/OrderPaid')}").fetchone()
    assert paid[0] == report["tables"]["events/OrderPaid"] > 0
    assert paid[2] == "TIMESTAMP WITH TIME ZONE"
    assert sum(n for t, n in report["tables"].items() if t.startswith("events/")) == report["position"]


def test_the_export_keeps_personal_values_sealed_and_terms_out_and_files_private(demo, tmp_path):
    out = tmp_path / "export"
    demo("export", "parquet", str(out), "--no-progress")
    con = duckdb.connect()
    profiles = con.execute(f"SELECT profile.name, profile.phone, profile.email "
                           f"FROM {_parquet(out, 'events/MemberRegistered')}").fetchall()
    assert profiles and all(v is None or v.startswith("pii:v1:") for row in profiles for v in row)
    drafted = con.execute(f"SELECT * FROM {_parquet(out, 'events/ContractDrafted')} LIMIT 1")
    assert "terms" not in [d[0] for d in drafted.description]
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_an_export_refuses_a_directory_that_holds_files_and_writes_nothing_there(demo, tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["export", "parquet", str(out)],
                                env={"VIP_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 1 and "not an empty directory" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
