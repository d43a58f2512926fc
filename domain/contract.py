"""The Contract aggregate: cooperation contracts (seed 000) and member agreements (seed 002).

Drafted with terms → signed by each party → effective (seed 000 §1.3: from
both signatures, valid one year) → milestones (§3.2), invoices, payments,
discounts and waivers (§6, seed 002 §6) → amendments with both parties'
consent (§11) → breach with compensation (§8) → dispute (§9) → terminated
with settlement (§10), expired, or renewed (seed 002 §12.3).
"""
from __future__ import annotations

from copy import deepcopy
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Ctx, DomainError, VipAggregate, aggregate_id, command, parse_instant, require_aware
from domain.claims import CLAIM_KINDS, add_claim, claim_problem
from domain.deadlines import missed
from domain.months import DEFAULT_ZONE, add_months
from domain.terms import KINDS as TERMS_KINDS, money_problem, settlement_problem, terms_problems

KINDS = TERMS_KINDS  # one list, kept with the terms rules
INVOICE_KINDS = ("membership_fee", "service_fee", "settlement", "compensation")
LIVE = ("effective", "disputed")


class ContractError(DomainError):
    """A contract command was refused."""


class TermsError(ContractError):
    """The contract terms are incomplete or inconsistent."""


def check_terms(kind: str, terms: dict) -> None:
    """Refuse terms that could not be run: every problem named, with how to fix it."""
    problems = terms_problems(kind, terms)
    if problems:
        raise TermsError("; ".join(problems))


class Contract(VipAggregate):
    """An agreement between two parties, run from draft to its end."""

    KEY = "contract_id"

    @staticmethod
    def create_id(contract_id: str, **_: object) -> UUID:
        return aggregate_id("contract", contract_id)

    @classmethod
    def draft(cls, ctx: Ctx, contract_id: str, kind: str, terms: dict) -> "Contract":
        check_terms(kind, terms)
        return cls(timestamp=ctx.at, meta=ctx.meta(contract_id), contract_id=contract_id, kind=kind,
                   terms=terms)

    @event("ContractDrafted")
    def __init__(self, contract_id: str, kind: str, terms: dict, timestamp: datetime,
                 meta: dict) -> None:
        self.contract_id = contract_id
        self.kind = kind
        self.terms = deepcopy(terms)  # never share state with the event object
        self.terms_version = 1
        self.status = "draft"
        self.signed_by: dict[str, datetime] = {}
        self.effective_at: datetime | None = None
        self.valid_until: datetime | None = None
        self.milestones: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.payments: set[str] = set()
        self.renewed_months = 0
        self.renewals = 0
        self.amendments: dict[str, dict] = {}
        self.breaches: list[dict] = []
        # Compensation and settlements booked but not yet invoiced (domain.claims).
        self.claims: dict[str, int] = {}

    @property
    def party_ids(self) -> list[str]:
        return [p["id"] for p in self.terms["parties"]]

    # -- signing and effect -------------------------------------------------------

    @command
    def sign(self, ctx: Ctx, party_id: str) -> None:
        """Each party signs once; the contract takes effect at the last signature."""
        if self.status != "draft":
            raise ContractError(f"contract {self.contract_id} is {self.status}; only drafts are signed")
        self._require_party(party_id)
        if party_id in self.signed_by:
            raise ContractError(f"party {party_id} already signed contract {self.contract_id}")
        self._signed(party_id=party_id, timestamp=ctx.at)
        if set(self.signed_by) == set(self.party_ids):
            self._became_effective(ctx.at)

    @event("ContractSigned")
    def _signed(self, party_id: str, timestamp: datetime) -> None:
        self.signed_by[party_id] = timestamp

    def _became_effective(self, at: datetime) -> None:
        months = self.terms.get("validity_months", 12)
        zone = self.terms.get("zone", DEFAULT_ZONE)
        self._effective(effective_at=at, valid_until=add_months(at, months, zone),
                        milestones=self._schedule(self.terms, at, zone))

    @staticmethod
    def _schedule(terms: dict, effective_at: datetime, zone: str) -> dict:
        """Seed 000 §3.2: milestone due dates from explicit dates or months after effect."""
        milestones = {}
        for m in terms.get("milestones", []):
            due = _instant(m["due_at"]) if m.get("due_at") else add_months(effective_at, m["due_months"], zone)
            milestones[m["id"]] = {"title": m.get("title", m["id"]), "due_at": due, "status": "pending"}
        return milestones

    @event("ContractBecameEffective")
    def _effective(self, effective_at: datetime, valid_until: datetime, milestones: dict) -> None:
        self.status = "effective"
        self.effective_at = effective_at
        self.valid_until = valid_until
        self.milestones = deepcopy(milestones)

    # -- milestones -----------------------------------------------------------------

    @command
    def complete_milestone(self, ctx: Ctx, milestone_id: str) -> None:
        self._require_live("complete a milestone")
        milestone = self._milestone(milestone_id)
        if milestone["status"] == "completed":
            raise ContractError(f"milestone {milestone_id} is already completed")
        self._milestone_completed(milestone_id=milestone_id, late=missed(milestone["due_at"], ctx.at),
                                  timestamp=ctx.at)

    @event("MilestoneCompleted")
    def _milestone_completed(self, milestone_id: str, late: bool, timestamp: datetime) -> None:
        self.milestones = {**self.milestones, milestone_id: {
            **self.milestones[milestone_id], "status": "completed", "completed_at": timestamp}}

    @command
    def mark_milestone_overdue(self, ctx: Ctx, milestone_id: str) -> None:
        """Scheduled just after the milestone's due instant (completing at it is on time)."""
        milestone = self._milestone(milestone_id)
        if milestone["status"] != "pending" or not missed(milestone["due_at"], ctx.at) or self.status not in LIVE:
            raise ContractError(f"milestone {milestone_id} is not overdue at {ctx.at}")
        self._milestone_overdue(milestone_id=milestone_id, due_at=milestone["due_at"])

    @event("MilestoneOverdue")
    def _milestone_overdue(self, milestone_id: str, due_at: datetime) -> None:
        self.milestones = {**self.milestones,
                           milestone_id: {**self.milestones[milestone_id], "status": "overdue"}}

    # -- money ---------------------------------------------------------------------

    @command
    def issue_invoice(self, ctx: Ctx, invoice_id: str, payer: str, amount_fen: int,
                      currency: str, kind: str, due_at: datetime | None = None) -> None:
        """Seed 000 §6 / seed 002 §6.2: an invoice with amount, payer and due date.

        Fees are invoiced while the contract is in force. A compensation or
        settlement invoice (:data:`CLAIM_KINDS`) collects what a breach or the
        termination booked, up to what is not yet invoiced, even after the
        contract ended (seed 000 §10.3): money owed outlives the contract.
        """
        if kind not in INVOICE_KINDS:
            raise ContractError(f"invoice kind must be one of {INVOICE_KINDS}, got {kind!r}")
        if kind not in CLAIM_KINDS:
            self._require_live("issue an invoice")
        if invoice_id in self.invoices:
            raise ContractError(f"invoice {invoice_id} already exists on {self.contract_id}")
        self._require_party(payer)
        _check_money(amount_fen, currency)
        problem = claim_problem(self.claims, kind, payer, amount_fen, currency, self.contract_id) \
            if kind in CLAIM_KINDS else None
        if problem:
            raise ContractError(problem)
        if due_at is None:
            due_at = ctx.at + timedelta(days=self.terms.get("payment_terms_days", 30))
        require_aware(due_at, "due_at")
        payee = next(p for p in self.party_ids if p != payer)
        shares = {} if kind in CLAIM_KINDS else dict(self.terms.get("revenue_share") or {})
        self._invoice_issued(invoice_id=invoice_id, payer=payer, payee=payee,
                             amount_fen=amount_fen, currency=currency, kind=kind, due_at=due_at,
                             revenue_share=shares, terms_version=self.terms_version)

    @event("InvoiceIssued")
    def _invoice_issued(self, invoice_id: str, payer: str, payee: str, amount_fen: int,
                        currency: str, kind: str, due_at: datetime, revenue_share: dict,
                        terms_version: int) -> None:
        self.invoices[invoice_id] = {"payer": payer, "payee": payee, "amount_fen": amount_fen,
                                     "currency": currency, "kind": kind, "due_at": due_at,
                                     "paid_fen": 0, "credited_fen": 0, "status": "open",
                                     "revenue_share": dict(revenue_share)}
        if kind in CLAIM_KINDS:
            add_claim(self.claims, kind, payer, currency, -amount_fen)

    def outstanding(self, invoice_id: str) -> int:
        inv = self._invoice(invoice_id)
        return inv["amount_fen"] - inv["paid_fen"] - inv["credited_fen"]

    @command
    def receive_payment(self, ctx: Ctx, invoice_id: str, amount_fen: int, currency: str,
                        payment_id: str) -> None:
        inv = self._invoice(invoice_id)
        _check_money(amount_fen, currency)
        if currency != inv["currency"]:
            raise ContractError(f"payment in {currency} for an invoice in {inv['currency']}")
        if payment_id in self.payments:
            raise ContractError(f"payment {payment_id} was already recorded on {self.contract_id}")
        if amount_fen > self.outstanding(invoice_id):
            raise ContractError(f"payment of {amount_fen} fen exceeds the "
                                f"{self.outstanding(invoice_id)} fen outstanding on {invoice_id}")
        self._payment_received(invoice_id=invoice_id, payment_id=payment_id, payer=inv["payer"],
                               payee=inv["payee"], amount_fen=amount_fen, currency=currency)

    @event("PaymentReceived")
    def _payment_received(self, invoice_id: str, payment_id: str, payer: str, payee: str,
                          amount_fen: int, currency: str) -> None:
        self.payments.add(payment_id)
        inv = self.invoices[invoice_id]
        inv["paid_fen"] += amount_fen
        inv["status"] = "paid" if inv["paid_fen"] + inv["credited_fen"] >= inv["amount_fen"] else inv["status"]

    @command
    def grant_discount(self, ctx: Ctx, invoice_id: str, amount_fen: int, reason: str) -> None:
        """Seed 002 §6.3: a discount lowers what is owed on an invoice."""
        inv = self._invoice(invoice_id)
        _check_money(amount_fen, inv["currency"])
        if amount_fen > self.outstanding(invoice_id):
            raise ContractError(f"discount of {amount_fen} fen exceeds the "
                                f"{self.outstanding(invoice_id)} fen outstanding on {invoice_id}")
        self._credit(ctx, invoice_id, amount_fen, reason, waiver=False)

    @command
    def waive(self, ctx: Ctx, invoice_id: str, reason: str) -> None:
        """Seed 002 §6.3: a waiver forgives everything still owed on an invoice."""
        left = self.outstanding(invoice_id)
        if left <= 0:
            raise ContractError(f"invoice {invoice_id} has nothing outstanding to waive")
        self._credit(ctx, invoice_id, left, reason, waiver=True)

    def _credit(self, ctx: Ctx, invoice_id: str, amount_fen: int, reason: str, waiver: bool) -> None:
        if not reason or not reason.strip():
            raise ContractError("discounts and waivers need a reason")
        inv = self.invoices[invoice_id]
        self._credited(invoice_id=invoice_id, payer=inv["payer"], payee=inv["payee"],
                       amount_fen=amount_fen, currency=inv["currency"], reason=reason,
                       waiver=waiver, revenue_share=dict(inv.get("revenue_share") or {}),
                       credited_before_fen=inv["credited_fen"])

    @event("InvoiceCredited")
    def _credited(self, invoice_id: str, payer: str, payee: str, amount_fen: int, currency: str,
                  reason: str, waiver: bool, revenue_share: dict | None = None,
                  credited_before_fen: int | None = None) -> None:
        # credited_before_fen (v3) lets the ledger reverse each credit's exact share.
        inv = self.invoices[invoice_id]
        inv["credited_fen"] += amount_fen
        if inv["paid_fen"] + inv["credited_fen"] >= inv["amount_fen"]:
            inv["status"] = "paid"

    @command
    def mark_invoice_overdue(self, ctx: Ctx, invoice_id: str) -> None:
        """Scheduled just after the invoice's due instant (paying at it is on time)."""
        inv = self._invoice(invoice_id)
        if inv["status"] != "open" or not missed(inv["due_at"], ctx.at):
            raise ContractError(f"invoice {invoice_id} is not overdue at {ctx.at}")
        self._invoice_overdue(invoice_id=invoice_id, due_at=inv["due_at"],
                              outstanding_fen=self.outstanding(invoice_id))

    @event("InvoiceOverdue")
    def _invoice_overdue(self, invoice_id: str, due_at: datetime, outstanding_fen: int) -> None:
        self.invoices[invoice_id]["status"] = "overdue"

    # -- amendments (seed 000 §11) ------------------------------------------------

    @command
    def propose_amendment(self, ctx: Ctx, amendment_id: str, changes: dict, kind: str) -> None:
        self._require_live("amend")
        if kind not in ("amendment", "supplement"):
            raise ContractError("kind must be 'amendment' or 'supplement'")
        if amendment_id in self.amendments:
            raise ContractError(f"amendment {amendment_id} already exists")
        if not changes:
            raise ContractError("an amendment must change at least one term")
        if "parties" in changes or "member_id" in changes:
            raise TermsError("an amendment cannot change the parties; draft a new contract")
        check_terms(self.kind, {**self.terms, **changes})
        self._amendment_proposed(amendment_id=amendment_id, changes=changes, kind=kind,
                                 proposed_by=ctx.actor)

    @event("AmendmentProposed")
    def _amendment_proposed(self, amendment_id: str, changes: dict, kind: str, proposed_by: str) -> None:
        self.amendments[amendment_id] = {"changes": deepcopy(changes), "kind": kind, "consents": [],
                                         "status": "proposed"}

    @command
    def consent_to_amendment(self, ctx: Ctx, amendment_id: str, party_id: str) -> None:
        """Seed 000 §11.1: a change binds only with both parties' consent."""
        self._require_live("consent to an amendment")
        self._require_party(party_id)
        amendment = self.amendments.get(amendment_id)
        if not amendment or amendment["status"] != "proposed":
            raise ContractError(f"no proposed amendment {amendment_id} on {self.contract_id}")
        if party_id in amendment["consents"]:
            raise ContractError(f"party {party_id} already consented to {amendment_id}")
        self._amendment_consented(amendment_id=amendment_id, party_id=party_id)
        if set(self.amendments[amendment_id]["consents"]) == set(self.party_ids):
            terms = {**self.terms, **amendment["changes"]}
            milestones, valid_until = self._rescheduled(terms)
            self._terms_amended(amendment_id=amendment_id, terms_version=self.terms_version + 1,
                                terms=terms, milestones=milestones, valid_until=valid_until)

    @event("AmendmentConsented")
    def _amendment_consented(self, amendment_id: str, party_id: str) -> None:
        self.amendments[amendment_id]["consents"].append(party_id)

    def _rescheduled(self, terms: dict) -> tuple:
        """Milestones and validity under new terms; completed milestones stay completed."""
        if self.effective_at is None:
            return None, None
        zone = terms.get("zone", DEFAULT_ZONE)
        milestones = self._schedule(terms, self.effective_at, zone)
        for mid, old in self.milestones.items():
            if mid in milestones and old["status"] == "completed":
                milestones[mid] = {**milestones[mid], **{k: v for k, v in old.items() if k != "due_at"}}
        months = terms.get("validity_months", 12) + self.renewed_months
        return milestones, add_months(self.effective_at, months, zone)

    @event("TermsAmended")
    def _terms_amended(self, amendment_id: str, terms_version: int, terms: dict,
                       milestones: dict | None = None, valid_until: datetime | None = None) -> None:
        self.amendments[amendment_id]["status"] = "agreed"
        self.terms = deepcopy(terms)
        self.terms_version = terms_version
        if milestones is not None:
            self.milestones = deepcopy(milestones)
            self.valid_until = valid_until

    # -- breach, dispute, end --------------------------------------------------------

    @command
    def record_breach(self, ctx: Ctx, party_id: str, description: str, compensation_fen: int,
                      currency: str) -> None:
        """Seed 000 §8: the party in breach owes the agreed compensation."""
        self._require_live("record a breach")
        self._require_party(party_id)
        if not description or not description.strip():
            raise ContractError("a breach needs a description")
        if compensation_fen:
            _check_money(compensation_fen, currency)
        other = next(p for p in self.party_ids if p != party_id)
        self._breach_recorded(party_id=party_id, owed_to=other, description=description,
                              compensation_fen=compensation_fen, currency=currency)

    @event("BreachRecorded")
    def _breach_recorded(self, party_id: str, owed_to: str, description: str,
                         compensation_fen: int, currency: str) -> None:
        self.breaches.append({"party_id": party_id, "compensation_fen": compensation_fen})
        if compensation_fen:
            add_claim(self.claims, "compensation", party_id, currency, compensation_fen)

    @command
    def open_dispute(self, ctx: Ctx, party_id: str, reason: str) -> None:
        """Seed 000 §9: a party disputes; the contract stays in force meanwhile."""
        self._require_party(party_id)
        if self.status != "effective":
            raise ContractError(f"only an effective contract can be disputed (status {self.status})")
        if not reason or not reason.strip():
            raise ContractError("a dispute needs a reason")
        self._dispute_opened(party_id=party_id, reason=reason)

    @event("DisputeOpened")
    def _dispute_opened(self, party_id: str, reason: str) -> None:
        self.status = "disputed"

    @command
    def settle_dispute(self, ctx: Ctx, outcome: str) -> None:
        if self.status != "disputed":
            raise ContractError(f"contract {self.contract_id} has no open dispute")
        self._dispute_settled(outcome=outcome or "settled")

    @event("DisputeSettled")
    def _dispute_settled(self, outcome: str) -> None:
        self.status = "effective"

    @command
    def terminate(self, ctx: Ctx, reason: str, settlement: dict | None = None) -> None:
        """Seed 000 §10: termination with a reason and a post-termination settlement."""
        if self.status not in LIVE and self.status != "draft":
            raise ContractError(f"contract {self.contract_id} is already {self.status}")
        if not reason or not reason.strip():
            raise ContractError("termination needs a reason")
        problem = settlement_problem(settlement or {}, self.party_ids)
        if problem:
            raise ContractError(problem)
        settlement = dict(settlement or {})
        self._terminated(reason=reason, settlement=settlement)

    @event("ContractTerminated")
    def _terminated(self, reason: str, settlement: dict) -> None:
        self.status = "terminated"
        if settlement.get("amount_fen"):
            add_claim(self.claims, "settlement", settlement["payer"], settlement.get("currency", "CNY"),
                      settlement["amount_fen"])

    @command
    def expire(self, ctx: Ctx) -> None:
        """Scheduled at the end of validity."""
        if self.status not in LIVE or self.valid_until is None or self.valid_until > ctx.at:
            raise ContractError(f"contract {self.contract_id} does not expire at {ctx.at}")
        self._expired(valid_until=self.valid_until)

    @event("ContractExpired")
    def _expired(self, valid_until: datetime) -> None:
        self.status = "expired"

    @command
    def renew(self, ctx: Ctx, months: int | None = None) -> None:
        """Seed 002 §12.3: renewal extends validity from the current end.

        An expired contract may be renewed too (it takes effect again), as
        long as the renewed validity reaches past the renewal; a terminated
        one cannot.
        """
        if self.status != "expired":
            self._require_live("renew")
        if months is None:
            months = self.terms.get("validity_months", 12)
        if not isinstance(months, int) or isinstance(months, bool) or months <= 0:
            raise ContractError("renewal months must be a positive whole number")
        valid_until = add_months(self.valid_until, months, self.terms.get("zone", DEFAULT_ZONE))
        if valid_until <= ctx.at:
            raise ContractError(f"renewing contract {self.contract_id} for {months} months from its end "
                                f"{self.valid_until.isoformat()} ends before {ctx.at.isoformat()}; "
                                "renew for more months or draft a new contract")
        self._renewed(months=months, valid_until=valid_until)

    @event("ContractRenewed")
    def _renewed(self, months: int, valid_until: datetime) -> None:
        self.valid_until = valid_until
        self.renewed_months += months
        self.renewals += 1
        if self.status == "expired":
            self.status = "effective"

    # -- guards -------------------------------------------------------------------

    def _require_party(self, party_id: str) -> None:
        if party_id not in self.party_ids:
            raise ContractError(f"{party_id!r} is not a party to contract {self.contract_id} "
                                f"(parties: {', '.join(self.party_ids)})")

    def _require_live(self, action: str) -> None:
        if self.status not in LIVE:
            raise ContractError(f"cannot {action} on contract {self.contract_id}: it is {self.status}")

    def _milestone(self, milestone_id: str) -> dict:
        try:
            return self.milestones[milestone_id]
        except KeyError:
            raise ContractError(f"contract {self.contract_id} has no milestone {milestone_id}") from None

    def _invoice(self, invoice_id: str) -> dict:
        try:
            return self.invoices[invoice_id]
        except KeyError:
            raise ContractError(f"contract {self.contract_id} has no invoice {invoice_id}") from None


def _instant(value) -> datetime:
    """A due date given as a datetime or an ISO-8601 string (terms often come as JSON)."""
    return parse_instant(value, "due_at")


def _check_money(amount_fen: int, currency: str) -> None:
    problem = money_problem(amount_fen, currency)
    if problem:
        raise ContractError(problem)


__all__ = ["Contract", "ContractError", "TermsError", "add_months", "check_terms"]
