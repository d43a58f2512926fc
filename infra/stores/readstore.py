"""Where read-model rows live: in memory (replays, as-of answers) or in a keyed SQL table.

The SQLite store (the default, beside the SQLite event store) reads rows by
key on demand and writes the rows a batch changed together with the
runner's tracking position in one transaction: a crash before the commit
replays the batch, a crash after it skips it, so every event counts exactly
once. See ``infra.stores.keyed`` for the table, the per-view versions and
the listing index; ``infra.stores.pgstore`` for the PostgreSQL twin.
"""
from __future__ import annotations

import logging
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from infra.stores.keyed import KeyedStore
from infra.stores.memory import MemoryStore, StaleStoreError

__all__ = ["MemoryStore", "SqliteReadStore", "SqliteSql", "StaleStoreError", "connect", "open_read_store"]

log = logging.getLogger("vip.readstore")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rows (view TEXT, key TEXT, data TEXT NOT NULL, ix TEXT,"
    " PRIMARY KEY (view, key));"
    "CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL, clock TEXT,"
    " log_id TEXT, last_hash TEXT);"
    "CREATE TABLE IF NOT EXISTS view_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " position INTEGER NOT NULL);"
)


def connect(path: str, read_only: bool = False) -> sqlite3.Connection:
    """A store file's connection: read-only (see :func:`connect_read_only`), or read-write in WAL
    mode with ``synchronous=NORMAL`` (a store is derived data: a lost last commit is folded again)."""
    if read_only:
        return connect_read_only(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def connect_read_only(path: str) -> sqlite3.Connection:
    """``mode=ro``; in a directory SQLite cannot make its lock file in (and no write-ahead log
    pending), ``immutable=1``: nobody can be writing there."""
    uri = f"file:{quote(str(Path(path).resolve()))}"
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False, timeout=30)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size:
            raise
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)


class SqliteSql:
    """The SQL plumbing of a keyed store held in one SQLite connection (``self.db``)."""

    db: sqlite3.Connection

    @contextmanager
    def transaction(self):
        """One write transaction; ``BEGIN IMMEDIATE`` takes the file's write lock up front."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def sql(self, statement: str, params=(), many: bool = False):
        if many:
            return self.db.executemany(self._q(statement), params)
        return self.db.execute(self._q(statement), params)

    def close(self) -> None:
        self.db.close()


class SqliteReadStore(SqliteSql, KeyedStore):
    """The embedded read store: a SQLite file beside the event store."""

    def __init__(self, path: str | Path, read_only: bool = False, views=()) -> None:
        """Open (or create) the store; ``read_only`` opens it with ``mode=ro`` and never writes.

        Raises ``sqlite3.DatabaseError`` for a file that is not a read store
        (the caller rebuilds it: it is derived data).
        """
        super().__init__(views, read_only)
        self.path = str(path)
        self.db = connect(self.path, read_only)
        try:
            if not read_only:
                self._migrate()
            self._load()
        except (sqlite3.DatabaseError, ValueError, TypeError):
            self.db.close()
            raise

    def _migrate(self) -> None:
        self.db.executescript(SCHEMA)
        for table, column in (("tracking", "log_id"), ("tracking", "last_hash"), ("rows", "ix")):
            if column not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")  # a store of an older version
        self.db.execute("CREATE INDEX IF NOT EXISTS rows_listing ON rows (view, ix) WHERE ix IS NOT NULL")

    def write(self):
        return self.transaction()

    def _load(self) -> None:
        # One snapshot: a commit by another process in between must not pair
        # one position with another's versions.
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "tracking" not in tables:
            return  # a new file opened read-only: nothing folded yet
        self.db.execute("BEGIN")
        try:
            if "view_versions" in tables:
                super()._load()
            else:  # a store of an older version: every view is stale
                row = self.db.execute("SELECT position, clock FROM tracking WHERE name = 'views'").fetchone()
                if row:
                    self.position, self.clock = row
        finally:
            self.db.execute("COMMIT")

    def reset(self) -> None:
        super().reset()
        if not self.read_only:
            self.db.execute("VACUUM")


def open_read_store(path: str | Path, read_only: bool = False, views=()) -> MemoryStore:
    """The SQLite read store at ``path``; one that cannot be opened is rebuilt, after saying so.

    Read-only, a missing or unusable file gives an empty store in memory
    (the runner folds the log into it); the file is left as it is.
    """
    path = Path(path)
    if read_only and not path.exists():
        return MemoryStore()
    try:
        return SqliteReadStore(path, read_only, views)
    except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
        if read_only:
            log.warning("read store %s cannot be opened (%s): answering from a rebuild in memory; "
                        "`vip replay` rebuilds the file", path, exc)
            return MemoryStore()
        log.warning("read store %s cannot be opened (%s): it is derived data, rebuilding it from the log",
                    path, exc)
        for extra in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        return SqliteReadStore(path, views=views)
