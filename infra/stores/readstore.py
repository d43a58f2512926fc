"""Where read-model rows live: in memory (replays, as-of answers) or in a keyed SQL table.

The SQLite store (the default, beside the SQLite event store) reads rows by
key on demand and writes the rows a batch changed together with the
runner's tracking position in one transaction: a crash before the commit
replays the batch, a crash after it skips it, so every event counts exactly
once. See ``infra.stores.keyed`` for the table, the per-view versions and
the listing index; ``infra.stores.pgstore`` for the PostgreSQL twin.

The file is derived data, yet a damaged one (cut short, a corrupt page,
another program's) is never deleted: a command that writes sets it aside as
``read.db.broken-<utc>`` (:func:`set_aside`, mode 0600) and folds the log into
a new one; a query, which never writes, answers from a replay in memory.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from infra.stores.keyed import KeyedStore
from infra.stores.private import check_private, private_file
from infra.stores.viewstore import MemoryStore, StaleStoreError, ViewStore

__all__ = ["MemoryStore", "ReadStoreDamagedError", "SqliteReadStore", "SqliteSql", "StaleStoreError", "ViewStore",
           "connect", "damage", "open_read_store", "set_aside"]

log = logging.getLogger("vip.readstore")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rows (view TEXT, key TEXT, data TEXT NOT NULL, ix TEXT,"
    " PRIMARY KEY (view, key));"
    "CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL, clock TEXT,"
    " log_id TEXT, last_hash TEXT);"
    "CREATE TABLE IF NOT EXISTS view_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " position INTEGER NOT NULL);"
)
TABLES = ("rows", "tracking")             # what every version of the read store holds
FILES = ("", "-wal", "-shm", "-journal")  # a SQLite database: its file and those beside it


class ReadStoreDamagedError(sqlite3.DatabaseError):
    """A SQLite database without the read store's tables (cut short, or another program's)."""


def connect(path: str, read_only: bool = False) -> sqlite3.Connection:
    """A store file's connection: read-only (see :func:`connect_read_only`), or read-write in WAL
    mode with ``synchronous=NORMAL`` (a store is derived data: a lost last commit is folded again)."""
    if read_only:
        check_private(path)
        return connect_read_only(path)
    private_file(path)  # owner-only before SQLite makes it (its -wal and -shm take its mode)
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

        Raises ``sqlite3.DatabaseError`` (:class:`ReadStoreDamagedError` for a
        database without the read store's tables) for a file that is not a
        usable read store: the caller sets it aside, or answers from memory.
        A file with no table at all is a new store (made owner-only before
        SQLite opens it, or being begun by another process): it is begun in place.
        """
        super().__init__(views, read_only)
        self.path = str(path)
        self._open()

    def _open(self) -> None:
        if not self.read_only and Path(self.path).exists():
            # Looked at before the write connection turns it to WAL: a foreign file stays as it was.
            look = connect_read_only(self.path)
            try:
                _require_tables(look, empty_ok=True)
            finally:
                look.close()
        self.db = connect(self.path, self.read_only)
        try:
            if self.read_only:
                _require_tables(self.db)
            else:
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
        """Forget every row (``vip replay``, a store of another log); a damaged file is set aside
        and a new one begun. The whole file is checked first (``PRAGMA quick_check``): a
        corrupt page may lie where nothing read yet, and beside a fold of the log it costs little."""
        if not self.read_only:
            problem = damage(self.path)
            if problem:
                aside = self.set_aside()
                log.warning("read store %s is damaged (%s): set aside as %s; it is derived data, "
                            "rebuilding it from the log", self.path, problem, aside)
        super().reset()
        if not self.read_only:
            self.db.execute("VACUUM")

    def set_aside(self) -> Path:
        """Close the file, set it aside (:func:`set_aside`) and begin an empty store in its place;
        returns where the old one went. The views' mappings stay the same objects (the engine's
        timer index holds them)."""
        self.db.close()
        aside = set_aside(self.path)
        self.forget_all()
        self._open()
        return aside


def _require_tables(db: sqlite3.Connection, empty_ok: bool = False) -> bool:
    """True if the database holds the read store's tables; with ``empty_ok`` False for one with
    no table at all (a new file, or one another process is beginning now); else
    :class:`ReadStoreDamagedError`."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in TABLES if t not in tables]
    if not missing:
        return True
    if empty_ok and not tables:
        return False
    what = "it holds no table" if not tables else f"it has no {' or '.join(missing)} table"
    raise ReadStoreDamagedError(f"{what}: empty, cut short, or not a read store")


def damage(path: str | Path) -> str | None:
    """Why the read store file at ``path`` cannot be used, or None; nothing is written.

    SQLite's ``PRAGMA quick_check`` reads every page: about 0.1 s for 180 MB
    in the page cache, 3 s from a cold disk here, so it runs where a store is
    folded again or a read failed, not at every open.
    """
    try:
        db = connect_read_only(str(path))
    except sqlite3.DatabaseError as exc:
        return str(exc)
    try:
        found = [r[0] for r in db.execute("PRAGMA quick_check(1)")]
        if found != ["ok"]:
            return "quick_check: " + (" ".join(found[0].split()) if found else "no answer")
        _require_tables(db)
        return None
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        db.close()


def set_aside(path: str | Path) -> Path:
    """Rename the database at ``path`` (with its ``-wal``, ``-shm`` and ``-journal``) to
    ``<name>.broken-<utc>``, mode 0600 (it holds what the data dir holds); returns the new path.

    The files keep their names relative to one another, so SQLite opens the
    set-aside database with its write-ahead log, for a look or a salvage.
    """
    path = Path(path)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside, n = path.with_name(f"{path.name}.broken-{stamp}"), 1
    while any(Path(f"{aside}{extra}").exists() for extra in FILES):
        n += 1
        aside = path.with_name(f"{path.name}.broken-{stamp}-{n}")
    for extra in FILES:
        source = Path(f"{path}{extra}")
        if source.exists():
            target = Path(f"{aside}{extra}")
            os.replace(source, target)
            target.chmod(0o600)
    return aside


def open_read_store(path: str | Path, read_only: bool = False, views=()) -> ViewStore:
    """The SQLite read store at ``path``; one that cannot be opened is rebuilt, after one warning.

    Read-only, a missing file gives an empty store in memory (the runner folds
    the log into it), and an unusable one the same after a warning: the file
    is left as it is. To write, an unusable file is set aside (:func:`set_aside`)
    and a new one folded from the log; a file with no table is a new store, begun in place.
    """
    path = Path(path)
    if read_only and not path.exists():
        return MemoryStore()
    try:
        return SqliteReadStore(path, read_only, views)
    except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
        if read_only:
            log.warning("read store %s cannot be opened (%s): answering from a replay in memory; "
                        "`vip replay` sets it aside and rebuilds it", path, exc)
            return MemoryStore()
        aside = set_aside(path)
        log.warning("read store %s cannot be opened (%s): set aside as %s; it is derived data, "
                    "rebuilding it from the log", path, exc, aside)
        return SqliteReadStore(path, views=views)
