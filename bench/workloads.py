"""The workloads ``bench.run`` measures, and their plain baselines.

Ingest runs in a fresh child process (``spawn``) so that its peak memory
(VmHWM) is the ingest's own, and so that the parent's state cannot help or
hurt it. Everything goes through the public paths: ``build``,
``ingest_file``, ``replay``, the engine's commands, the CLI's read-only
``build`` and the query functions of :mod:`projections.queries`; whatever
store those use after a merge is what is measured.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import Timer, p99_ms, peak_rss_mb, timed
from infra.bootstrap import build
from infra.progress import bar
from infra.service_layer.asof import now_or, store_as_of
from infra.service_layer.ingest import ingest_file
from infra.service_layer.replay import replay
from infra.settings import Settings
from projections import queries
from projections.views import VIEWS

ZONE = ZoneInfo("Asia/Shanghai")
REFUND_SHARE = 0.02      # share of the input lines that are refunds of earlier orders
BATCH = 2000             # the baseline's rows per transaction (the baseline)
PAGE = 2000              # notification page size of the recorder scan
SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


# -- the input file --------------------------------------------------------------------

def generate_orders(path: Path, orders: int, members: int, seed: int, year: int = 2025,
                    every_member: bool = False, years: int = 1) -> dict:
    """Write ``orders`` upstream order events as JSON Lines; returns what was written.

    About 98% ``OrderPaid`` and 2% ``OrderRefunded`` (1-14 days after the
    order, same member); members' order counts skewed (log-normal weights),
    or, with ``every_member``, the first ``members`` orders one per member
    (a population to measure against). Times over ``year`` (or the ``years`` ending with it:
    a history, in which time moves through several windows) in waking hours
    (``+08:00``), amounts log-normal around 250 CNY. Same seed, same bytes.
    """
    rng = random.Random(seed)
    member_ids = [f"M{n:07d}" for n in range(1, members + 1)]
    weights = [rng.lognormvariate(0.0, 0.8) for _ in member_ids]
    refunds = int(round(orders * REFUND_SHARE)) if orders >= 50 and not every_member else 0
    paid = orders - refunds
    start = datetime(year - years + 1, 1, 1, tzinfo=ZONE)
    who = member_ids[:paid] if every_member else rng.choices(member_ids, weights=weights, k=paid)
    records = []
    for n in range(paid):
        at = start + timedelta(days=rng.randrange(365 * years), seconds=int(rng.uniform(8 * 3600, 23.5 * 3600)))
        fen = max(100, int(rng.lognormvariate(math.log(25000), 0.9)))
        if rng.random() < 0.7:
            fen = max(100, fen // 100 * 100)  # most prices are whole yuan
        records.append({"event_id": f"evt-{rng.getrandbits(64):016x}", "type": "OrderPaid",
                        "member_id": who[n], "order_id": f"SO{seed}-{n + 1:08d}",
                        "occurred_at": at.isoformat(timespec="seconds"),
                        "amount_fen": fen, "currency": "CNY"})
    for order in rng.sample(records, refunds):
        at = datetime.fromisoformat(order["occurred_at"]) + timedelta(
            days=rng.randint(1, 14), seconds=rng.randint(0, 8 * 3600))
        fen = order["amount_fen"] if rng.random() < 0.6 else max(1, order["amount_fen"] // 2)
        records.append({"event_id": f"evt-{rng.getrandbits(64):016x}", "type": "OrderRefunded",
                        "member_id": order["member_id"], "order_id": order["order_id"],
                        "occurred_at": at.isoformat(timespec="seconds"),
                        "amount_fen": fen, "currency": "CNY"})
    # An order system's export: roughly, not strictly, in time order (ingest sorts anyway).
    records.sort(key=lambda r: (r["occurred_at"][:10], r["event_id"]))
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return {"lines": len(records), "paid": paid, "refunds": refunds, "members": members,
            "active_members": len(set(who))}


# -- ingest, in a child process ----------------------------------------------------------------

def settings_for(data: Path) -> Settings:
    """The default settings with only the data directory pointed at ``data``."""
    return Settings.from_env({"VIP_DATA_DIR": str(data)})


def _ingest_child(conn, data: str, files: list[str], progress: bool) -> None:
    try:
        system = build(settings_for(Path(data)))
        steps = []
        try:
            pragmas = store_pragmas(system.app)
            for path in files:
                with timed() as t:
                    report = ingest_file(system.engine, "orders", path, progress=progress)
                steps.append({"lines": report.lines, "applied": report.applied,
                              "duplicates": report.duplicates, "rejected": len(report.rejected),
                              "wall_s": t.wall, "cpu_s": t.cpu, "rss_mb": peak_rss_mb(),
                              "events_stored": system.app.recorder.max_notification_id() or 0})
        finally:
            system.close()
        conn.send({"steps": steps, "pragmas": pragmas, "rss_mb": peak_rss_mb()})
    except BaseException as exc:  # report it to the parent rather than die silently
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


def ingest_in_child(data: Path, files: list[Path], progress: bool) -> dict:
    """Ingest ``files`` in turn into ``data`` in a fresh process; per file: time, RSS, events."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_ingest_child, args=(child, str(data), [str(f) for f in files], progress))
    proc.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError:
        result = {"error": "the ingest process died without a result"}
    proc.join()
    if "error" in result:
        raise RuntimeError(f"ingest in the child process failed: {result['error']}")
    return result


def store_pragmas(app) -> dict:
    """The journal mode and synchronous level of the event store's own connections."""
    datastore = getattr(app.recorder, "datastore", None)
    if datastore is None or not hasattr(datastore, "transaction"):
        return {"journal_mode": "WAL", "synchronous": "FULL"}
    with datastore.transaction(commit=False) as c:
        c.execute("PRAGMA journal_mode")
        journal = c.fetchone()[0]
        c.execute("PRAGMA synchronous")
        sync = c.fetchone()[0]
    return {"journal_mode": str(journal).upper(), "synchronous": SYNC_NAMES.get(sync, str(sync))}


# -- baselines ---------------------------------------------------------------------------------

def baseline_insert(path: Path, lines: list[str], pragmas: dict, per_commit: int = BATCH) -> Timer:
    """Insert the raw lines with plain sqlite3, ``per_commit`` rows per transaction, same durability."""
    db = sqlite3.connect(str(path), isolation_level=None)  # autocommit: we BEGIN/COMMIT ourselves
    db.execute(f"PRAGMA journal_mode = {pragmas['journal_mode']}")
    db.execute(f"PRAGMA synchronous = {pragmas['synchronous']}")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, line TEXT NOT NULL)")
    with timed() as t:
        for i in range(0, len(lines), per_commit):
            db.execute("BEGIN")
            db.executemany("INSERT INTO orders (line) VALUES (?)",
                           ((line,) for line in lines[i:i + per_commit]))
            db.execute("COMMIT")
    db.close()
    return t


def scan_decode(app) -> int:
    """The recorder's own paged scan of the notification log, every event decoded."""
    recorder, mapper = app.recorder, app.mapper
    start, count = 0, 0
    while True:
        page = recorder.select_notifications(start, PAGE, inclusive_of_start=False)
        if not page:
            return count
        for note in page:
            mapper.to_domain_event(note)
        count += len(page)
        start = page[-1].id


def fastest(fn, repeat: int) -> tuple[Timer, object]:
    """The fastest of ``repeat`` runs (short, allocation-heavy work is at the mercy of the GC)."""
    runs, result = [], None
    for _ in range(repeat):
        with timed() as t:
            result = fn()
        runs.append(t)
    return min(runs, key=lambda r: r.wall), result


def replay_vs_scan(data: Path, repeat: int, progress: bool) -> dict:
    """Replay every read model in memory, and the recorder's scan + decode of the same log."""
    system = build(settings_for(data), read_only=True)
    try:
        t_replay, views = fastest(lambda: replay(system.app, VIEWS, progress=progress), repeat)
        t_scan, events = fastest(lambda: scan_decode(system.app), repeat)
        return {"events": events, "position": views.position, "replay_s": t_replay.wall,
                "scan_decode_s": t_scan.wall, "runs": repeat}
    finally:
        system.close()


# -- complaints and queries ----------------------------------------------------------------------

def file_complaints(data: Path, count: int, members: list[str], progress: bool) -> dict:
    """File ``count`` complaints through the engine at the log's latest instant; all stay open.

    Each complaint is one step of a batch of ``BATCH`` (one transaction per
    batch, as ingest commits), so 100,000 can be filed in a few minutes.
    """
    system = build(settings_for(data))
    try:
        at = system.engine.timeline() or datetime(2025, 12, 31, 12, tzinfo=ZONE)
        app, engine = system.app, system.engine
        with timed() as t, bar(count, "complaints", progress, unit="cmp") as b:
            for n in range(count):
                if engine.uow is None:
                    engine.begin()
                member = members[n % len(members)]
                severity = ("low", "medium", "high")[n % 3]
                engine.run(at, lambda u, c, n=n, m=member, s=severity: u.file_complaint(
                    c, f"BC{n:07d}", m, "web", "billing", s, "bench"))
                if (n + 1) % BATCH == 0:
                    engine.commit()
                b.update(1)
            if engine.uow is not None:
                engine.commit()
            engine.flush()
        return {"complaints": count, "filed_at": at.isoformat(), "wall_s": t.wall}
    finally:
        system.close()


def query_latencies(data: Path, members: list[str], samples: int, breaches_runs: int,
                    soon_after: datetime | None = None) -> dict:
    """What a query costs: open with the CLI's read-only ``build``, then ``tier`` and ``breaches``."""
    with timed() as t_open:
        system = build(settings_for(data), read_only=True)
    try:
        policy = system.app.policy
        rng = random.Random(5)
        picks = [rng.choice(members) for _ in range(samples)]
        tier_s, found = [], 0
        store = store_as_of(system, None)
        for member_id in picks:  # the CLI's `tier` path
            with timed() as t:
                row = store.get("current_tier", member_id)
                if row is not None:
                    queries.member_answer(store, member_id, row, now_or(system, None), policy)
            tier_s.append(t.wall)
            found += row is not None
        # the CLI's `breaches` path, at two instants: ``soon_after`` (bench.run: the filing
        # instant, when nothing is due and the listing index reads no row) and the wall clock
        # (every clock breached: every open complaint is a row of the answer)
        out = {"open_s": t_open.wall, "tier_p99_ms": p99_ms(tier_s), "tier_samples": samples,
               "tier_found": found, "breaches_runs": breaches_runs}
        for label, at in (("soon", soon_after), ("all", None)):
            breach_s, listed = [], 0
            for _ in range(breaches_runs):
                with timed() as t:
                    # the store as the CLI's `breaches` reads it, with the clock at ``at``
                    listed = len(queries.pending_breaches(store_as_of(system, None), at or now_or(system, None),
                                                          policy))
                breach_s.append(t.wall)
            out[f"breaches_{label}_ms"], out[f"breaches_{label}_listed"] = min(breach_s) * 1000, listed
        return out
    finally:
        system.close()


def key_lookup_baseline(rows: dict, samples: int, tmp: Path) -> float:
    """p99 ms of a plain sqlite3 primary-key SELECT + json.loads of the same rows."""
    path = tmp / "baseline_rows.db"
    db = sqlite3.connect(str(path))
    db.execute("CREATE TABLE rows (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
    db.executemany("INSERT INTO rows VALUES (?, ?)", ((k, json.dumps(v)) for k, v in rows.items()))
    db.commit()
    rng = random.Random(5)
    keys = list(rows)
    lat = []
    for _ in range(samples):
        key = rng.choice(keys)
        with timed() as t:
            json.loads(db.execute("SELECT row FROM rows WHERE key = ?", (key,)).fetchone()[0])
        lat.append(t.wall)
    db.close()
    path.unlink()
    return p99_ms(lat)


def scan_rows_baseline(rows: dict, tmp: Path) -> float:
    """ms to read and decode every row of a plain sqlite3 table holding the same rows."""
    path = tmp / "baseline_scan.db"
    db = sqlite3.connect(str(path))
    db.execute("CREATE TABLE rows (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
    db.executemany("INSERT INTO rows VALUES (?, ?)", ((k, json.dumps(v)) for k, v in rows.items()))
    db.commit()
    t, _ = fastest(lambda: [json.loads(r) for (r,) in db.execute("SELECT row FROM rows")], 3)
    db.close()
    path.unlink()
    return t.wall * 1000


def view_rows(data: Path, view: str) -> dict:
    """Every row of ``view`` as plain dicts (for the baselines' tables)."""
    system = build(settings_for(data), read_only=True)
    try:
        return {k: v for k, v in system.store.view(view).items()}
    finally:
        system.close()
