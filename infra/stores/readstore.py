"""Where read-model rows live: in memory (replays, as-of answers) or in SQLite.

The SQLite store keeps every row in memory too (the views are small next to
the log) and writes the rows a batch changed together with the runner's
tracking position in one transaction: a crash before the commit replays the
batch, a crash after it skips it, so every event counts exactly once.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("vip.readstore")


def _connect_read_only(path: str) -> sqlite3.Connection:
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


class StaleStoreError(RuntimeError):
    """Another process moved the read store on; reload and catch up again."""


class MemoryStore:
    """Rows by view and key, the last applied log position, and the timeline clock.

    ``log_id`` and ``last_hash`` say which log the rows came from (a digest of
    its first notification) and which notification sits at ``position``, so a
    store beside a restored or replaced event store is noticed (see
    ``Runner.mismatch``).
    """

    read_only = False

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict]] = {}
        self.position = 0
        self.clock: str | None = None
        self.log_id: str | None = None
        self.last_hash: str | None = None

    def view(self, name: str) -> dict[str, dict]:
        return self.rows.setdefault(name, {})

    def get(self, view: str, key: str) -> dict | None:
        return self.rows.get(view, {}).get(key)

    def commit(self, dirty: set, position: int, clock: str | None,
               log_id: str | None = None, last_hash: str | None = None) -> None:
        self.position, self.clock = position, clock
        self.log_id, self.last_hash = log_id, last_hash

    def reset(self) -> None:
        for rows in self.rows.values():
            rows.clear()  # in place: the engine's timer index holds the dicts
        self.position, self.clock, self.log_id, self.last_hash = 0, None, None, None

    def close(self) -> None:
        """Nothing to release in memory."""


class SqliteReadStore(MemoryStore):
    """The embedded read store: a SQLite file beside the event store."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        """Open (or create) the store; ``read_only`` opens it with ``mode=ro`` and never writes.

        Raises ``sqlite3.DatabaseError`` for a file that is not a read store
        (the caller rebuilds it: it is derived data).
        """
        super().__init__()
        self.path = str(path)
        self.read_only = read_only
        if read_only:
            self.db = _connect_read_only(self.path)
        else:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            if not read_only:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.executescript(
                    "CREATE TABLE IF NOT EXISTS rows (view TEXT, key TEXT, data TEXT NOT NULL,"
                    " PRIMARY KEY (view, key));"
                    "CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL,"
                    " clock TEXT);")
                columns = {r[1] for r in self.db.execute("PRAGMA table_info(tracking)")}
                for column in ("log_id", "last_hash"):
                    if column not in columns:  # a store from before log identities
                        self.db.execute(f"ALTER TABLE tracking ADD COLUMN {column} TEXT")
            self._load()
        except (sqlite3.DatabaseError, ValueError, TypeError):
            self.db.close()
            raise

    def _load(self) -> None:
        # Rows and position must come from one snapshot, or a commit by another
        # process in between pairs old rows with a newer position.
        self.db.execute("BEGIN")
        try:
            rows = self.db.execute("SELECT view, key, data FROM rows").fetchall()
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(tracking)")}
            marks = "log_id, last_hash" if "log_id" in columns else "NULL, NULL"
            row = self.db.execute(f"SELECT position, clock, {marks} FROM tracking "
                                  "WHERE name = 'views'").fetchone()
        finally:
            self.db.execute("COMMIT")
        for view, key, data in rows:
            self.view(view)[key] = json.loads(data)
        if row:
            self.position, self.clock, self.log_id, self.last_hash = row

    def commit(self, dirty: set, position: int, clock: str | None,
               log_id: str | None = None, last_hash: str | None = None) -> None:
        """Write the changed rows and the new position atomically."""
        if self.read_only:
            raise RuntimeError("this read store was opened read-only")
        put, delete = [], []
        for view, key in dirty:
            row = self.get(view, key)
            if row is None:
                delete.append((view, key))
            else:
                put.append((view, key, json.dumps(row, separators=(",", ":"))))
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            # Compare-and-set: rows folded from an older position must not
            # overwrite what another process already committed.
            stored = self.db.execute("SELECT position FROM tracking WHERE name = 'views'").fetchone()
            if (stored[0] if stored else 0) != self.position:
                raise StaleStoreError(f"read store is at {stored[0]}, this runner started at {self.position}")
            self.db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)", put)
            self.db.executemany("DELETE FROM rows WHERE view = ? AND key = ?", delete)
            self.db.execute("INSERT OR REPLACE INTO tracking (name, position, clock, log_id, last_hash)"
                            " VALUES ('views', ?, ?, ?, ?)", (position, clock, log_id, last_hash))
        super().commit(dirty, position, clock, log_id, last_hash)

    def reload(self) -> None:
        """Drop what is in memory and read the committed rows again.

        The view dicts are cleared in place: others (the engine's timer index)
        hold references to them.
        """
        for rows in self.rows.values():
            rows.clear()
        self.position, self.clock, self.log_id, self.last_hash = 0, None, None, None
        self._load()

    def reset(self) -> None:
        if self.read_only:
            super().reset()  # rebuilt in memory only
            return
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM rows")
            self.db.execute("DELETE FROM tracking")
        super().reset()
        self.db.execute("VACUUM")

    def close(self) -> None:
        self.db.close()


def open_read_store(path: str | Path, read_only: bool = False) -> MemoryStore:
    """The SQLite read store at ``path``; one that cannot be opened is rebuilt, after saying so.

    Read-only, a missing or unusable file gives an empty store in memory
    (the runner folds the log into it); the file is left as it is.
    """
    path = Path(path)
    if read_only and not path.exists():
        return MemoryStore()
    try:
        return SqliteReadStore(path, read_only)
    except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
        if read_only:
            log.warning("read store %s cannot be opened (%s): answering from a rebuild in memory; "
                        "`vip replay` rebuilds the file", path, exc)
            return MemoryStore()
        log.warning("read store %s cannot be opened (%s): it is derived data, rebuilding it from the log",
                    path, exc)
        for extra in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        return SqliteReadStore(path)
