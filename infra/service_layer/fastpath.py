"""Every place this backend steps around the ``eventsourcing`` library for speed, behind one interface.

:class:`Paths` has two implementations: :data:`FAST` (what runs by default: the
bypasses below) and :data:`LIBRARY` (the library's own path for each). The
application is given one (``VipApp(..., paths=...)``; ``VIP_LIBRARY_PATH=1``
chooses LIBRARY, see ``infra.settings``), and the folds ask it for theirs
(:func:`paths_of`). ``tests/test_library_path.py`` runs the same inputs both
ways and compares the stored events, snapshots, aggregate states and read
models byte for byte. Nothing else in ``infra`` calls a bypass directly.

The bypasses (gains as measured in docs/benchmarks.md; "re-check" is what to
read in the library's source at an upgrade, then run tests/test_library_path.py):

1. ``project``: the projector given to ``repository.get`` and :meth:`Paths.load_many`.
   The library's ``project_aggregate`` asserts ``isinstance(event, CanMutateProtocol)`` (a
   runtime Protocol check) per event: a fifth of ingest. Ours only calls ``mutate``, which
   every event of ours has. Re-check: ``eventsourcing.application.project_aggregate``
   still only calls ``mutate`` per event.
2. ``load_many`` (``infra.service_layer.prefetch``): a batch's cold aggregates read in two
   SQL statements against the library's SQLite tables (latest snapshot of each, then the
   events after it) instead of two queries per aggregate in ``Repository.get``: 0.18 ms per
   cold member, a tenth of ingest at 20,000 orders, and the scaling ratio 10k -> 100k
   members 1.85 -> 1.30-1.35. LIBRARY returns ``{}`` ("load one by one"). Re-check: the
   SQLite table layout (``originator_id`` as hex text, ``originator_version``, ``topic``,
   ``state``), ``SQLiteAggregateRecorder.events_table_name`` and ``datastore.transaction``,
   and that ``Repository._reconstruct_aggregate`` is still "latest snapshot, then the
   events after it".
3. ``take_snapshots``: after a batch is recorded, each aggregate whose version crossed its
   snapshotting interval is snapshotted from the aggregate in hand, at its latest version,
   once per batch. The library's ``Application._take_snapshots`` calls ``take_snapshot``,
   which reads the aggregate back from the store at the crossing version and replays up to
   an interval of events: every second ``mutate`` of an ingest; 103.9 s -> 96.6 s on
   300,000 orders. So FAST snapshots the same state, but may do so at a later version of
   the same batch (and once where the library, crossing twice in a batch, snapshots
   twice). Re-check: ``Application._take_snapshots`` / ``take_snapshot`` (which versions,
   which snapshot class, ``snapshotting_projectors``) and ``Snapshot.take``.
4. ``stored_envelope`` (``infra.service_layer.envelope``): a recorded event decoded straight
   to the envelope the folds see, with the mapper's own transcoder, topic and id
   conversion but without building the domain event to take it apart again (a mapper
   with a cipher or compressor, or an upcasting class, takes the mapper's path). Part of
   a replay's 35.7 s -> 22.7 s with the per-type view choice (1M events). Re-check:
   ``Mapper.to_domain_event`` (decipher, decompress, decode, the id convertor, the
   ``originator_topic`` / ``class_version`` keys it drops, upcasting).
5. ``fold_pause``: the cyclic garbage collector paused while a log is folded (rows are
   plain values without cycles, yet each collection walked every live row): about a
   tenth of a replay. Not the library's code, but its objects: re-check that decoded
   events and rows still hold no reference cycles.
6. ``Member.__deepcopy__ = copy_member`` (``domain.member_copy``): the repository deep-copies
   a cached aggregate on every get; the generic deepcopy walked every datetime of the
   orders. With (1) it took ingest from 1,470-1,500 to 940 us CPU per order. A class
   attribute of the domain (which may not import infra), so it is not switched here: the
   test compares it with the generic deepcopy. Re-check: ``Repository.get`` still copies
   with ``copy.deepcopy``; a new attribute of Member must be copied by ``copy_member``.

FAST against LIBRARY on 2026-12-07 (CPU, one process on this 2-core machine; a 60-member demo
log of 1,043 events): decode 7.4 against 9.0 us an event; projector 7.6 against 21.0 us an
event; a cold load 0.22 against 0.46 ms an aggregate; deepcopy 6.6 against 188 us a member.
A file ingest of 5,058 inputs over 400 members (map of no memory, a snapshot every 5 versions,
batches of 200): 320 against 590 us an input (``copy_member`` on both).
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager, nullcontext
from typing import Any, ContextManager, Iterable, Protocol

from eventsourcing.application import Application, ProcessingEvent, project_aggregate

from infra.service_layer import prefetch
from infra.service_layer.envelope import LeanEnvelope, lean_envelope, stored_envelope as _decode


class Paths(Protocol):
    """How the application and the folds do what the library would do (see the module docstring)."""

    name: str  # "fast" | "library"

    def project(self, aggregate: Any, events: Iterable) -> Any:
        """The projector (``projector_func``) for ``repository.get`` and :meth:`load_many`."""

    def load_many(self, app: Application, ids: Iterable) -> dict:
        """``{id: aggregate or None}`` read in bulk; ``{}`` means "load them one by one"."""

    def take_snapshots(self, app: Application, processing: ProcessingEvent) -> None:
        """Snapshot what crossed its interval, once the batch's events are recorded."""

    def stored_envelope(self, mapper: Any, notification: Any) -> LeanEnvelope:
        """The envelope the folds see for one recorded event."""

    def fold_pause(self) -> ContextManager:
        """A context manager around a long fold of the log."""


class FastPaths:
    """The bypasses (what runs unless ``VIP_LIBRARY_PATH=1``)."""

    name = "fast"

    @staticmethod
    def project(aggregate: Any, events: Iterable) -> Any:
        for domain_event in events:   # every event of ours mutates: no Protocol check each
            aggregate = domain_event.mutate(aggregate)
        return aggregate

    def load_many(self, app: Application, ids: Iterable) -> dict:
        return prefetch.load_many(app, ids, self.project)

    def take_snapshots(self, app: Application, processing: ProcessingEvent) -> None:
        # The aggregates in hand hold exactly the recorded state (a refused step evicts what
        # it touched), at their latest version: no read back, no replay.
        intervals = app.snapshotting_intervals
        if not (app.snapshots and intervals):
            return
        due: dict = {}
        for event in processing.events:
            aggregate = processing.aggregates.get(event.originator_id)
            interval = intervals.get(type(aggregate))
            if interval and event.originator_version % interval == 0:
                due[aggregate.id] = aggregate
        snapshots = [getattr(type(a), "Snapshot", type(app).snapshot_class).take(a) for a in due.values()]
        if snapshots:
            app.snapshots.put(snapshots)

    # the decoder itself, not a method calling it: a replay calls it per event
    stored_envelope = staticmethod(_decode)

    def fold_pause(self) -> ContextManager:
        return _no_cycle_collection()


class LibraryPaths:
    """The library's own path for each bypass (``VIP_LIBRARY_PATH=1``; the comparison test)."""

    name = "library"
    project = staticmethod(project_aggregate)

    def load_many(self, app: Application, ids: Iterable) -> dict:
        return {}   # each aggregate through Repository.get

    def take_snapshots(self, app: Application, processing: ProcessingEvent) -> None:
        # The library's own method, whatever the application overrides it with.
        Application._take_snapshots(app, processing)

    def stored_envelope(self, mapper: Any, notification: Any) -> LeanEnvelope:
        return lean_envelope(mapper.to_domain_event(notification), notification.id)

    def fold_pause(self) -> ContextManager:
        return nullcontext()


FAST: Paths = FastPaths()
LIBRARY: Paths = LibraryPaths()
_NAMED = {FAST.name: FAST, LIBRARY.name: LIBRARY}


def paths_named(name: str) -> Paths:
    """:data:`FAST` for ``"fast"``, :data:`LIBRARY` for ``"library"``."""
    try:
        return _NAMED[name]
    except KeyError:
        raise ValueError(f"paths {name!r}? use one of {sorted(_NAMED)}") from None


def paths_of(app: Any) -> Paths:
    """The paths ``app`` was built with (:data:`FAST` for an application given none)."""
    return getattr(app, "paths", FAST)


@contextmanager
def _no_cycle_collection():
    """The cyclic garbage collector paused while a log is folded.

    Folding makes and drops a few dicts per event and no reference cycles
    (rows are plain JSON-ready values), so every collection the allocations
    set off finds nothing, yet walks the ever larger set of live rows: about a
    tenth of a replay. Anything cyclic made meanwhile is collected once the
    collector is back (at the end of the fold, even on an error).

    Only on the main thread: the collector is process-wide, and an as-of replay in an API
    request thread must not pause it for the serve loop and the other requests.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
