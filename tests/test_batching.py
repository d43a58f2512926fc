"""Batched units of work: one transaction per batch, the same log whatever the batch size."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from infra.service_layer.ingest import ingest_file
from tests.scenario import START, upstream_events, write_jsonl
from domain.window import REVERSED

ROOT = Path(__file__).resolve().parent.parent


def _rows() -> list[dict]:
    """Orders, refunds and activity of 12 members over 500 days (tier reviews fire between them),
    with a refused refund and a repeated line in the middle; no sealed profiles (random nonces)."""
    rows = [r for r in upstream_events(members=12, seed=5, days=500) if r["type"] != "CustomerRegistered"]
    paid = next(r for r in rows if r["type"] == "OrderPaid")
    rows.append({**paid, "event_id": "too-much", "type": "OrderRefunded",
                 "occurred_at": (START + timedelta(days=200)).isoformat(), "amount_fen": 10**11})
    rows.append(dict(paid))
    return rows


def _notes(app) -> list[tuple]:
    """Every stored event: notification id, aggregate id, version, type and its stored bytes
    (timestamp and data), so two logs compare event for event."""
    return [(n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
            for n in app.recorder.select_notifications(0, 1_000_000, inclusive_of_start=False)]


def test_the_log_is_identical_event_for_event_whatever_the_batch_size(make_system, tmp_path, event_store):
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, _rows())
    logs, reports = [], []
    for name, size in (("one", 1), ("seven", 7), ("all", 5000)):
        system = make_system(event_store if event_store == "sqlite" else _fresh_db(event_store, name),
                             name=name, batch_max_inputs=size)
        reports.append(_ingest_all(system, path))
        logs.append(_notes(system.app))
        assert system.engine.runner.position == system.app.recorder.max_notification_id()
    assert len(logs[0]) > 100 and any("Reviewed" in topic for *_, topic, _ in logs[0])
    assert logs[0] == logs[1] == logs[2]
    assert [(r.applied, r.duplicates, len(r.rejected)) for r in reports] == \
        [(reports[0].applied, 1, 1)] * 3
    assert all('"too-much"' in r.rejected[0][2] for r in reports)   # the refusal, alone


def _fresh_db(url: str, name: str) -> str:
    """A second and third database on the same PostgreSQL cluster as ``url``."""
    if name == "one":
        return url
    import psycopg
    base, _, db = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}_{name}"')
    return f"{base}/{db}_{name}"


def _ingest_all(system, path):
    from infra.service_layer.ingest import ingest_files
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    crm = [r for r in rows if r["type"] == "ActivityRecorded"]
    orders = [r for r in rows if r["type"] != "ActivityRecorded"]
    files = []
    for source, part in (("orders", orders), ("crm", crm)):
        p = path.with_name(f"{path.stem}-{source}-{id(system)}.jsonl")
        p.write_text("".join(json.dumps(r) + "\n" for r in part))
        files.append((source, p))
    return ingest_files(system.engine, files, progress=False)


def test_a_refused_line_is_rejected_alone_and_its_batch_mates_are_applied(make_system, tmp_path):
    s = make_system(batch_max_inputs=100)
    at = lambda d: (START + timedelta(days=d)).isoformat()  # noqa: E731
    rows = [{"event_id": "p1", "type": "OrderPaid", "member_id": "M1", "order_id": "o1",
             "occurred_at": at(1), "amount_fen": 100_000, "currency": "CNY"},
            {"event_id": "r1", "type": "OrderRefunded", "member_id": "M1", "order_id": "o1",
             "occurred_at": at(2), "amount_fen": 60_000, "currency": "CNY"},
            {"event_id": "r2", "type": "OrderRefunded", "member_id": "M1", "order_id": "o1",
             "occurred_at": at(3), "amount_fen": 60_000, "currency": "CNY"},   # exceeds what is left
            {"event_id": "r3", "type": "OrderRefunded", "member_id": "M1", "order_id": "o1",
             "occurred_at": at(4), "amount_fen": 40_000, "currency": "CNY"}]
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = ingest_file(s.engine, "orders", path, progress=False)
    assert (report.applied, [n for n, *_ in report.rejected]) == (3, [3])
    member = s.app.member("M1")
    assert member.orders["o1"][REVERSED] == 100_000
    assert s.app.receipt("r2") is None and s.app.receipt("r3") is not None
    assert s.engine.runner.position == s.app.recorder.max_notification_id()


def test_a_batch_killed_midway_commits_nothing_and_a_rerun_gives_the_uninterrupted_log(make_system, tmp_path):
    rows = _rows()
    path = tmp_path / "orders.jsonl"
    write_jsonl(path, [r for r in rows if r["type"] != "ActivityRecorded"])
    whole = make_system(name="whole", batch_max_inputs=7)
    full = ingest_file(whole.engine, "orders", path, progress=False)
    expected = _notes(whole.app)

    data = tmp_path / "killed"
    env = {**os.environ, "VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite",
           "VIP_BATCH_MAX_INPUTS": "20", "VIP_FUTURE_TOLERANCE_SECONDS": str(20 * 366 * 86400)}
    # The child SIGKILLs itself while applying the 55th line: two batches (40 lines) are
    # committed, the third is half applied in memory.
    script = ("import os, signal, sys\n"
              "from infra.service_layer import upstream\n"
              "from infra.bootstrap import build\n"
              "from infra.service_layer.ingest import ingest_file\n"
              "step, seen = upstream._apply_step, []\n"
              "def dying(*a):\n"
              "    seen.append(1)\n"
              "    if len(seen) == 55: os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return step(*a)\n"
              "upstream._apply_step = dying\n"
              "system = build()\n"
              "ingest_file(system.engine, 'orders', sys.argv[1], progress=False)\n")
    child = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, env=env, timeout=300)
    assert child.returncode == -signal.SIGKILL

    s = make_system(name="killed", batch_max_inputs=40)
    committed = _notes(s.app)
    assert 0 < len(committed) < len(expected) and committed == expected[:len(committed)]
    lines = path.read_text().splitlines()
    assert len(lines) > 60
    receipts = {json.loads(line)["event_id"] for line in lines if s.app.receipt(json.loads(line)["event_id"])}
    assert 38 <= len(receipts) <= 40    # the first two batches, less a refusal, nothing of the third
    again = ingest_file(s.engine, "orders", path, progress=False)
    assert (again.duplicates, again.applied) == (len(receipts) + 1, full.applied - len(receipts))
    assert _notes(s.app) == expected


def test_batches_are_counted_with_the_inputs_they_tried_and_the_events_they_recorded(make_system, tmp_path):
    s = make_system(batch_max_inputs=4)
    rows = [{"event_id": f"p{n}", "type": "OrderPaid", "member_id": f"M{n % 3}", "order_id": f"o{n}",
             "occurred_at": (START + timedelta(days=n)).isoformat(), "amount_fen": 100, "currency": "CNY"}
            for n in range(10)]
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = dict(s.engine.stats)
    ingest_file(s.engine, "orders", path, progress=False)
    done = {k: s.engine.stats[k] - before[k] for k in before}
    assert done["batches"] == 3 and done["steps"] == 10             # 4 + 4 + 2 inputs
    assert done["events"] == s.app.recorder.max_notification_id()   # every event, each counted once
