"""Where read-model rows live: in memory (replays, as-of answers) or in SQLite.

The SQLite store keeps every row in memory too (the views are small next to
the log) and writes the rows a batch changed together with the runner's
tracking position in one transaction: a crash before the commit replays the
batch, a crash after it skips it, so every event counts exactly once.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path


class StaleStoreError(RuntimeError):
    """Another process moved the read store on; reload and catch up again."""


class MemoryStore:
    """Rows by view and key, the last applied log position, and the timeline clock."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict]] = {}
        self.position = 0
        self.clock: str | None = None

    def view(self, name: str) -> dict[str, dict]:
        return self.rows.setdefault(name, {})

    def get(self, view: str, key: str) -> dict | None:
        return self.rows.get(view, {}).get(key)

    def commit(self, dirty: set, position: int, clock: str | None) -> None:
        self.position, self.clock = position, clock

    def reset(self) -> None:
        self.rows, self.position, self.clock = {}, 0, None


class SqliteReadStore(MemoryStore):
    """The embedded read store: a SQLite file beside the event store."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS rows (view TEXT, key TEXT, data TEXT NOT NULL,"
            " PRIMARY KEY (view, key));"
            "CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL,"
            " clock TEXT);")
        self._load()

    def _load(self) -> None:
        # Rows and position must come from one snapshot, or a commit by another
        # process in between pairs old rows with a newer position.
        self.db.execute("BEGIN")
        try:
            rows = self.db.execute("SELECT view, key, data FROM rows").fetchall()
            row = self.db.execute("SELECT position, clock FROM tracking WHERE name = 'views'").fetchone()
        finally:
            self.db.execute("COMMIT")
        for view, key, data in rows:
            self.view(view)[key] = json.loads(data)
        if row:
            self.position, self.clock = row

    def commit(self, dirty: set, position: int, clock: str | None) -> None:
        """Write the changed rows and the new position atomically."""
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
            self.db.execute("INSERT OR REPLACE INTO tracking VALUES ('views', ?, ?)", (position, clock))
        super().commit(dirty, position, clock)

    def reload(self) -> None:
        """Drop what is in memory and read the committed rows again.

        The view dicts are cleared in place: others (the engine's timer index)
        hold references to them.
        """
        for rows in self.rows.values():
            rows.clear()
        self.position, self.clock = 0, None
        self._load()

    def reset(self) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM rows")
            self.db.execute("DELETE FROM tracking")
        super().reset()
        self.db.execute("VACUUM")

    def close(self) -> None:
        self.db.close()
