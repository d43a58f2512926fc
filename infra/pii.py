"""Personal data sealed with a key per member, kept apart from the event log.

Events carry only sealed values (``pii:v1:<base64>``, AES-256-GCM with the
member id as associated data). Destroying a member's key (crypto-shredding)
makes every sealed value of theirs unreadable while the log still replays.
The key store is its own SQLite file with ``secure_delete`` on, so a
destroyed key leaves no bytes behind in the file.
"""
from __future__ import annotations

import base64
import os
import sqlite3
import threading
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.base import ERASED, SEALED_PREFIX, DomainError

VERSION = "v1"


class ErasedError(DomainError):
    """The member's personal data was erased; no new personal data is kept for them."""


class KeyStore:
    """Data keys by member id in a SQLite file; destroyed keys are gone for good."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = DELETE")
        self._db.execute("CREATE TABLE IF NOT EXISTS member_keys (member_id TEXT PRIMARY KEY, key BLOB NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS destroyed (member_id TEXT PRIMARY KEY)")
        self._cache: dict[str, bytes | None] = {}

    def key(self, member_id: str, create: bool = False) -> bytes | None:
        """The member's key; a new one when ``create`` and none was ever made."""
        with self._lock:
            if member_id in self._cache and (self._cache[member_id] or not create):
                return self._cache[member_id]
            row = self._db.execute("SELECT key FROM member_keys WHERE member_id = ?", (member_id,)).fetchone()
            key = row[0] if row else None
            if key is None and create:
                if self._db.execute("SELECT 1 FROM destroyed WHERE member_id = ?", (member_id,)).fetchone():
                    raise ErasedError(f"member {member_id} was erased; no new personal data is kept")
                key = AESGCM.generate_key(bit_length=256)
                self._db.execute("INSERT INTO member_keys VALUES (?, ?)", (member_id, key))
            self._cache[member_id] = key
            return key

    def destroy(self, member_id: str) -> bool:
        """Shred the member's key; True if there was one."""
        with self._lock:
            cur = self._db.execute("DELETE FROM member_keys WHERE member_id = ?", (member_id,))
            self._db.execute("INSERT OR IGNORE INTO destroyed VALUES (?)", (member_id,))
            self._cache[member_id] = None
        return cur.rowcount > 0

    def is_destroyed(self, member_id: str) -> bool:
        return bool(self._db.execute("SELECT 1 FROM destroyed WHERE member_id = ?", (member_id,)).fetchone())

    def close(self) -> None:
        self._db.close()


class PiiCipher:
    """Seals and opens personal fields with the member's key."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def seal(self, member_id: str, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        key = self.keys.key(member_id, create=True)
        nonce = os.urandom(12)
        body = AESGCM(key).encrypt(nonce, value.encode(), member_id.encode())
        return f"{SEALED_PREFIX}{VERSION}:" + base64.b64encode(nonce + body).decode()

    def seal_fields(self, member_id: str, fields: dict) -> dict:
        return {k: self.seal(member_id, v) for k, v in fields.items() if v is not None}

    def open(self, member_id: str, sealed: str | None) -> str | None:
        """The clear value, or ``[erased]`` once the member's key is destroyed."""
        if not isinstance(sealed, str) or not sealed.startswith(SEALED_PREFIX):
            return sealed
        key = self.keys.key(member_id)
        if key is None:
            return ERASED
        raw = base64.b64decode(sealed.split(":", 2)[2])
        return AESGCM(key).decrypt(raw[:12], raw[12:], member_id.encode()).decode()

    def open_fields(self, member_id: str, fields: dict) -> dict:
        return {k: self.open(member_id, v) for k, v in (fields or {}).items()}
