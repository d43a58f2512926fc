"""Ingest of malformed upstream lines (issue 16, item 10): time linear in the file's size.

A file of malformed 1 MB lines (a phone-like run of digits and spaces in a
broken JSON object: the worst case for the old masks, 30 s for one 0.1 MB
line) is ingested and timed per MB, against two baselines measured in the
same run: a raw read of the same file, and a file of the same size made of
malformed lines just under the 64 KiB limit (each one parsed and masked).
Ratios are printed, never asserted::

    .venv/bin/python -m bench.malformed [--mb 16] [--json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import finite, machine, machine_line, print_rows, row
from infra.bootstrap import build
from infra.service_layer.ingest import ingest_file
from infra.service_layer.masking import MAX_INPUT_BYTES
from infra.settings import Settings

MB = 1 << 20


def _malformed(size: int) -> bytes:
    head = b'{"event_id": "x", "type": "OrderPaid", "name": "Zhang San", "note": "'
    return head + b"1 " * ((size - len(head) - 1) // 2) + b"\n"


def _write(path: Path, line_size: int, total: int) -> Path:
    line = _malformed(line_size)
    with path.open("wb") as out:
        for _ in range(max(1, total // len(line))):
            out.write(line)
    return path


def _ingest_seconds(tmp: Path, path: Path) -> float:
    settings = Settings.from_env({}, data_dir=tmp / f"data-{path.stem}", event_store="memory")
    with build(settings) as system:
        started = time.perf_counter()
        report = ingest_file(system.engine, "orders", path, rejects=tmp / f"{path.stem}.rejects",
                             progress=False)
        took = time.perf_counter() - started
    assert report.applied == 0 and len(report.rejected) == report.lines
    return took


def _read_seconds(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as handle:
        while handle.read(MB):
            pass
    return time.perf_counter() - started


def run(a) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="vip-bench-malformed-", dir=a.dir))
    try:
        total = a.mb * MB
        big = _write(tmp / "big.jsonl", MB, total)
        small = _write(tmp / "small.jsonl", MAX_INPUT_BYTES - 1024, total)
        mbs = big.stat().st_size / MB
        per_mb = _ingest_seconds(tmp, big) * 1000 / mbs
        read_per_mb = min(_read_seconds(big) for _ in range(3)) * 1000 / mbs
        small_per_mb = _ingest_seconds(tmp, small) * 1000 / (small.stat().st_size / MB)
        rows = [
            row(f"ingest of malformed 1 MB lines ({mbs:.0f} MB)", round(per_mb, 2), "ms/MB",
                round(read_per_mb, 3), "raw read of the file", "ms/MB", per_mb / max(read_per_mb, 1e-9),
                "linear: refused by length, so about a read", None),
            row("ingest of malformed 1 MB lines vs lines under the 64 KiB limit", round(per_mb, 2), "ms/MB",
                round(small_per_mb, 2), "malformed 63 KiB lines (parsed and masked)", "ms/MB",
                per_mb / max(small_per_mb, 1e-9), "<= 1 (no line costs more per MB than a short one)",
                per_mb <= small_per_mb * 1.5),
        ]
        return {"machine": machine(tmp), "rows": rows}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.malformed", description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=int, default=16, help="size of each file in MB (default 16)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--dir", help="parent of the temp dir (default: the system temp dir)")
    a = p.parse_args(argv)
    if a.mb < 1:
        p.error("--mb must be positive")
    result = run(a)
    if a.json:
        print(json.dumps(finite(result), indent=2, allow_nan=False))
    else:
        print(machine_line(result["machine"]))
        print_rows(result["rows"], "\nissue 16 item 10 (ratio: time per MB over the baseline's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
