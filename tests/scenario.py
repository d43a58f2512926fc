"""A small, deterministic year of upstream events, for engine and store tests."""
from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

Z = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 1, 1, 9, tzinfo=Z)


def upstream_events(members: int = 12, seed: int = 3, days: int = 500) -> list[dict]:
    """Registrations, orders, refunds and activity over ``days`` days (JSON-ready dicts)."""
    rng = random.Random(seed)
    out = []
    for n in range(members):
        mid = f"M{n:03d}"
        joined = START + timedelta(days=rng.uniform(0, 20))
        out.append({"source": "crm", "event_id": f"reg-{mid}", "type": "CustomerRegistered",
                    "member_id": mid, "occurred_at": joined.isoformat(), "name": f"name-{n}",
                    "phone": f"1390000{n:04d}"})
        for k in range(rng.randint(2, 9)):
            at = joined + timedelta(days=rng.uniform(0, days), seconds=rng.randint(0, 86399))
            amount = rng.choice([80_000, 300_000, 900_000, 2_500_000, 6_000_000])
            oid = f"{mid}-o{k}"
            out.append({"source": "orders", "event_id": f"pay-{oid}", "type": "OrderPaid",
                        "member_id": mid, "order_id": oid, "occurred_at": at.isoformat(),
                        "amount_fen": amount, "currency": "CNY"})
            if rng.random() < 0.25:
                out.append({"source": "orders", "event_id": f"ref-{oid}", "type": "OrderRefunded",
                            "member_id": mid, "order_id": oid,
                            "occurred_at": (at + timedelta(days=rng.uniform(1, 30))).isoformat(),
                            "amount_fen": amount // 2, "currency": "CNY"})
        for k in range(rng.randint(0, 12)):
            at = joined + timedelta(days=rng.uniform(0, days))
            out.append({"source": "crm", "event_id": f"act-{mid}-{k}", "type": "ActivityRecorded",
                        "member_id": mid, "occurred_at": at.isoformat(),
                        "kind": rng.choice(["login", "vip_event", "review"])})
    return out


def write_jsonl(path, events: list[dict], shuffle_seed: int | None = 1) -> None:
    """Write events as JSON Lines, in a shuffled order of arrival."""
    rows = list(events)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(rows)
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({k: v for k, v in row.items() if k != "source"}, ensure_ascii=False) + "\n")


def log_of(app) -> list[tuple]:
    """The whole event log as comparable tuples (type, key, timestamp, data, causation)."""
    from infra.service_layer.envelope import envelope
    out = []
    for note in app.recorder.select_notifications(None, 1_000_000):
        env = envelope(app.mapper.to_domain_event(note))
        data = {k: v for k, v in env["data"].items() if k != "profile"}  # sealed: random nonces
        out.append((env["type"], env["key"], env["timestamp"], repr(sorted(data.items())),
                    env["meta"].get("causation_id")))
    return out


def stored_event_count(data) -> int:
    """Events in a data dir's SQLite event store, read without writing (no -shm file made)."""
    db = sqlite3.connect(f"file:{data / 'events.db'}?immutable=1", uri=True)
    try:
        return db.execute("SELECT count(*) FROM stored_events").fetchone()[0]
    finally:
        db.close()
