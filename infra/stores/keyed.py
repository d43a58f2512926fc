"""A keyed read store on a SQL table: rows are read by key when asked for, not loaded at open.

``store.view(name)`` is a :class:`KeyedRows` mapping over the table: a get
reads one row (kept in a bounded cache of recently used rows), a set or a
pop only marks the row dirty in memory; ``commit`` writes the dirty rows,
the runner's position and each view's position and version in one
transaction. Listing queries read with SQL over an index column (``ix``)
that the view computes from each row (``View.index``): "this row may show
in the listing from this instant on" (see ``projections.queries``).

Each view has its own version (``View.version``) and position: a view whose
stored version differs from the code's is *stale*; it is rebuilt alone into
a staging name and swapped in by one transaction (``swap``), so a reader
never sees it half built (a read-only query answers a stale view from a
replay in memory, see ``infra.service_layer.replay.serve_stale``).

The SQL is shared by SQLite and PostgreSQL; subclasses give the
connection, the placeholders and the write lock.
"""
from __future__ import annotations

import json
from contextlib import contextmanager

from infra.stores.keyed_rows import KeyedRows
from infra.stores.viewstore import StaleStoreError, ViewStore

STAGING = "~rebuild"  # suffix of a view being rebuilt


class KeyedStore(ViewStore):
    """The SQL read store: tables ``<p>rows``, ``<p>tracking`` and ``<p>view_versions``."""

    prefix = ""
    mark = "?"

    def __init__(self, views=(), read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only
        self.views = {v.name: v for v in views}
        self.versions: dict[str, tuple[int, int]] = {}  # view -> (version, position) as stored
        self.detached = False  # read-only and reset: every row lives in memory from then on

    # -- what a subclass provides -------------------------------------------------
    @contextmanager
    def write(self):
        """A transaction holding the store's write lock."""
        raise NotImplementedError

    def sql(self, statement: str, params=(), many: bool = False):
        raise NotImplementedError

    def _t(self, table: str) -> str:
        return self.prefix + table

    def _q(self, statement: str) -> str:
        statement = statement.replace("{rows}", self._t("rows")).replace("{tracking}", self._t("tracking"))
        statement = statement.replace("{versions}", self._t("view_versions"))
        return statement.replace("?", self.mark)

    # -- rows ------------------------------------------------------------------------
    def view(self, name: str):
        rows = self.rows.get(name)
        if rows is None:
            view = self.views.get(name.removesuffix(STAGING))
            rows = self.rows[name] = KeyedRows(self, name, view.index if view else None)
            if self.detached:
                rows.detach()
        return rows

    def get(self, view: str, key: str) -> dict | None:
        return self.view(view).get(key)

    def fetch(self, view: str, key: str) -> dict | None:
        found = self.sql("SELECT data FROM {rows} WHERE view = ? AND key = ?", (view, key)).fetchone()
        return json.loads(found[0]) if found else None

    def fetch_many(self, view: str, keys: list) -> dict:
        """The stored rows of ``keys`` that exist, in one query per 500 keys."""
        found = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, data in self.sql(f"SELECT key, data FROM {{rows}} WHERE view = ? AND key IN ({marks})",
                                      (view, *chunk)):
                found[key] = json.loads(data)
        return found

    def keys_of(self, view: str) -> list:
        return [k for (k,) in self.sql("SELECT key FROM {rows} WHERE view = ? ORDER BY key", (view,))]

    def scan(self, view: str, until: str | None = None):
        if until is None:
            cursor = self.sql("SELECT key, data FROM {rows} WHERE view = ?", (view,))
        else:
            cursor = self.sql("SELECT key, data FROM {rows} WHERE view = ? AND ix <= ?", (view, until))
        loads = json.loads
        for key, data in cursor:
            yield key, loads(data)

    def listing(self, view: str, until: str):
        rows = self.view(view)
        return rows.listing(until) if isinstance(rows, KeyedRows) else super().listing(view, until)

    # -- positions and versions ---------------------------------------------------------
    def _load(self) -> None:
        row = self.sql("SELECT position, clock, log_id, last_hash FROM {tracking} WHERE name = 'views'").fetchone()
        if row:
            self.position, self.clock, self.log_id, self.last_hash = row
        self.versions = {name: (version, position) for name, version, position
                         in self.sql("SELECT name, version, position FROM {versions}")}
        for name in self.versions:
            self.view(name)

    def position_of(self, view: str) -> int:
        """The log position a view's stored rows are folded to (0: never folded)."""
        return self.versions.get(view, (None, 0))[1]

    def stale(self) -> list:
        """Views whose stored rows were folded by another version of the view (or by none,
        in a store that has folded events already): they must be rebuilt before use."""
        if not self.position:
            return []
        if self.detached:
            return []
        return [v for name, v in self.views.items()
                if isinstance(self.view(name), KeyedRows) and self.versions.get(name, (None, 0))[0] != v.version]

    def commit(self, dirty: set, position: int, clock: str | None,
               log_id: str | None = None, last_hash: str | None = None) -> None:
        """Write every view's dirty rows, the position and each view's version atomically."""
        if self.read_only:
            raise RuntimeError("this read store was opened read-only")
        if not self.position:
            # Folded from the first event: every view is current, also one no event touched
            # yet (left unmarked, it would read as stale and be answered from a replay).
            for name in self.views:
                self.view(name)
        keyed = {name: rows for name, rows in self.rows.items() if isinstance(rows, KeyedRows)}
        with self.write():
            # Compare-and-set: rows folded from an older position must not
            # overwrite what another process already committed.
            stored = self.sql("SELECT position FROM {tracking} WHERE name = 'views'").fetchone()
            if (stored[0] if stored else 0) != self.position:
                raise StaleStoreError(f"read store is at {stored[0]}, this runner started at {self.position}")
            self._write_rows(keyed.values())
            self.sql("INSERT INTO {tracking} (name, position, clock, log_id, last_hash) VALUES ('views', ?, ?, ?, ?)"
                     " ON CONFLICT (name) DO UPDATE SET position = excluded.position, clock = excluded.clock,"
                     " log_id = excluded.log_id, last_hash = excluded.last_hash",
                     (position, clock, log_id, last_hash))
            marks = [(name, self.views[name].version if name in self.views else 1, position)
                     for name in keyed if not name.endswith(STAGING)]
            self.sql("INSERT INTO {versions} (name, version, position) VALUES (?, ?, ?) ON CONFLICT (name)"
                     " DO UPDATE SET version = excluded.version, position = excluded.position", marks, many=True)
        for rows in keyed.values():
            rows.settle()
        self.versions.update({name: (version, pos) for name, version, pos in marks})
        super().commit(dirty, position, clock, log_id, last_hash)

    def _write_rows(self, mappings) -> None:
        for rows in mappings:
            put, delete = rows.changes()
            if put:
                self.sql("INSERT INTO {rows} (view, key, data, ix) VALUES (?, ?, ?, ?) ON CONFLICT (view, key)"
                         " DO UPDATE SET data = excluded.data, ix = excluded.ix", put, many=True)
            if delete:
                self.sql("DELETE FROM {rows} WHERE view = ? AND key = ?", delete, many=True)

    def stage(self, rows: KeyedRows) -> None:
        """Write a staging view's dirty rows (a rebuild in progress), positions untouched."""
        with self.write():
            self._write_rows([rows])
        rows.settle()

    def swap(self, staging: KeyedRows, view, position: int) -> bool:
        """Put a rebuilt view in place of the old one in one transaction, if the store is still
        at ``position`` (else False: fold the staging view further and try again)."""
        with self.write():
            stored = self.sql("SELECT position FROM {tracking} WHERE name = 'views'").fetchone()
            if (stored[0] if stored else 0) != position:
                return False
            self._write_rows([staging])
            self.sql("DELETE FROM {rows} WHERE view = ?", (view.name,))
            self.sql("UPDATE {rows} SET view = ? WHERE view = ?", (view.name, staging.name))
            self.sql("INSERT INTO {versions} (name, version, position) VALUES (?, ?, ?) ON CONFLICT (name)"
                     " DO UPDATE SET version = excluded.version, position = excluded.position",
                     (view.name, view.version, position))
        staging.forget()
        self.rows.pop(staging.name, None)
        self.versions[view.name] = (view.version, position)
        self.view(view.name).forget()
        return True

    def drop(self, name: str) -> None:
        """Delete every row of one view (a staging view left by an interrupted rebuild)."""
        with self.write():
            self.sql("DELETE FROM {rows} WHERE view = ?", (name,))
        if name in self.rows:
            self.rows[name].forget()

    def committed_position(self) -> int:
        stored = self.sql("SELECT position FROM {tracking} WHERE name = 'views'").fetchone()
        return stored[0] if stored else 0

    def reload(self) -> None:
        """Forget cached and dirty rows and read the committed position again.

        The mappings stay the same objects: others (the engine's timer index) hold them.
        """
        for rows in self.rows.values():
            if isinstance(rows, KeyedRows):
                rows.forget()
        self.position, self.clock, self.log_id, self.last_hash = 0, None, None, None
        self._load()

    def reset(self) -> None:
        if self.read_only:
            self.detached = True
            for rows in self.rows.values():  # in place: the engine's timer index holds them
                if isinstance(rows, KeyedRows):
                    rows.detach()
                else:
                    rows.clear()
            self.position, self.clock, self.log_id, self.last_hash = 0, None, None, None
            return
        with self.write():
            for table in ("rows", "tracking", "versions"):
                self.sql(f"DELETE FROM {{{table}}}")
        self.forget_all()

    def forget_all(self) -> None:
        """Forget every row held (cached, dirty or plain), the view versions and the position.

        The mappings are emptied in place: others (the engine's timer index) hold them.
        """
        for rows in self.rows.values():
            if isinstance(rows, KeyedRows):
                rows.forget()
            else:
                rows.clear()
        self.versions = {}
        self.position, self.clock, self.log_id, self.last_hash = 0, None, None, None
