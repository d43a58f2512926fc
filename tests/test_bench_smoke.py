"""The benchmarks still run: ``bench.run`` and ``bench.bus`` at a tiny size.

Structure only (every row of issue 9's table present, each with a baseline
measured in the same run and a ratio); never timings, which belong to the
benchmarks and to docs/benchmarks.md, not to the suite.
"""
from __future__ import annotations

import json
import math
import sqlite3

import pytest

from bench import bus, run
from bench.floor import library_floor
from bench.workloads import generate_orders
from domain.member import Member

RUN_ROWS = ("ingest", "library floor", "vs floor: ingest", "vs floor: new floor", "memory: peak RSS", "replay every read model", "replay 1M events", "queries: tier p99",
            "queries: breaches, 20 open, none due yet",
            "queries: breaches, 20 open, every clock breached", "scaling")
BUS_ROWS = ("bus: upstream->effect->domain topic", "bus: p99 latency")


def rows_of(capsys, main, argv) -> list[dict]:
    main(argv + ["--json"])
    return json.loads(capsys.readouterr().out)["rows"]


def assert_complete(rows: list[dict], names: tuple[str, ...]) -> None:
    for name in names:
        found = [r for r in rows if r["name"].startswith(name)]
        assert len(found) == 1, f"row {name!r} missing or doubled in {[r['name'] for r in rows]}"
        r = found[0]
        assert isinstance(r["figure"], (int, float)) and not math.isnan(r["figure"]), r
        assert isinstance(r["baseline"], (int, float)) and r["baseline"] > 0, r
        assert isinstance(r["ratio"], (int, float)), r
        assert r["target"] and r["baseline_label"], r
        assert r["verdict"] in ("pass", "FAIL", "n/a"), r
    assert len(rows) == len(names)


def test_bench_run_prints_every_row_with_its_baseline_and_ratio(capsys, tmp_path):
    rows = rows_of(capsys, run.main, [
        "--orders", "200", "--members", "40", "--complaints", "20", "--samples", "20",
        "--scale-members", "50,100", "--scale-orders", "100", "--repeat", "1",
        "--dir", str(tmp_path), "--no-progress"])
    assert_complete(rows, RUN_ROWS)
    memory = next(r for r in rows if r["name"].startswith("memory: peak RSS"))
    assert memory["verdict"] == "n/a"  # the main ingest alone: no history to judge
    ingest = next(r for r in rows if r["name"].startswith("ingest"))
    assert "200 applied, 0 rejected" in ingest["note"]
    soon, every = (next(r for r in rows if r["name"].startswith("queries: breaches") and r["name"].endswith(w))
                   for w in ("none due yet", "breached"))
    # a year after filing every one of the 20 complaints has both clocks breached; at filing, none
    assert "40 clocks listed" in every["note"], every
    assert soon["note"].startswith("0 clocks listed"), soon


def test_bench_run_measures_memory_over_years_of_history_and_inside_one_window(capsys, tmp_path):
    rows = rows_of(capsys, run.main, [
        "--orders", "200", "--members", "40", "--complaints", "20", "--samples", "20",
        "--scale-members", "50,100", "--scale-orders", "100", "--repeat", "1",
        "--memory-orders", "700,500", "--dense-orders", "300", "--dir", str(tmp_path), "--no-progress"])
    assert_complete(rows, RUN_ROWS + ("replay measured", "kept-order memory"))
    history = next(r for r in rows if r["name"].startswith("memory: peak RSS"))
    assert "(4 years)" in history["name"] and "(3 years)" in history["baseline_label"]  # largest vs smallest
    assert all(f"over {y} y" in history["note"] for y in (1, 3, 4)) and history["verdict"] in ("pass", "FAIL")
    measured = next(r for r in rows if r["name"].startswith("replay measured"))
    assert measured["verdict"] == "n/a"  # far from 1M events: not judged
    dense = next(r for r in rows if r["name"].endswith("inside one window"))
    assert dense["verdict"] == "n/a" and "bytes of RSS per further kept order" in dense["note"]


def test_bench_run_refuses_a_bad_size_with_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run.main(["--scale-members", "10k"])
    assert exc.value.code == 2
    assert "give whole numbers separated by commas" in capsys.readouterr().err


@pytest.mark.kafka
def test_bench_bus_prints_throughput_and_latency_rows_with_their_baselines(capsys, kafka_broker):
    rows = rows_of(capsys, bus.main, ["--bootstrap", kafka_broker, "--orders", "200",
                                      "--rate", "50", "--seconds", "1", "--low-rate", "0"])
    assert_complete(rows, BUS_ROWS)
    latency = next(r for r in rows if r["name"].startswith("bus: p99"))
    assert latency["verdict"] == "n/a"  # 50/s is not the target's 2,000/s: not judged
    assert "50/50 arrived" in latency["note"]


def test_the_library_floor_stores_orderpaid_shaped_events_one_per_order_plus_one_per_member(tmp_path):
    source = tmp_path / "orders.jsonl"
    gen = generate_orders(source, 300, 20, 7)
    lines = source.read_text(encoding="utf-8").splitlines()
    floor = library_floor(tmp_path / "floor", lines)
    assert floor["orders"] == 300
    assert floor["events"] == 300 + gen["active_members"]
    assert floor["construct_s"] + floor["map_s"] + floor["insert_s"] <= floor["wall_s"]
    db = sqlite3.connect(tmp_path / "floor" / "events.db")
    stored = db.execute("SELECT topic, state FROM stored_events").fetchall()
    db.close()
    assert len(stored) == floor["events"]
    paid = [json.loads(state) for topic, state in stored if topic.endswith("OrderPaid")]
    assert len(paid) == 300
    # the same fields as the Member's own OrderPaid, so the floor measures the same event shape
    member_fields = set(Member.OrderPaid.__dataclass_fields__)
    assert set(paid[0]) == member_fields - {"originator_id", "originator_version"}
    assert isinstance(paid[0]["amount_fen"], int) and paid[0]["meta"]["key"].startswith("M")
