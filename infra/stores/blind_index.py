"""A blind index: find members by name or phone without keeping either in clear.

Personal values are sealed per member (:mod:`infra.stores.pii`), so nothing
can be searched by its clear value. This index keeps, per member, an HMAC
of each normalised value (the full name, each word of it, the phone's
digits) under an index key kept beside the member keys: the digests reveal
nothing without that key, and a search hashes the query the same way and
looks for an equal digest (exact match only, by design).

The index is a read side of the log: it follows the member events that
carry a profile (registration, registration filled, profile update) from
the notification log, opens their sealed values with the member's key,
and stores digests; an erasure drops the member's rows (``secure_delete``
leaves no bytes). Losing the index or its key costs nothing: a new key
rebuilds it from the log. Any process may write the log; the index catches
up before each search.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import sqlite3
import threading
import unicodedata
from pathlib import Path

from eventsourcing.utils import get_topic

from domain.base import ERASED, SEALED_PREFIX
from domain.member import Member
from infra.service_layer.fastpath import paths_of
from infra.stores.pii import UNREADABLE
from infra.stores.private import private_file

PROFILE_EVENTS = ("MemberRegistered", "RegistrationFilled", "ProfileUpdated", "PersonalDataErased")
TOPICS = [get_topic(getattr(Member, name)) for name in PROFILE_EVENTS]
FIELDS = ("name", "phone")
PAGE = 1000


def normalise_name(value: str) -> str:
    """Case, width and spacing do not matter: ``" Li  LEI "`` and ``"li lei"`` are one name."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def normalise_phone(value: str) -> str:
    """Digits only; a leading +86 / 0086 country code dropped (``+86 137-0000-1111`` = ``13700001111``)."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", value))
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix):]
    return digits


def terms(field: str, value: str) -> set[str]:
    """What a value is found by: the whole name and each of its words; the phone's digits."""
    if field == "phone":
        phone = normalise_phone(value)
        return {phone} if len(phone) >= 5 else set()
    name = normalise_name(value)
    return ({name} | set(name.split())) if name else set()


class BlindIndex:
    """Keyed digests of members' names and phones in an owner-only SQLite file."""

    def __init__(self, path: str | Path, key_path: str | Path) -> None:
        self.path, self.key_path = Path(path), Path(key_path)
        self._lock = threading.Lock()
        self._key = self._load_key()
        private_file(self.path)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA secure_delete = ON")   # a dropped digest leaves no bytes behind
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("CREATE TABLE IF NOT EXISTS digests (digest BLOB NOT NULL, field TEXT NOT NULL, "
                         "member_id TEXT NOT NULL, PRIMARY KEY (digest, member_id, field))")
        self._db.execute("CREATE INDEX IF NOT EXISTS digests_member ON digests (member_id)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        fingerprint = hashlib.sha256(b"blind-index-key:" + self._key).hexdigest()
        stored = self._meta("key")
        if stored != fingerprint:  # a new (or replaced) key: the old digests mean nothing now
            self._db.execute("DELETE FROM digests")
            self._set_meta("position", "0")
            self._set_meta("key", fingerprint)

    def _load_key(self) -> bytes:
        if self.key_path.exists() and self.key_path.stat().st_size == 32:
            return self.key_path.read_bytes()
        key = os.urandom(32)
        private_file(self.key_path, truncate=True)
        self.key_path.write_bytes(key)
        return key

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def digest(self, field: str, term: str) -> bytes:
        return hmac.new(self._key, f"{field}\x00{term}".encode(), hashlib.sha256).digest()

    @property
    def position(self) -> int:
        return int(self._meta("position") or 0)

    def put(self, member_id: str, field: str, value: str | None) -> None:
        """Index ``value`` as the member's ``field`` (replacing what was there)."""
        with self._lock:
            self._put(member_id, field, value)

    def _put(self, member_id: str, field: str, value: str | None) -> None:
        self._db.execute("DELETE FROM digests WHERE member_id = ? AND field = ?", (member_id, field))
        if not value or value in (ERASED, UNREADABLE) or value.startswith(SEALED_PREFIX):
            return
        self._db.executemany("INSERT OR IGNORE INTO digests VALUES (?, ?, ?)",
                             [(self.digest(field, t), field, member_id) for t in terms(field, value)])

    def drop(self, member_id: str) -> None:
        """Forget every digest of the member (erasure)."""
        with self._lock:
            self._db.execute("DELETE FROM digests WHERE member_id = ?", (member_id,))

    def find(self, field: str, query: str) -> list[str]:
        """Member ids whose ``field`` is ``query`` (normalised), or one of the name's words."""
        wanted = normalise_phone(query) if field == "phone" else normalise_name(query)
        if not wanted:
            return []
        rows = self._db.execute("SELECT DISTINCT member_id FROM digests WHERE digest = ? AND field = ? "
                                "ORDER BY member_id", (self.digest(field, wanted), field)).fetchall()
        return [r[0] for r in rows]

    def catch_up(self, app) -> int:
        """Index the profile events the log gained since the last call; returns how many."""
        count = 0
        with self._lock:
            start = self.position
            while True:
                notes = app.recorder.select_notifications(start, PAGE, topics=TOPICS,
                                                          inclusive_of_start=False)
                if not notes:
                    break
                self._db.execute("BEGIN")
                try:
                    for note in notes:
                        self._apply(app, paths_of(app).stored_envelope(app.mapper, note))
                    self._set_meta("position", str(notes[-1].id))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                count += len(notes)
                start = notes[-1].id
                if len(notes) < PAGE:
                    break
        return count

    def _apply(self, app, event) -> None:
        member_id = event["data"].get("member_id") or event["key"]
        if event["type"] == "PersonalDataErased":
            self._db.execute("DELETE FROM digests WHERE member_id = ?", (member_id,))
            return
        values = event["data"].get("profile") or event["data"].get("changes") or {}
        for field in FIELDS:
            if field in values:
                self._put(member_id, field, app.cipher.open(member_id, values[field]))

    def close(self) -> None:
        self._db.close()
