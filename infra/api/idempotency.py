"""The Idempotency-Key store: a repeat of a command returns the first response.

A key is reserved (``pending``) in its own committed transaction before the
command runs, and the response is written (``done``) before it is returned.
The command's events carry ``idem:<subject>:<key>`` as their causation id, so
after a crash between the command's save and the ``done`` write the log tells
whether the effect happened: the caller looks, and either finishes the key
with the current state or runs the command (it never ran). A pending key
younger than ``IN_FLIGHT_S`` may belong to a request another process is
running right now, so it is answered "in progress, retry" instead. A refused
command releases its key: it had no effect, so a corrected retry may run.

The records live in ``<data dir>/idempotency.db`` (SQLite, the embedded
default) or, with a PostgreSQL event store, in its table ``vip_idempotency``,
so a repeat sent to another ``vip api`` process is answered from the record.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from infra.stores.pg_shared import PgDb, is_pg
from infra.stores.private import private_file

IN_FLIGHT_S = 30.0  # longer than any one command takes; a pending key older than this was a crash


@dataclass(frozen=True)
class Stored:
    """What the store holds for one key."""

    fingerprint: str
    state: str              # pending | done
    status: int | None
    body: dict | None
    etag: str | None
    reserved_at: float = 0.0

    def in_flight(self, now: float | None = None) -> bool:
        """Pending and young: maybe another process is running it right now."""
        return self.state == "pending" and (now or time.time()) - self.reserved_at < IN_FLIGHT_S


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class IdempotencyStore:
    """Key -> first response: a SQLite file beside the event store (a path), or a PostgreSQL
    table every API process shares (a postgresql:// URL)."""

    def __init__(self, where: str | Path) -> None:
        self.lock = threading.Lock()
        if is_pg(where):
            self.t = "vip_idempotency"
            self.db = PgDb(str(where))
            self.db.create(self.t, (self._schema("DOUBLE PRECISION"),))
        else:
            self.t = "idempotency"
            self.db = sqlite3.connect(str(private_file(where)), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")  # a written response must survive a crash
            self.db.execute(self._schema("REAL"))

    def _schema(self, real: str) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.t} (subject TEXT NOT NULL,"
                " key TEXT NOT NULL, fingerprint TEXT NOT NULL, state TEXT NOT NULL,"
                f" status INTEGER, body TEXT, etag TEXT, reserved_at {real} NOT NULL,"
                " PRIMARY KEY (subject, key))")

    def get(self, subject: str, key: str) -> Stored | None:
        with self.lock:
            row = self.db.execute(f"SELECT fingerprint, state, status, body, etag, reserved_at FROM {self.t}"
                                  " WHERE subject = ? AND key = ?", (subject, key)).fetchone()
        if row is None:
            return None
        return Stored(row[0], row[1], row[2], json.loads(row[3]) if row[3] else None, row[4], row[5])

    def reserve(self, subject: str, key: str, fp: str) -> bool:
        """Claim the key for a run (a new key, or a stale pending one); False if another holds it."""
        now = time.time()
        with self.lock:
            return self.db.execute(
                f"INSERT INTO {self.t} VALUES (?, ?, ?, 'pending', NULL, NULL, NULL, ?)"
                " ON CONFLICT (subject, key) DO UPDATE SET reserved_at = excluded.reserved_at"
                f" WHERE {self.t}.state = 'pending' AND {self.t}.reserved_at < ?",
                (subject, key, fp, now, now - IN_FLIGHT_S)).rowcount == 1

    def finish(self, subject: str, key: str, status: int, body: dict, etag: str | None) -> None:
        with self.lock:
            self.db.execute(f"UPDATE {self.t} SET state = 'done', status = ?, body = ?, etag = ?"
                            " WHERE subject = ? AND key = ?",
                            (status, json.dumps(body, default=str), etag, subject, key))

    def release(self, subject: str, key: str) -> None:
        with self.lock:
            self.db.execute(f"DELETE FROM {self.t} WHERE subject = ? AND key = ? AND state = 'pending'",
                            (subject, key))

    def close(self) -> None:
        self.db.close()
