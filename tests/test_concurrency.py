"""Two writers at once, and a reader meanwhile: nothing lost, nothing doubled, no traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = [f"M{n}" for n in range(8)]


def _orders(prefix: str, count: int, start: datetime) -> list:
    return [{"event_id": f"{prefix}{n}", "type": "OrderPaid", "member_id": MEMBERS[n % len(MEMBERS)],
             "order_id": f"{prefix}{n}", "occurred_at": (start + timedelta(seconds=n)).isoformat(),
             "amount_fen": 100 + n, "currency": "CNY"} for n in range(count)]


def _write(path: Path, rows: list) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def _vip(env: dict, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from hosts.main import main; main()", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_ingests_of_overlapping_members_and_a_reader_at_once(tmp_path, event_store):
    env = {**os.environ, "VIP_DATA_DIR": str(tmp_path / "data"), "VIP_EVENT_STORE": event_store}
    start = datetime.now(timezone.utc) - timedelta(days=20)
    shared = _orders("s", 60, start)  # in both files: must count once
    a = _orders("a", 60, start + timedelta(hours=1)) + shared
    b = _orders("b", 60, start + timedelta(hours=2)) + shared
    expected: dict = {}
    for row in {r["event_id"]: r for r in a + b}.values():
        expected[row["member_id"]] = expected.get(row["member_id"], 0) + row["amount_fen"]
    # A first write creates the stores, so the race below is the writers', not the set-up's.
    first = _vip(env, "ingest", "orders", _write(tmp_path / "first.jsonl", shared[:1]), "--no-progress")
    assert first.wait(120) == 0, first.stderr.read()
    writers = [_vip(env, "ingest", "orders", _write(tmp_path / f"{name}.jsonl", rows), "--no-progress", "--json")
               for name, rows in (("a", a), ("b", b))]
    reads = []
    while any(w.poll() is None for w in writers):
        for query in (("tiers", "--json"), ("breaches", "--json"), ("tier", "M1", "--json")):
            reader = _vip(env, *query)
            out, err = reader.communicate(timeout=120)
            reads.append((query, reader.returncode, err))
        time.sleep(0.05)
    outcomes = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert "Traceback" not in err
        outcomes.append(json.loads(out))
    assert reads, "the reader ran while the writers did"
    for query, code, err in reads:
        assert code == 0 and "Traceback" not in err, (query, err)
    # Every line is applied once across both processes (the shared ones by whichever came first).
    applied = sum(o["applied"] for o in outcomes)
    duplicates = sum(o["duplicates"] for o in outcomes)
    assert applied == 120 + 60 - 1 and duplicates == 60 + 1 and all(o["rejected"] == 0 for o in outcomes), [o["rejects"] for o in outcomes]
    tick = _vip(env, "tick")
    assert tick.wait(120) == 0
    tiers = json.loads(_vip(env, "tiers", "--json").communicate(timeout=120)[0])
    assert {t["member_id"]: t["window_spend_fen"] for t in tiers} == expected
    replayed = _vip(env, "replay", "--json", "--no-progress").communicate(timeout=120)[0]
    assert {t["member_id"]: t["window_spend_fen"] for t in json.loads(replayed)["tiers"]} == expected
