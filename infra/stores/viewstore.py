"""The read stores' common base (:class:`ViewStore`) and the store held in memory alone
(:class:`MemoryStore`: replays, as-of answers, the stores without a table)."""
from __future__ import annotations


class StaleStoreError(RuntimeError):
    """Another process moved the read store on; reload and catch up again."""


class ViewStore:
    """Rows by view and key, the last applied log position, and the timeline clock: the base of
    every read store (in memory, and through ``infra.stores.keyed.KeyedStore`` the SQLite and
    PostgreSQL read stores and the stream stores, which keep the rows in a table and these
    dicts as their cache).

    ``log_id`` and ``last_hash`` say which log the rows came from (a digest of
    its first notification) and which notification sits at ``position``, so a
    store beside a restored or replaced event store is noticed (see
    ``Runner.mismatch``).
    """

    read_only = False

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict]] = {}
        self.position = 0
        self.clock: str | None = None
        self.log_id: str | None = None
        self.last_hash: str | None = None

    def view(self, name: str) -> dict[str, dict]:
        return self.rows.setdefault(name, {})

    def get(self, view: str, key: str) -> dict | None:
        return self.rows.get(view, {}).get(key)

    def listing(self, view: str, until: str):
        """Candidate rows of a listing query (every row here: the query's own test decides)."""
        return list(self.view(view).values())

    def position_of(self, view: str) -> int:
        """The log position a view is folded to: the one position of the store."""
        return self.position

    def stale(self) -> list:
        """Views that must be rebuilt before use: none, in memory."""
        return []

    def commit(self, dirty: set, position: int, clock: str | None,
               log_id: str | None = None, last_hash: str | None = None) -> None:
        self.position, self.clock = position, clock
        self.log_id, self.last_hash = log_id, last_hash

    def set_aside(self):
        """Keep the rows of a store that must be folded again somewhere out of the way; returns
        where (a file store: :meth:`SqliteReadStore.set_aside`), or None: in memory or a shared
        database nothing is kept, the :meth:`reset` that follows forgets them."""
        return None

    def reset(self) -> None:
        for rows in self.rows.values():
            rows.clear()  # in place: the engine's timer index holds the dicts
        self.position, self.clock, self.log_id, self.last_hash = 0, None, None, None

    def close(self) -> None:
        """Nothing to release in memory."""


class MemoryStore(ViewStore):
    """A read store held in memory alone: nothing is written anywhere, a restart starts empty."""
