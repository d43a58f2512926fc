"""What the API's requests run on: engines of their own, never one lock for the whole process.

The engine (with its open batch, in-memory views and timer index) serves one
thread at a time, so a request checks one out of a pool for its duration:

- **commands** take their aggregate's lock (two requests on one aggregate
  queue; on different aggregates they run at once), then a writer engine.
  Several engines on one store are safe as several processes are: the event
  store refuses a stale write and the engine runs the step again on fresh
  state; SQLite serialises the commits themselves.
- **queries** take a reader engine, brought to the log's end first (what the
  writers recorded), so a read never waits for a command.
- **as-of queries** replay the log into a read-only system of their own,
  opened for the request and closed after it: no lock is shared at all.

The system the app was made with (``primary``) stays with the host that
made it (the ``vip serve`` loop, the ``vip api`` scheduler): requests never
use its engine, and ``lock`` (``app.state.lock``) is for the host's own
turns on it. An event store in memory cannot be opened twice, so there every
request runs on the primary under that lock, as before.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator

from domain.base import DomainError
from infra.api.problems import Problem
from infra.bootstrap import System, build

log = logging.getLogger("vip.api")

WRITERS = 4   # commands at once (SQLite takes their commits in turn anyway)
READERS = 2   # live queries at once; they are short
REPLAYS = 2   # as-of replays at once: each opens the stores and folds the log up to its instant
WAIT_S = 30.0  # how long a request waits for its aggregate, an engine or a replay: then 503
ANSWERED = (DomainError, Problem)  # refusals and problems: the engine is left as it was


def busy(what: str) -> Problem:
    """The answer when a request waited ``WAIT_S`` for ``what``: try again shortly (503)."""
    return Problem(503, f"the API is busy ({what} for over {int(WAIT_S)} s); retry shortly",
                   "urn:vip:busy", headers={"Retry-After": "5"})


class Pool:
    """Systems made on demand (up to ``size``), each lent to one thread at a time."""

    def __init__(self, make: Callable[[], System], size: int,
                 answered: tuple[type[BaseException], ...] = ()) -> None:
        # ``answered``: errors a request answers (a refusal, a 404); any other leaves the system
        # in a state nobody vouches for, so it is closed instead of lent again.
        self.make, self.size, self.answered = make, max(1, size), answered
        self.idle: list[System] = []
        self.made: list[System | None] = []  # None: a place taken by a system being made
        self.retired: list[System] = []      # lent when the pool was closed: closed on return
        self.free = threading.Condition()

    @contextmanager
    def lend(self) -> Iterator[System]:
        """A system of this pool for the block (the last one returned, so a quiet API uses one)."""
        system = self._take()
        broken = False
        try:
            yield system
        except BaseException as exc:
            broken = not isinstance(exc, self.answered)
            raise
        finally:
            with self.free:
                if broken or any(system is r for r in self.retired):
                    self.retired = [r for r in self.retired if r is not system]
                    self._forget(system)
                else:
                    self.idle.append(system)
                    system = None
                self.free.notify()
            if system is not None:
                _close(system)

    def _take(self) -> System:
        deadline = time.monotonic() + WAIT_S
        with self.free:
            while not self.idle and len(self.made) >= self.size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise busy("every engine is in use")
                self.free.wait(left)
            if self.idle:
                return self.idle.pop()
            self.made.append(None)  # built outside the lock: a slow open holds up no other request
        try:
            system = self.make()
        except BaseException:
            with self.free:
                self.made.remove(None)
                self.free.notify()
            raise
        with self.free:
            self.made[self.made.index(None)] = system
        return system

    def _forget(self, system: System) -> None:
        self.made = [s for s in self.made if s is not system]

    def systems(self) -> list[System]:
        """The systems made so far (for metrics: read their counters, not their state)."""
        with self.free:
            return [s for s in self.made if s is not None]

    def close(self) -> None:
        """Close the idle systems now and each lent one when it comes back; a later request makes
        new ones (an ASGI server may run the app's shutdown and start it again)."""
        with self.free:
            idle, self.idle = self.idle, []
            for system in idle:
                self._forget(system)
            self.retired += [s for s in self.made if s is not None]
            self.free.notify_all()
        for system in idle:
            _close(system)


def _close(system: System) -> None:
    # A system given up after an unforeseen error may fail to close too: that must not hide the
    # request's own error, nor stop the pool.
    try:
        system.close()
    except Exception:
        log.exception("closing an engine the API gave up failed")


class AggregateLocks:
    """One lock per aggregate in use: requests on one aggregate queue, others do not wait."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.held: dict[tuple[str, str], list] = {}  # key -> [lock, users]

    @contextmanager
    def hold(self, kind: str, business_id: str) -> Iterator[None]:
        key = (kind, business_id)
        with self.guard:
            entry = self.held.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            if not entry[0].acquire(timeout=WAIT_S):
                raise busy(f"{kind} {business_id} is being changed")
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self.guard:
                entry[1] -= 1
                if not entry[1]:
                    del self.held[key]


class Engines:
    """The API's engines over one store: writers, readers, and as-of replays of their own."""

    def __init__(self, primary: System, writers: int = WRITERS, readers: int = READERS) -> None:
        self.primary = primary
        # The host's turns on the primary (serve loop, scheduler); requests take it only where
        # they must share the primary (an event store in memory).
        self.lock = threading.RLock()
        self.aggregates = AggregateLocks()
        self.shared = primary.settings.event_store in ("memory", "popo")
        self.replays = threading.BoundedSemaphore(REPLAYS)
        # Each request engine keeps a share of the write-back map's budget and one PostgreSQL
        # connection, so the pools do not multiply the process's memory and connections.
        settings = primary.settings
        self.settings = dataclasses.replace(
            settings, pg_pool_size=1, aggregate_map_mb=max(8, settings.aggregate_map_mb // max(1, writers)))
        self.writers = Pool(self._make, writers, ANSWERED)
        self.readers = Pool(self._make, readers, ANSWERED)

    def _make(self) -> System:
        return build(self.settings, clock=self.primary.engine.clock)

    @contextmanager
    def writer(self, kind: str, business_id: str) -> Iterator[System]:
        """A system to run a command on ``kind`` ``business_id`` with, that aggregate's lock held."""
        with self.aggregates.hold(kind, business_id), self._lend(self.writers) as system:
            yield system

    @contextmanager
    def reader(self) -> Iterator[System]:
        """A system whose read store holds everything the log holds, for a live query."""
        with self._lend(self.readers) as system:
            if not self.shared:
                system.engine.flush()  # folds what the writers recorded since its last query
            yield system

    @contextmanager
    def at(self, as_of: datetime | None) -> Iterator[System]:
        """A system for a query at ``as_of``: a reader for now; for a past instant, a read-only
        system of the request's own (the replay holds no lock and waits for nothing)."""
        if as_of is None or self.shared:
            with self.reader() as system:
                yield system
            return
        if not self.replays.acquire(timeout=WAIT_S):
            raise busy(f"{REPLAYS} as-of replays are running")
        try:
            system = build(self.settings, clock=self.primary.engine.clock, read_only=True)
            try:
                yield system
            finally:
                system.close()
        finally:
            self.replays.release()

    @contextmanager
    def _lend(self, pool: Pool) -> Iterator[System]:
        if self.shared:
            with self.lock:
                yield self.primary
            return
        with pool.lend() as system:
            yield system

    def engines(self) -> list:
        """Every engine requests have run on (for the metrics' counters)."""
        if self.shared:
            return [self.primary.engine]
        return [s.engine for s in self.writers.systems() + self.readers.systems()]

    def close(self) -> None:
        """Close the systems made for requests (the primary is its host's to close)."""
        self.writers.close()
        self.readers.close()
