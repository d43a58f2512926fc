"""Issue 9's table, one process at a time: ingest, replay, memory, queries and scaling.

Run it from the project root::

    .venv/bin/python -m bench.run                         # 100 000 orders (a few minutes)
    .venv/bin/python -m bench.run --orders 20000 --json
    .venv/bin/python -m bench.run --memory-orders 300000,1000000 --dense-orders 300000

Every row has the system's figure, a baseline measured in the same run, the
ratio, the target and pass/FAIL (printed, never asserted). Everything happens
in a fresh temporary directory with the default settings (SQLite event and
read stores), removed at the end unless ``--keep``. See ``bench/README.md``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from bench.common import finite, machine, machine_line, print_rows, rate, row
from bench.floor import BATCH as FLOOR_BATCH, library_floor
from bench.workloads import (
    BATCH,
    baseline_insert,
    file_complaints,
    generate_orders,
    ingest_in_child,
    key_lookup_baseline,
    query_latencies,
    replay_vs_scan,
    scan_rows_baseline,
    view_rows,
)

FLAT = 1.2          # "flat within 20%": the most a cost may grow with size and still pass
MILLION = 1_000_000
# breaches at the instant the complaints were filed: every one open, none due yet (the listing
# index reads no row); and with the wall clock, every clock breached (every row is in the answer)
SOON = timedelta(0)


def say(text: str, progress: bool) -> None:
    if progress:
        print(f"[bench] {text}", file=sys.stderr, flush=True)


def ingest_rows(tmp: Path, a, progress: bool, out: dict) -> tuple[list[dict], Path]:
    """Ingest (vs a raw sqlite3 insert, 2,000 rows per transaction), the library floor, and the
    memory rows (:func:`memory_rows`)."""
    source, data = tmp / "orders.jsonl", tmp / "main"
    gen = generate_orders(source, a.orders, a.members, a.seed)
    out["input"] = {**gen, "seed": a.seed}
    say(f"ingest {gen['lines']:,} orders over {a.members:,} members (child process)", progress)
    main = ingest_in_child(data, [source], progress)
    step = main["steps"][0]
    lines = source.read_text(encoding="utf-8").splitlines()
    # fastest of --repeat (a fresh file each): the insert takes a fraction of a second, so one
    # run is at the mercy of whatever else the shared machine does at that moment
    base = min((baseline_insert(tmp / f"baseline_insert_{n}.db", lines, main["pragmas"])
                for n in range(a.repeat)), key=lambda t: t.wall)
    say(f"library floor: construct, map and insert {len(lines):,} OrderPaid-shaped events", progress)
    floor = library_floor(tmp / "floor", lines)
    shutil.rmtree(tmp / "floor", ignore_errors=True)
    say("new floor: the same with the fast transcoder and an explicit event class", progress)
    new_floor = library_floor(tmp / "new_floor", lines, new=True)
    shutil.rmtree(tmp / "new_floor", ignore_errors=True)
    del lines
    ours, theirs = rate(step["lines"], step["wall_s"]), rate(gen["lines"], base.wall)
    low_floor = rate(floor["orders"], floor["wall_s"])
    out["floor"] = {**floor, "orders_per_s": round(low_floor)}
    high_floor = rate(new_floor["orders"], new_floor["wall_s"])
    out["new_floor"] = {**new_floor, "orders_per_s": round(high_floor)}
    out["ingest"] = {**step, "orders_per_s": round(ours), "pragmas": main["pragmas"],
                     "baseline_rows_per_s": round(theirs), "baseline_s": base.wall}
    rows = [row("ingest orders->events->views", round(ours), "orders/s", round(theirs),
                f"sqlite3 INSERT of the same lines, {BATCH} rows per transaction (fastest of {a.repeat}), "
                f"journal {main['pragmas']['journal_mode']}, synchronous={main['pragmas']['synchronous']}",
                "rows/s", ours / theirs, ">= 0.04 (>= 30,000/s quiet)", ours / theirs >= 0.04,
                note=f"{step['applied']:,} applied, {step['rejected']} rejected, "
                     f"{step['events_stored']:,} events; target also >= 30,000 orders/s on a quiet machine; "
                     f"{ours / low_floor:.2f} of the library floor"),
            row("library floor: event->stored->insert", round(low_floor), "orders/s", round(theirs),
                "the same sqlite3 INSERT as the ingest row", "rows/s", low_floor / theirs,
                ">= 0.04 (ceiling of the ingest ratio)", low_floor / theirs >= 0.04,
                note=f"{floor['events']:,} events (OrderPaid-shaped, plus one creation per member) "
                     f"constructed by an @event method, mapped by app.mapper, inserted by the SQLite "
                     f"recorder {FLOOR_BATCH} per transaction; no rules, receipts, views or snapshots. "
                     + ", ".join(f"{k} {floor[k + '_s'] / floor['wall_s']:.0%}"
                                 for k in ("construct", "map", "insert"))
                     + f" of {floor['wall_s']:.2f} s wall ({floor['cpu_s']:.2f} s CPU)"),
            row("vs floor: ingest / library floor", round(ours), "orders/s", round(low_floor),
                "the library floor above (its first definition), same run", "orders/s", ours / low_floor,
                ">= 0.5", ours / low_floor >= 0.5, note=f"{ours / high_floor:.2f} of the new floor"),
            row("vs floor: new floor / old floor", round(high_floor), "orders/s", round(low_floor),
                "the library floor above, same run", "orders/s", high_floor / low_floor, ">= 2",
                high_floor / low_floor >= 2,
                note="new floor: an explicit event class triggered directly, mapped by the app's orjson "
                     "transcoder (same bytes), same recorder; CPU ratio "
                     f"{floor['cpu_s'] / new_floor['cpu_s']:.2f}; "
                     + ", ".join(f"{k} {floor[k + '_s']:.2f} -> {new_floor[k + '_s']:.2f} s"
                                 for k in ("construct", "map", "insert")))]

    rows += memory_rows(tmp, a, step, progress, out)
    return rows, data


def memory_rows(tmp: Path, a, main: dict, progress: bool, out: dict) -> list[dict]:
    """Peak RSS as history grows, and the cost of each order a member keeps.

    History (the issue's "flat in event count"): each ``--memory-orders`` run
    keeps the main ingest's density (``--orders`` a year over the same
    members) and spans as many years as its size needs, so time moves through
    several windows and members forget what fell out of them. The figure is
    the largest run's peak RSS, against the smallest ``--memory-orders`` run's
    when two or more are given (give one of three years or more: a member
    keeps two windows of orders, so the first year holds half of what every
    later year does), else against the main ingest's (one year). The largest
    run's store is also replayed (the measured 1M-event replay).
    Density (``--dense-orders``): that many orders inside ONE window, which a
    member must all keep (a refund reverses its own order): no target, it
    prices a kept order.
    """
    points = [{"orders": a.orders, "years": 1, **_mem(main)}]
    rows, replayed = [], None
    for size in a.memory_orders:
        years = max(1, -(-size // a.orders))
        src, data = tmp / f"orders_{size}.jsonl", tmp / f"mem_{size}"
        generate_orders(src, size, a.members, a.seed, years=years)
        say(f"memory: ingest {size:,} orders over {years} years (child process)", progress)
        points.append({"orders": size, "years": years,
                       **_mem(ingest_in_child(data, [src], progress)["steps"][0])})
        src.unlink()
        if size == max(a.memory_orders):
            say(f"replay the {points[-1]['events']:,}-event store", progress)
            replayed = replay_vs_scan(data, 1, progress)
        if not a.keep:
            shutil.rmtree(data, ignore_errors=True)
    out["memory"] = points
    history = sorted(points[1:], key=lambda p: p["events"])
    big = history[-1] if history else points[0]
    base = history[0] if len(history) >= 2 else points[0]
    growth = big["rss_mb"] / base["rss_mb"]
    at_million = big["events"] >= MILLION
    # one run alone judges nothing: give --memory-orders (two sizes, the smaller of 3+ years)
    ok = None if big is base else growth <= FLAT and (big["rss_mb"] < 300 if at_million else True)
    rows.append(row(f"memory: peak RSS at {big['events']:,} events ({big['years']} years)", big["rss_mb"],
                    "MB", base["rss_mb"], f"peak RSS at {base['events']:,} events ({base['years']} "
                    f"years{', the main ingest' if base is points[0] else ''})", "MB", growth, f"<= {FLAT} (flat); < 300 MB at 1M", ok,
                    note=("; ".join(f"{p['events']:,} events over {p['years']} y: {p['rss_mb']} MB in "
                                    f"{p['wall_s']:.0f} s" for p in points))
                    + ("" if at_million else "; 1M events not run (--memory-orders 1000000): "
                       f"~{MILLION / max(big['orders_per_s'], 1) / 60:.0f} min at this run's rate")))
    if replayed:
        took, scan = replayed["replay_s"], replayed["scan_decode_s"]
        out["replay_measured"] = replayed
        rows.append(row(f"replay measured: {replayed['events']:,} events", round(took, 3), "s",
                        round(scan, 3), "the recorder's scan + decode of the same log (one run)", "s",
                        scan / took, "< 15 s", took < 15 if replayed["events"] >= MILLION else None))
    if a.dense_orders > a.orders:
        src, data = tmp / "orders_dense.jsonl", tmp / "mem_dense"
        generate_orders(src, a.dense_orders, a.members, a.seed)
        say(f"memory: ingest {a.dense_orders:,} orders inside one year (child process)", progress)
        dense = _mem(ingest_in_child(data, [src], progress)["steps"][0])
        if not a.keep:
            shutil.rmtree(data, ignore_errors=True)
        src.unlink()
        per = (dense["rss_mb"] - points[0]["rss_mb"]) * 1e6 / max(dense["events"] - points[0]["events"], 1)
        out["memory_dense"] = {**dense, "orders": a.dense_orders, "bytes_per_kept_order": round(per)}
        rows.append(row(f"kept-order memory: {dense['events']:,} events inside one window", dense["rss_mb"], "MB",
                        points[0]["rss_mb"], "peak RSS of the main ingest", "MB",
                        dense["rss_mb"] / points[0]["rss_mb"], "none: prices a kept order", None,
                        note=f"about {per:,.0f} bytes of RSS per further kept order (every order of "
                             "the window is kept: a refund reverses its own order)"))
    return rows


def _mem(step: dict) -> dict:
    return {"events": step["events_stored"], "rss_mb": step["rss_mb"], "wall_s": round(step["wall_s"], 1),
            "orders_per_s": round(rate(step["lines"], step["wall_s"]))}


def replay_rows(data: Path, a, progress: bool, out: dict) -> list[dict]:
    say("replay every read model, and the recorder's scan + decode", progress)
    r = replay_vs_scan(data, a.repeat, progress)
    ours, theirs = rate(r["events"], r["replay_s"]), rate(r["events"], r["scan_decode_s"])
    out["replay"] = {**r, "events_per_s": round(ours), "scan_decode_per_s": round(theirs)}
    million, million_base = MILLION / ours, MILLION / theirs
    return [row("replay every read model", round(ours), "events/s", round(theirs),
                f"recorder select_notifications (pages of 2000) + mapper decode, fastest of {a.repeat}",
                "events/s", ours / theirs, ">= 0.6", ours / theirs >= 0.6),
            row("replay 1M events (extrapolated)", round(million, 1), "s", round(million_base, 1),
                f"scan + decode of 1M events, extrapolated linearly from {r['events']:,}", "s",
                million_base / million, "< 15 s", million < 15,
                note=f"linear from {r['events']:,} events; replay is a scan, so linear is fair")]


def query_rows(tmp: Path, data: Path, a, progress: bool, out: dict) -> list[dict]:
    tiers = view_rows(data, "current_tier")
    members = sorted(tiers)
    say(f"file {a.complaints:,} open complaints through the engine", progress)
    filed = file_complaints(data, a.complaints, members, progress)
    soon = datetime.fromisoformat(filed["filed_at"]) + SOON
    q = query_latencies(data, members, a.samples, a.repeat, soon_after=soon)
    complaints = view_rows(data, "complaints")
    base_tier = key_lookup_baseline(tiers, a.samples, tmp)
    base_scan = scan_rows_baseline(complaints, tmp)
    out["queries"] = {**q, "filed": filed, "baseline_tier_p99_ms": base_tier,
                      "baseline_scan_ms": base_scan}
    per_member = out["input"]["lines"] / max(len(members), 1)
    rows = [row("queries: tier p99", round(q["tier_p99_ms"], 3), "ms", round(base_tier, 3),
                "sqlite3 primary-key SELECT + json.loads of the same current_tier rows", "ms",
                base_tier / q["tier_p99_ms"], "< 2 ms", q["tier_p99_ms"] < 2,
                note=f"{a.samples} members, {per_member:.0f} orders/member; opening the read-only "
                     f"system (the CLI's build) took {q['open_s']:.2f} s (target: well under 1 s)")]
    for label, when in (("soon", "none due yet"), ("all", "every clock breached")):
        ms, listed = q[f"breaches_{label}_ms"], q[f"breaches_{label}_listed"]
        scaled = ms * 100_000 / max(a.complaints, 1)
        judged = "measured" if a.complaints >= 100_000 else \
            f"linear from {a.complaints:,}: ~{scaled:.0f} ms at 100k"
        rows.append(row(f"queries: breaches, {a.complaints:,} open, {when}", round(ms, 1), "ms",
                        round(base_scan, 1), "sqlite3 SELECT + json.loads of every complaints row",
                        "ms", base_scan / ms, "< 100 ms at 100k open", scaled < 100,
                        note=f"{listed:,} clocks listed; {judged}"))
    return rows


def scaling_rows(tmp: Path, a, progress: bool, out: dict) -> list[dict]:
    """The same ``--scale-orders`` orders into stores holding 10k, 100k (, 1M) members.

    A population (one order per member registers them all) is ingested first;
    then the measured orders, the same file for every population: they go to
    the members every population shares (the smallest population's), so each
    member's history is the same and only the size of the store differs.
    """
    points = []
    common = min(a.scale_members)
    more = tmp / "scale_orders.jsonl"
    generate_orders(more, a.scale_orders, common, a.seed + 1)
    for members in sorted(set(a.scale_members)):
        pop, data = tmp / f"pop_{members}.jsonl", tmp / f"scale_{members}"
        generate_orders(pop, members, members, a.seed, every_member=True)
        say(f"scaling: register {members:,} members, then {a.scale_orders:,} orders (child process)", progress)
        steps = ingest_in_child(data, [pop, more], progress)["steps"]
        first, measured = steps
        points.append({"members": members, "orders": measured["lines"],
                       "population_s": round(first["wall_s"], 1),
                       "population_wall_ms_per_order": first["wall_s"] * 1000 / first["lines"],
                       "cpu_ms_per_order": measured["cpu_s"] * 1000 / measured["lines"],
                       "wall_ms_per_order": measured["wall_s"] * 1000 / measured["lines"]})
        shutil.rmtree(data, ignore_errors=True)
        pop.unlink()
    more.unlink()
    out["scaling"] = points
    low, high = points[0], points[-1]
    growth = high["cpu_ms_per_order"] / low["cpu_ms_per_order"]
    return [row(f"scaling: {low['members']:,} -> {high['members']:,} members",
                round(high["cpu_ms_per_order"], 3), "cpu ms/ord", round(low["cpu_ms_per_order"], 3),
                f"the same orders into a store of {low['members']:,} members", "cpu ms/ord",
                growth, f"<= {FLAT} (flat within 20%)", growth <= FLAT,
                note="; ".join(f"{p['members']:,} members: {p['cpu_ms_per_order']:.3f} cpu ms, "
                               f"{p['wall_ms_per_order']:.3f} wall ms per order (registering them took "
                               f"{p['population_s']} s, {p['population_wall_ms_per_order']:.2f} ms each)"
                               for p in points))]


def run(a, progress: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="vip-bench-", dir=a.dir))
    out: dict = {"machine": machine(tmp), "temp_dir": str(tmp) if a.keep else None}
    try:
        rows, data = ingest_rows(tmp, a, progress, out)
        rows += replay_rows(data, a, progress, out)
        rows += query_rows(tmp, data, a, progress, out)
        if a.scale_members:
            rows += scaling_rows(tmp, a, progress, out)
        out["rows"] = rows
        return out
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def sizes(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=100_000, help="orders in the main ingest (default 100000)")
    p.add_argument("--members", type=int, default=5000, help="members of the main ingest (default 5000)")
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--memory-orders", type=sizes, default=[], metavar="N[,N]",
                   help="extra ingest sizes for the memory row, e.g. 300000 or 1000000 (default none)")
    p.add_argument("--dense-orders", type=int, default=0, metavar="N",
                   help="also ingest N (more than --orders) orders inside one year: the cost of a kept order")
    p.add_argument("--complaints", type=int, default=10_000,
                   help="open complaints for the breaches query (target is at 100000; default 10000)")
    p.add_argument("--samples", type=int, default=1000, help="tier queries for the p99 (default 1000)")
    p.add_argument("--scale-members", type=sizes, default=[10_000, 100_000], metavar="N,N[,N]",
                   help="member populations for the scaling row (default 10000,100000; add 1000000)")
    p.add_argument("--scale-orders", type=int, default=20_000,
                   help="orders measured over each population (default 20000)")
    p.add_argument("--repeat", type=int, default=3, help="runs of replay, scans and breaches (fastest)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--dir", help="parent of the temp dir (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    if min(a.orders, a.members, a.complaints, a.samples, a.scale_orders, a.repeat) < 1:
        p.error("--orders, --members, --complaints, --samples, --scale-orders and --repeat must be positive")
    if a.dense_orders and a.dense_orders <= a.orders:
        p.error("--dense-orders must be more than --orders (it prices each kept order past the main ingest's)")
    progress = sys.stderr.isatty() and not a.no_progress
    result = run(a, progress)
    if a.json:
        print(json.dumps(finite(result), indent=2, allow_nan=False))
    else:
        print(machine_line(result["machine"]))
        print_rows(result["rows"], "\nissue 9 (ratio: speed over the baseline's; for memory and scaling, "
                                   "growth over the smaller size)")
        if result.get("temp_dir"):
            print(f"data kept in {result['temp_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
