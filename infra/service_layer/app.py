"""The eventsourcing application: command services over the three aggregates.

Each service is short: get, call, save. Cross-aggregate steps (a member
agreement's signing or fee payment moving the member's VIP workflow) save
both aggregates in one atomic ``save``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.persistence import JSONTranscoder, Tracking, Transcoder

from domain.base import ERASED, NotFoundError
from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member
from domain.policy import Policy
from infra.service_layer.batch import AggregateMap, UnitOfWork
from infra.service_layer.complaints import ComplaintServices
from infra.service_layer.contracts import ContractServices
from infra.service_layer.members import MemberServices
from infra.service_layer.prefetch import load_many
from infra.service_layer.transcoder import FastJSONTranscoder
from infra.stores.pii import ErasedError, KeyStoreError, PiiCipher
from infra.stores.recorders import Receipt



class VipApp(MemberServices, ContractServices, ComplaintServices, Application):
    """Members, contracts and complaints in one event store."""

    name = "vip"

    def __init__(self, policy: Policy, cipher: PiiCipher, env: dict | None = None,
                 snapshot_interval: int = 0) -> None:
        # Every ``snapshot_interval``-th member version is snapshotted (VIP_SNAPSHOT_INTERVAL), so
        # a cold member loads from its snapshot and fewer than that many events. Members only:
        # they are the aggregates with long histories; Contract state holds a set (payments)
        # the library's JSON transcoder does not encode.
        if snapshot_interval > 0:
            self.snapshotting_intervals = {Member: snapshot_interval}
            env = {**(env or {}), "IS_SNAPSHOTTING_ENABLED": "y"}
        super().__init__(env=env)
        self.policy = policy
        self.cipher = cipher
        # Set by every save of this process; the engine reads and clears it to
        # know when to fold the log into its views (other processes' writes it
        # picks up by a forced sync).
        self.log_changed = True
        # What a command did not keep (free text for an erased member): the CLI says so.
        self.notices: list[str] = []
        # The open batch (see infra.service_layer.batch), and its write-back map of aggregates.
        self.uow: UnitOfWork | None = None
        self.aggregates: AggregateMap = AggregateMap()

    def save(self, *objs: Any, **kwargs: Any) -> list:
        """The library's save, noting that the log changed; in a batch, collected for its commit."""
        if self.uow is not None:
            self.uow.collect(objs, kwargs.pop("receipts", ()))
            return []
        for obj in objs:  # saved outside a batch: the map's copy is behind now
            if obj is not None:
                self.aggregates.pop(obj.id, None)
        recordings = super().save(*objs, **kwargs)
        self.log_changed = True
        return recordings

    def record_batch(self, processing: ProcessingEvent) -> list:
        """Record a batch's events, receipts and position in one transaction; the recordings."""
        recordings = self._record(processing)
        self._take_snapshots(processing)
        return recordings

    def _take_snapshots(self, processing: ProcessingEvent) -> None:
        """Snapshot, from the aggregates in hand, each one whose version crossed its interval.

        The library's version reads the aggregate back from the store and replays up to an
        interval of events to snapshot it: in a long history that was half of all aggregate
        mutations of an ingest. The aggregates in hand hold exactly that state (a refused step
        evicts what it touched), at their latest version.
        """
        if not (self.snapshots and self.snapshotting_intervals):
            return
        due: dict = {}
        for event in processing.events:
            aggregate = processing.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval and event.originator_version % interval == 0:
                due[aggregate.id] = aggregate
        snapshots = []
        for aggregate in due.values():
            snapshot = getattr(type(aggregate), "Snapshot", type(self).snapshot_class).take(aggregate)
            snapshots.append(snapshot)
        if snapshots:
            self.snapshots.put(snapshots)

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

    def save_tracked(self, tracking: Tracking | None, *aggregates: Any,
                     receipts: Sequence[Receipt] = ()) -> None:
        """Save aggregates, and record an input position and input receipts in the same transaction.

        In a batch, all of this waits for the batch's commit."""
        if self.uow is not None:
            self.uow.collect(aggregates, receipts, tracking)
            return
        if tracking is None:
            if aggregates:
                self.save(*aggregates, receipts=receipts)
            return
        processing = ProcessingEvent(tracking=tracking)
        processing.collect_events(*aggregates, receipts=receipts)
        self._record(processing)
        self._take_snapshots(processing)  # the library's save() does this; _record alone does not
        self.log_changed = True

    def receipt(self, input_id: str) -> Receipt | None:
        """How an upstream input id was first applied, or None (see ``infra.stores.recorders``)."""
        if self.uow is not None:
            if input_id in self.uow.seen:
                return self.uow.seen[input_id]
            if input_id in self.uow.prior:
                return self.uow.prior[input_id]
        return self.recorder.receipt(input_id)

    def prefetch_receipts(self, input_ids: list[str]) -> None:
        """Look up a whole batch's input ids in one query (a writer that records one of them
        before this batch commits makes the commit conflict, and the batch is redone)."""
        if self.uow is not None:
            found = self.recorder.receipts(input_ids)
            self.uow.prior.update({i: found.get(i) for i in input_ids})

    def prefetch_members(self, member_ids: list[str]) -> None:
        """Load a batch's members that are not in the write-back map in two queries, not two each
        (see ``infra.service_layer.prefetch``); a store without the bulk read loads them one by one."""
        uow = self.uow
        if uow is None:
            return
        wanted = [i for i in map(Member.create_id, dict.fromkeys(member_ids)) if i not in uow.aggregates]
        if wanted:
            uow.loaded.update(load_many(self, wanted, _project))

    # -- lookups ------------------------------------------------------------------

    def _get(self, cls: type, business_id: str):
        aggregate_id = cls.create_id(business_id)
        try:
            if self.uow is not None:
                return self.uow.get(aggregate_id, lambda: self._load(aggregate_id), AggregateNotFoundError)
            return self._load(aggregate_id)
        except AggregateNotFoundError:
            kind = cls.__name__.lower()
            raise NotFoundError(f"no {kind} {business_id!r}; check the id "
                                f"(`vip tiers`, `vip breaches` or `vip ledger` list what exists)") from None

    def _load(self, aggregate_id):
        return self.repository.get(aggregate_id, projector_func=_project)

    def member(self, member_id: str) -> Member:
        return self._get(Member, member_id)

    def contract(self, contract_id: str) -> Contract:
        return self._get(Contract, contract_id)

    def complaint(self, complaint_id: str) -> Complaint:
        return self._get(Complaint, complaint_id)

    def find_member(self, member_id: str) -> Member | None:
        try:
            return self.member(member_id)
        except NotFoundError:
            return None

    # -- personal data ---------------------------------------------------------------

    def is_erased(self, member_id: str) -> bool:
        """Erased per the event log (the authority), or per the key store.

        A key found for a member the log says was erased (a key store
        restored from before the erasure) is destroyed again.
        """
        member = self.find_member(member_id)
        if member is not None and member.erased:
            try:
                if self.cipher.keys.key(member_id) is not None:
                    self.cipher.keys.destroy(member_id)
            except KeyStoreError:
                pass  # nothing personal is read or written for an erased member
            return True
        return self.cipher.keys.is_destroyed(member_id)

    def seal_for(self, member_id: str, value: str | None, what: str = "text") -> str | None:
        """Seal free text given for a member; for an erased member it is not kept (a notice says so)."""
        if value is None or value == "":
            return value
        if not self.is_erased(member_id):
            try:
                return self.cipher.seal(member_id, value)
            except ErasedError:
                pass
        self.notices.append(f"member {member_id}'s personal data was erased: the {what} given was not "
                            f"kept (stored as {ERASED})")
        return ERASED

    def _exists(self, cls: type, business_id: str) -> bool:
        try:
            self._get(cls, business_id)
            return True
        except NotFoundError:
            return False


def _project(aggregate, events):
    # The library's projector asserts a runtime Protocol per event, which
    # costs a fifth of ingest; our events are all mutators by construction.
    # Kept after bounded state and snapshots (issue 9): with the library's projector and
    # deepcopy (no Member.__deepcopy__) ingest took 1,470-1,500 us CPU per order against
    # 940 us with these two (bench.run, 6,000 orders over 120 members, 2 cores).
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


def utc_now() -> datetime:
    """The wall clock, read only at the edge (CLI, live scheduler)."""
    return datetime.now(timezone.utc)
