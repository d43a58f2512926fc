"""What every benchmark shares: timers, the machine, peak memory, result rows and their printing.

A *row* is one line of issue 9's table: the system's figure, its baseline
measured in the same run, the ratio between them, the target and whether the
figure meets it. Targets are printed as ``pass``/``FAIL``, never asserted: a
benchmark on a shared machine reports, it does not gate.
"""
from __future__ import annotations

import os
import platform
import resource
import sqlite3
import statistics
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

SHARED_NOTE = ("absolute figures depend on the load of the machine; ratios are measured in the "
               "same run and are the figures to compare")


class Timer:
    wall = cpu = 0.0


@contextmanager
def timed():
    t = Timer()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield t
    finally:
        t.wall, t.cpu = time.perf_counter() - wall, time.process_time() - cpu


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def p99_ms(samples: list[float]) -> float:
    """The 99th percentile of ``samples`` (seconds), in milliseconds."""
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0] * 1000
    return statistics.quantiles(samples, n=100, method="inclusive")[98] * 1000


def peak_rss_mb() -> float:
    """Peak resident set of this process: VmHWM from /proc, else getrusage (KiB on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def row(name: str, figure: float, unit: str, baseline: float | None, baseline_label: str,
        baseline_unit: str, ratio: float | None, target: str, ok: bool | None, **extra) -> dict:
    """One line of the table. ``ok`` is None when the run was too small to judge the target."""
    return {"name": name, "figure": figure, "unit": unit, "baseline": baseline,
            "baseline_label": baseline_label, "baseline_unit": baseline_unit,
            "ratio": None if ratio is None else round(ratio, 4), "target": target,
            "verdict": "n/a" if ok is None else ("pass" if ok else "FAIL"), **extra}


def finite(data):
    """``data`` with every infinite or NaN float as None, so ``--json`` prints strict JSON."""
    if isinstance(data, float) and (data != data or data in (float("inf"), float("-inf"))):
        return None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [finite(v) for v in data]
    return data


def _num(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def print_rows(rows: list[dict], title: str) -> None:
    print(title)
    head = f"  {'workload':<38}{'figure':>14} {'':<10}{'baseline':>14} {'':<10}{'ratio':>8}  {'target':<30}verdict"
    print(head)
    for r in rows:
        print(f"  {r['name']:<38}{_num(r['figure']):>14} {r['unit']:<10}{_num(r['baseline']):>14} "
              f"{r['baseline_unit']:<10}{_num(r['ratio']):>8}  {r['target']:<30}{r['verdict']}")
    print("baselines:")
    for r in rows:
        print(f"  {r['name']:<38}{r['baseline_label']}")
    notes = [(r["name"], r["note"]) for r in rows if r.get("note")]
    if notes:
        print("notes:")
        for name, note in notes:
            print(f"  {name:<38}{note}")


# -- the machine -----------------------------------------------------------------------------

def machine(where: Path | None = None) -> dict:
    """CPU model, cores, memory, load, file system of ``where``, Python and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu, "nproc": os.cpu_count(), "memory_gb": _memory_gb(), "loadavg": load,
            "os": platform.platform(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "filesystem": _filesystem(where) if where else None,
            "libraries": {n: version(n) for n in ("eventsourcing", "kafka-python", "fastavro",
                                                   "psycopg")},
            "shared": "machine shared with other engineers running test suites during this run"}


def version(name: str) -> str:
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
    """The file system type ``where`` is on (fsync cost depends on it; tmpfs has none)."""
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


def machine_line(m: dict) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    return (f"machine   {m['cpu']}, nproc {m['nproc']}, {m['memory_gb']} GB RAM, load {m['loadavg']}, "
            f"{m.get('filesystem') or ''}\nsoftware  Python {m['python']}, SQLite {m['sqlite']}, {libs}\n"
            f"date      {m['date']}  ({m['shared']}: {SHARED_NOTE})")
