"""The audit tables beside the events, and their queries, on SQLite and PostgreSQL.

* ``event_chain(originator_id, originator_version, hash)``: each stored event's chain
  hash (:mod:`infra.audit.chain`), written in the transaction that stores the event.
* ``event_chain_start(position, adopted_at)``: one row, the last notification id stored
  before chaining began (0 for a log chained from its start); ``adopted_at`` is when
  ``vip verify --adopt`` chained those earlier events, if it did.
* ``log_checkpoints(from_id, to_id, root, signature, made_at)``: signed checkpoints.

The write-path helpers take the recorder's cursor (its transaction); the read-path
ones (:class:`AuditSql`) open read transactions of their own, so verification works
on a read-only store.
"""
from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from infra.audit.chain import Key, oid_text

CHUNK = 400  # keys per SQLite statement (two parameters each)


class Checkpoint(tuple):
    """One signed checkpoint row: (from_id, to_id, root, signature, made_at)."""

    __slots__ = ()

    def __new__(cls, from_id: int, to_id: int, root: bytes, signature: bytes, made_at: str):
        return super().__new__(cls, (int(from_id), int(to_id), bytes(root), bytes(signature), str(made_at)))

    from_id = property(lambda self: self[0])
    to_id = property(lambda self: self[1])
    root = property(lambda self: self[2])
    signature = property(lambda self: self[3])
    made_at = property(lambda self: self[4])


def _blob(value) -> bytes:
    """Stored bytes; a value someone rewrote as text (SQLite keeps any type) is its UTF-8."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


# -- SQLite ----------------------------------------------------------------------------------

def sqlite_create() -> list[str]:
    """The audit tables (statements that change nothing once they exist)."""
    return [
        "CREATE TABLE IF NOT EXISTS event_chain (originator_id TEXT, originator_version INTEGER,"
        " hash BLOB NOT NULL, PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS event_chain_start (position INTEGER NOT NULL, adopted_at TEXT)",
        "CREATE TABLE IF NOT EXISTS log_checkpoints (from_id INTEGER PRIMARY KEY, to_id INTEGER NOT NULL,"
        " root BLOB NOT NULL, signature BLOB NOT NULL, made_at TEXT NOT NULL)",
    ]


def sqlite_start(events: str) -> str:
    """The chain's start row, on the first open by this code: every event stored so far predates
    the chain. A write even when it adds nothing: run it as its transaction's first statement
    (see ``SQLiteReceiptRecorder.create_table``)."""
    # MAX in a subquery: an aggregate over no rows still makes one row, so a WHERE beside it
    # would not stop the insert, and every writable open would add a row.
    return (f"INSERT INTO event_chain_start (position) SELECT COALESCE((SELECT MAX(rowid) FROM {events}), 0)"
            " WHERE NOT EXISTS (SELECT 1 FROM event_chain_start)")


def sqlite_schema_whole(c, names: set[str], migration: str | None) -> bool:
    """True if the tables and indexes ``names`` exist, the chain's start is recorded and (given
    ``migration``, the library's single-row tracking marker) the tracking table is migrated:
    read-only, so an open of a whole schema takes no write lock."""
    c.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
    if not names <= {r[0] for r in c.fetchall()}:
        return False
    c.execute("SELECT 1 FROM event_chain_start LIMIT 1")
    if c.fetchone() is None:
        return False
    if migration is not None:
        c.execute("SELECT 1 FROM tracking WHERE application_name = ?", (migration,))
        return c.fetchone() is not None
    return True


def sqlite_chained(c, keys: Sequence[Key]) -> dict[Key, bytes]:
    """The chain rows among ``keys`` (one statement per 400 keys)."""
    found: dict[Key, bytes] = {}
    keys = list(keys)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        c.execute("SELECT originator_id, originator_version, hash FROM event_chain WHERE"
                  " (originator_id, originator_version) IN (VALUES "
                  + ",".join(["(?,?)"] * len(chunk)) + ")", [x for key in chunk for x in key])
        found.update(((r["originator_id"], r["originator_version"]), bytes(r["hash"])) for r in c.fetchall())
    return found


def sqlite_history(c, events: str, wanted: dict[str, int]) -> dict[str, list[tuple[int, str, bytes]]]:
    """Versions 1..wanted[oid] of each aggregate, in version order."""
    out: dict[str, list] = {}
    ids = list(wanted)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        c.execute(f"SELECT originator_id, originator_version, topic, state FROM {events} WHERE originator_id"
                  f" IN ({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version", chunk)
        for r in c.fetchall():
            if r["originator_version"] <= wanted[r["originator_id"]]:
                out.setdefault(r["originator_id"], []).append(
                    (r["originator_version"], r["topic"], bytes(r["state"])))
    return out


def sqlite_insert_chain(c, rows: Sequence[tuple[Any, int, bytes]]) -> None:
    c.executemany("INSERT INTO event_chain VALUES (?, ?, ?)", [(oid_text(o), v, h) for o, v, h in rows])


# -- PostgreSQL ------------------------------------------------------------------------------

class PgNames:
    """Schema-qualified names of the audit tables beside a PostgreSQL events table."""

    def __init__(self, datastore, events_table: str) -> None:
        schema = Identifier(datastore.schema)
        self.events = SQL("{0}.{1}").format(schema, Identifier(events_table))
        self.chain = SQL("{0}.{1}").format(schema, Identifier("event_chain"))
        self.start = SQL("{0}.{1}").format(schema, Identifier("event_chain_start"))
        self.checkpoints = SQL("{0}.{1}").format(schema, Identifier("log_checkpoints"))
        self.uuid = datastore.originator_id_type == "uuid"
        self.id_type = SQL("uuid" if self.uuid else "text")

    def ids(self, oids) -> list:
        return [UUID(o) for o in oids] if self.uuid else list(oids)

    def create(self) -> list:
        return [
            SQL("CREATE TABLE IF NOT EXISTS {0} (originator_id {1} NOT NULL, originator_version bigint"
                " NOT NULL, hash bytea NOT NULL, PRIMARY KEY (originator_id, originator_version))")
            .format(self.chain, self.id_type),
            SQL("CREATE TABLE IF NOT EXISTS {0} (position bigint NOT NULL, adopted_at text)").format(self.start),
            SQL("INSERT INTO {0} (position) SELECT COALESCE((SELECT MAX(notification_id) FROM {1}), 0)"
                " WHERE NOT EXISTS (SELECT 1 FROM {0})").format(self.start, self.events),
            SQL("CREATE TABLE IF NOT EXISTS {0} (from_id bigint PRIMARY KEY, to_id bigint NOT NULL,"
                " root bytea NOT NULL, signature bytea NOT NULL, made_at text NOT NULL)").format(self.checkpoints),
        ]

    def chained(self, curs, keys: Sequence[Key]) -> dict[Key, bytes]:
        curs.execute(SQL("SELECT c.originator_id, c.originator_version, c.hash FROM {0} c"
                         " JOIN unnest(%s::{1}[], %s::bigint[]) AS k(o, v)"
                         " ON c.originator_id = k.o AND c.originator_version = k.v").format(self.chain, self.id_type),
                     [self.ids(k[0] for k in keys), [k[1] for k in keys]], prepare=False)
        return {(oid_text(r["originator_id"]), r["originator_version"]): bytes(r["hash"]) for r in curs.fetchall()}

    def history(self, curs, wanted: dict[str, int]) -> dict[str, list[tuple[int, str, bytes]]]:
        curs.execute(SQL("SELECT originator_id, originator_version, topic, state FROM {0}"
                         " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version")
                     .format(self.events), [self.ids(wanted)], prepare=False)
        out: dict[str, list] = {}
        for r in curs.fetchall():
            oid = oid_text(r["originator_id"])
            if r["originator_version"] <= wanted[oid]:
                out.setdefault(oid, []).append((r["originator_version"], r["topic"], bytes(r["state"])))
        return out

    def insert_chain(self, curs, rows: Sequence[tuple[Any, int, bytes]]) -> None:
        # Sorted, so two writers lock chain keys in one order; an existing row is left for the
        # events insert to refuse (the library's IntegrityError, which callers retry).
        rows = sorted(rows, key=lambda r: (oid_text(r[0]), r[1]))
        curs.execute(SQL("INSERT INTO {0} SELECT * FROM unnest(%s::{1}[], %s::bigint[], %s::bytea[])"
                         " ON CONFLICT DO NOTHING").format(self.chain, self.id_type),
                     [self.ids(oid_text(r[0]) for r in rows), [r[1] for r in rows], [r[2] for r in rows]],
                     prepare=False)


# -- the read path (verify, checkpoints, relay) ----------------------------------------------

class AuditSql:
    """The audit queries on one recorder's database (SQLite or PostgreSQL)."""

    def __init__(self, recorder) -> None:
        self.recorder = recorder
        self.pg = isinstance(recorder, PostgresApplicationRecorder)
        if not self.pg and not isinstance(recorder, SQLiteApplicationRecorder):
            raise TypeError("verification needs the SQLite or PostgreSQL event store")
        if self.pg:
            self.names = PgNames(recorder.datastore, recorder.events_table_name)
        self.events = recorder.events_table_name

    def _run(self, statement, params=()) -> list:
        """The rows of one SELECT, in a read transaction of its own."""
        with self.recorder.datastore.transaction(commit=False) as c:
            if self.pg:
                c.execute(statement, params, prepare=False)
            else:
                c.execute(statement, params)
            return c.fetchall()

    def _q(self, sqlite: str, pg: str):
        """One statement in both dialects; ``{chain}``, ``{events}``... name the tables."""
        if not self.pg:
            return sqlite.format(chain="event_chain", events=self.events, start="event_chain_start",
                                 checkpoints="log_checkpoints", id="rowid").replace("%s", "?")
        n = self.names
        return SQL(pg.replace("{id}", "notification_id")).format(
            chain=n.chain, events=n.events, start=n.start, checkpoints=n.checkpoints)

    def has_tables(self) -> bool:
        if self.pg:
            rows = self._run(SQL("SELECT to_regclass(%s) AS t"),
                             [f'"{self.recorder.datastore.schema}"."event_chain_start"'])
            return rows[0]["t"] is not None
        return bool(self._run("SELECT 1 FROM sqlite_master WHERE type='table' AND name='event_chain_start'"))

    def chain_start(self) -> tuple[int, str | None]:
        """(last position stored before chaining began, when they were adopted or None)."""
        rows = self._run(self._q("SELECT position, adopted_at FROM {start}", "SELECT position, adopted_at FROM {start}"))
        return (int(rows[0]["position"]), rows[0]["adopted_at"]) if rows else (0, None)

    def page(self, after: int, limit: int, until: int | None = None, chained: bool = True) -> list:
        """Up to ``limit`` events after notification ``after`` (and up to ``until``), in log order:
        (id, originator id as text, version, topic, state, chain hash or None)."""
        hash_, join = ("c.hash", " LEFT JOIN {chain} c ON c.originator_id = e.originator_id"
                       " AND c.originator_version = e.originator_version") if chained else ("NULL AS hash", "")
        q = (f"SELECT e.{{id}} AS id, e.originator_id, e.originator_version, e.topic, e.state, {hash_}"
             f" FROM {{events}} e{join} WHERE e.{{id}} > %s"
             + (" AND e.{id} <= %s" if until is not None else "") + " ORDER BY e.{id} LIMIT %s")
        params = [after, *([until] if until is not None else []), limit]
        return [(int(r["id"]), oid_text(r["originator_id"]), int(r["originator_version"]), r["topic"],
                 _blob(r["state"]), None if r["hash"] is None else _blob(r["hash"]))
                for r in self._run(self._q(q, q), params)]

    def orphans(self, limit: int = 1000) -> list[Key]:
        """Chain rows whose event is not in the log (deleted events), at most ``limit``."""
        q = ("SELECT c.originator_id, c.originator_version FROM {chain} c WHERE NOT EXISTS"
             " (SELECT 1 FROM {events} e WHERE e.originator_id = c.originator_id"
             " AND e.originator_version = c.originator_version) LIMIT %s")
        return [(oid_text(r["originator_id"]), int(r["originator_version"])) for r in self._run(self._q(q, q), [limit])]

    def chained(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        """The stored chain hashes of those keys that have one."""
        if not keys:
            return {}
        with self.recorder.datastore.transaction(commit=False) as c:
            return self.names.chained(c, keys) if self.pg else sqlite_chained(c, keys)

    def max_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def checkpoints(self) -> list[Checkpoint]:
        q = "SELECT from_id, to_id, root, signature, made_at FROM {checkpoints} ORDER BY from_id"
        return [Checkpoint(r["from_id"], r["to_id"], r["root"], r["signature"], r["made_at"])
                for r in self._run(self._q(q, q))]

    def add_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        q = self._q("INSERT INTO {checkpoints} VALUES (%s, %s, %s, %s, %s)",
                    "INSERT INTO {checkpoints} VALUES (%s, %s, %s, %s, %s)")
        with self.recorder.datastore.transaction(commit=True) as c:
            for cp in checkpoints:
                c.execute(q, list(cp), **({"prepare": False} if self.pg else {}))

    def adopt(self, rows: Sequence[tuple[str, int, bytes]], at: str | None) -> None:
        """Write chain rows of events stored before chaining began (``at``: mark them adopted)."""
        with self.recorder.datastore.transaction(commit=True) as c:
            if rows:
                if self.pg:
                    self.names.insert_chain(c, rows)
                else:
                    c.executemany("INSERT OR IGNORE INTO event_chain VALUES (?, ?, ?)", rows)
            if at:
                q = self._q("UPDATE {start} SET adopted_at = %s", "UPDATE {start} SET adopted_at = %s")
                c.execute(q, [at], **({"prepare": False} if self.pg else {}))
