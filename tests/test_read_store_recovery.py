"""A damaged read store, whatever the damage, answers right: queries from a replay in memory (writing
nothing), ``vip replay`` by setting the file aside and folding a new one; one warning each time, and
the event store and key store untouched."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from hosts.main import main
from infra.stores.readstore import damage
from tests.test_store_faults import _lines, _orders

QUERIES = (("tiers", "--json"), ("tier", "M1", "--json"), ("ledger", "--json"), ("breaches", "--json"),
           ("kpis", "--json"), ("overdue", "--json"))
MEMBERS = [f"M{n % 150}" for n in range(900)]


class Vip:
    """``vip`` through click's runner on one data dir, counting the warnings each command logs."""

    def __init__(self, tmp: Path, caplog) -> None:
        self.tmp, self.caplog, self.runner = tmp, caplog, CliRunner()

    def __call__(self, data: Path, *args: str) -> tuple[str, list[str]]:
        self.caplog.clear()
        result = self.runner.invoke(main, list(args), catch_exceptions=False,
                                    env={"VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite"})
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        warnings = [r.getMessage() for r in self.caplog.records if r.levelno >= logging.WARNING]
        return result.stdout, warnings

    def answers(self, data: Path) -> tuple[dict, dict]:
        """Every query's answer, and the warnings each logged."""
        out, warned = {}, {}
        for query in QUERIES:
            text, warned[query[0]] = self(data, *query)
            out[query[0]] = json.loads(text)
        return out, warned


@pytest.fixture
def vip(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    return Vip(tmp_path, caplog)


def _ingest(vip: Vip, data: Path, prefix: str, members: list, day: int = 1) -> None:
    vip(data, "ingest", "orders", _lines(vip.tmp / f"{prefix}.jsonl", _orders(prefix, members, day=day)),
        "--no-progress")
    vip(data, "tick")


def _quiet(data: Path) -> None:
    """The read store as a file alone (what a copy, a restore or a damage leaves)."""
    for extra in ("-wal", "-shm"):
        Path(f"{data / 'read.db'}{extra}").unlink(missing_ok=True)


def _empty(vip, data):
    (data / "read.db").write_bytes(b"")


def _truncated(vip, data):
    whole = (data / "read.db").read_bytes()
    (data / "read.db").write_bytes(whole[:len(whole) // 2])


def _corrupt_page(vip, data):
    raw = bytearray((data / "read.db").read_bytes())
    middle = len(raw) // 2 // 4096 * 4096
    raw[middle:middle + 8192] = b"\xff" * 8192
    (data / "read.db").write_bytes(bytes(raw))


def _another_logs(vip, data):
    other = vip.tmp / "other"
    _ingest(vip, other, "x", ["M1", "M2", "M9"], day=3)
    shutil.copy(other / "read.db", data / "read.db")


def _ahead_of_its_log(vip, data):
    backup = vip.tmp / "events.backup"
    shutil.copy(data / "events.db", backup)
    _ingest(vip, data, "later", ["M1", "M2"], day=5)   # the read store moves on with the log
    shutil.copy(backup, data / "events.db")            # then the event store is restored from the backup


DAMAGE = {"empty": _empty, "truncated": _truncated, "corrupt page": _corrupt_page,
          "another log's": _another_logs, "ahead of its log": _ahead_of_its_log}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _healthy(vip: Vip, data: Path) -> dict:
    """The answers of a healthy read store folded from the same event store and key store."""
    copy = vip.tmp / "healthy"
    copy.mkdir()
    for name in ("events.db", "keys.db"):
        shutil.copy(data / name, copy / name)
    vip(copy, "replay", "--no-progress")
    answers, warned = vip.answers(copy)
    assert not any(warned.values()), warned
    return answers


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_read_store_is_answered_from_memory_by_queries_and_set_aside_by_replay(vip, kind):
    data = vip.tmp / "data"
    _ingest(vip, data, "o", MEMBERS)
    _quiet(data)
    DAMAGE[kind](vip, data)
    _quiet(data)
    damaged = (data / "read.db").read_bytes()
    kept = {name: _digest(data / name) for name in ("events.db", "keys.db")}
    healthy = _healthy(vip, data)

    # Queries answer right, after one warning (each query is a process of its own), and write nothing.
    # A corrupt page is met only by the queries that read it (the file is checked after a failed
    # read, not at every open): the others answer from the pages that are whole.
    answers, warned = vip.answers(data)
    assert answers == healthy
    met = warned if kind != "corrupt page" else {q: w for q, w in warned.items() if w}
    assert "tiers" in met and all(len(w) == 1 for w in met.values()), warned
    assert all("read store" in w[0] and "answering from a replay in memory" in w[0]
               or "does not match the event log" in w[0] and "in memory" in w[0] for w in met.values()), warned
    assert (data / "read.db").read_bytes() == damaged
    assert not list(data.glob("read.db.broken-*"))

    # `vip replay` sets the file aside (kept, owner-only) and folds a new one, after one warning.
    _, warnings = vip(data, "replay", "--no-progress")
    aside = sorted(data.glob("read.db.broken-*"))
    if kind == "empty":   # nothing in it to keep: a file with no table is begun in place
        assert warnings == [] and aside == []
    else:
        assert len(warnings) == 1 and "set aside as" in warnings[0], warnings
        main_file = [p for p in aside if not p.name.endswith(("-wal", "-shm", "-journal"))]
        assert len(main_file) == 1 and main_file[0].read_bytes() == damaged
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in aside)
    assert damage(data / "read.db") is None

    # Later queries answer from the new file, with no warning (no view "answered from a replay in memory").
    answers, warned = vip.answers(data)
    assert answers == healthy and not any(warned.values()), warned
    assert {name: _digest(data / name) for name in ("events.db", "keys.db")} == kept


def test_every_query_warns_once_about_an_empty_read_store_and_answers_from_memory(vip):
    data = vip.tmp / "data"
    _ingest(vip, data, "o", ["M1", "M2"])
    _quiet(data)
    (data / "read.db").write_bytes(b"")
    for query in QUERIES:
        _, warnings = vip(data, *query)
        assert len(warnings) == 1 and "answering from a replay in memory" in warnings[0]
    assert (data / "read.db").read_bytes() == b""


def test_a_replay_on_a_new_read_store_leaves_every_view_current(vip):
    data = vip.tmp / "data"
    _ingest(vip, data, "o", ["M1", "M2"])   # orders alone: most views never get a row
    for path in data.glob("read.db*"):
        path.unlink()
    vip(data, "replay", "--no-progress")
    _, warned = vip.answers(data)
    assert not any(warned.values()), warned
    db = sqlite3.connect(data / "read.db")
    marked = {name for (name,) in db.execute("SELECT name FROM view_versions")}
    db.close()
    assert {"current_tier", "tier_history", "complaints", "contracts", "ledger", "timers"} <= marked
