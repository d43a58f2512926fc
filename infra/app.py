"""The eventsourcing application: command services over the three aggregates.

Each service is short: get, call, save. Cross-aggregate steps (a member
agreement's signing or fee payment moving the member's VIP workflow) save
both aggregates in one atomic ``save``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Sequence

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import Tracking

from domain.base import ERASED, Ctx, DomainError, NotFoundError
from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member
from domain.policy import Policy
from infra.pii import ErasedError, KeyStoreError, PiiCipher
from infra.recorders import Receipt


class DuplicateError(DomainError):
    """An aggregate with that business id already exists."""


class VipApp(Application):
    """Members, contracts and complaints in one event store."""

    name = "vip"

    def __init__(self, policy: Policy, cipher: PiiCipher, env: dict | None = None) -> None:
        super().__init__(env=env)
        self.policy = policy
        self.cipher = cipher
        # Set by every save of this process; the engine reads and clears it to
        # know when to fold the log into its views (other processes' writes it
        # picks up by a forced sync).
        self.log_changed = True
        # What a command did not keep (free text for an erased member): the CLI says so.
        self.notices: list[str] = []

    def save(self, *objs: Any, **kwargs: Any) -> list:
        """The library's save, noting that the log changed."""
        recordings = super().save(*objs, **kwargs)
        self.log_changed = True
        return recordings

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
        """How an upstream input id was first applied, or None (see ``infra.recorders``)."""
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
        """Register a member (or fill in one first seen in an order); profile values are sealed."""
        sealed = {k: self.seal_for(member_id, v, k) for k, v in profile.items() if v is not None}
        member = self.find_member(member_id)
        if member is None:
            member = Member.register(ctx, member_id, sealed, source="crm", input_id=input_id)
        else:
            member.fill_registration(ctx, input_id, sealed)
        self.save(member)
        return member

    def _change_member(self, ctx: Ctx, member_id: str, change: Callable[[Member], Any]) -> Member:
        # get, call, save: every member command below is this with its own call
        member = self.member(member_id)
        change(member)
        self.save(member)
        return member

    def review_member(self, ctx: Ctx, member_id: str) -> Member:
        """The annual tier review (seed 002 §3.1.2); the scheduler runs it on the anniversary."""
        return self._change_member(ctx, member_id, lambda m: m.review(ctx, self.policy))

    def set_override(self, ctx: Ctx, member_id: str, kind: str, tier: str, reason: str,
                     expires_at: datetime) -> Member:
        """Pin the member's tier (``kind="pin"``) or give it a floor (``"floor"``) until ``expires_at``."""
        return self._change_member(ctx, member_id,
                                   lambda m: m.set_override(ctx, kind, tier, reason, expires_at))

    def clear_override(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """Remove the member's manual tier override."""
        return self._change_member(ctx, member_id, lambda m: m.clear_override(ctx, reason))

    def expire_override(self, ctx: Ctx, member_id: str) -> Member:
        """End an override at its expiry (run by the scheduler)."""
        return self._change_member(ctx, member_id, lambda m: m.expire_override(ctx))

    def apply_for_vip(self, ctx: Ctx, member_id: str) -> Member:
        """The member applies for VIP standing (seed 002 §2.2.1)."""
        return self._change_member(ctx, member_id, lambda m: m.apply_for_vip(ctx, self.policy))

    def start_vip_review(self, ctx: Ctx, member_id: str) -> Member:
        """A reviewer starts reviewing the VIP application (§2.2.2)."""
        return self._change_member(ctx, member_id, lambda m: m.start_review(ctx))

    def approve_vip(self, ctx: Ctx, member_id: str) -> Member:
        """Approve the VIP application; the fee due is fixed by the policy (§2.2.2)."""
        return self._change_member(ctx, member_id, lambda m: m.approve(ctx, self.policy))

    def reject_vip(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """Reject the VIP application, with a reason (staff text, not sealed)."""
        return self._change_member(ctx, member_id, lambda m: m.reject(ctx, reason))

    def revoke_vip(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """Cancel the member's VIP status, with a reason (§2.3.2)."""
        return self._change_member(ctx, member_id, lambda m: m.revoke(ctx, reason))

    def terminate_rights(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """End the member's rights for breach (seed 000 §4.3.2)."""
        return self._change_member(ctx, member_id, lambda m: m.terminate_rights(ctx, reason))

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
        """Draft a ``"cooperation"`` or ``"member_agreement"`` contract; every bad term is named."""
        if self._exists(Contract, contract_id):
            raise DuplicateError(f"contract {contract_id} already exists; pick another id")
        contract = Contract.draft(ctx, contract_id, kind, terms)
        self.save(contract)
        return contract

    def sign_contract(self, ctx: Ctx, contract_id: str, party_id: str) -> Contract:
        """One party signs; the last signature makes it effective (and links a member agreement)."""
        contract = self.contract(contract_id)
        contract.sign(ctx, party_id)
        member = self._member_of(contract)
        if member is not None and contract.status == "effective":
            # Seed 002 §2.2.3: the agreement is signed after approval; the
            # last signature links it (nothing is saved if the member is not approved).
            member.record_agreement_signed(ctx, contract_id)
        self.save(contract, member)
        return contract

    def _change_contract(self, ctx: Ctx, contract_id: str,
                         change: Callable[[Contract], Any]) -> Contract:
        # get, call, save; a member agreement's end or renewal moves its member in the same save
        contract = self.contract(contract_id)
        change(contract)
        member = self._follow_agreement(ctx, contract)
        self.save(contract, member)
        return contract

    def complete_milestone(self, ctx: Ctx, contract_id: str, milestone_id: str) -> Contract:
        """Mark a milestone completed."""
        return self._change_contract(ctx, contract_id, lambda k: k.complete_milestone(ctx, milestone_id))

    def mark_milestone_overdue(self, ctx: Ctx, contract_id: str, milestone_id: str) -> Contract:
        """A milestone passed its due date uncompleted (run by the scheduler)."""
        return self._change_contract(ctx, contract_id,
                                     lambda k: k.mark_milestone_overdue(ctx, milestone_id))

    def issue_invoice(self, ctx: Ctx, contract_id: str, invoice_id: str, payer: str, amount_fen: int,
                      currency: str, kind: str, due_at: datetime | None = None) -> Contract:
        """Issue an invoice; ``due_at`` defaults to the contract's payment terms after now."""
        return self._change_contract(ctx, contract_id, lambda k: k.issue_invoice(
            ctx, invoice_id, payer, amount_fen, currency, kind, due_at))

    def mark_invoice_overdue(self, ctx: Ctx, contract_id: str, invoice_id: str) -> Contract:
        """An invoice passed its due date unpaid (run by the scheduler)."""
        return self._change_contract(ctx, contract_id, lambda k: k.mark_invoice_overdue(ctx, invoice_id))

    def propose_amendment(self, ctx: Ctx, contract_id: str, amendment_id: str, changes: dict,
                          kind: str = "amendment") -> Contract:
        """Propose changed terms, an ``"amendment"`` or a ``"supplement"`` (seed 000 §11)."""
        return self._change_contract(ctx, contract_id,
                                     lambda k: k.propose_amendment(ctx, amendment_id, changes, kind))

    def consent_to_amendment(self, ctx: Ctx, contract_id: str, amendment_id: str,
                             party_id: str) -> Contract:
        """A party consents to an amendment; the last consent applies it."""
        return self._change_contract(ctx, contract_id,
                                     lambda k: k.consent_to_amendment(ctx, amendment_id, party_id))

    def record_breach(self, ctx: Ctx, contract_id: str, party_id: str, description: str,
                      compensation_fen: int = 0, currency: str = "CNY") -> Contract:
        """Record a party's breach with the compensation owed (seed 000 §8)."""
        return self._change_contract(ctx, contract_id, lambda k: k.record_breach(
            ctx, party_id, description, compensation_fen, currency))

    def open_dispute(self, ctx: Ctx, contract_id: str, party_id: str, reason: str) -> Contract:
        """A party opens a dispute (seed 000 §9)."""
        return self._change_contract(ctx, contract_id, lambda k: k.open_dispute(ctx, party_id, reason))

    def settle_dispute(self, ctx: Ctx, contract_id: str, outcome: str) -> Contract:
        """Settle the open dispute."""
        return self._change_contract(ctx, contract_id, lambda k: k.settle_dispute(ctx, outcome))

    def terminate_contract(self, ctx: Ctx, contract_id: str, reason: str,
                           settlement: dict | None = None) -> Contract:
        """Terminate with a reason and an optional settlement ``{"amount_fen", "payer", "payee"}``
        (seed 000 §10); a member agreement's termination lapses its member."""
        return self._change_contract(ctx, contract_id, lambda k: k.terminate(ctx, reason, settlement))

    def expire_contract(self, ctx: Ctx, contract_id: str) -> Contract:
        """The contract reached its validity end (run by the scheduler); lapses an agreement's member."""
        return self._change_contract(ctx, contract_id, lambda k: k.expire(ctx))

    def renew_contract(self, ctx: Ctx, contract_id: str, months: int | None = None) -> Contract:
        """Renew for ``months`` (default: the terms' validity); a member agreement's renewal
        reactivates its member and invoices the annual fee (seed 002 §12.3)."""
        return self._change_contract(ctx, contract_id, lambda k: k.renew(ctx, months))

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

    def pay_invoice(self, ctx: Ctx, contract_id: str, invoice_id: str, amount_fen: int,
                    currency: str, payment_id: str) -> Contract:
        """Record a payment against an invoice; a membership fee paid moves the member on."""
        return self._settle(ctx, contract_id, invoice_id, "receive_payment", lambda k: k.receive_payment(
            ctx, invoice_id, amount_fen=amount_fen, currency=currency, payment_id=payment_id))

    def grant_discount(self, ctx: Ctx, contract_id: str, invoice_id: str, amount_fen: int,
                       reason: str) -> Contract:
        """Grant a discount on an invoice (seed 002 §6.3); counts like a payment for a membership fee."""
        return self._settle(ctx, contract_id, invoice_id, "grant_discount", lambda k: k.grant_discount(
            ctx, invoice_id, amount_fen=amount_fen, reason=reason))

    def waive_invoice(self, ctx: Ctx, contract_id: str, invoice_id: str, reason: str) -> Contract:
        """Waive what is still owed on an invoice (seed 002 §6.3)."""
        return self._settle(ctx, contract_id, invoice_id, "waive",
                            lambda k: k.waive(ctx, invoice_id, reason=reason))

    def _settle(self, ctx: Ctx, contract_id: str, invoice_id: str, how: str,
                change: Callable[[Contract], Any]) -> Contract:
        # ``how`` names the settlement in the member's fee reference; it is
        # recorded in events, so its values never change.
        contract = self.contract(contract_id)
        before = contract.outstanding(invoice_id)
        change(contract)
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
        """File a complaint: clocks start with the tier's budgets scaled by the severity's factor;
        the description is sealed with the member's key."""
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

    def _change_complaint(self, ctx: Ctx, complaint_id: str,
                          change: Callable[[Complaint], Any]) -> Complaint:
        # get, call, save: every complaint command below is this with its own call
        complaint = self.complaint(complaint_id)
        change(complaint)
        self.save(complaint)
        return complaint

    def _calendar(self, complaint: Complaint):
        return self.policy.calendar(complaint.calendar_id)

    def _seal_reason(self, complaint: Complaint, reason: str) -> str:
        # A reason is often the customer's own words: sealed like the description.
        return self.seal_for(complaint.member_id, reason, "reason") if reason else reason

    def acknowledge_complaint(self, ctx: Ctx, complaint_id: str) -> Complaint:
        """The first response: stops the first-response clock."""
        return self._change_complaint(ctx, complaint_id,
                                      lambda c: c.acknowledge(ctx, self._calendar(c)))

    def assign_complaint(self, ctx: Ctx, complaint_id: str, assignee: str) -> Complaint:
        """Assign the complaint to an agent."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.assign(ctx, assignee))

    def escalate_complaint(self, ctx: Ctx, complaint_id: str, reason: str) -> Complaint:
        """Escalate by hand (breaches escalate by themselves); the reason is sealed."""
        return self._change_complaint(ctx, complaint_id,
                                      lambda c: c.escalate(ctx, self._seal_reason(c, reason)))

    def wait_for_customer(self, ctx: Ctx, complaint_id: str, reason: str = "") -> Complaint:
        """Wait for the customer: the clocks pause, keeping the time used; the reason is sealed."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.wait_for_customer(
            ctx, self._seal_reason(c, reason), self._calendar(c)))

    def record_customer_reply(self, ctx: Ctx, complaint_id: str) -> Complaint:
        """The customer answered: the paused clocks resume."""
        return self._change_complaint(ctx, complaint_id,
                                      lambda c: c.customer_replied(ctx, self._calendar(c)))

    def rate_complaint(self, ctx: Ctx, complaint_id: str, score: int) -> Complaint:
        """The customer's satisfaction, a whole number 1-5 (seed 002 §5.3)."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.rate(ctx, score))

    def close_complaint(self, ctx: Ctx, complaint_id: str) -> Complaint:
        """Close a resolved complaint."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.close(ctx))

    def reopen_complaint(self, ctx: Ctx, complaint_id: str, reason: str) -> Complaint:
        """Reopen: the resolution clock resumes where it stopped; the reason is sealed."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.reopen(
            ctx, self._seal_reason(c, reason), self._calendar(c)))

    def mark_complaint_at_risk(self, ctx: Ctx, complaint_id: str, clock: str) -> Complaint:
        """A clock reached its at-risk share (run by the scheduler)."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.mark_at_risk(ctx, clock))

    def mark_complaint_breached(self, ctx: Ctx, complaint_id: str, clock: str) -> Complaint:
        """A clock reached its deadline (run by the scheduler); escalates."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.mark_breached(ctx, clock))

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
    from datetime import timezone
    return datetime.now(timezone.utc)
