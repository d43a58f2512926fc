"""Event-store recorders that also keep input receipts, in the same transaction.

An upstream input (an order, a CRM change) has its own ``event_id``. The
system promises one effect per input id, across every member: the id, a
digest of the input's content and the member it concerned are written to
``input_receipts`` in the transaction that stores the input's events. A
second writer of the same id fails on the table's primary key, exactly as a
second writer of the same aggregate version fails on the events table, and
the caller retries on fresh state (where it finds the receipt).

Receipts live beside the log, not inside the ``Member`` aggregate, so a
member's state does not grow with every input it ever received.

The same transaction writes each event's chain hash to ``event_chain``
(:mod:`infra.audit.chain`), so ``vip verify`` can show that the log replayed
is the log written. The previous hash of an aggregate comes from a bounded
cache that holds only committed hashes, else from one batched lookup.

The library's documented hooks choose these classes: ``PROCESS_RECORDER_TOPIC``
for SQLite and PostgreSQL, and a factory (``PERSISTENCE_MODULE``) for the
in-memory store, whose factory has no such hook.
"""
from __future__ import annotations

import logging
import re
import sqlite3
import time
from typing import Any, NamedTuple, Sequence

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.popo import POPOFactory, POPOProcessRecorder
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteProcessRecorder
from psycopg.sql import SQL, Identifier

from infra.audit.chain import ChainCache, Key, link, oid_text
from infra.audit.sql import (
    PgNames,
    sqlite_chained,
    sqlite_create,
    sqlite_history,
    sqlite_insert_chain,
    sqlite_schema_whole,
    sqlite_start,
)

log = logging.getLogger("vip.store")

START_WAIT = 30.0  # seconds an opening process goes on trying to make its tables in a busy SQLite store
_CREATED = re.compile(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)")


class Receipt(NamedTuple):
    """One input id as first applied: its id, content digest and member."""

    input_id: str
    digest: str
    member_id: str


class _ChainCommitted:
    """Shared by the SQL recorders: the chain cache takes a transaction's hashes only once it committed.

    ``_insert_events`` stages each transaction's hashes in ``self.chain``; they are linked to
    from later transactions only after the library's ``insert_events`` returned (committed),
    and dropped if it raised.
    """

    chain: ChainCache

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any):
        try:
            returning = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        except BaseException:
            self.chain.discard()
            raise
        self.chain.commit()  # the transaction committed: its hashes may be linked to now
        return returning

    def receipt(self, input_id: str) -> Receipt | None:
        """The receipt of an input id, or None if it was never applied."""
        return self.receipts([input_id]).get(input_id)  # type: ignore[attr-defined]


class SQLiteReceiptRecorder(_ChainCommitted, SQLiteProcessRecorder):
    """SQLite process recorder with an ``input_receipts`` table."""

    def __init__(self, datastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.chain = ChainCache()  # bounded by memory (infra.audit.chain.CHAIN_CACHE_MB)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                "CREATE TABLE IF NOT EXISTS input_receipts (input_id TEXT PRIMARY KEY,"
                " digest TEXT NOT NULL, member_id TEXT NOT NULL) WITHOUT ROWID",
                *sqlite_create()]

    def create_table(self) -> None:
        """The tables (and the chain's start row), made only when the schema is not whole.

        On a whole schema every create statement changes nothing, but the start row's
        ``INSERT ... WHERE NOT EXISTS`` is a write, and SQLite refuses a write that follows a
        read in one transaction at once ("database is locked", without its busy wait) when
        another connection committed in between: a consumer restarted beside a busy relay died
        of it. So a read-only look comes first. A schema still to make is made, the start row
        in a transaction of its own whose first statement writes (so it waits its turn), and
        tried again while the store is busy for up to ``START_WAIT`` seconds, said once.
        """
        if self._schema_whole():
            return
        deadline, said = time.monotonic() + START_WAIT, False
        while True:
            try:
                super().create_table()
                with self.datastore.transaction(commit=True) as c:
                    c.execute(sqlite_start(self.events_table_name))
                return
            except OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                if not said:
                    log.warning("event store %s is busy (another process is writing): trying again to "
                                "make its tables for up to %.0f s", self.datastore.pool.db_name, START_WAIT)
                    said = True
                time.sleep(0.1)

    def _schema_whole(self) -> bool:
        names = {m.group(1) for m in map(_CREATED.search, self.create_table_statements) if m}
        migration = self.table_migration_identifier if self.datastore.single_row_tracking else None
        if migration is None:
            return False  # multi-row tracking: the library's own checks decide
        with self.datastore.transaction(commit=False) as c:
            return sqlite_schema_whole(c, names, migration)

    def _insert_events(self, c, stored_events: Sequence[StoredEvent], **kwargs: Any):
        returning = super()._insert_events(c, stored_events, **kwargs)
        receipts = kwargs.get("receipts") or ()
        if receipts:
            c.executemany("INSERT INTO input_receipts VALUES (?, ?, ?)", [tuple(r) for r in receipts])
        if stored_events:
            rows = link(stored_events, self.chain, lambda keys: sqlite_chained(c, keys),
                        lambda wanted: sqlite_history(c, self.events_table_name, wanted))
            sqlite_insert_chain(c, rows)
            self.chain.stage(rows)
        return returning

    def event_hashes(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        """The stored chain hash of each (originator id as text, version) that has one."""
        with self.datastore.transaction(commit=False) as c:
            return sqlite_chained(c, keys)

    def receipts(self, input_ids: Sequence[str]) -> dict[str, Receipt]:
        """The receipts of those input ids that were applied (one query per 500 ids)."""
        found: dict[str, Receipt] = {}
        ids = list(dict.fromkeys(input_ids))
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                c.execute("SELECT input_id, digest, member_id FROM input_receipts WHERE input_id IN "
                          f"({','.join('?' * len(chunk))})", chunk)
                found.update((row[0], Receipt(*row)) for row in c.fetchall())
        return found


def _busy(exc: OperationalError) -> bool:
    """True if SQLite said the database is busy (another connection holds or just took the write lock)."""
    cause = exc.__cause__
    return isinstance(cause, sqlite3.OperationalError) and \
        (getattr(cause, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


class PostgresReceiptRecorder(_ChainCommitted, PostgresProcessRecorder):
    """PostgreSQL process recorder with an ``input_receipts`` table."""

    def __init__(self, datastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._receipts = SQL("{0}.{1}").format(Identifier(datastore.schema),
                                               Identifier("input_receipts"))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0} (input_id text PRIMARY KEY,"
            " digest text NOT NULL, member_id text NOT NULL)").format(self._receipts))
        self._audit = PgNames(datastore, self.events_table_name)
        self.sql_create_statements.extend(self._audit.create())
        self.chain = ChainCache()  # bounded by memory (infra.audit.chain.CHAIN_CACHE_MB)

    def event_hashes(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        """The stored chain hash of each (originator id as text, version) that has one."""
        if not keys:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            return self._audit.chained(curs, keys)

    def _insert_events(self, curs, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        receipts = kwargs.get("receipts") or ()
        if receipts:
            # A unique violation inside the library's pipelined transaction surfaces as
            # "pipeline aborted"; ON CONFLICT lets us raise the library's IntegrityError
            # ourselves, which callers retry on fresh state.
            curs.execute(SQL("INSERT INTO {0} SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])"
                             " ON CONFLICT DO NOTHING RETURNING input_id").format(self._receipts),
                         [list(column) for column in zip(*receipts)], prepare=False)
            taken = {row["input_id"] for row in curs.fetchall()}
            if len(taken) < len(receipts):
                raise IntegrityError(f"input receipts already recorded: "
                                     f"{sorted({r.input_id for r in receipts} - taken)}")
        if stored_events:
            rows = link(stored_events, self.chain, lambda keys: self._audit.chained(curs, keys),
                        lambda wanted: self._audit.history(curs, wanted))
            self._audit.insert_chain(curs, rows)
            self.chain.stage(rows)
        super()._insert_events(curs, stored_events, **kwargs)

    def receipts(self, input_ids: Sequence[str]) -> dict[str, Receipt]:
        """The receipts of those input ids that were applied (one query)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT input_id, digest, member_id FROM {0} WHERE input_id = ANY(%s)")
                         .format(self._receipts), (list(input_ids),), prepare=False)
            rows = curs.fetchall()
        return {r["input_id"]: Receipt(r["input_id"], r["digest"], r["member_id"]) for r in rows}


class POPOReceiptRecorder(POPOProcessRecorder):
    """The in-memory process recorder with receipts (unit tests, as-of replays)."""

    def __init__(self) -> None:
        super().__init__()
        self._receipts: dict[str, Receipt] = {}
        self._chain: dict[Key, bytes] = {}

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        for receipt in kwargs.get("receipts") or ():
            if receipt.input_id in self._receipts:
                raise IntegrityError(f"input {receipt.input_id} already has a receipt")

    def _update_table(self, stored_events: Sequence[StoredEvent], **kwargs: Any):
        ids = super()._update_table(stored_events, **kwargs)
        for receipt in kwargs.get("receipts") or ():
            self._receipts[receipt.input_id] = Receipt(*receipt)
        # Under the recorder's lock, after the uniqueness check: nothing here can fail.
        for originator_id, version, h in link(stored_events, None, self._chained, lambda wanted: {}):
            self._chain[(oid_text(originator_id), version)] = h
        return ids

    def _chained(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        return {k: self._chain[k] for k in keys if k in self._chain}

    def event_hashes(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        """The chain hash of each (originator id as text, version) that has one."""
        with self._database_lock:
            return self._chained(keys)

    def receipt(self, input_id: str) -> Receipt | None:
        """The receipt of an input id, or None if it was never applied."""
        with self._database_lock:
            return self._receipts.get(input_id)

    def receipts(self, input_ids: Sequence[str]) -> dict[str, Receipt]:
        """The receipts of those input ids that were applied."""
        with self._database_lock:
            return {i: self._receipts[i] for i in input_ids if i in self._receipts}


class ReceiptPOPOFactory(POPOFactory):
    """The in-memory factory, making :class:`POPOReceiptRecorder` process recorders."""

    def process_recorder(self) -> POPOReceiptRecorder:
        return POPOReceiptRecorder()
