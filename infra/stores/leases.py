"""Leases: which process may do a job that must run once at a time.

* On the embedded SQLite store one machine runs one ``vip serve``: a second
  one is refused (:class:`FileLease`, an exclusive ``flock`` on a file in the
  data dir that the kernel releases when the holder dies).
* On PostgreSQL several ``vip serve`` processes share the event store and the
  consumer group, but exactly one relay publishes at a time
  (:class:`AdvisoryLease`, a session-level ``pg_try_advisory_lock`` that
  PostgreSQL releases when the holder's connection ends, so another process
  takes over: failover without a coordinator).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import psycopg

from infra.settings import Settings
from infra.stores.private import private_dir


class LeaseHeldError(RuntimeError):
    """Another process holds the lease; the message says which and what to do."""


def lease_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lease name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class FileLease:
    """An exclusive lock on a file, held until :meth:`release` or the process's death."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lease if it is free; True if this process now holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the holder (best effort, for messages)."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class AdvisoryLease:
    """A PostgreSQL session advisory lock on its own connection."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name, self.key = url, name, lease_key(name)
        self._conn: psycopg.Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def acquire(self) -> bool:
        """Take the lease if it is free; True if this process now holds it."""
        if self.held:
            return True
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        """Check the connection is alive (a lost connection has lost the lock)."""
        if not self.held:
            return False
        try:
            self._conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # ending the session releases the advisory lock
            finally:
                self._conn = None


SERVE_LOCK = "serve.lock"  # in the data dir: there from a serve's start, before its event store


def serve_lease(settings: Settings) -> FileLease | None:
    """The one-``vip serve``-per-data-dir lease of the embedded SQLite store (None elsewhere)."""
    if settings.event_store != "sqlite":
        return None
    private_dir(settings.data_dir)
    lease = FileLease(settings.data_dir / SERVE_LOCK)
    if not lease.acquire():
        raise LeaseHeldError(
            f"another vip serve (pid {lease.holder()}) is running on the SQLite store in "
            f"{settings.data_dir}: the embedded store takes one serve process per data dir "
            f"(CLI commands and ingests beside it are fine). To run several serve processes, "
            f"use PostgreSQL: VIP_EVENT_STORE=postgresql://user:password@host:5432/db")
    return lease


PG_SCHEMES = ("postgresql://", "postgres://")


def relay_lease(settings: Settings) -> AdvisoryLease | None:
    """The relay's lease on PostgreSQL (one publisher at a time); None where one process serves."""
    if not settings.event_store.startswith(("postgresql://", "postgres://")):
        return None
    return AdvisoryLease(settings.event_store, f"vip-relay:{settings.topic_prefix}")


@contextmanager
def schema_lock(url: str | None):
    """Held while this process creates or migrates tables in the PostgreSQL database ``url``
    (None or another store: nothing to hold). ``CREATE TABLE IF NOT EXISTS`` and the library's
    table creation are not safe in two sessions at once (several ``vip serve`` or stream
    workers starting together), so the processes take turns."""
    if not url or not url.startswith(PG_SCHEMES):
        yield
        return
    conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (lease_key("vip-schema"),))
        yield
    finally:
        conn.close()  # ending the session releases the lock
