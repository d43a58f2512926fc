"""State every process of a cluster shares, in the PostgreSQL database of the event store.

With a PostgreSQL event store nothing a process needs lives in its own data
dir: the per-member keys (``vip_member_keys``, :mod:`infra.stores.pg_keys`),
the API keys (``vip_api_keys``) and the idempotency records
(``vip_idempotency``) are tables beside the events, so processes on several
machines, each with its own empty data dir, share them. The leases are
PostgreSQL advisory locks already (:mod:`infra.stores.leases`).

:class:`PgDb` is the one connection such a small store holds: it speaks the
subset of ``sqlite3`` those stores use (``execute`` with ``?`` marks,
``fetchone``, ``rowcount``), so each store keeps one set of SQL for SQLite
and PostgreSQL. Tables are created under the project's advisory schema lock.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

import psycopg

from infra.stores.leases import PG_SCHEMES, schema_lock

log = logging.getLogger("vip.stores")


def is_pg(url) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(url, str) and url.startswith(PG_SCHEMES)


class PgDb:
    """One autocommit psycopg connection with ``sqlite3``-style ``?`` marks.

    A connection broken (a restarted server) fails the statement that found
    it broken, and the next statement reconnects: a long-running API or serve
    process outlives a database restart.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.RLock()  # one statement or transaction at a time on the connection
        self.conn = self._connect()

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def execute(self, statement: str, params=()):
        with self.lock:
            if self.conn.closed or self.conn.broken:
                self.conn = self._connect()
            return self.conn.execute(statement.replace("?", "%s"), params)

    def transaction(self):
        """A transaction on the connection (hold ``lock`` around it when threads share the store)."""
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()
        return self.conn.transaction()

    def exists(self, table: str) -> bool:
        return self.execute("SELECT to_regclass(?)", (table,)).fetchone()[0] is not None

    def create(self, table: str, schema: tuple, legacy: Path | None = None, copies: tuple = ()) -> int:
        """Create ``table`` (and the rest of ``schema``) under the schema lock. When ``table`` is
        new and the SQLite file ``legacy`` exists, each of ``copies`` (``(table, columns,
        sqlite_table)``) is filled from it in the same transaction: a deployment that kept
        this state in its data dir moves it into the shared tables once (the file stays where
        it was, no longer read). Returns the rows copied."""
        copied = 0
        with schema_lock(self.url), self.lock, self.transaction():
            new = not self.exists(table)
            for statement in schema:
                self.execute(statement)
            if not (new and legacy and Path(legacy).exists()):
                return 0
            for target, columns, source in copies:
                rows = read_sqlite(legacy, f"SELECT {columns} FROM {source}")
                if rows:
                    marks = ", ".join("%s" for _ in rows[0])
                    with self.conn.cursor() as cursor:
                        cursor.executemany(f"INSERT INTO {target} ({columns}) VALUES ({marks})"
                                           f" ON CONFLICT DO NOTHING", rows)
                copied += len(rows)
        if copied:
            log.warning("moved %d rows of %s into the PostgreSQL table %s, shared by every process from "
                        "now on; the file is no longer read: keep it as a backup or remove it",
                        copied, legacy, table)
        return copied

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def read_sqlite(path: Path, query: str) -> list:
    """Every row of ``query`` on a SQLite file opened read-only (a missing table: none)."""
    db = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
