"""The hash chain of each aggregate's stored events.

``h(v) = SHA-256(h(v-1) | topic | originator id | version | state)``, with 32
zero bytes for ``h(0)``; ``state`` is the stored bytes exactly as recorded
(personal values sealed, so erasing a member's key changes no hash). Each
field is length-framed, so no two different events share an input.

The recorders write ``h(v)`` in the transaction that stores the event. The
previous hash comes from the batch itself, from :class:`ChainCache` (the last
hash per aggregate this process committed), or from one batched lookup of
the chain table for the rest. An event stored before chaining began has no
chain row; its hash is computed the same way from its aggregate's earlier
events (a "virtual" chain), so an aggregate's first chained event links to
its history, and ``vip verify --adopt`` writes exactly these hashes.
"""
from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from hashlib import sha256
from typing import Any, Callable, Sequence
from uuid import UUID

ZERO = bytes(32)
_FRAME = struct.Struct(">HHQI")  # len(topic), len(originator id), version, len(state)

Key = tuple[str, int]  # (originator id as text, version)
# (originator id as text, version) -> hash of the chain rows that exist among the keys asked for
Lookup = Callable[[list[Key]], dict[Key, bytes]]
# {originator id as text: highest version wanted} -> (version, topic, state) of versions 1..wanted
History = Callable[[dict[str, int]], dict[str, list[tuple[int, str, bytes]]]]


def oid_text(originator_id: Any) -> str:
    """The originator id as hashed and as the SQLite store keeps it (a UUID as 32 hex digits)."""
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


def event_hash(prev: bytes, topic: str, originator_id: Any, version: int, state: bytes) -> bytes:
    """The chain hash of one stored event after ``prev`` (the same aggregate's previous hash)."""
    t, o = topic.encode("utf-8"), oid_text(originator_id).encode("utf-8")
    return sha256(b"".join((prev, _FRAME.pack(len(t), len(o), version, len(state)), t, o,
                            bytes(state)))).digest()


# Bytes one cached aggregate takes: its id (32 hex digits), the (version, hash) tuple and the
# OrderedDict's entry and link; tracemalloc of 100,000 entries: 293 bytes each.
ENTRY_BYTES = 300
CHAIN_CACHE_MB = 32  # ~110,000 aggregates


class ChainCache:
    """The last committed (version, hash) per aggregate: an LRU bounded by memory.

    ``megabytes`` (:data:`CHAIN_CACHE_MB`) at :data:`ENTRY_BYTES` an aggregate; ``size``
    bounds the count instead. A miss costs the commit a lookup of the chain table (most of
    the 10k -> 100k members scaling row when the bound was a count of 50,000).

    Hashes of a transaction are staged (per thread) while it runs and enter the
    cache only when it committed (:meth:`commit`); a conflict or rollback drops
    them (:meth:`discard`), so the cache never holds an event that is not stored.
    A cached entry is used only for the very next version, so another process
    writing the same aggregate makes it a miss, never a wrong link.
    """

    def __init__(self, size: int | None = None, megabytes: float = CHAIN_CACHE_MB) -> None:
        self.size = size if size is not None else max(1, int(megabytes * 2**20 / ENTRY_BYTES))
        self._last: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._staged = threading.local()

    def get(self, oid: str, version: int) -> bytes | None:
        """The cached hash of ``version`` of ``oid``, if it is the last one cached."""
        with self._lock:
            last = self._last.get(oid)
        return last[1] if last is not None and last[0] == version else None

    def stage(self, rows: Sequence[tuple[Any, int, bytes]]) -> None:
        self._staged.rows = rows

    def commit(self) -> None:
        rows = getattr(self._staged, "rows", None)
        self._staged.rows = None
        if not rows:
            return
        with self._lock:
            for originator_id, version, h in rows:
                oid = oid_text(originator_id)
                self._last[oid] = (version, h)
                self._last.move_to_end(oid)
            while len(self._last) > self.size:
                self._last.popitem(last=False)

    def discard(self) -> None:
        self._staged.rows = None

    def clear(self) -> None:
        with self._lock:
            self._last.clear()


def link(stored_events: Sequence[Any], cache: ChainCache | None, lookup: Lookup,
         history: History) -> list[tuple[Any, int, bytes]]:
    """``(originator id, version, hash)`` of each stored event, in their order.

    The previous hash of each event comes from an earlier event of the same
    batch, else the cache, else one :func:`lookup` of the chain table for all
    the rest; an aggregate whose previous version has no chain row (stored
    before chaining began) gets its virtual chain from one :func:`history` query.
    """
    known: dict[Key, bytes] = {}
    wanted: list[Key] = []
    in_batch: set[Key] = set()
    for e in stored_events:
        oid, v = oid_text(e.originator_id), e.originator_version
        if v > 1 and (oid, v - 1) not in in_batch:
            cached = cache.get(oid, v - 1) if cache is not None else None
            if cached is not None:
                known[(oid, v - 1)] = cached
            else:
                wanted.append((oid, v - 1))
        in_batch.add((oid, v))
    if wanted:
        known.update(lookup(wanted))
        unchained = {}
        for oid, v in wanted:
            if (oid, v) not in known:
                unchained[oid] = max(v, unchained.get(oid, 0))
        if unchained:
            for oid, events in history(unchained).items():
                h = ZERO
                for version, topic, state in events:
                    h = event_hash(h, topic, oid, version, state)
                    known[(oid, version)] = h
    rows = []
    for e in stored_events:
        oid, v = oid_text(e.originator_id), e.originator_version
        prev = ZERO if v == 1 else known.get((oid, v - 1), ZERO)
        h = event_hash(prev, e.topic, oid, v, e.state)
        known[(oid, v)] = h
        rows.append((e.originator_id, v, h))
    return rows
