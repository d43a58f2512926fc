"""Commands: what an edge (CLI, API, upstream feed, scheduler) asks the system to do.

Each command is a frozen dataclass named in the imperative, carrying only
the fields its application service takes; :mod:`infra.service_layer.handlers`
maps each command type to its one handler. Adding a command is one class
here, one line in ``HANDLERS`` and one line in each edge that exposes it
(docs/decisions/0010-command-path.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Command:
    """Base of every command (a marker: commands are plain data)."""


# -- members ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ApplyForVip(Command):
    """Ask for the member to be considered for VIP (seed 002 §2.2.1)."""
    member_id: str


@dataclass(frozen=True)
class StartVipReview(Command):
    """Start reviewing the member's VIP application (§2.2.2)."""
    member_id: str


@dataclass(frozen=True)
class ApproveVip(Command):
    """Approve the member's VIP application (§2.2.2)."""
    member_id: str


@dataclass(frozen=True)
class RejectVip(Command):
    """Reject the member's VIP application, with a reason."""
    member_id: str
    reason: str


@dataclass(frozen=True)
class RevokeVip(Command):
    """Cancel the member's VIP status, with a reason (§2.3.2)."""
    member_id: str
    reason: str


@dataclass(frozen=True)
class TerminateRights(Command):
    """End the member's rights for breach (§4.3.2)."""
    member_id: str
    reason: str


@dataclass(frozen=True)
class AssignAgent(Command):
    """Reassign the member's dedicated agent, with a reason (seed 002 §3.2.1)."""
    member_id: str
    agent: str
    reason: str


@dataclass(frozen=True)
class SetOverride(Command):
    """Pin the member's tier, or give it a floor, until ``expires``."""
    member_id: str
    kind: str
    tier: str
    reason: str
    expires: datetime


@dataclass(frozen=True)
class ClearOverride(Command):
    """Remove the member's manual tier override."""
    member_id: str
    reason: str = "cleared by operator"


@dataclass(frozen=True)
class EraseMember(Command):
    """Erase the member's personal data (PIPL): their key is destroyed."""
    member_id: str


# -- contracts --------------------------------------------------------------------------

@dataclass(frozen=True)
class DraftContract(Command):
    """Draft a contract of ``kind`` with its terms."""
    contract_id: str
    kind: str
    terms: dict[str, Any]


@dataclass(frozen=True)
class SignContract(Command):
    """One party signs the contract; the last signature makes it effective."""
    contract_id: str
    party_id: str


@dataclass(frozen=True)
class CompleteMilestone(Command):
    """Mark a milestone of the contract completed."""
    contract_id: str
    milestone_id: str


@dataclass(frozen=True)
class ProposeAmendment(Command):
    """Propose changed terms (seed 000 §11)."""
    contract_id: str
    amendment_id: str
    changes: dict[str, Any]
    kind: str = "amendment"


@dataclass(frozen=True)
class ConsentToAmendment(Command):
    """A party consents to a proposed amendment."""
    contract_id: str
    amendment_id: str
    party_id: str


@dataclass(frozen=True)
class RecordBreach(Command):
    """Record a party's breach with compensation (seed 000 §8)."""
    contract_id: str
    party_id: str
    description: str
    compensation_fen: int = 0
    currency: str = "CNY"


@dataclass(frozen=True)
class OpenDispute(Command):
    """A party opens a dispute (seed 000 §9)."""
    contract_id: str
    party_id: str
    reason: str


@dataclass(frozen=True)
class SettleDispute(Command):
    """Settle the contract's open dispute."""
    contract_id: str
    outcome: str


@dataclass(frozen=True)
class TerminateContract(Command):
    """Terminate the contract with a reason and an optional settlement (seed 000 §10)."""
    contract_id: str
    reason: str
    settlement: dict[str, Any] | None = None


@dataclass(frozen=True)
class RenewContract(Command):
    """Renew the contract for more months (seed 002 §12.3); None: its own term."""
    contract_id: str
    months: int | None = None


@dataclass(frozen=True)
class IssueInvoice(Command):
    """Issue an invoice on the contract (``due`` None: the payment terms after now)."""
    contract_id: str
    invoice_id: str
    payer: str
    amount_fen: int
    currency: str = "CNY"
    kind: str = "service_fee"
    due: datetime | None = None


@dataclass(frozen=True)
class PayInvoice(Command):
    """Record a payment against an invoice."""
    contract_id: str
    invoice_id: str
    amount_fen: int
    currency: str
    payment_id: str


@dataclass(frozen=True)
class GrantDiscount(Command):
    """Grant a discount on an invoice (seed 002 §6.3)."""
    contract_id: str
    invoice_id: str
    amount_fen: int
    reason: str


@dataclass(frozen=True)
class WaiveInvoice(Command):
    """Waive what is still owed on an invoice (seed 002 §6.3)."""
    contract_id: str
    invoice_id: str
    reason: str


# -- complaints -------------------------------------------------------------------------

@dataclass(frozen=True)
class FileComplaint(Command):
    """File a complaint for a member; SLA clocks start from the member's tier policy."""
    complaint_id: str
    member_id: str
    channel: str
    category: str
    severity: str
    description: str


@dataclass(frozen=True)
class AcknowledgeComplaint(Command):
    """First response: stop the first-response clock."""
    complaint_id: str


@dataclass(frozen=True)
class AssignComplaint(Command):
    """Assign the complaint to an agent."""
    complaint_id: str
    assignee: str


@dataclass(frozen=True)
class EscalateComplaint(Command):
    """Escalate the complaint by hand."""
    complaint_id: str
    reason: str


@dataclass(frozen=True)
class WaitForCustomer(Command):
    """Wait for the customer: the clocks pause."""
    complaint_id: str
    reason: str = ""


@dataclass(frozen=True)
class RecordCustomerReply(Command):
    """The customer answered: the clocks resume."""
    complaint_id: str


@dataclass(frozen=True)
class ResolveComplaint(Command):
    """Resolve the complaint: both clocks stop (seed 002 §7.3)."""
    complaint_id: str
    resolution: str


@dataclass(frozen=True)
class RateComplaint(Command):
    """Record the member's satisfaction, 1-5 (seed 002 §5.3)."""
    complaint_id: str
    score: int


@dataclass(frozen=True)
class CloseComplaint(Command):
    """Close a resolved complaint."""
    complaint_id: str


@dataclass(frozen=True)
class ReopenComplaint(Command):
    """Reopen the complaint: the resolution clock resumes."""
    complaint_id: str
    reason: str
