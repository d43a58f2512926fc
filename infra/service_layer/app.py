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
from eventsourcing.persistence import Tracking

from domain.base import ERASED, Ctx, DomainError, NotFoundError
from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member
from domain.policy import Policy
from infra.stores.pii import ErasedError, KeyStoreError, PiiCipher
from infra.stores.recorders import Receipt


class DuplicateError(DomainError):
    """An aggregate with that business id already exists."""


class VipApp(Application):
    """Members, contracts and complaints in one event store."""

    name = "vip"

    def __init__(self, policy: Policy, cipher: PiiCipher, env: dict | None = None) -> None:
        super().__init__(env=env)
        self.policy = policy
        self.cipher = cipher
        self.log_changed = True  # set on every save; the engine reads and clears it
        # What a command did not keep (free text for an erased member): the CLI says so.
        self.notices: list[str] = []

    def _notify(self, recordings) -> None:
        self.log_changed = True

    def construct_recorder(self):
        # A process recorder stores tracking positions atomically with events,
        # which the Kafka consumers use for exactly-once effect.
        return self.factory.process_recorder()

    def save_tracked(self, tracking: Tracking | None, *aggregates: Any,
                     receipts: Sequence[Receipt] = ()) -> None:
        """Save aggregates, and record an input position and input receipts in the same transaction."""
        if tracking is None:
            if aggregates:
                self.save(*aggregates, receipts=receipts)
            return
        processing = ProcessingEvent(tracking=tracking)
        processing.collect_events(*aggregates, receipts=receipts)
        self._record(processing)
        self.log_changed = True

    def receipt(self, input_id: str) -> Receipt | None:
        """How an upstream input id was first applied, or None (see ``infra.stores.recorders``)."""
        return self.recorder.receipt(input_id)

    # -- lookups ------------------------------------------------------------------

    def _get(self, cls: type, business_id: str):
        try:
            return self.repository.get(cls.create_id(business_id), projector_func=_project)
        except AggregateNotFoundError:
            kind = cls.__name__.lower()
            raise NotFoundError(f"no {kind} {business_id!r}; check the id "
                                f"(`vip history {kind} ID` lists what exists)") from None

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

    # -- members -------------------------------------------------------------------

    def register_member(self, ctx: Ctx, input_id: str, member_id: str, profile: dict) -> Member:
        sealed = {k: self.seal_for(member_id, v, k) for k, v in profile.items() if v is not None}
        member = self.find_member(member_id)
        if member is None:
            member = Member.register(ctx, member_id, sealed, source="crm", input_id=input_id)
        else:
            member.fill_registration(ctx, input_id, sealed)
        self.save(member)
        return member

    def member_command(self, member_id: str, command: str, *args: Any,
                       tracking: Tracking | None = None, **kwargs: Any) -> Member:
        """Run one Member command by name and save (get, call, save)."""
        member = self.member(member_id)
        getattr(member, command)(*args, **kwargs)
        self.save_tracked(tracking, member)
        return member

    def erase_member(self, ctx: Ctx, member_id: str, input_id: str = "") -> Member:
        """Destroy the member's key, and note the erasure in the log."""
        member = self.member(member_id)
        self.cipher.keys.destroy(member_id)
        if not member.erased:
            member.record_erasure(ctx, input_id)
            self.save(member)
        return member

    # -- contracts -----------------------------------------------------------------

    def draft_contract(self, ctx: Ctx, contract_id: str, kind: str, terms: dict) -> Contract:
        if self._exists(Contract, contract_id):
            raise DuplicateError(f"contract {contract_id} already exists; pick another id")
        contract = Contract.draft(ctx, contract_id, kind, terms)
        self.save(contract)
        return contract

    def sign_contract(self, ctx: Ctx, contract_id: str, party_id: str) -> Contract:
        contract = self.contract(contract_id)
        contract.sign(ctx, party_id)
        member = self._member_of(contract)
        if member is not None and contract.status == "effective":
            # Seed 002 §2.2.3: the agreement is signed after approval; the
            # last signature links it (nothing is saved if the member is not approved).
            member.record_agreement_signed(ctx, contract_id)
        self.save(contract, member)
        return contract

    def contract_command(self, contract_id: str, command: str, ctx: Ctx, *args: Any,
                         **kwargs: Any) -> Contract:
        """Run one Contract command; a member agreement's end or renewal moves its member."""
        contract = self.contract(contract_id)
        getattr(contract, command)(ctx, *args, **kwargs)
        member = self._follow_agreement(ctx, contract)
        self.save(contract, member)
        return contract

    def _follow_agreement(self, ctx: Ctx, contract: Contract) -> Member | None:
        """Seed 002 §9, §12: the VIP standing lives as long as the member agreement.

        Expiry without renewal and termination make the standing lapsed; a
        renewal makes it active again and charges the annual fee of the tier
        held then, as an invoice on the agreement (like the first fee). Run
        in the same save as the contract's change, so both or neither happen.
        """
        member = self._member_of(contract)
        if member is None:
            return None
        for change in contract.pending_events:
            if isinstance(change, (Contract.ContractExpired, Contract.ContractTerminated)):
                why = "expired without renewal" if isinstance(change, Contract.ContractExpired) \
                    else "terminated"
                member.lapse(ctx, contract.contract_id, f"member agreement {contract.contract_id} {why}")
            elif isinstance(change, Contract.ContractRenewed):
                fee = member.renew_standing(ctx, contract.contract_id, self.policy)
                if fee:
                    contract.issue_invoice(ctx, f"renewal-{contract.renewals}-fee", member.member_id,
                                           fee, self.policy.tiers.currency, "membership_fee")
        return member

    def settle_invoice(self, ctx: Ctx, contract_id: str, invoice_id: str, how: str,
                       **kwargs: Any) -> Contract:
        """Payment, discount or waiver; a membership fee settled moves the member on."""
        contract = self.contract(contract_id)
        before = contract.outstanding(invoice_id)
        getattr(contract, how)(ctx, invoice_id, **kwargs)
        settled = before - contract.outstanding(invoice_id)
        member = self._member_of(contract)
        invoice = contract.invoices[invoice_id]
        if member is not None and invoice["kind"] == "membership_fee" and settled > 0 \
                and member.vip_status == "approved":
            member.record_fee_paid(ctx, settled, invoice["currency"], f"{contract_id}/{invoice_id}/{how}",
                                   self.policy)
        self.save(contract, member)
        return contract

    def _member_of(self, contract: Contract) -> Member | None:
        if contract.kind != "member_agreement":
            return None
        return self.find_member(contract.terms["member_id"])

    # -- complaints ----------------------------------------------------------------

    def file_complaint(self, ctx: Ctx, complaint_id: str, member_id: str, channel: str,
                       category: str, severity: str, description: str) -> Complaint:
        if self._exists(Complaint, complaint_id):
            raise DuplicateError(f"complaint {complaint_id} already exists; pick another id")
        member = self.member(member_id)
        tier = member.effective_tier if member.has_benefits else "member"
        sealed = self.seal_for(member_id, description, "description")
        complaint = Complaint.file(ctx, complaint_id, member_id, channel, category, severity,
                                   sealed, tier, self.policy)
        self.save(complaint)
        return complaint

    def resolve_complaint(self, ctx: Ctx, complaint_id: str, resolution: str) -> Complaint:
        """The resolution text may identify the customer, so it is sealed like the description."""
        complaint = self.complaint(complaint_id)
        sealed = self.seal_for(complaint.member_id, resolution, "resolution")
        complaint.resolve(ctx, sealed, self.policy.calendar(complaint.calendar_id))
        self.save(complaint)
        return complaint

    def complaint_command(self, complaint_id: str, command: str, *args: Any,
                          calendar: bool = False, **kwargs: Any) -> Complaint:
        """Run one Complaint command; a ``reason`` (often the customer's words) is sealed."""
        complaint = self.complaint(complaint_id)
        if kwargs.get("reason"):
            kwargs["reason"] = self.seal_for(complaint.member_id, kwargs["reason"], "reason")
        if calendar:
            kwargs["calendar"] = self.policy.calendar(complaint.calendar_id)
        getattr(complaint, command)(*args, **kwargs)
        self.save(complaint)
        return complaint

    def _exists(self, cls: type, business_id: str) -> bool:
        try:
            self.repository.get(cls.create_id(business_id))
            return True
        except AggregateNotFoundError:
            return False


def _project(aggregate, events):
    # The library's projector asserts a runtime Protocol per event, which
    # costs a fifth of ingest; our events are all mutators by construction.
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


def utc_now() -> datetime:
    """The wall clock, read only at the edge (CLI, live scheduler)."""
    return datetime.now(timezone.utc)
