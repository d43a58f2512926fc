"""API keys: random bearer tokens, stored only as their SHA-256 hash.

A key has a role and a subject (the person or system it belongs to); the
subject is the actor on every event the key's requests cause. The token is
shown once, when the key is made; the store keeps its hash and a short
prefix (so an operator can tell keys apart in a listing).
"""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROLES = ("agent", "supervisor", "finance", "auditor", "admin")
TOKEN_PREFIX = "vip_"


class KeyError_(ValueError):
    """A key cannot be made or found as asked."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    key_id: str
    role: str
    subject: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeyStore:
    """Hashed API keys in a small SQLite file in the data directory."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY,"
                        " hash TEXT UNIQUE NOT NULL, role TEXT NOT NULL, subject TEXT NOT NULL,"
                        " created_at TEXT NOT NULL, revoked_at TEXT)")

    def create(self, role: str, subject: str) -> tuple[str, str]:
        """Make a key; returns ``(key_id, token)``. The token is not stored."""
        if role not in ROLES:
            raise KeyError_(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        subject = (subject or "").strip()
        if not subject:
            raise KeyError_("a key needs a subject: the person or system it belongs to")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key_id = token[len(TOKEN_PREFIX):len(TOKEN_PREFIX) + 8]
        with self.lock:
            self.db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                            (key_id, _hash(token), role, subject,
                             datetime.now(timezone.utc).isoformat()))
        return key_id, token

    def verify(self, token: str) -> Principal | None:
        """The principal of a live token, or None."""
        with self.lock:
            row = self.db.execute("SELECT key_id, role, subject FROM api_keys"
                                  " WHERE hash = ? AND revoked_at IS NULL", (_hash(token),)).fetchone()
        return Principal(*row) if row else None

    def list(self) -> list[dict]:
        with self.lock:
            rows = self.db.execute("SELECT key_id, role, subject, created_at, revoked_at"
                                   " FROM api_keys ORDER BY created_at").fetchall()
        return [dict(zip(("key_id", "role", "subject", "created_at", "revoked_at"), r)) for r in rows]

    def revoke(self, key_id: str) -> None:
        with self.lock:
            done = self.db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?"
                                   " AND revoked_at IS NULL",
                                   (datetime.now(timezone.utc).isoformat(), key_id)).rowcount
        if not done:
            raise KeyError_(f"no live key {key_id!r}; `vip api-key list` shows the keys")

    def close(self) -> None:
        self.db.close()
