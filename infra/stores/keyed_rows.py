"""One view's rows over a keyed table: read by key on demand, cached, written back at commit."""
from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Iterator

# The clean rows kept per view are bounded by memory; dirty rows stay until the commit. A
# row's size is estimated from its JSON as written at the commit: parsed, it takes about 6.5
# bytes for each byte of JSON (tracemalloc of every row of three views: 6.4-6.6). At 64 MB a
# view keeps ~20,000 current_tier rows (~3.2 KB each; the old bound was a count of 20,000)
# and ~100,000 timers rows (~650 B).
CACHE_MB = 64
PARSED_PER_JSON_BYTE = 6.5
FIRST_ROW_BYTES = 3_200  # a view's estimate until its first commit
_DELETED = object()
_MISSING = object()


# json.dumps with separators builds an encoder per call (~13 us a row at a flush); one encoder
# with the same options writes the same text.
_dump = json.JSONEncoder(separators=(",", ":")).encode


def _rows_within(row_bytes: float) -> int:
    return max(1_000, int(CACHE_MB * 2**20 / max(row_bytes, 1.0)))


class KeyedRows(MutableMapping):
    """One view's rows, read from ``store`` (a ``KeyedStore``) by key on demand; writes wait for ``commit``."""

    def __init__(self, store, name: str, index=None) -> None:
        self.store, self.name, self.index = store, name, index
        self.cache: OrderedDict = OrderedDict()
        self.dirty: dict = {}
        self.row_bytes = float(FIRST_ROW_BYTES)  # estimated size of one cached row
        self.cache_rows = _rows_within(self.row_bytes)
        self.detached = False  # a read-only store reset: only what is folded in memory counts

    def _lookup(self, key):
        row = self.dirty.get(key, _MISSING)
        if row is not _MISSING:
            return None if row is _DELETED else row
        row = self.cache.get(key, _MISSING)
        if row is _MISSING:
            row = None if self.detached else self.store.fetch(self.name, key)
            self._remember({key: row})
        else:
            self.cache.move_to_end(key)
        return row

    def prefetch(self, keys) -> None:
        """Read the rows of ``keys`` that are neither dirty nor cached in one query per 500 keys
        (a batch about many members not seen lately), instead of one query each on first use."""
        if self.detached:
            return
        want = [k for k in dict.fromkeys(keys) if k not in self.dirty and k not in self.cache]
        if not want:
            return
        found = self.store.fetch_many(self.name, want)
        self._remember({key: found.get(key) for key in want})

    def _remember(self, rows: dict) -> None:
        """Cache rows as read (None: no such row), the least recently used leaving beyond the bound."""
        self.cache.update(rows)
        while len(self.cache) > self.cache_rows:
            self.cache.popitem(last=False)

    def get(self, key, default=None):
        row = self._lookup(key)
        return default if row is None else row

    def __getitem__(self, key):
        row = self._lookup(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key) -> bool:
        return self._lookup(key) is not None

    def __setitem__(self, key, row) -> None:
        self.dirty[key] = row
        self.cache.pop(key, None)

    def __delitem__(self, key) -> None:
        if self._lookup(key) is None:
            raise KeyError(key)
        self.dirty[key] = _DELETED
        self.cache.pop(key, None)

    def __iter__(self) -> Iterator:
        stored = [] if self.detached else self.store.keys_of(self.name)
        seen = set(stored)
        for key in stored:
            if self.dirty.get(key) is not _DELETED:
                yield key
        for key, row in list(self.dirty.items()):
            if row is not _DELETED and key not in seen:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def items(self):  # one scan of the table, not a read per key; the cache is left alone
        for key, row in () if self.detached else self.store.scan(self.name):
            if key not in self.dirty:
                yield key, row
        for key, row in list(self.dirty.items()):
            if row is not _DELETED:
                yield key, row

    def values(self):
        return (row for _, row in self.items())

    def listing(self, until: str) -> Iterator[dict]:
        """Rows whose index is at or before ``until``: the candidates of a listing query."""
        for key, row in () if self.detached else self.store.scan(self.name, until):
            if key not in self.dirty:
                yield row
        for row in list(self.dirty.values()):
            if row is not _DELETED and self.index is not None:
                ix = self.index(row)
                if ix is not None and ix <= until:
                    yield row

    def changes(self) -> tuple[list, list]:
        """(upserts, deletes) of the dirty rows, as statement parameters."""
        put, delete = [], []
        written = 0
        for key, row in self.dirty.items():
            if row is _DELETED:
                delete.append((self.name, key))
            else:
                ix = self.index(row) if self.index else None
                data = _dump(row)
                written += len(data)
                put.append((self.name, key, data, ix))
        if put:  # the rows just written say how large this view's rows are now
            self.row_bytes = (self.row_bytes + written * PARSED_PER_JSON_BYTE / len(put)) / 2
            self.cache_rows = _rows_within(self.row_bytes)
        return put, delete

    def settle(self) -> None:
        """After a commit: dirty rows become clean cached rows."""
        for key, row in self.dirty.items():
            self.cache[key] = None if row is _DELETED else row
        self.dirty.clear()
        while len(self.cache) > self.cache_rows:
            self.cache.popitem(last=False)

    def forget(self) -> None:
        self.cache.clear()
        self.dirty.clear()

    def detach(self) -> None:
        """Forget the table: from now on the rows are what is folded into this mapping."""
        self.forget()
        self.detached = True
