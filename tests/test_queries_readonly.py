"""Queries never write, and answer "now" from the stored deadlines; ``--at`` is when it happened."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from hosts.main import main
from tests.scenario import stored_event_count

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [["tier", "M1"], ["tiers"], ["breaches"], ["ledger"], ["kpis"], ["overdue"],
           ["tier-history", "M1"], ["history", "member", "M1"], ["history", "complaint", "C1"],
           ["history", "contract", "K1"]]


def _iso(at: datetime) -> str:
    return at.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def _lines(path: Path, rows: list) -> str:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return str(path)


def _cli(env: dict):
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result
    return run


def _fill(vip, tmp: Path) -> None:
    """A member due for review, a breached complaint, an overdue milestone and invoice, all dated
    relative to the real wall clock (the queries below use it)."""
    now = datetime.now(timezone.utc)
    base = now - timedelta(days=400)
    crm = [{"event_id": "r1", "type": "CustomerRegistered", "member_id": "M1", "occurred_at": _iso(base),
            "name": "李雷", "phone": "13700001111"}]
    orders = [{"event_id": f"o{n}", "type": "OrderPaid", "member_id": "M1", "order_id": f"o{n}",
               "occurred_at": _iso(base + timedelta(days=n)), "amount_fen": 1_200_000, "currency": "CNY"}
              for n in (1, 2)]
    vip("ingest-all", "--orders", _lines(tmp / "o.jsonl", orders), "--crm", _lines(tmp / "c.jsonl", crm),
        "--no-progress")
    start = now - timedelta(days=100)
    terms = {"parties": [{"id": "platform"}, {"id": "P1"}], "revenue_share": {"platform": 7000, "P1": 3000},
             "milestones": [{"id": "MS1", "title": "客服提升", "due_at": _iso(now - timedelta(days=50))},
                            {"id": "MS2", "title": "活动", "due_at": _iso(now + timedelta(days=60))}]}
    vip("contract", "draft", "K1", "--kind", "cooperation", "--terms", json.dumps(terms), "--at", _iso(start))
    vip("contract", "sign", "K1", "--party", "P1", "--at", _iso(start))
    vip("contract", "sign", "K1", "--party", "platform", "--at", _iso(start))
    vip("contract", "invoice", "K1", "--id", "INV-1", "--payer", "P1", "--amount-fen", "50000",
        "--at", _iso(start))
    # The last command: everything due after it waits for the scheduler.
    vip("complaint", "file", "C1", "--member", "M1", "--channel", "web", "--category", "delivery",
        "--description", "包裹丢失", "--at", _iso(start + timedelta(minutes=1)))


def _file(vip, complaint_id: str, at: str, ok: bool = True):
    return vip("complaint", "file", complaint_id, "--member", "M1", "--channel", "web", "--category", "x",
               "--description", "text", "--at", at, ok=ok)


def _snapshot(data: Path) -> dict:
    """Every file's digest; SQLite's -shm (readers' shared lock index, no data) is left out."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data.iterdir())
            if p.is_file() and not p.name.endswith("-shm")}



def _chmod_tree(path: Path, dirs: int, files: int) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(dirs if p.is_dir() else files)


def _query_without_write_access(data: Path, args: list) -> subprocess.CompletedProcess:
    """Run a query as a process that cannot write (root without its capabilities, on 0444 files)."""
    env = {**os.environ, "VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite"}
    command = [sys.executable, "-c", "from hosts.main import main; main()", *args, "--json"]
    return subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", *command], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop write access")
def test_every_query_works_on_a_read_only_data_dir_and_writes_nothing(tmp_path):
    data = tmp_path / "data"
    vip = _cli({"VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite"})
    _fill(vip, tmp_path)
    events = stored_event_count(data)
    before = _snapshot(data)
    _chmod_tree(data, 0o555, 0o444)
    try:
        probe = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "touch",
                                str(data / "probe")], capture_output=True)
        assert probe.returncode != 0, "the query processes below must not be able to write"
        answers = {}
        for args in QUERIES + [["replay", "--as-of", _iso(datetime.now(timezone.utc) - timedelta(days=1)),
                                "--no-progress"]]:
            done = _query_without_write_access(data, args)
            assert done.returncode == 0, (args, done.stderr)
            assert "Traceback" not in done.stderr
            answers[args[0] if args[0] != "history" else f"history {args[1]}"] = json.loads(done.stdout)
    finally:
        _chmod_tree(data, 0o755, 0o644)
    assert _snapshot(data) == before and stored_event_count(data) == events
    # "Now" is computed from the stored deadlines: review due, breached, overdue.
    assert answers["tier"]["review_due"] is True and answers["tier"]["tier"] == "gold"
    assert {(b["complaint_id"], b["clock"], b["state"]) for b in answers["breaches"]} == {
        ("C1", "first_response", "breached"), ("C1", "resolution", "breached")}
    assert [m["milestone"] for m in answers["overdue"]["milestones"]] == ["MS1"]
    assert [i["invoice"] for i in answers["overdue"]["invoices"]] == ["INV-1"]
    assert [e["type"] for e in answers["history complaint"]] == ["ComplaintFiled"]


def test_a_live_query_answers_what_tick_then_records(tmp_path):
    """The read-only answer equals the answer after the scheduler recorded the due work."""
    data = tmp_path / "data"
    vip = _cli({"VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite"})
    _fill(vip, tmp_path)
    events = stored_event_count(data)
    before = {q: json.loads(vip(q, "--json").output) for q in ("breaches", "overdue")}
    tier = json.loads(vip("tier", "M1", "--json").output)
    assert stored_event_count(data) == events, "queries recorded events"
    assert tier["review_due"] is True
    fired = json.loads(vip("tick", "--json").output)["fired"]
    assert fired >= 4 and stored_event_count(data) > events
    after = {q: json.loads(vip(q, "--json").output) for q in ("breaches", "overdue")}
    assert [(b["complaint_id"], b["clock"], b["state"], b["deadline"]) for b in before["breaches"]] == \
        [(b["complaint_id"], b["clock"], b["state"], b["deadline"]) for b in after["breaches"]]
    assert [m["milestone"] for m in before["overdue"]["milestones"]] == \
        [m["milestone"] for m in after["overdue"]["milestones"]]
    assert [i["invoice"] for i in before["overdue"]["invoices"]] == \
        [i["invoice"] for i in after["overdue"]["invoices"]]
    reviewed = json.loads(vip("tier", "M1", "--json").output)
    assert reviewed["review_due"] is False and reviewed["next_review_at"] > tier["next_review_at"]
    history = [h["event"] for h in json.loads(vip("tier-history", "M1", "--json").output)]
    assert "TierReviewed" in history


def test_a_command_dated_before_the_log_is_refused_naming_the_logs_latest_instant(tmp_path):
    data = tmp_path / "data"
    vip = _cli({"VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite"})
    crm = [{"event_id": "r1", "type": "CustomerRegistered", "member_id": "M1",
            "occurred_at": "2026-03-01T10:00:00+08:00", "name": "李雷"}]
    vip("ingest", "crm", _lines(tmp_path / "c.jsonl", crm), "--no-progress")
    events = stored_event_count(data)
    late = _file(vip, "C1", "2025-04-01T09:00:00+08:00", ok=False)
    assert late.exit_code == 1
    assert "2025-04-01T09:00:00+08:00" in late.output and "2026-03-01T10:00:00+08:00" in late.output
    assert "latest instant" in late.output and "Traceback" not in late.output
    assert stored_event_count(data) == events
    _file(vip, "C1", "2026-03-01T10:00:00+08:00")  # the same instant is fine
    assert stored_event_count(data) == events + 1


def test_a_command_dated_far_after_the_wall_clock_is_refused(tmp_path):
    data = tmp_path / "data"
    env = {"VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite", "VIP_FUTURE_TOLERANCE_SECONDS": "60"}
    vip = _cli(env)
    crm = [{"event_id": "r1", "type": "CustomerRegistered", "member_id": "M1",
            "occurred_at": "2025-03-01T10:00:00+08:00", "name": "李雷"}]
    vip("ingest", "crm", _lines(tmp_path / "c.jsonl", crm), "--no-progress")
    events = stored_event_count(data)
    future = _file(vip, "C1", "2052-03-02T00:00:00+08:00", ok=False)
    assert future.exit_code == 1 and "2052-03-02T00:00:00+08:00" in future.output
    assert "60 s" in future.output and "VIP_FUTURE_TOLERANCE_SECONDS" in future.output
    assert stored_event_count(data) == events
    soon = _iso(datetime.now(timezone.utc) + timedelta(seconds=30))
    _file(vip, "C1", soon)  # within the tolerance
    assert stored_event_count(data) > events
