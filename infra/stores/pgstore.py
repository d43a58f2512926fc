"""The keyed read store on PostgreSQL: tables beside the PostgreSQL event store's.

Same rows, positions, versions and listing index as the SQLite store
(``infra.stores.keyed``); the write lock is a table lock on the tracking
table, so two runners' commits serialise and the compare-and-set on the
position holds.
"""
from __future__ import annotations

from contextlib import contextmanager

import psycopg

from infra.stores.keyed import KeyedStore
from infra.stores.leases import schema_lock

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS vip_read_rows (view TEXT, key TEXT, data TEXT NOT NULL, ix TEXT,"
    " PRIMARY KEY (view, key))",
    "CREATE INDEX IF NOT EXISTS vip_read_rows_listing ON vip_read_rows (view, ix) WHERE ix IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS vip_read_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL,"
    " clock TEXT, log_id TEXT, last_hash TEXT)",
    "CREATE TABLE IF NOT EXISTS vip_read_view_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " position BIGINT NOT NULL)",
)


class PostgresSql:
    """The SQL plumbing of a keyed store held in one psycopg connection (``self.db``, autocommit)."""

    db: psycopg.Connection
    mark = "%s"

    def transaction(self):
        """One transaction (a context manager)."""
        return self.db.transaction()

    def sql(self, statement: str, params=(), many: bool = False):
        if many:
            with self.db.cursor() as cursor:
                cursor.executemany(self._q(statement), params)
            return None
        return self.db.execute(self._q(statement), params)

    def close(self) -> None:
        self.db.close()


class PostgresReadStore(PostgresSql, KeyedStore):
    """The read store in a PostgreSQL database (by default the event store's)."""

    prefix = "vip_read_"

    def __init__(self, url: str, read_only: bool = False, views=()) -> None:
        super().__init__(views, read_only)
        self.url = url
        self.db = psycopg.connect(url, autocommit=True)
        try:
            if not read_only:
                self._create()
            elif not self._exists():
                self.detached = True  # nothing folded yet: the runner folds the log in memory
                return
            with self.db.transaction():  # one snapshot for the position and the versions
                self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                self._load()
        except BaseException:
            self.db.close()
            raise

    def _exists(self) -> bool:
        return self.db.execute("SELECT to_regclass('vip_read_view_versions')").fetchone()[0] is not None

    def _create(self) -> None:
        with schema_lock(self.url), self.db.transaction():  # processes starting together take turns
            for statement in SCHEMA:
                self.db.execute(statement)

    @contextmanager
    def write(self):
        with self.transaction():
            self.db.execute("LOCK TABLE vip_read_tracking IN EXCLUSIVE MODE")
            yield
