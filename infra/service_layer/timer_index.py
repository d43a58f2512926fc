"""Due work (timers): the index over the ``timers`` view (earliest first, or per aggregate).

What a due timer does is a command (:mod:`infra.service_layer.scheduled`) handled
through the one dispatch map (:mod:`infra.service_layer.handlers`)."""
from __future__ import annotations

import heapq


class TimerIndex:
    """Earliest-first index over the timers view; stale entries are skipped on peek.

    Every refresh pushes a key's timers again, so stale entries pile up in
    the heap with every event that touches a timer row; when they outnumber
    the live timers, the heap is rebuilt from the live ones (kept per key),
    so it stays proportional to the live timers, not to the history.
    """

    def __init__(self, rows: dict) -> None:
        self.rows = rows
        self.heap: list = []
        self.skipped: set = set()
        self.live: dict = {}  # key -> {name: due} as of the key's last refresh
        self.live_count = 0
        for key, row in rows.items():  # one scan of a keyed store, not a read per key
            timers = row.get("timers", {})
            if timers:
                self.live[key] = dict(timers)
                self.live_count += len(timers)
            for name, due in timers.items():
                self.heap.append((due, key, name))
        heapq.heapify(self.heap)

    def refresh(self, keys) -> None:
        for key in keys:
            row = self.rows.get(key)
            timers = (row or {}).get("timers", {})
            self.live_count -= len(self.live.pop(key, ()))
            if timers:
                self.live[key] = dict(timers)
                self.live_count += len(timers)
            for name, due in timers.items():
                heapq.heappush(self.heap, (due, key, name))
        self._compact()

    def _compact(self) -> None:
        # Amortised: a rebuild costs the live count and happens only once the heap doubled.
        if len(self.heap) <= 2 * self.live_count + 64:
            return
        self.heap = [(due, key, name) for key, timers in self.live.items()
                     for name, due in timers.items() if (due, key, name) not in self.skipped]
        heapq.heapify(self.heap)

    def peek(self, until: str) -> tuple | None:
        while self.heap:
            due, key, name = self.heap[0]
            row = self.rows.get(key)
            current = (row or {}).get("timers", {}).get(name)
            if current != due or (due, key, name) in self.skipped:
                heapq.heappop(self.heap)
                continue
            return self.heap[0] if due <= until else None
        return None

    def first_due(self, keys, until: str) -> tuple | None:
        """The earliest live timer of these keys (``member:M1``...) due at or before ``until``, or None.

        Read from :attr:`live` (memory, current after every refresh): no store read.
        """
        best = None
        for key in keys:
            for name, due in self.live.get(key, {}).items():
                entry = (due, key, name)
                if due <= until and entry not in self.skipped and (best is None or entry < best):
                    best = entry
        return best

