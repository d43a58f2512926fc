"""Replay alone: build the bench's 100k-order store once, then time (and profile) ``replay``.

    .venv/bin/python -m bench.replay_profile --data /tmp/vip-replay-data            # time, ratio
    .venv/bin/python -m bench.replay_profile --data /tmp/vip-replay-data --profile  # + cProfile top

The store is built by the same child-process ingest as ``bench.run`` (same
input generator, seed and defaults) when ``--data`` does not hold one yet, and
kept, so runs after the first measure replay only. Prints the replay rate, the
recorder's scan + decode rate in the same run and their ratio (the issue's row).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

from bench.common import rate
from bench.workloads import fastest, generate_orders, ingest_in_child, scan_decode, settings_for
from infra.bootstrap import build
from infra.service_layer.replay import replay
from projections.views import VIEWS


def ensure_store(data: Path, orders: int, members: int, seed: int) -> None:
    if (data / "done").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    source = data.parent / f"{data.name}-orders.jsonl"
    generate_orders(source, orders, members, seed)
    ingest_in_child(data / "store", [source], progress=False)
    source.unlink()
    (data / "done").write_text("ok\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replay_profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="directory for the kept store (built on the first run)")
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--members", type=int, default=5000)
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--profile", action="store_true", help="print the cProfile top of one replay")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args(argv)
    data = Path(a.data)
    ensure_store(data, a.orders, a.members, a.seed)
    system = build(settings_for(data / "store"), read_only=True)
    try:
        app = system.app
        t_replay, store = fastest(lambda: replay(app, VIEWS), a.repeat)
        t_scan, events = fastest(lambda: scan_decode(app), a.repeat)
        ours, theirs = rate(events, t_replay.wall), rate(events, t_scan.wall)
        print(f"{events:,} events: replay {ours:,.0f} events/s ({t_replay.wall:.2f} s wall, "
              f"{t_replay.cpu:.2f} s CPU), scan + decode {theirs:,.0f} events/s ({t_scan.wall:.2f} s wall, "
              f"{t_scan.cpu:.2f} s CPU); ratio {ours / theirs:.3f} by wall, "
              f"{t_scan.cpu / t_replay.cpu:.3f} by CPU")
        print("rows:", {name: len(rows) for name, rows in store.rows.items()})
        if a.profile:
            prof = cProfile.Profile()
            prof.runcall(replay, app, VIEWS)
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(a.top)
            print(out.getvalue())
    finally:
        system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
