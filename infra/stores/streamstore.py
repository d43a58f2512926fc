"""The stream processors' read store: keyed rows plus each partition's consumed offset.

A :class:`KeyedStore` (rows read by key, bounded cache, listing index) in
its own tables (``vip_streams_rows``, ``vip_streams_offsets``,
``vip_streams_view_versions``): a SQLite file (``$VIP_DATA_DIR/streams.db``,
one worker) or PostgreSQL (``VIP_STREAMS_STORE=postgresql://...``, any
number of workers in one consumer group).

A batch's rows and the next offset of every partition it read commit in
one transaction (:meth:`StreamStore.commit_batch`). The offset write is a
compare-and-set against the offset the worker loaded: a worker that lost
the partition in a rebalance (a zombie) finds it moved, and its whole batch
rolls back (:class:`LostPartitionError`).
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import psycopg

from infra.settings import Settings
from infra.stores.keyed import KeyedStore
from infra.stores.keyed_rows import KeyedRows
from infra.stores.leases import FileLease, LeaseHeldError, schema_lock
from infra.stores.pgstore import PostgresSql
from infra.stores.private import private_dir
from infra.stores.readstore import SqliteSql, connect
from infra.stores.viewstore import MemoryStore, ViewStore

log = logging.getLogger("vip.streamstore")

PREFIX = "vip_streams_"
_PG = ("postgresql://", "postgres://")


def _schema(big: str) -> tuple:
    return (
        f"CREATE TABLE IF NOT EXISTS {PREFIX}rows (view TEXT, key TEXT, data TEXT NOT NULL, ix TEXT,"
        " PRIMARY KEY (view, key))",
        f"CREATE INDEX IF NOT EXISTS {PREFIX}rows_listing ON {PREFIX}rows (view, ix) WHERE ix IS NOT NULL",
        f"CREATE TABLE IF NOT EXISTS {PREFIX}offsets (topic TEXT, part INTEGER, next_offset {big} NOT NULL,"
        " PRIMARY KEY (topic, part))",
        f"CREATE TABLE IF NOT EXISTS {PREFIX}view_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
        f" position {big} NOT NULL)",
    )


class StreamStoreError(RuntimeError):
    """The stream store cannot be opened; the message says which and why."""


class ViewVersionsChangedError(RuntimeError):
    """Another worker started with other versions of the views and emptied the store: this
    worker's folds are not the store's any more, so it stops rather than write old rows."""


class LostPartitionError(RuntimeError):
    """Another worker advanced a partition this worker was folding: the batch was rolled back."""


class StreamStore(KeyedStore):
    """Rows of every view, offsets per (topic, partition); subclasses give the connection."""

    prefix = PREFIX

    def _q(self, statement: str) -> str:
        return super()._q(statement.replace("{offsets}", self._t("offsets")))

    def write(self):
        return self.transaction()  # SqliteSql / PostgresSql: no lock beyond the rows' own

    # -- opening ----------------------------------------------------------------------
    def _load(self) -> None:
        if self.read_only and self.detached:
            return
        self.versions = {name: (version, position) for name, version, position
                         in self.sql("SELECT name, version, position FROM {versions}")}

    def _check_versions(self) -> None:
        """Rows folded by another version of a view are dropped with every offset: the
        workers fold the topics again from their beginning (derived data)."""
        wanted = {name: view.version for name, view in self.views.items()}
        with self.transaction():
            self._lock_versions()
            stored = {name: version for name, version, _ in self.sql("SELECT name, version, position FROM {versions}")}
            if stored == wanted:
                return
            if stored or self.sql("SELECT count(*) FROM {offsets}").fetchone()[0]:
                log.warning("stream store holds views of other versions (%s): folding the topics again",
                            ", ".join(sorted(n for n in set(stored) | set(wanted) if stored.get(n) != wanted.get(n))))
                self.sql("DELETE FROM {rows}")
                self.sql("DELETE FROM {offsets}")
                self.sql("DELETE FROM {versions}")
            self.sql("INSERT INTO {versions} (name, version, position) VALUES (?, ?, 0)",
                     list(wanted.items()), many=True)
        self.versions = {name: (version, 0) for name, version in wanted.items()}

    def _lock_versions(self) -> None:
        """Serialise the version check between workers starting together (PostgreSQL)."""

    # -- offsets ------------------------------------------------------------------------
    def offset(self, topic: str, partition: int) -> int | None:
        """The next offset to fold in a partition, as committed (None: never folded)."""
        row = self.sql("SELECT next_offset FROM {offsets} WHERE topic = ? AND part = ?", (topic, partition)).fetchone()
        return row[0] if row else None

    def offsets(self) -> dict:
        """Every partition's committed next offset: {(topic, partition): next}."""
        if self.detached:
            return {}
        return {(t, p): n for t, p, n in self.sql("SELECT topic, part, next_offset FROM {offsets}")}

    def row_counts(self) -> dict:
        """How many rows each view holds, as committed."""
        if self.detached:
            return {}
        return dict(self.sql("SELECT view, count(*) FROM {rows} GROUP BY view ORDER BY view").fetchall())

    def commit_batch(self, offsets: dict, loaded: dict) -> None:
        """Write every dirty row and each partition's next offset in one transaction.

        ``offsets`` maps (topic, partition) to the new next offset; ``loaded``
        to the offset this worker read when it started on the partition (None:
        no row). If any stored offset differs, nothing is written and
        :class:`LostPartitionError` is raised (the caller forgets its rows).
        """
        if self.read_only:
            raise RuntimeError("this stream store was opened read-only")
        keyed = [rows for rows in self.rows.values() if isinstance(rows, KeyedRows)]
        with self.transaction():
            self._require_versions()
            for (topic, partition) in sorted(offsets):  # one lock order: no deadlock between workers
                new, old = offsets[(topic, partition)], loaded.get((topic, partition))
                if old is None:
                    cursor = self.sql("INSERT INTO {offsets} (topic, part, next_offset) VALUES (?, ?, ?)"
                                      " ON CONFLICT (topic, part) DO NOTHING", (topic, partition, new))
                else:
                    cursor = self.sql("UPDATE {offsets} SET next_offset = ? WHERE topic = ? AND part = ?"
                                      " AND next_offset = ?", (new, topic, partition, old))
                if cursor.rowcount != 1:
                    raise LostPartitionError(f"{topic}[{partition}] moved past {old} under this worker")
            self._write_rows(keyed)
        for rows in keyed:
            rows.settle()

    def _require_versions(self) -> None:
        """Within the batch's transaction: the stored view versions are still this worker's
        (a worker with other code may have emptied the store since it opened)."""
        self._share_versions()
        stored = {name: version for name, version, _ in self.sql("SELECT name, version, position FROM {versions}")}
        wanted = {name: view.version for name, view in self.views.items()}
        if stored != wanted:
            raise ViewVersionsChangedError(
                f"the stream store now holds view versions {stored}, this worker folds {wanted}: "
                f"another worker runs other code; this one stops (restart it with the same version)")

    def _share_versions(self) -> None:
        """Hold the version table against a concurrent version change until the commit (PostgreSQL)."""

    def forget(self) -> None:
        """Drop cached and uncommitted rows (another worker may have written them)."""
        for rows in self.rows.values():
            if isinstance(rows, KeyedRows):
                rows.forget()

    def reset(self) -> None:
        with self.transaction():
            for table in ("rows", "offsets"):
                self.sql(f"DELETE FROM {{{table}}}")
        self.forget()


class SqliteStreamStore(SqliteSql, StreamStore):
    """The stream store in one SQLite file: one worker (see :func:`worker_lease`)."""

    def __init__(self, path: str | Path, views=(), read_only: bool = False) -> None:
        super().__init__(views, read_only)
        self.path = str(path)
        self.db = connect(self.path, read_only)
        if read_only:
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self.detached = f"{PREFIX}offsets" not in tables  # nothing folded yet: every view is empty
        try:
            if not read_only:
                for statement in _schema("INTEGER"):
                    self.db.execute(statement)
                self._check_versions()
            self._load()
        except BaseException:
            self.db.close()
            raise



class PostgresStreamStore(PostgresSql, StreamStore):
    """The stream store in PostgreSQL: shared by every worker of the consumer group."""

    def __init__(self, url: str, views=(), read_only: bool = False) -> None:
        super().__init__(views, read_only)
        self.url = url
        self.db = psycopg.connect(url, autocommit=True)
        try:
            if read_only:
                if self.db.execute(f"SELECT to_regclass('{PREFIX}offsets')").fetchone()[0] is None:
                    self.detached = True  # nothing folded yet: every view is empty
                    return
            else:
                with schema_lock(self.url):  # workers starting together take turns
                    self._create()
                    self._check_versions()
            self._load()
        except BaseException:
            self.db.close()
            raise

    def _create(self) -> None:
        with self.db.transaction():
            for statement in _schema("BIGINT"):
                self.db.execute(statement)

    def _lock_versions(self) -> None:
        self.db.execute(f"LOCK TABLE {PREFIX}view_versions IN EXCLUSIVE MODE")

    def _share_versions(self) -> None:
        # SHARE conflicts with the EXCLUSIVE lock of a version change, not with other workers.
        self.db.execute(f"LOCK TABLE {PREFIX}view_versions IN SHARE MODE")



def streams_path(settings: Settings) -> Path:
    """The SQLite stream store's file."""
    return settings.data_dir / "streams.db"


def open_stream_store(settings: Settings, read_only: bool = False, views=()) -> ViewStore:
    """The stream store the settings name: PostgreSQL (``VIP_STREAMS_STORE``) or ``streams.db``.

    ``read_only`` never writes: the rows answer the query functions
    (``store.view(name)``, ``store.listing``); a store not made yet answers
    as empty. ``views`` (writers) give each view's listing index and version.
    """
    url = settings.streams_store
    try:
        if url and url.startswith(_PG):
            return PostgresStreamStore(url, views, read_only)
        path = Path(url) if url else streams_path(settings)
        if read_only and not path.exists():
            return MemoryStore()
        if not read_only:
            private_dir(path.parent)
        return SqliteStreamStore(path, views, read_only)
    except (psycopg.Error, sqlite3.Error, OSError) as exc:
        where = "VIP_STREAMS_STORE" if url else f"{streams_path(settings)}"
        raise StreamStoreError(f"cannot open the stream store ({where}): {exc}") from exc


def worker_lease(settings: Settings) -> FileLease | None:
    """One worker on a SQLite stream store (None on PostgreSQL, where any number may run)."""
    url = settings.streams_store
    if url and url.startswith(_PG):
        return None
    private_dir(settings.data_dir)
    lease = FileLease(settings.data_dir / "streams.lock")
    if not lease.acquire():
        raise LeaseHeldError(
            f"another vip streams run (pid {lease.holder()}) folds into the SQLite stream store in "
            f"{settings.data_dir}: a SQLite store takes one worker. To run several workers, put the "
            f"stream store in PostgreSQL: VIP_STREAMS_STORE=postgresql://user:password@host:5432/db")
    return lease
