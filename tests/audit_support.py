"""Helpers of the audit tests: a small real log, the `vip` command, raw access to tamper with it."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
from click.testing import CliRunner

from bench.workloads import generate_orders
from hosts.main import main
from infra.service_layer.ingest import ingest_file


def build_log(make_system, store: str, tmp_path: Path, orders: int = 300, members: int = 40, seed: int = 11):
    """A closed store holding a real log (orders ingested through the engine); returns its env."""
    system = make_system(store)
    source = tmp_path / "orders.jsonl"
    generate_orders(source, orders, members, seed=seed)
    report = ingest_file(system.engine, "orders", str(source), None, progress=False)
    assert report.applied == orders
    system.close()
    return {"VIP_DATA_DIR": str(system.settings.data_dir), "VIP_EVENT_STORE": store,
            "VIP_CHECKPOINT_EVERY": "100", "VIP_FUTURE_TOLERANCE_SECONDS": str(20 * 366 * 86400)}


def vip(env: dict, *args: str):
    """Run ``vip ARGS`` in-process; returns click's result."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def verify_json(env: dict, *args: str) -> tuple[int, dict]:
    result = vip(env, "verify", "--json", "--no-progress", *args)
    return result.exit_code, json.loads(result.stdout)


class Raw:
    """The event store's tables as someone with database access sees them."""

    def __init__(self, env: dict) -> None:
        store = env["VIP_EVENT_STORE"]
        self.pg = store.startswith("postgres")
        if self.pg:
            self.db = psycopg.connect(store, autocommit=True)
        else:
            self.db = sqlite3.connect(Path(env["VIP_DATA_DIR"]) / "events.db", isolation_level=None)
        self.events, self.id = ("vip_events", "notification_id") if self.pg else ("stored_events", "rowid")

    def sql(self, statement: str, params=()) -> list:
        statement = statement.format(events=self.events, id=self.id)
        if self.pg:
            statement = statement.replace("?", "%s")
        cursor = self.db.execute(statement, params)
        return cursor.fetchall() if cursor.description else []

    def oid(self, value) -> str:
        return value.hex if self.pg else value

    def aggregate_with(self, versions: int) -> tuple[object, list[int]]:
        """An aggregate with at least ``versions`` events and the notification ids of its events."""
        [(oid,)] = self.sql("SELECT originator_id FROM {events} GROUP BY originator_id"
                            " HAVING count(*) >= ? ORDER BY min({id}) LIMIT 1", (versions,))
        ids = [r[0] for r in self.sql("SELECT {id} FROM {events} WHERE originator_id = ?"
                                      " ORDER BY originator_version", (oid,))]
        return oid, ids

    def max_id(self) -> int:
        return self.sql("SELECT max({id}) FROM {events}")[0][0]

    def close(self) -> None:
        self.db.close()
