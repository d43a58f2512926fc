"""How a changed aggregate is described, once for every edge: the CLI prints it, the API answers it.

The reply models below are the one declaration of those shapes: :func:`describe`
builds one (validated as it is made), the API publishes them as its response
models (OpenAPI ``MemberState``, ``ContractState``, ``ComplaintState``), and
:func:`as_json` renders one the same way for the API's body and the CLI's
``--json``, so the two cannot differ for the same state.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member
from infra.service_layer.reveal import reveal


class OverrideState(BaseModel):
    kind: str
    tier: str
    reason: str
    actor: str
    expires_at: datetime


class MemberState(BaseModel):
    member_id: str
    tier: str
    effective_tier: str
    vip_status: str
    override: OverrideState | None
    dedicated_agent: str | None = None
    erased: bool
    version: int


class InvoiceState(BaseModel):
    status: str
    outstanding_fen: int


class ContractState(BaseModel):
    contract_id: str
    kind: str
    status: str
    terms_version: int
    valid_until: datetime | None
    invoices: dict[str, InvoiceState] | None = Field(
        default=None, description="Only for finance, auditor, admin (amounts are confidential)")
    version: int
    terms: dict[str, Any] | None = Field(default=None, description="Only for finance, auditor, admin")


class ComplaintState(BaseModel):
    complaint_id: str
    member_id: str
    status: str
    tier: str
    assignee: str | None
    escalation_level: int
    rating: int | None
    version: int


Description = MemberState | ContractState | ComplaintState
STATE_MODELS: dict[str, type[BaseModel]] = {"member": MemberState, "contract": ContractState,
                                            "complaint": ComplaintState}
CONFIDENTIAL = ("terms", "invoices")  # left out, not null, for a reader not cleared for the terms


def describe_member(m: Member, app: Any = None) -> MemberState:
    """The member's state; with ``app``, the override's sealed reason opened for the reader
    (``[erased]`` once the member is erased), as every other answer shows free text."""
    override = reveal(app, m.member_id, m.override) if app is not None and m.override else m.override
    return MemberState(member_id=m.member_id, tier=m.tier, effective_tier=m.effective_tier,
                       vip_status=m.vip_status, override=override, dedicated_agent=m.dedicated_agent,
                       erased=m.erased, version=m.version)


def describe_contract(k: Contract, cleared: bool = True) -> ContractState:
    """The contract's state; its terms and invoices only when ``cleared`` to see them (seed 000 §7)."""
    seen = {"invoices": {i: InvoiceState(status=v["status"], outstanding_fen=k.outstanding(i))
                         for i, v in k.invoices.items()}, "terms": k.terms} if cleared else {}
    return ContractState(contract_id=k.contract_id, kind=k.kind, status=k.status, terms_version=k.terms_version,
                         valid_until=k.valid_until, version=k.version, **seen)


def describe_complaint(k: Complaint) -> ComplaintState:
    """The complaint's state: status, tier, assignee, escalation level, rating."""
    return ComplaintState(complaint_id=k.complaint_id, member_id=k.member_id, status=k.status, tier=k.tier,
                          assignee=k.assignee, escalation_level=k.escalation_level, rating=k.rating,
                          version=k.version)


def describe(aggregate, cleared: bool = True, app: Any = None) -> Description:
    """The description of any of the three aggregates (``cleared``: contract terms shown; ``app``:
    sealed free text opened)."""
    if isinstance(aggregate, Member):
        return describe_member(aggregate, app)
    if isinstance(aggregate, Complaint):
        return describe_complaint(aggregate)
    return describe_contract(aggregate, cleared)


def as_json(description: BaseModel) -> dict:
    """The description as JSON-ready data, as the API answers it and ``--json`` prints it:
    instants as ISO-8601 text; a contract's terms and invoices absent, not null, when not cleared."""
    out = description.model_dump(mode="json")
    for confidential in CONFIDENTIAL:
        if out.get(confidential, ...) is None:
            del out[confidential]
    return out
