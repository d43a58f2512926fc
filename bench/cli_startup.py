"""CLI start-up (issue 21): `vip --help` as a whole process, against `python -c pass`.

Each command is run as a fresh process N times (default 10), alternating with
the baseline so both see the same load; the median wall time of each and
their ratio are printed, never asserted (target: `vip --help` under 0.3 s).
A second row times `vip tier --help` (one command's module loaded)::

    .venv/bin/python -m bench.cli_startup [--runs 10] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import machine, machine_line, print_rows, row

ROOT = Path(__file__).resolve().parents[1]
VIP = [sys.executable, "-c", "from hosts.main import main; main()"]
TARGET_S = 0.3


def _wall(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def measure(runs: int) -> list[dict]:
    """Median wall times of `vip --help`, `vip tier --help` and `python -c pass`, interleaved."""
    samples: dict[str, list[float]] = {"help": [], "tier": [], "python": []}
    _wall(VIP + ["--help"])  # the first run pays for cold files and .pyc writing: not counted
    for _ in range(runs):
        samples["python"].append(_wall([sys.executable, "-c", "pass"]))
        samples["help"].append(_wall(VIP + ["--help"]))
        samples["tier"].append(_wall(VIP + ["tier", "--help"]))
    base = statistics.median(samples["python"])
    out = []
    for key, name in (("help", "vip --help (process)"), ("tier", "vip tier --help (process)")):
        figure = statistics.median(samples[key])
        out.append(row(name, round(figure, 4), "s median", round(base, 4), f"python -c pass, {runs} runs "
                       "interleaved in the same run", "s median", figure / base,
                       f"< {TARGET_S} s" if key == "help" else "(printed only)",
                       figure < TARGET_S if key == "help" else None,
                       note=f"min {min(samples[key]):.3f} s, max {max(samples[key]):.3f} s"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    m = machine(ROOT)
    rows = measure(args.runs)
    if args.json:
        print(json.dumps({"machine": m, "rows": rows}, indent=2, default=str))
        return
    print(machine_line(m))
    print_rows(rows, "CLI start-up (issue 21)")


if __name__ == "__main__":
    main()
