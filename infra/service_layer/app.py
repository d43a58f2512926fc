"""The eventsourcing application over the three aggregates: committed reads, batch records.

The command services (get, call, save) run on the unit of work
(:mod:`infra.service_layer.uow`), which the engine commits through
:meth:`VipApp.record_batch` in one transaction.
"""
from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timezone

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import JSONTranscoder, Transcoder

from domain.member import Member
from domain.policy import Policy
from infra.service_layer.fastpath import FAST, Paths
from infra.service_layer.lookups import Lookups
from infra.service_layer.transcoder import FastJSONTranscoder
from infra.stores.pii import PiiCipher
from infra.stores.recorders import Receipt

log = logging.getLogger("vip.app")



class VipApp(Lookups, Application):
    """Members, contracts and complaints in one event store: the library's application.

    Its reads are committed state; every change goes through a unit of work
    (:class:`infra.service_layer.uow.UnitOfWork`) that the engine opens, hands to
    handlers and commits with :meth:`record_batch`."""

    name = "vip"

    def __init__(self, policy: Policy, cipher: PiiCipher, env: dict | None = None,
                 snapshot_interval: int = 0, paths: Paths = FAST) -> None:
        # Every ``snapshot_interval``-th member version is snapshotted (VIP_SNAPSHOT_INTERVAL), so
        # a cold member loads from its snapshot and fewer than that many events. Members only:
        # they are the aggregates with long histories; Contract state holds a set (payments)
        # the library's JSON transcoder does not encode.
        if snapshot_interval > 0:
            self.snapshotting_intervals = {Member: snapshot_interval}
            env = {**(env or {}), "IS_SNAPSHOTTING_ENABLED": "y"}
        # Where we go around the library for speed, or the library's own path (infra.service_layer.fastpath)
        self.paths = paths
        super().__init__(env=env)
        self.policy = policy
        self.cipher = cipher
        # What a command did not keep (free text for an erased member): the CLI says so. Bounded:
        # only the CLI clears it, and the serve loop and API engines live long.
        self.notices: deque[str] = deque(maxlen=100)

    def save(self, *objs, **kwargs):
        """Refused: every change is recorded by a unit of work (``Engine.unit_of_work``,
        ``handlers.handle``), with its input receipts and position and on its timelines."""
        raise RuntimeError("VipApp.save records nothing: run the change through a unit of work "
                           "(Engine.unit_of_work or infra.service_layer.handlers.handle)")

    def record_batch(self, processing: ProcessingEvent) -> list:
        """Record a batch's events, receipts and position in one transaction, then take the
        snapshots due (``paths.take_snapshots``); the recordings."""
        recordings = self._record(processing)
        try:
            self.paths.take_snapshots(self, processing)
        except Exception:
            # The events are recorded: a snapshot is only a shortcut for later loads, so failing
            # to write one must not make a saved command look failed (and be sent again).
            log.exception("snapshots after a recorded batch could not be written; loads replay instead")
        return recordings

    def construct_transcoder(self) -> Transcoder:
        # The library's JSON transcoder (or one named by TRANSCODER_TOPIC), with orjson doing its
        # work when it is the library's: the same bytes, a third of the cost of mapping an event.
        transcoder = self.factory.transcoder()
        if type(transcoder) is JSONTranscoder:
            transcoder = FastJSONTranscoder()
        if isinstance(transcoder, JSONTranscoder):
            self.register_transcodings(transcoder)
        return transcoder

    def construct_recorder(self):
        # A process recorder stores tracking positions atomically with events,
        # which the Kafka consumers use for exactly-once effect.
        return self.factory.process_recorder()

    # -- committed state ------------------------------------------------------------------

    def load(self, aggregate_id):
        """One aggregate's committed state (raises the library's AggregateNotFoundError)."""
        return self.repository.get(aggregate_id, projector_func=self.paths.project)

    def load_many(self, aggregate_ids: list) -> dict:
        """``{id: aggregate or None}`` in bulk where the store and paths allow, else ``{}`` (load one
        by one; see ``infra.service_layer.fastpath``)."""
        return self.paths.load_many(self, aggregate_ids)

    def receipt(self, input_id: str) -> Receipt | None:
        """How an upstream input id was first applied, or None (see ``infra.stores.recorders``)."""
        return self.recorder.receipt(input_id)

    def _load(self, aggregate_id):
        return self.load(aggregate_id)


def utc_now() -> datetime:
    """The wall clock, read only at the edge (CLI, live scheduler)."""
    return datetime.now(timezone.utc)
