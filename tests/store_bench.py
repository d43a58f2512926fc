"""Query benchmarks of the keyed read store (for bench/: ``tier_p99_ms`` and ``breaches_ms``).

Both fill a real SQLite read store through the real folds (synthetic
envelopes of the event types the folds read), commit it, open it again
read-only as a CLI query does, and time the query functions. Run alone:
``python -m tests.store_bench [members] [open_complaints]``.
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from domain.policy import Policy
from infra.bootstrap import VIEWS
from infra.policy_file import load_policy
from infra.service_layer.runner import apply
from infra.stores.readstore import SqliteReadStore
from projections import queries

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _env(kind: str, aggregate: str, key: str, at: datetime, data: dict, position: int) -> dict:
    return {"id": f"{key}-{position}", "type": kind, "aggregate": aggregate, "key": key, "aggregate_id": key,
            "version": 1, "timestamp": at, "meta": {"key": key}, "data": data, "position": position}


def fill(path: Path, members: int, orders_per_member: int, open_complaints: int,
         at_risk_share: float = 0.01) -> datetime:
    """A read store with ``members`` members of ``orders_per_member`` orders each and
    ``open_complaints`` open complaints, ``at_risk_share`` of them past their at-risk instant at
    the returned instant (the others due in the future)."""
    store = SqliteReadStore(path, views=VIEWS)
    rnd, position, dirty = random.Random(1), 0, set()
    now = T0 + timedelta(days=365)

    def put(event):
        nonlocal position, dirty
        position += 1
        event["position"] = position
        dirty |= apply(store, VIEWS, event)
        if len(dirty) >= 5000:
            store.commit(dirty, position, now.isoformat())
            dirty = set()

    for m in range(members):
        for n in range(orders_per_member):
            at = T0 + timedelta(days=rnd.randrange(365))
            put(_env("OrderPaid", "member", f"M{m}", at, {
                "order_id": f"o{m}-{n}", "occurred_at": at, "month": at.strftime("%Y-%m"),
                "amount_fen": 10_000, "counted_fen": 10_000}, 0))
    for c in range(open_complaints):
        due = now - timedelta(hours=1) if rnd.random() < at_risk_share else now + timedelta(days=30)
        clock = {"budget_s": 86400.0, "used_s": 0.0, "running_since": T0, "deadline": due + timedelta(hours=2),
                 "at_risk_at": due}
        put(_env("ComplaintFiled", "complaint", f"C{c}", T0, {
            "member_id": f"M{c % max(members, 1)}", "tier": "gold", "channel": "phone", "category": "billing",
            "severity": "high", "policy_version": "v1", "calendar": "cn", "at_risk_ratio": 0.8,
            "clocks": {"first_response": clock, "resolution": clock}}, 0))
    store.commit(dirty, position, now.isoformat())
    store.close()
    return now


def tier_p99_ms(path: Path, members: int, policy: Policy, samples: int = 2000) -> float:
    """p99 of one ``tier`` answer (row by key, timers row, window arithmetic) on a store opened read-only."""
    store = SqliteReadStore(path, read_only=True, views=VIEWS)
    rnd, times = random.Random(2), []
    at = T0 + timedelta(days=365)
    for _ in range(samples):
        member = f"M{rnd.randrange(members)}"
        start = time.perf_counter()
        row = store.get("current_tier", member)
        queries.tier_row(row, at, policy, queries.member_timers(store, member))
        times.append(time.perf_counter() - start)
    store.close()
    return sorted(times)[int(len(times) * 0.99)] * 1000


def breaches_ms(path: Path, at: datetime, policy: Policy) -> tuple[float, float, int]:
    """(ms to open the store read-only, ms of the ``breaches`` answer, rows in the answer)."""
    start = time.perf_counter()
    store = SqliteReadStore(path, read_only=True, views=VIEWS)
    opened = time.perf_counter()
    answer = queries.pending_breaches(store, at, policy)
    done = time.perf_counter()
    store.close()
    return (opened - start) * 1000, (done - opened) * 1000, len(answer)


def main(members: int = 10_000, open_complaints: int = 100_000) -> None:
    policy = load_policy(None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "read.db"
        start = time.perf_counter()
        at = fill(path, members, 100, open_complaints)
        print(f"filled {members} members x 100 orders, {open_complaints} open complaints "
              f"in {time.perf_counter() - start:.1f} s")
        print(f"tier p99: {tier_p99_ms(path, members, policy):.3f} ms")
        open_ms, query_ms, rows = breaches_ms(path, at, policy)
        print(f"breaches over {open_complaints} open complaints: open {open_ms:.1f} ms, "
              f"answer {query_ms:.1f} ms ({rows} rows)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
