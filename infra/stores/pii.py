"""Personal data sealed with a key per member, kept apart from the event log.

Events carry only sealed values (``pii:v1:<base64>``, AES-256-GCM with the
member id as associated data). Destroying a member's key (crypto-shredding)
makes every sealed value of theirs unreadable while the log still replays.
The embedded key store is its own SQLite file with ``secure_delete`` on, so
a destroyed key leaves no bytes behind in the file; with a PostgreSQL event
store the keys are a table every process shares (``infra.stores.pg_keys``).
No key store caches keys: each seal and open reads the key from the store,
so a key destroyed by another process is never used again (one indexed
read per call: see the README's Personal data section for its cost).
"""
from __future__ import annotations

import base64
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.base import ERASED, SEALED_PREFIX, DomainError
from infra.stores.private import check_private, private_file

VERSION = "v1"
UNREADABLE = "[unreadable]"


class ErasedError(DomainError):
    """The member's personal data was erased; no new personal data is kept for them."""


class KeyStoreError(RuntimeError):
    """The key store is missing or unreadable: personal data can be neither read nor written."""


class SharedKeyStore:
    """What both key stores do alike: open on first use under one lock, read a key with one
    indexed SELECT, make one in a turn taken with destruction (refused once the member is
    erased), and shred one by deleting it and marking the member destroyed.

    A store names its two tables (``KEYS``, ``DESTROYED``) and supplies ``_open``, the
    transaction a new key is made in (``_making``), the one a destruction runs in
    (``_destroying``, the same unless overridden) and what follows a destruction that deleted
    a key (``_shredded``).
    """

    KEYS = "member_keys"
    DESTROYED = "destroyed"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn = None

    @property
    def _db(self):
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self):
        raise NotImplementedError

    def _making(self, member_id: str):
        """A context manager: the connection, in a transaction making this member's key takes its turn in."""
        raise NotImplementedError

    def _destroying(self, member_id: str):
        return self._making(member_id)

    def _shredded(self) -> None:
        """After a destruction that deleted a key: nothing more by default."""

    def ensure(self) -> None:
        """Open (creating when allowed) now, so the store exists from the log's first event on."""
        with self._lock:
            self._db  # noqa: B018  (opening is the point)

    def key(self, member_id: str, create: bool = False) -> bytes | None:
        """The member's key, read from the store now; a new one when ``create`` and none was ever made."""
        select = f"SELECT key FROM {self.KEYS} WHERE member_id = ?"
        with self._lock:
            row = self._db.execute(select, (member_id,)).fetchone()
            if row is not None or not create:
                return bytes(row[0]) if row else None
            with self._making(member_id) as db:
                if db.execute(f"SELECT 1 FROM {self.DESTROYED} WHERE member_id = ?", (member_id,)).fetchone():
                    raise ErasedError(f"member {member_id} was erased; no new personal data is kept")
                db.execute(f"INSERT INTO {self.KEYS} VALUES (?, ?) ON CONFLICT (member_id) DO NOTHING",
                           (member_id, AESGCM.generate_key(bit_length=256)))
                return bytes(db.execute(select, (member_id,)).fetchone()[0])

    def destroy(self, member_id: str) -> bool:
        """Shred the member's key; True if there was one."""
        with self._lock:
            with self._destroying(member_id) as db:
                deleted = db.execute(f"DELETE FROM {self.KEYS} WHERE member_id = ?", (member_id,)).rowcount
                db.execute(f"INSERT INTO {self.DESTROYED} (member_id) VALUES (?) ON CONFLICT (member_id) DO NOTHING",
                           (member_id,))
            if deleted:
                self._shredded()
        return deleted > 0

    def is_destroyed(self, member_id: str) -> bool:
        with self._lock:
            return bool(self._db.execute(f"SELECT 1 FROM {self.DESTROYED} WHERE member_id = ?",
                                         (member_id,)).fetchone())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class KeyStore(SharedKeyStore):
    """Data keys by member id in a SQLite file; destroyed keys are gone for good.

    The file is opened on first use. It may be created only while ``create``
    is true (the composition root allows it for a new, empty event log): a
    key store missing beside a log that already holds events is an error,
    never a silent new one, because every sealed value would then read as
    erased and new keys would make the old values unreadable for good.
    ``secure_delete`` leaves no bytes of a destroyed key in the file.
    """

    def __init__(self, path: str | Path, create: bool = True, read_only: bool = False) -> None:
        super().__init__()
        self.path = str(path)
        self.create, self.read_only = create, read_only

    def _open(self) -> sqlite3.Connection:
        where = f"the key store {self.path}"
        if not Path(self.path).exists() and (self.read_only or not self.create):
            raise KeyStoreError(f"{where} is missing, but the event log already holds events: personal "
                                "data can be neither read nor written without it. Restore keys.db from "
                                "its backup (VIP_KEY_STORE names another path); no new key store is made")
        try:
            if self.read_only:
                check_private(self.path)
                db = sqlite3.connect(f"file:{quote(str(Path(self.path).resolve()))}?mode=ro", uri=True,
                                     check_same_thread=False, isolation_level=None)
            else:
                private_file(self.path)  # the keys undo erasure if others can read them: owner-only
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA secure_delete = ON")
                db.execute("PRAGMA journal_mode = DELETE")
                db.execute("CREATE TABLE IF NOT EXISTS member_keys (member_id TEXT PRIMARY KEY, key BLOB NOT NULL)")
                db.execute("CREATE TABLE IF NOT EXISTS destroyed (member_id TEXT PRIMARY KEY)")
            db.execute("SELECT count(*) FROM member_keys").fetchone()
            db.execute("SELECT count(*) FROM destroyed").fetchone()
        except sqlite3.Error as exc:
            raise KeyStoreError(f"{where} cannot be read ({exc}): personal data can be neither read nor "
                                "written; restore keys.db from its backup") from None
        return db

    @contextmanager
    def _making(self, member_id: str):
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # another process's destruction or new key waits for this one
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class PiiCipher:
    """Seals and opens personal fields with the member's key (read from the key store per call)."""

    def __init__(self, keys) -> None:
        self.keys = keys  # a KeyStore or a PostgresKeyStore

    def seal(self, member_id: str, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        return self._seal(self.keys.key(member_id, create=True), member_id, value)

    @staticmethod
    def _seal(key: bytes, member_id: str, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        nonce = os.urandom(12)
        body = AESGCM(key).encrypt(nonce, value.encode(), member_id.encode())
        return f"{SEALED_PREFIX}{VERSION}:" + base64.b64encode(nonce + body).decode()

    def seal_fields(self, member_id: str, fields: dict) -> dict:
        """Every field sealed with one read of the key."""
        if not any(v for v in fields.values()):
            return {k: v for k, v in fields.items() if v is not None}
        key = self.keys.key(member_id, create=True)
        return {k: self._seal(key, member_id, v) for k, v in fields.items() if v is not None}

    def open(self, member_id: str, sealed: str | None) -> str | None:
        """The clear value, or ``[erased]`` once the member's key is destroyed."""
        if not _is_sealed(sealed):
            return sealed
        return self._open(self.keys.key(member_id), member_id, sealed)

    @staticmethod
    def _open(key: bytes | None, member_id: str, sealed) -> str | None:
        if not _is_sealed(sealed):
            return sealed
        if key is None:
            return ERASED
        try:
            raw = base64.b64decode(sealed.split(":", 2)[2])
            return AESGCM(key).decrypt(raw[:12], raw[12:], member_id.encode()).decode()
        except (InvalidTag, ValueError, IndexError):
            # Sealed with another key (a key store from elsewhere) or damaged:
            # shown as such, never a crash.
            return UNREADABLE

    def open_fields(self, member_id: str, fields: dict) -> dict:
        """Every field opened with one read of the key."""
        fields = fields or {}
        key = self.keys.key(member_id) if any(_is_sealed(v) for v in fields.values()) else None
        return {k: self._open(key, member_id, v) for k, v in fields.items()}


def _is_sealed(value) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)
