"""Request and response bodies of the API (validated by pydantic, published in OpenAPI)."""
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Text = Field(min_length=1, max_length=2000)
Id = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
Tier = Literal["member", "silver", "gold", "platinum", "diamond"]
Currency = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class Command(BaseModel):
    """Every command may say when it happened (data entry of a past action); default now."""

    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime | None = Field(default=None, description="When it happened (ISO-8601 with zone)")


class Reason(Command):
    reason: str = Text


class ClearOverride(Command):
    reason: str = Field(default="cleared by operator", min_length=1, max_length=2000)


class Override(Command):
    kind: Literal["pin", "floor"]
    tier: Tier
    reason: str = Text
    expires: AwareDatetime


class Draft(Command):
    contract_id: str = Id
    kind: Literal["cooperation", "member_agreement"]
    terms: dict[str, Any] = Field(description="Parties, validity, fees, milestones... (see README)")


class Sign(Command):
    party_id: str = Id


class Milestone(Command):
    milestone_id: str = Id


class Amendment(Command):
    amendment_id: str = Id
    changes: dict[str, Any]
    kind: Literal["amendment", "supplement"] = "amendment"


class Consent(Command):
    amendment_id: str = Id
    party_id: str = Id


class Breach(Command):
    party_id: str = Id
    description: str = Text
    compensation_fen: int = Field(default=0, ge=0)
    currency: str = Currency


class Dispute(Command):
    party_id: str = Id
    reason: str = Text


class SettleDispute(Command):
    outcome: str = Text


class Terminate(Command):
    reason: str = Text
    settlement: dict[str, Any] | None = Field(default=None,
                                              description='{"amount_fen": .., "payer": .., "payee": ..}')


class Renew(Command):
    months: int | None = Field(default=None, ge=1, le=120)


class Invoice(Command):
    invoice_id: str = Id
    payer: str = Id
    amount_fen: int = Field(gt=0)
    currency: str = Currency
    kind: Literal["membership_fee", "service_fee", "settlement", "compensation"] = "service_fee"
    due: AwareDatetime | None = None


class Pay(Command):
    invoice_id: str = Id
    amount_fen: int = Field(gt=0)
    currency: str = Currency
    payment_id: str = Id


class Discount(Command):
    invoice_id: str = Id
    amount_fen: int = Field(gt=0)
    reason: str = Text


class Waive(Command):
    invoice_id: str = Id
    reason: str = Text


class File(Command):
    complaint_id: str = Id
    member_id: str = Id
    channel: Literal["phone", "web", "email", "app"]
    category: str = Field(min_length=1, max_length=100)
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    description: str = Text


class Assign(Command):
    assignee: str = Id


class Wait(Command):
    reason: str = Field(default="", max_length=2000)


class Resolve(Command):
    resolution: str = Text


class Rate(Command):
    score: int = Field(ge=1, le=5)


class MemberState(BaseModel):
    member_id: str
    tier: str
    effective_tier: str
    vip_status: str
    override: dict[str, Any] | None
    erased: bool
    version: int


class ContractState(BaseModel):
    contract_id: str
    kind: str
    status: str
    terms_version: int
    valid_until: str | None
    invoices: dict[str, dict[str, Any]]
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


class Page(BaseModel):
    """One page of a list: ``next_offset`` is null on the last page."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None
