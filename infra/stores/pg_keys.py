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

from contextlib import contextmanager
from pathlib import Path

import psycopg

from infra.stores.leases import lease_key
from infra.stores.pg_shared import PgDb
from infra.stores.pii import KeyStoreError, SharedKeyStore

TABLE, DESTROYED = "vip_member_keys", "vip_member_keys_destroyed"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (member_id TEXT PRIMARY KEY, key BYTEA NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {DESTROYED} (member_id TEXT PRIMARY KEY,"
    f" destroyed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
)


class PostgresKeyStore(SharedKeyStore):
    """Data keys by member id in PostgreSQL; destroyed keys are gone from the table for good.

    Opened on first use. The tables may be created only while ``create`` is
    true (a new, empty event log), or to move the keys of a SQLite ``legacy``
    file (``<data dir>/keys.db`` of a deployment that kept them there) into
    them once: tables missing beside a log that holds events are an error,
    never a silent new key store.
    """

    KEYS, DESTROYED = TABLE, DESTROYED

    def __init__(self, url: str, create: bool = True, read_only: bool = False,
                 legacy: str | Path | None = None) -> None:
        super().__init__()
        self.url, self.path = url, TABLE  # ``path``: what messages name
        self.create, self.read_only, self.legacy = create, read_only, legacy

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

    @contextmanager
    def _making(self, member_id: str):
        db = self._db
        with db.lock, db.transaction():
            self._hold(member_id)
            yield db

    def _shredded(self) -> None:
        """``VACUUM (FULL)`` of the key table after a destruction that deleted a key.

        A DELETE leaves the row's bytes in the table file as a dead tuple
        (MVCC), and a plain VACUUM may leave them in the page's free space.
        So a destruction that deleted a key is followed by ``VACUUM (FULL)``
        of the key table: it rewrites the table into a new file without the
        dead row and removes the old file. The table is small (about 80 bytes
        a member) and erasures are rare; readers wait for the rewrite.
        """
        self._db.execute(f"VACUUM (FULL) {TABLE}")

    def _hold(self, member_id: str) -> None:
        """Lock the member's key until the transaction ends (making and destroying take turns)."""
        self._db.execute("SELECT pg_advisory_xact_lock(?)", (lease_key(f"vip-member-key:{member_id}"),))
