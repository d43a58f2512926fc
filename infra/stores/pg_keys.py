"""The per-member keys in PostgreSQL: one key store for every process of a cluster.

Same contract as the SQLite :class:`~infra.stores.pii.KeyStore` (``key``,
``destroy``, ``is_destroyed``, ``ensure``, ``close``), in two tables of the
event store's database: ``vip_member_keys`` (member id, key) and
``vip_member_keys_destroyed`` (member id, when).

No key is cached: every seal and open reads the key with one indexed SELECT,
so a key destroyed by any process is unseen by every other from the commit of
its destruction on (no process serves a destroyed key from memory). Making a
key and destroying one hold a transaction-level advisory lock on the member,
so a key can never be made after, or survive, a concurrent destruction.
"""
from __future__ import annotations

import threading
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.stores.leases import lease_key
from infra.stores.pg_shared import PgDb
from infra.stores.pii import ErasedError, KeyStoreError

TABLE, DESTROYED = "vip_member_keys", "vip_member_keys_destroyed"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (member_id TEXT PRIMARY KEY, key BYTEA NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {DESTROYED} (member_id TEXT PRIMARY KEY,"
    f" destroyed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
)


class PostgresKeyStore:
    """Data keys by member id in PostgreSQL; destroyed keys are gone from the table for good.

    Opened on first use. The tables may be created only while ``create`` is
    true (a new, empty event log), or to move the keys of a SQLite ``legacy``
    file (``<data dir>/keys.db`` of a deployment that kept them there) into
    them once: tables missing beside a log that holds events are an error,
    never a silent new key store.
    """

    def __init__(self, url: str, create: bool = True, read_only: bool = False,
                 legacy: str | Path | None = None) -> None:
        self.url, self.path = url, TABLE  # ``path``: what messages name
        self.create, self.read_only, self.legacy = create, read_only, legacy
        self._lock = threading.Lock()
        self._conn: PgDb | None = None

    @property
    def _db(self) -> PgDb:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> PgDb:
        try:
            db = PgDb(self.url)
        except psycopg.Error as exc:
            raise KeyStoreError(f"the key store (PostgreSQL table {TABLE}) cannot be reached ({exc}): "
                                "personal data can be neither read nor written") from None
        try:
            if not db.exists(TABLE):
                legacy = Path(self.legacy) if self.legacy and Path(self.legacy).exists() else None
                if self.read_only or not (self.create or legacy):
                    raise KeyStoreError(
                        f"the key store (PostgreSQL table {TABLE}) is missing, but the event log already "
                        "holds events: personal data can be neither read nor written without it. Restore "
                        f"the table from its backup{'; a writing command moves ' + str(legacy) + ' into it' if legacy else ''}"
                        "; no new key store is made")
                db.create(TABLE, SCHEMA, legacy, ((TABLE, "member_id, key", "member_keys"),
                                                  (DESTROYED, "member_id", "destroyed")))
        except psycopg.Error as exc:
            db.close()
            raise KeyStoreError(f"the key store (PostgreSQL table {TABLE}) cannot be read ({exc})") from None
        except BaseException:
            db.close()
            raise
        return db

    def ensure(self) -> None:
        """Open (creating when allowed) now, so the tables exist from the log's first event on."""
        with self._lock:
            self._db  # noqa: B018  (opening is the point)

    def key(self, member_id: str, create: bool = False) -> bytes | None:
        """The member's key, read from the table now; a new one when ``create`` and none was ever made."""
        with self._lock:
            row = self._db.execute(f"SELECT key FROM {TABLE} WHERE member_id = ?", (member_id,)).fetchone()
            if row is not None:
                return bytes(row[0])
            if not create:
                return None
            db = self._db
            with db.lock, db.transaction():
                self._hold(member_id)
                if db.execute(f"SELECT 1 FROM {DESTROYED} WHERE member_id = ?", (member_id,)).fetchone():
                    raise ErasedError(f"member {member_id} was erased; no new personal data is kept")
                db.execute(f"INSERT INTO {TABLE} VALUES (?, ?) ON CONFLICT (member_id) DO NOTHING",
                           (member_id, AESGCM.generate_key(bit_length=256)))
                return bytes(db.execute(f"SELECT key FROM {TABLE} WHERE member_id = ?",
                                        (member_id,)).fetchone()[0])

    def destroy(self, member_id: str) -> bool:
        """Shred the member's key; True if there was one.

        A DELETE leaves the row's bytes in the table file as a dead tuple
        (MVCC), and a plain VACUUM may leave them in the page's free space.
        So a destruction that deleted a key is followed by ``VACUUM (FULL)``
        of the key table: it rewrites the table into a new file without the
        dead row and removes the old file. The table is small (about 80 bytes
        a member) and erasures are rare; readers wait for the rewrite.
        """
        with self._lock:
            db = self._db
            with db.lock, db.transaction():
                self._hold(member_id)
                deleted = db.execute(f"DELETE FROM {TABLE} WHERE member_id = ?", (member_id,)).rowcount
                db.execute(f"INSERT INTO {DESTROYED} (member_id) VALUES (?) ON CONFLICT (member_id) DO NOTHING",
                           (member_id,))
            if deleted:
                db.execute(f"VACUUM (FULL) {TABLE}")
        return deleted > 0

    def _hold(self, member_id: str) -> None:
        """Lock the member's key until the transaction ends (making and destroying take turns)."""
        self._db.execute("SELECT pg_advisory_xact_lock(?)", (lease_key(f"vip-member-key:{member_id}"),))

    def is_destroyed(self, member_id: str) -> bool:
        with self._lock:
            return bool(self._db.execute(f"SELECT 1 FROM {DESTROYED} WHERE member_id = ?",
                                         (member_id,)).fetchone())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
