"""The unit of work handed to every handler: the aggregates it loads, the changes it collects.

A handler gets one :class:`UnitOfWork` (``handler(command, uow, ctx)``) and
runs the typed application services on it (``uow.apply_for_vip(ctx, ...)``):
they get aggregates from it (the write-back map first, the store after) and
``save`` them into it. Nothing is recorded until the engine commits the unit
of work: its events, the input receipts and the tracking position go to the
event store in ONE transaction (``VipApp.record_batch``); a conflict with
another writer is retried on fresh state in one place
(:meth:`infra.service_layer.units.UnitsOfWork.retrying`, the engine's).

The application (:class:`~infra.service_layer.app.VipApp`) stays the
library's: its ``save`` is the library's save, its reads are committed state.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Tracking

from domain.base import ERASED
from domain.member import Member
from infra.service_layer.batch import Batch
from infra.service_layer.complaints import ComplaintServices
from infra.service_layer.contracts import ContractServices
from infra.service_layer.lookups import Lookups
from infra.service_layer.members import MemberServices
from infra.stores.pii import ErasedError, KeyStoreError
from infra.stores.recorders import Receipt

if TYPE_CHECKING:
    from infra.service_layer.app import VipApp


class UnitOfWork(MemberServices, ContractServices, ComplaintServices, Lookups, Batch):
    """One batch of steps (commands, inputs, fired timers) over the application's store."""

    def __init__(self, app: "VipApp", aggregates: dict, limit: int = 20000) -> None:
        super().__init__(aggregates, limit)
        self.app = app

    @property
    def policy(self):
        return self.app.policy

    @property
    def cipher(self):
        return self.app.cipher

    # -- aggregates -------------------------------------------------------------------

    def _load(self, aggregate_id):
        # The write-back map first (what this unit of work and the ones before it left), then the store.
        return self.fetch(aggregate_id, lambda: self.app.load(aggregate_id), AggregateNotFoundError)

    def save(self, *aggregates: Any, receipts: Sequence[Receipt] = ()) -> None:
        """Keep the aggregates' new events (and input receipts) for the commit."""
        self.collect(aggregates, receipts)

    def save_tracked(self, tracking: Tracking | None, *aggregates: Any,
                     receipts: Sequence[Receipt] = ()) -> None:
        """Keep the aggregates' new events, input receipts and an input position for the commit."""
        self.collect(aggregates, receipts, tracking)

    # -- input receipts ---------------------------------------------------------------

    def receipt(self, input_id: str) -> Receipt | None:
        """How an upstream input id was first applied (in this unit of work or before), or None."""
        if input_id in self.seen:
            return self.seen[input_id]
        if input_id in self.prior:
            return self.prior[input_id]
        return self.app.recorder.receipt(input_id)

    def prefetch_receipts(self, input_ids: Iterable[str]) -> None:
        """Look up many input ids in one query (a writer that records one of them before this
        unit of work commits makes the commit conflict, and it is redone)."""
        input_ids = list(input_ids)
        found = self.app.recorder.receipts(input_ids)
        self.prior.update({i: found.get(i) for i in input_ids})

    def prefetch_members(self, member_ids: Iterable[str]) -> None:
        """Load the members not in the write-back map in bulk where the store allows
        (``VipApp.load_many``); otherwise they load one by one when a step gets them."""
        wanted = [i for i in map(Member.create_id, dict.fromkeys(member_ids)) if i not in self.aggregates]
        if wanted:
            self.loaded.update(self.app.load_many(wanted))

    # -- personal data ------------------------------------------------------------------

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
        self.app.notices.append(f"member {member_id}'s personal data was erased: the {what} given was "
                                f"not kept (stored as {ERASED})")
        return ERASED

    # -- committing -------------------------------------------------------------------

    def commit(self) -> list:
        """Record the collected events, receipts and position in one transaction; the recordings."""
        return self.record(self.app)
