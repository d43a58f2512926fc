"""Throughput benchmark: ``ingest`` and ``replay`` against plain-SQLite baselines.

Run it from the project root::

    .venv/bin/python -m bench.run                  # 100 000 order events
    .venv/bin/python -m bench.run --orders 20000 --json

Everything happens in a fresh temporary data directory with the default
settings (SQLite event store, SQLite read store) and ``VIP_DATA_DIR`` pointing
at it; the directory is removed at the end unless ``--keep`` is given. This is
not part of the test suite. See ``bench/README.md`` for what each figure means.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from zoneinfo import ZoneInfo

from infra.bootstrap import VIEWS, build
from infra.service_layer.ingest import ingest_file
from infra.service_layer.replay import replay
from infra.settings import Settings

ZONE = ZoneInfo("Asia/Shanghai")
REFUND_SHARE = 0.02      # share of the input lines that are refunds of earlier orders
BATCH = 2000             # the batched baseline's rows per transaction (= ingest's flush_every)
PAGE = 2000              # notification page size (= the page infra.service_layer.replay.replay uses)


# -- the input file --------------------------------------------------------------------

def generate_orders(path: Path, orders: int, members: int, seed: int, year: int = 2025) -> dict:
    """Write ``orders`` upstream order events as JSON Lines; returns what was written.

    About 98% are ``OrderPaid`` and 2% ``OrderRefunded`` (partial or full, one to
    fourteen days after the order, same member). Members' order counts are
    skewed (log-normal weights), order times are spread over the whole year in
    waking hours (Asia/Shanghai, ``+08:00``), amounts are log-normal around
    250 CNY. The same seed gives the same file, byte for byte.
    """
    rng = random.Random(seed)
    member_ids = [f"M{n:06d}" for n in range(1, members + 1)]
    weights = [rng.lognormvariate(0.0, 0.8) for _ in member_ids]
    refunds = int(round(orders * REFUND_SHARE)) if orders >= 50 else 0
    paid = orders - refunds
    start = datetime(year, 1, 1, tzinfo=ZONE)
    who = rng.choices(member_ids, weights=weights, k=paid)
    records = []
    for n in range(paid):
        day = rng.randrange(365)
        at = start + timedelta(days=day, seconds=int(rng.uniform(8 * 3600, 23.5 * 3600)))
        fen = max(100, int(rng.lognormvariate(math.log(25000), 0.9)))
        if rng.random() < 0.7:
            fen = max(100, fen // 100 * 100)  # most prices are whole yuan
        records.append({"event_id": f"evt-{rng.getrandbits(64):016x}", "type": "OrderPaid",
                        "member_id": who[n], "order_id": f"SO{year}{n + 1:08d}",
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
            "active_members": len(set(who)), "bytes": path.stat().st_size}


# -- measuring ---------------------------------------------------------------------------

class Timer:
    wall = cpu = 0.0


@contextmanager
def timed(profile: cProfile.Profile | None = None):
    t = Timer()
    wall, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    try:
        yield t
    finally:
        if profile:
            profile.disable()
        t.wall, t.cpu = time.perf_counter() - wall, time.process_time() - cpu


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def figure(count: int, t: Timer, **extra) -> dict:
    return {"count": count, "wall_s": round(t.wall, 4), "cpu_s": round(t.cpu, 4),
            "per_s": round(rate(count, t.wall), 1), **extra}


def best(count: int, runs: list[Timer], **extra) -> dict:
    """The fastest of several runs, with every run's wall time kept."""
    fastest = min(runs, key=lambda t: t.wall)
    return figure(count, fastest, runs=len(runs), all_wall_s=[round(t.wall, 4) for t in runs],
                  **extra)


def measure(fn, repeat: int, **extra) -> dict:
    runs, count = [], 0
    for _ in range(repeat):
        with timed() as t:
            count = fn()
        runs.append(t)
    return best(count, runs, **extra)


def compare(system: dict, baseline: dict) -> None:
    """Add to ``baseline`` how the system's rate compares with it."""
    baseline["ratio"] = round(system["per_s"] / baseline["per_s"], 4)  # system / baseline
    baseline["slowdown"] = round(baseline["per_s"] / system["per_s"], 2)  # baseline / system


# -- store settings ------------------------------------------------------------------------

SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def store_pragmas(app) -> dict:
    """The journal mode and synchronous level of the event store's own connections."""
    with app.recorder.datastore.transaction(commit=False) as c:
        c.execute("PRAGMA journal_mode")
        journal = c.fetchone()[0]
        c.execute("PRAGMA synchronous")
        sync = c.fetchone()[0]
    return {"journal_mode": str(journal).upper(), "synchronous": SYNC_NAMES.get(sync, str(sync))}


# eventsourcing's Application reads os.environ too (plain and ``VIP_``-prefixed names), so
# these change what is measured; they are reported, never silently applied.
ES_KEYS = ("AGGREGATE_CACHE_MAXSIZE", "AGGREGATE_CACHE_FASTFORWARD",
           "AGGREGATE_CACHE_FASTFORWARD_SKIPPING", "DEEPCOPY_FROM_AGGREGATE_CACHE",
           "IS_SNAPSHOTTING_ENABLED", "COMPRESSOR_TOPIC", "CIPHER_TOPIC", "TRANSCODER_TOPIC",
           "MAPPER_TOPIC")
# Settings.eventsourcing_env() sets these, which beats their plain names (not VIP_-prefixed ones).
ES_STORE_KEYS = ("PERSISTENCE_MODULE", "SQLITE_DBNAME", "SQLITE_LOCK_TIMEOUT")


def es_env_overrides() -> dict:
    found = {k: os.environ[k] for k in ES_KEYS if k in os.environ}
    found |= {f"VIP_{k}": os.environ[f"VIP_{k}"] for k in ES_KEYS + ES_STORE_KEYS
              if f"VIP_{k}" in os.environ}
    if not __debug__:
        found["python -O"] = "asserts stripped"
    return found


def baseline_db(path: Path, pragmas: dict) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None)  # autocommit: we BEGIN/COMMIT ourselves
    db.execute(f"PRAGMA journal_mode = {pragmas['journal_mode']}")
    db.execute(f"PRAGMA synchronous = {pragmas['synchronous']}")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, line TEXT NOT NULL)")
    return db


def baseline_insert(path: Path, lines: list[str], pragmas: dict, per_commit: int) -> Timer:
    """Insert the raw lines, ``per_commit`` rows per transaction."""
    db = baseline_db(path, pragmas)
    with timed() as t:
        for i in range(0, len(lines), per_commit):
            db.execute("BEGIN")
            if per_commit == 1:
                db.execute("INSERT INTO orders (line) VALUES (?)", (lines[i],))
            else:
                db.executemany("INSERT INTO orders (line) VALUES (?)",
                               ((line,) for line in lines[i:i + per_commit]))
            db.execute("COMMIT")
    db.close()
    return t


def scan_notifications(app, decode: bool) -> int:
    """Page through the notification log like the runner does; optionally decode each event."""
    recorder, mapper = app.recorder, app.mapper
    start, count = 0, 0
    while True:
        page = recorder.select_notifications(start, PAGE, inclusive_of_start=False)
        if not page:
            return count
        if decode:
            for note in page:
                mapper.to_domain_event(note)
        count += len(page)
        start = page[-1].id


def scan_sqlite(path: Path) -> int:
    """One plain SELECT over the stored_events table, every column of every row touched."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    count = size = 0
    for rowid, _oid, _version, topic, state in db.execute(
            "SELECT rowid, originator_id, originator_version, topic, state"
            " FROM stored_events ORDER BY rowid"):
        count += 1
        size += len(state)
    db.close()
    return count


# -- the machine -----------------------------------------------------------------------------

def machine(where: Path) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable,
            "memory_gb": _memory_gb(), "os": platform.platform(),
            "python": platform.python_version(), "eventsourcing": _version("eventsourcing"),
            "sqlite": sqlite3.sqlite_version, "filesystem": _filesystem(where)}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _filesystem(where: Path) -> str:
    """The file system type the temp dir is on (fsync cost depends on it; tmpfs has none)."""
    best, kind = "", "?"
    try:
        target = str(where.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            point = parts[1]
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, kind = point, parts[2]
    except OSError:
        pass
    return f"{kind} ({best})" if best else kind


def _disk(data: Path) -> dict:
    sizes: dict[str, int] = {}
    for f in data.iterdir():
        stem = f.name.split(".db")[0] + ".db" if ".db" in f.name else f.name
        sizes[stem] = sizes.get(stem, 0) + f.stat().st_size
    return {k: round(v / 1024 / 1024, 1) for k, v in sorted(sizes.items())}


# -- the run -------------------------------------------------------------------------------------

def run(orders: int, members: int, seed: int, parent: str | None, keep: bool,
        progress: bool, profile_top: int = 0, repeat: int = 3) -> dict:

    tmp = Path(tempfile.mkdtemp(prefix="vip-bench-", dir=parent))
    out: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "machine": machine(tmp), "temp_dir": str(tmp) if keep else None}
    profiles: dict[str, str] = {}
    try:
        data = tmp / "data"
        source = tmp / "orders.jsonl"
        with timed() as t:
            gen = generate_orders(source, orders, members, seed)
        out["input"] = {**gen, "seed": seed, "generate_s": round(t.wall, 3)}
        rss = {"after_generate_mb": round(peak_rss_mb(), 1)}

        # Default settings, with only the data directory pointed at the temp dir.
        settings = Settings.from_env({"VIP_DATA_DIR": str(data)})
        system = build(settings)
        try:
            pragmas = store_pragmas(system.app)
            out["event_store"] = {"kind": settings.event_store, **pragmas,
                                  "read_store": "SQLite WAL, synchronous=NORMAL (infra.stores.readstore)",
                                  "env_overrides": es_env_overrides()}

            # 2. ingest, end to end: parse, sort, apply (one event-store transaction
            #    per input), read models committed (every 2000 inputs and at the end).
            prof = cProfile.Profile() if profile_top else None
            with timed(prof) as t:
                report = ingest_file(system.engine, "orders", source, progress=progress)
            if prof:
                profiles["ingest"] = _top(prof, profile_top)
            stored = system.app.recorder.max_notification_id() or 0
            out["ingest"] = figure(gen["lines"], t, applied=report.applied,
                                   duplicates=report.duplicates, rejected=len(report.rejected),
                                   events_stored=stored,
                                   events_per_order=round(stored / max(1, gen["lines"]), 3))
            rss["after_ingest_mb"] = round(peak_rss_mb(), 1)

            # 3. raw sqlite3 baseline: the same lines, same journal mode and synchronous.
            lines = source.read_text(encoding="utf-8").splitlines()
            per_row = baseline_insert(tmp / "baseline_per_row.db", lines, pragmas, 1)
            batched = baseline_insert(tmp / "baseline_batched.db", lines, pragmas, BATCH)
            out["ingest_baseline"] = {
                "per_row_txn": figure(len(lines), per_row, rows_per_txn=1),
                "batched_txn": figure(len(lines), batched, rows_per_txn=BATCH)}
            for b in out["ingest_baseline"].values():
                compare(out["ingest"], b)
            del lines

            # 4. replay every event into in-memory views, and the raw scans of the same log.
            #    Each is run ``repeat`` times and the fastest run is reported (they are short
            #    and allocation-heavy, so one run is at the mercy of the garbage collector).
            def replay_once(t_list, prof=None):
                with timed(prof) as t:
                    views = replay(system.app, VIEWS, progress=progress)
                t_list.append(t)
                return views.position, sum(len(r) for r in views.rows.values())

            prof = cProfile.Profile() if profile_top else None
            runs: list[Timer] = []
            position, view_rows = replay_once(runs, prof)
            if prof:
                profiles["replay"] = _top(prof, profile_top)
            for _ in range(repeat - 1):
                replay_once(runs)
            out["replay"] = best(stored, runs, position=position, rows=view_rows)
            rss["after_replay_mb"] = round(peak_rss_mb(), 1)
            scans = {
                "select_notifications": measure(lambda: scan_notifications(system.app, False),
                                                repeat, page=PAGE),
                "select_notifications_decode": measure(
                    lambda: scan_notifications(system.app, True), repeat, page=PAGE),
                "sqlite3_select": measure(lambda: scan_sqlite(data / "events.db"), repeat)}
            for b in scans.values():
                compare(out["replay"], b)
            out["replay_baseline"] = scans
        finally:
            system.close()
        out["disk_mb"] = _disk(data) | {"baseline_per_row.db": _disk(tmp).get("baseline_per_row.db")}
        rss["peak_mb"] = round(peak_rss_mb(), 1)
        out["rss"] = rss
        if profiles:
            out["profiles"] = profiles
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _top(prof: cProfile.Profile, n: int) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    stats.sort_stats("tottime").print_stats(n)
    stats.sort_stats("cumulative").print_stats(n)
    return buf.getvalue()


# -- output ----------------------------------------------------------------------------------------

def table(r: dict) -> str:
    m, i, e = r["machine"], r["input"], r["event_store"]
    rows = []

    def line(label, f, unit, base=None):
        ratio = "" if base is None else f"{f['ratio']:.3f}  ({f['slowdown']:.1f}x slower)"
        rows.append(f"  {label:<38}{f['count']:>9,}{f['wall_s']:>10.2f}{f['cpu_s']:>9.2f}"
                    f"{f['per_s']:>12,.0f} {unit:<8} {ratio}")

    head = (f"  {'':<38}{'count':>9}{'wall s':>10}{'cpu s':>9}{'rate':>12} {'':<8} "
            "system/baseline")
    ing, rep = r["ingest"], r["replay"]
    out = [f"VIP backend benchmark  {r['date']}",
           f"machine   {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
           f"{m['memory_gb']} GB, {m['filesystem']}",
           f"software  Python {m['python']}, eventsourcing {m['eventsourcing']}, SQLite {m['sqlite']}",
           f"input     {i['lines']:,} order events ({i['paid']:,} OrderPaid, {i['refunds']:,} "
           f"OrderRefunded), {i['active_members']:,} of {i['members']:,} members, seed {i['seed']}",
           f"store     SQLite event store: journal_mode={e['journal_mode']}, "
           f"synchronous={e['synchronous']}"
           + (f"; NOTE overrides: {e['env_overrides']}" if e.get("env_overrides") else ""),
           "", head,
           "INGEST"]
    line("ingest_file (orders)", ing, "orders/s")
    b = r["ingest_baseline"]
    line("sqlite3 INSERT, 1 row per txn", b["per_row_txn"], "rows/s", True)
    line(f"sqlite3 INSERT, {BATCH} rows per txn", b["batched_txn"], "rows/s", True)
    rows_ing = rows[:]
    rows.clear()
    line("replay(app, VIEWS)", rep, "events/s")
    s = r["replay_baseline"]
    line("select_notifications, paged", s["select_notifications"], "events/s", True)
    line("select_notifications + decode", s["select_notifications_decode"], "events/s", True)
    line("sqlite3 SELECT stored_events", s["sqlite3_select"], "events/s", True)
    out += rows_ing + [f"REPLAY (fastest of {rep.get('runs', 1)} runs each)"] + rows
    out += ["",
            f"ingest    applied {ing['applied']:,}, duplicates {ing['duplicates']:,}, rejected "
            f"{ing['rejected']:,}; {ing['events_stored']:,} events stored "
            f"({ing['events_per_order']} per order)",
            f"memory    peak RSS {r['rss']['peak_mb']:,.0f} MB (after ingest "
            f"{r['rss']['after_ingest_mb']:,.0f} MB, after replay {r['rss']['after_replay_mb']:,.0f} MB)",
            "disk      " + ", ".join(f"{k} {v} MB" for k, v in r["disk_mb"].items() if v is not None)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=100_000, help="order events in the file (default 100000)")
    p.add_argument("--members", type=int, default=5000, help="distinct members (default 5000)")
    p.add_argument("--seed", type=int, default=20250101, help="generator seed (default 20250101)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--dir", help="parent of the temp data dir (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp data dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of replay and of each scan; the fastest is reported (default 3)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile ingest and replay with cProfile, print the top N functions "
                        "to stderr (slows both down: figures are then not comparable)")
    args = p.parse_args(argv)
    if args.orders < 1 or args.members < 1 or args.repeat < 1:
        p.error("--orders, --members and --repeat must be positive")
    progress = sys.stderr.isatty() and not args.no_progress
    result = run(args.orders, args.members, args.seed, args.dir, args.keep, progress, args.profile,
                 args.repeat)
    result["profiled"] = bool(args.profile)
    for name, text in result.pop("profiles", {}).items():
        print(f"==== cProfile: {name} ====\n{text}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
        if args.profile:
            print("(profiled run: rates include cProfile overhead)")
        if result.get("temp_dir"):
            print(f"data kept in {result['temp_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
