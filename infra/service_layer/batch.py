"""What one batch of steps collects: a write-back map of aggregates, new events, receipts.

The unit of work (:class:`infra.service_layer.uow.UnitOfWork`, a :class:`Batch`)
collects the aggregates' new events, the input receipts and the tracking
position here, and :meth:`Batch.record` writes all of them in ONE
event-store transaction (one fsync). Steps get their aggregates from
:attr:`Batch.aggregates` (the write-back map), so the second input about a
member sees the first one's effect without a read.

Each input (and each fired timer) is a *step*: :meth:`mark` before it,
:meth:`rollback` when it is refused. A refused step's events and receipts are
dropped, and every aggregate it touched is evicted from the map; the next
step that needs one loads it from the store and replays the batch's earlier
events for it, so a refusal leaves exactly the state the step found.

The map outlives a commit (it then holds committed state, and saves a read
per input); it is dropped whenever another writer may have changed the log
(see ``Engine.begin``); past its bound, an estimate of the memory it holds
(:class:`AggregateMap`), the least recently kept aggregates leave it.

A step also notes which aggregates it got and the latest instant their
histories held when it got them (:attr:`Batch.got`, :attr:`Batch.latest`):
the engine judges the step on those aggregates' own timelines (DOMAIN.md "Time").
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import Tracking

from infra.stores.recorders import Receipt


# Estimated bytes an aggregate holds in memory (tracemalloc of members, 2026-12): about 2 KB for
# the object and its indexes, about 350 B per order or activity entry it keeps.
BASE_BYTES, PER_ITEM_BYTES = 2_000, 350
DEFAULT_BUDGET = 64 * 2**20


def weigh(aggregate: Any) -> int:
    """The estimated memory an aggregate holds: what it keeps (orders, entries) sets it."""
    items = 0
    for name in ("orders", "closed_orders", "entries"):
        kept = getattr(aggregate, name, None)
        if kept is not None:
            items += len(kept)
    return BASE_BYTES + PER_ITEM_BYTES * items


class AggregateMap(OrderedDict):
    """The write-back map, id -> aggregate, bounded by an estimate of the memory it holds
    (:func:`weigh`), not by a count: many small members stay warm, a few long histories do not
    crowd out the rest. Least recently kept first; :meth:`trim` evicts from there (at a batch's
    start, when the map holds only committed state)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        super().__init__()
        self.budget = budget
        self.weights: dict = {}
        self.total = 0

    def __setitem__(self, key: Any, aggregate: Any) -> None:
        self.total -= self.weights.pop(key, 0)
        super().__setitem__(key, aggregate)
        self.move_to_end(key)
        weight = self.weights[key] = weigh(aggregate)
        self.total += weight

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self.total -= self.weights.pop(key, 0)

    _missing = object()

    def pop(self, key: Any, default: Any = _missing) -> Any:
        if key in self:
            self.total -= self.weights.pop(key, 0)
            return super().pop(key)
        if default is AggregateMap._missing:
            raise KeyError(key)
        return default

    def clear(self) -> None:
        super().clear()
        self.weights.clear()
        self.total = 0

    def trim(self, limit: int) -> None:
        """Evict the least recently kept until the estimate is within the budget and the
        count within ``limit``."""
        while self and (self.total > self.budget or len(self) > limit):
            key, _ = self.popitem(last=False)
            self.total -= self.weights.pop(key, 0)


class Batch:
    """What one batch changed and has not committed yet."""

    def __init__(self, aggregates: dict, limit: int = 20000) -> None:
        self.aggregates = aggregates          # id -> aggregate: the write-back map (shared, bounded)
        self.limit = limit
        self.events: list = []                # new domain events, in save order
        self.receipts: list[Receipt] = []
        self.seen: dict[str, Receipt] = {}    # input id -> receipt of this batch
        self.prior: dict[str, Receipt | None] = {}  # input id -> committed receipt (prefetched)
        self.loaded: dict = {}                # id -> committed aggregate or None, prefetched (see prefetch)
        self.tracking: Tracking | None = None
        self.folded = 0                       # events[:folded] are in the views already
        self.steps = 0                        # inputs and timers tried in this batch
        self.touched: set = set()             # aggregate ids the current step got
        self.evicted: set = set()             # ids whose map entry a rollback dropped
        self.got: dict = {}                   # id -> aggregate the current step got (existing ones)
        self.latest = None                    # the latest instant of their histories, as got
        self.latest_holder = None             # the aggregate whose history holds it
        self.on_sight: Callable | None = None  # the engine's check of an aggregate a step first gets
        self.pristine: set = set()            # ids the check stopped at first sight: left unchanged
        if isinstance(aggregates, AggregateMap):
            aggregates.trim(limit)
        elif len(aggregates) > limit:
            aggregates.clear()

    # -- collecting ---------------------------------------------------------------------

    def collect(self, objs: Iterable[Any], receipts: Iterable[Receipt] = (),
                tracking: Tracking | None = None) -> None:
        """What a save would have recorded: the objects' pending events, receipts, a position."""
        for obj in objs:
            if obj is None:
                continue
            self.events.extend(obj.collect_events())
            self.aggregates[obj.id] = obj
            self.touched.add(obj.id)
        for receipt in receipts:
            self.receipts.append(receipt)
            self.seen[receipt.input_id] = receipt
        if tracking is not None:
            self.tracking = tracking

    def fetch(self, aggregate_id: Any, load: Callable[[], Any], missing: type[Exception]) -> Any:
        """The map's aggregate, or ``load()``-ed (and brought up to this batch) and kept.

        ``load`` gives the committed state or raises ``missing``.
        """
        self.touched.add(aggregate_id)
        aggregate = self.aggregates.get(aggregate_id)
        if aggregate is not None:
            if aggregate_id not in self.got:
                self._saw(aggregate_id, aggregate)
            return aggregate
        # What earlier steps of this batch did to an aggregate a refused step evicted
        replay = [e for e in self.events if e.originator_id == aggregate_id] \
            if aggregate_id in self.evicted else []
        try:
            if aggregate_id in self.loaded:  # used once: a refused step may change it, then evict it
                aggregate = self.loaded.pop(aggregate_id)
                if aggregate is None:
                    raise missing(aggregate_id)
            else:
                aggregate = load()
        except missing:
            if not replay:
                raise
            aggregate = None   # made by this batch: its first event creates it
        for event in replay:
            aggregate = event.mutate(aggregate)
        self.aggregates[aggregate_id] = aggregate
        self._saw(aggregate_id, aggregate)
        return aggregate

    def _saw(self, aggregate_id: Any, aggregate: Any) -> None:
        # First sight in this step: its history's latest instant, before the step changes it.
        self.got[aggregate_id] = aggregate
        when = aggregate.modified_on
        if self.latest is None or when > self.latest:
            self.latest, self.latest_holder = when, aggregate
        if self.on_sight is not None:
            try:
                self.on_sight(aggregate)
            except BaseException:
                # Stopped before the step could change it: a rollback keeps it in the map
                # (no reload from the store when the step is run again).
                self.pristine.add(aggregate_id)
                raise

    # -- steps ------------------------------------------------------------------------

    def mark(self) -> tuple[int, int, Tracking | None]:
        """Where a step starts; pass it to :meth:`rollback` if the step is refused."""
        self.touched = set()
        self.got, self.latest, self.latest_holder, self.pristine = {}, None, None, set()
        self.steps += 1
        return len(self.events), len(self.receipts), self.tracking

    def rollback(self, mark: tuple[int, int, Tracking | None]) -> None:
        """Forget everything the step since ``mark`` did, in the map too."""
        events, receipts, tracking = mark
        stale = (self.touched - self.pristine) | {event.originator_id for event in self.events[events:]}
        del self.events[events:]
        for receipt in self.receipts[receipts:]:
            self.seen.pop(receipt.input_id, None)
        del self.receipts[receipts:]
        self.tracking = tracking
        for aggregate_id in stale:
            self.aggregates.pop(aggregate_id, None)
        self.evicted |= stale
        self.touched = set()
        self.got, self.latest, self.latest_holder, self.pristine = {}, None, None, set()

    def unfolded(self) -> list:
        """Events not yet folded into the views (and now counted as folded)."""
        new = self.events[self.folded:]
        self.folded = len(self.events)
        return new

    # -- committing -------------------------------------------------------------------

    def record(self, app) -> list:
        """Record the batch's events, receipts and position in one transaction (``app.record_batch``);
        the recordings."""
        if not (self.events or self.receipts or self.tracking):
            return []
        processing = ProcessingEvent(tracking=self.tracking)
        processing.events = self.events
        ids = {event.originator_id for event in self.events}
        aggregates = self.aggregates   # the batch's own, not a walk of the whole map
        processing.aggregates = {i: aggregates[i] for i in ids if i in aggregates}
        if self.receipts:
            processing.saved_kwargs["receipts"] = self.receipts
        recordings = app.record_batch(processing)
        self.evicted = set()
        return recordings
