"""Contract services: drafting, signing, milestones, invoices and settlement, amendments, endings.

A member agreement's signing, fee payment, expiry, termination and renewal move
the member in the same atomic save.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from domain.base import Ctx, DuplicateError
from domain.contract import Contract
from domain.member import Member


class ContractServices:
    """Typed contract commands on the unit of work (:class:`infra.service_layer.uow.UnitOfWork`: get, call, save)."""


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
        self.save(contract, self.provide_benefits(ctx, member))
        return contract

    def _change_contract(self, ctx: Ctx, contract_id: str,
                         change: Callable[[Contract], Any]) -> Contract:
        # get, call, save; a member agreement's end or renewal moves its member in the same save
        contract = self.contract(contract_id)
        change(contract)
        member = self._follow_agreement(ctx, contract)
        self.save(contract, self.provide_benefits(ctx, member))
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
        description = self._agreement_text(contract_id, description, "breach description")
        return self._change_contract(ctx, contract_id, lambda k: k.record_breach(
            ctx, party_id, description, compensation_fen, currency))

    def open_dispute(self, ctx: Ctx, contract_id: str, party_id: str, reason: str) -> Contract:
        """A party opens a dispute (seed 000 §9)."""
        reason = self._agreement_text(contract_id, reason, "dispute reason")
        return self._change_contract(ctx, contract_id, lambda k: k.open_dispute(ctx, party_id, reason))

    def settle_dispute(self, ctx: Ctx, contract_id: str, outcome: str) -> Contract:
        """Settle the open dispute."""
        outcome = self._agreement_text(contract_id, outcome, "dispute outcome")
        return self._change_contract(ctx, contract_id, lambda k: k.settle_dispute(ctx, outcome))

    def terminate_contract(self, ctx: Ctx, contract_id: str, reason: str,
                           settlement: dict | None = None) -> Contract:
        """Terminate with a reason and an optional settlement ``{"amount_fen", "payer", "payee"}``
        (seed 000 §10); a member agreement's termination lapses its member."""
        reason = self._agreement_text(contract_id, reason, "termination reason")
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
        reason = self._agreement_text(contract_id, reason, "discount reason")
        return self._settle(ctx, contract_id, invoice_id, "grant_discount", lambda k: k.grant_discount(
            ctx, invoice_id, amount_fen=amount_fen, reason=reason))

    def waive_invoice(self, ctx: Ctx, contract_id: str, invoice_id: str, reason: str) -> Contract:
        """Waive what is still owed on an invoice (seed 002 §6.3)."""
        reason = self._agreement_text(contract_id, reason, "waiver reason")
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
        self.save(contract, self.provide_benefits(ctx, member))
        return contract

    def _agreement_text(self, contract_id: str, text: str, what: str) -> str:
        """Free text on a member's own agreement is about that member: sealed with their key
        (:meth:`seal_text`); on a contract between companies it stays as given."""
        contract = self.contract(contract_id)
        if contract.kind != "member_agreement":
            return text
        return self.seal_text(contract.terms["member_id"], text, what)

    def _member_of(self, contract: Contract) -> Member | None:
        if contract.kind != "member_agreement":
            return None
        return self.find_member(contract.terms["member_id"])
