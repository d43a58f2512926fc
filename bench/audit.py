"""Issue 20's row: `vip verify` of a large log against the raw scan of the same notifications.

    .venv/bin/python -m bench.audit                  # 200,000 events (about a minute)
    .venv/bin/python -m bench.audit --size 1000000   # the issue's size

The log is built fast through the real recorder (chain rows and all): the
library floor's OrderPaid-shaped events (:mod:`bench.floor`), mapped by the
application's mapper and inserted 2,000 per transaction, then checkpointed
every 10,000 ids. The figure is :func:`infra.audit.verify.verify` (every
event's hash recomputed, every checkpoint's signature and root, the chain
table's orphans); the baseline is the recorder's own paged
``select_notifications`` over the same log, in the same run. The ratio is
printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import machine, machine_line, print_rows, rate, row, timed
from bench.floor import BATCH, FloorMember
from domain.base import Ctx
from infra.audit.checkpoints import load_key, make_checkpoints
from infra.audit.sql import AuditSql
from infra.audit.verify import verify
from infra.bootstrap import open_app
from infra.settings import Settings

PAGE = 5000


def fill(app, events: int, members: int = 20_000) -> int:
    """Store ``events`` events over ``members`` aggregates through the application's recorder."""
    mapper, recorder = app.mapper, app.recorder
    start = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    live: dict[int, FloorMember] = {}
    stored = 0
    while stored < events:
        pending = []
        for n in range(stored, min(events, stored + BATCH)):
            m, at = n % members, start + timedelta(seconds=n)
            ctx = Ctx(at=at, causation_id=f"evt-{n}")
            member = live.get(m)
            if member is None:
                member = live[m] = FloorMember(member_id=f"M{m:07d}", timestamp=at, meta=ctx.meta(f"M{m:07d}"))
            else:
                member.pay(ctx, f"evt-{n}", f"SO-{n}", 10_000 + n % 9_000, "CNY", at)
            pending.extend(member.collect_events())
        recorder.insert_events([mapper.to_stored_event(e) for e in pending])
        stored += len(pending)
    return stored


def scan(recorder) -> int:
    """The raw paged scan of the notification log (the baseline)."""
    count, after = 0, 0
    while True:
        notes = recorder.select_notifications(after, PAGE, inclusive_of_start=False)
        if not notes:
            return count
        count += len(notes)
        after = notes[-1].id


def run(size: int, data: Path, store: str = "sqlite") -> dict:
    settings = Settings.from_env({}, data_dir=data, event_store=store)
    app, keys = open_app(settings)
    try:
        with timed() as built:
            events = fill(app, size)
        sql = AuditSql(app.recorder)
        key = load_key(data / "audit.key", create=True)
        with timed() as signing:
            made = make_checkpoints(sql, key, 10_000, force=True)
        with timed() as scanned:
            assert scan(app.recorder) == events
        with timed() as checked:
            report = verify(sql, key)
        assert report.clean, report.summary()
    finally:
        keys.close()
        app.close()
    return {"events": events, "build_s": built.wall, "checkpoints": len(made), "checkpoint_s": signing.wall,
            "scan_s": scanned.wall, "verify_s": checked.wall, "summary": report.summary()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=200_000, help="events in the log (default 200000; 1000000: the issue's)")
    p.add_argument("--dir", help="parent of the temp dir")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vip-bench-audit-", dir=a.dir))
    try:
        r = run(a.size, tmp / "data")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ours, theirs = rate(r["events"], r["verify_s"]), rate(r["events"], r["scan_s"])
    rows = [row(f"verify {r['events']:,} events", round(ours), "events/s", round(theirs),
                "the recorder's paged select_notifications of the same log", "events/s", ours / theirs,
                "none (printed)", None,
                note=f"verify {r['verify_s']:.1f}s, scan {r['scan_s']:.1f}s, {r['checkpoints']} checkpoints signed "
                     f"in {r['checkpoint_s']:.1f}s, log built in {r['build_s']:.1f}s; {r['summary']}")]
    m = machine(tmp.parent)
    if a.json:
        print(json.dumps({"machine": m, "rows": rows, "run": r}, indent=2, default=str))
    else:
        print(machine_line(m))
        print_rows(rows, "Issue 20: verification")
    return 0


if __name__ == "__main__":
    sys.exit(main())
