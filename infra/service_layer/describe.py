"""How a changed aggregate is described, once for every edge: the CLI prints it, the API answers it.

:func:`describe` gives the typed description of a member, contract or
complaint; :func:`as_json` makes it JSON-ready (instants as ISO-8601 text,
the same serialisation the API's reply models use), so the CLI's ``--json``
and the API's body are the same for the same state.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from pydantic import TypeAdapter

from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member
from infra.service_layer.reveal import reveal


class InvoiceDescription(TypedDict):
    status: str
    outstanding_fen: int


class MemberDescription(TypedDict):
    member_id: str
    tier: str
    effective_tier: str
    vip_status: str
    override: dict[str, Any] | None
    dedicated_agent: str | None
    erased: bool
    version: int


class ContractDescription(TypedDict, total=False):
    contract_id: str
    kind: str
    status: str
    terms_version: int
    valid_until: datetime | None
    version: int
    invoices: dict[str, InvoiceDescription]  # only for the cleared (seed 000 §7)
    terms: dict[str, Any]                     # only for the cleared


class ComplaintDescription(TypedDict):
    complaint_id: str
    member_id: str
    status: str
    tier: str
    assignee: str | None
    escalation_level: int
    rating: int | None
    version: int


def describe_member(m: Member, app: Any = None) -> MemberDescription:
    """The member's state; with ``app``, the override's sealed reason opened for the reader
    (``[erased]`` once the member is erased), as every other answer shows free text."""
    override = reveal(app, m.member_id, m.override) if app is not None and m.override else m.override
    return MemberDescription(member_id=m.member_id, tier=m.tier, effective_tier=m.effective_tier,
                             vip_status=m.vip_status, override=override, dedicated_agent=m.dedicated_agent,
                             erased=m.erased, version=m.version)


def describe_contract(k: Contract, cleared: bool = True) -> ContractDescription:
    """The contract's state; its terms and invoices only when ``cleared`` to see them (seed 000 §7)."""
    out = ContractDescription(contract_id=k.contract_id, kind=k.kind, status=k.status,
                              terms_version=k.terms_version, valid_until=k.valid_until, version=k.version)
    if cleared:
        out["invoices"] = {i: InvoiceDescription(status=v["status"], outstanding_fen=k.outstanding(i))
                           for i, v in k.invoices.items()}
        out["terms"] = k.terms
    return out


def describe_complaint(k: Complaint) -> ComplaintDescription:
    return ComplaintDescription(complaint_id=k.complaint_id, member_id=k.member_id, status=k.status, tier=k.tier,
                                assignee=k.assignee, escalation_level=k.escalation_level, rating=k.rating,
                                version=k.version)


def describe(aggregate, cleared: bool = True, app: Any = None) -> dict:
    """The description of any of the three aggregates (``cleared``: contract terms shown; ``app``:
    sealed free text opened)."""
    if isinstance(aggregate, Member):
        return describe_member(aggregate, app)
    if isinstance(aggregate, Complaint):
        return describe_complaint(aggregate)
    return describe_contract(aggregate, cleared)


_ANY = TypeAdapter(Any)


def as_json(description: dict) -> dict:
    """The description as JSON-ready data (instants as ISO-8601 text, as the API's models write them)."""
    return _ANY.dump_python(description, mode="json")
