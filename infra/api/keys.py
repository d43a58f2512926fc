"""API keys: random bearer tokens, stored only as their SHA-256 hash.

A key has a role and a subject (the person or system it belongs to); the
subject is the actor on every event the key's requests cause. The token is
shown once, when the key is made; the store keeps its hash and a random key
id (independent of the secret) that names the key in listings and revocations.
Keys made before the ids were random had the token's first 8 secret characters
as id: opening the store gives them new ids (the tokens keep working) and says so.

The keys live in ``<data dir>/api_keys.db`` (SQLite, the embedded default) or,
with a PostgreSQL event store, in its table ``vip_api_keys``, so a key made
through one ``vip api`` process works on every other.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from domain.limits import subject_problem
from infra.stores.pg_shared import PgDb, is_pg
from infra.stores.private import private_file

log = logging.getLogger("vip.api.keys")
ROLES = ("agent", "supervisor", "finance", "auditor", "admin")
TOKEN_PREFIX = "vip_"
KEY_ID_PREFIX = "key_"


class ApiKeyError(ValueError):
    """An API key cannot be made or found as asked (its message says what to fix)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    key_id: str
    role: str
    subject: str


def _new_id() -> str:
    """A key id that tells nothing about the key's secret."""
    return KEY_ID_PREFIX + secrets.token_hex(6)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeyStore:
    """Hashed API keys: a small SQLite file (a path), or a PostgreSQL table (a postgresql:// URL).

    ``legacy``: with PostgreSQL, the data dir's ``api_keys.db`` of a deployment
    that kept its keys there; they are moved into the table when it is made.
    """

    def __init__(self, where: str | Path, legacy: str | Path | None = None) -> None:
        self.lock = threading.Lock()
        if is_pg(where):
            self.t = "vip_api_keys"
            self.db = PgDb(str(where))
            self.db.create(self.t, (self._schema(),), legacy, (
                (self.t, "key_id, hash, role, subject, created_at, revoked_at", "api_keys"),))
        else:
            self.t = "api_keys"
            self.db = sqlite3.connect(str(private_file(where)), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute(self._schema())
        self.migrated = self._new_ids_for_old_keys()

    def _schema(self) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.t} (key_id TEXT PRIMARY KEY,"
                " hash TEXT UNIQUE NOT NULL, role TEXT NOT NULL, subject TEXT NOT NULL,"
                " created_at TEXT NOT NULL, revoked_at TEXT)")

    def _new_ids_for_old_keys(self) -> list[tuple[str, str]]:
        """Old keys' ids were part of their secret: give them random ids; ``(old, new)`` pairs."""
        with self.lock:
            old = [r[0] for r in self.db.execute(f"SELECT key_id FROM {self.t} WHERE key_id NOT LIKE ?",
                                                 (KEY_ID_PREFIX + "%",))]
            pairs = [(key_id, _new_id()) for key_id in old]
            for key_id, new in pairs:
                self.db.execute(f"UPDATE {self.t} SET key_id = ? WHERE key_id = ?", (new, key_id))
                log.warning("API key %s is now %s: key ids no longer show part of the secret "
                            "(its token still works)", key_id, new)
        return pairs

    def create(self, role: str, subject: str) -> tuple[str, str]:
        """Make a key; returns ``(key_id, token)``. The token is not stored."""
        if role not in ROLES:
            raise ApiKeyError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        problem = subject_problem(subject)
        if problem:
            raise ApiKeyError(problem)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key_id = _new_id()
        with self.lock:
            self.db.execute(f"INSERT INTO {self.t} VALUES (?, ?, ?, ?, ?, NULL)",
                            (key_id, _hash(token), role, subject,
                             datetime.now(timezone.utc).isoformat()))
        return key_id, token

    def verify(self, token: str) -> Principal | None:
        """The principal of a live token, or None."""
        with self.lock:
            row = self.db.execute(f"SELECT key_id, role, subject FROM {self.t}"
                                  " WHERE hash = ? AND revoked_at IS NULL", (_hash(token),)).fetchone()
        return Principal(*row) if row else None

    def list(self) -> list[dict]:
        with self.lock:
            rows = self.db.execute("SELECT key_id, role, subject, created_at, revoked_at"
                                   f" FROM {self.t} ORDER BY created_at").fetchall()
        return [dict(zip(("key_id", "role", "subject", "created_at", "revoked_at"), r)) for r in rows]

    def revoke(self, key_id: str) -> None:
        with self.lock:
            done = self.db.execute(f"UPDATE {self.t} SET revoked_at = ? WHERE key_id = ?"
                                   " AND revoked_at IS NULL",
                                   (datetime.now(timezone.utc).isoformat(), key_id)).rowcount
        if not done:
            raise ApiKeyError(f"no live key {key_id!r}; `vip api-key list` shows the keys")

    def close(self) -> None:
        self.db.close()
