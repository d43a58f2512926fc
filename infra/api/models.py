"""Request and response bodies of the API (validated by pydantic, published in OpenAPI).

Every bound comes from :mod:`domain.limits`, the same rules the CLI and the
ingest edges apply: text is checked for control characters and lone
surrogates, JSON objects for size, depth and non-finite numbers, instants for
their year range. Replies are typed too, so nothing can fail to encode; an
aggregate's state (``MemberState``, ...) is declared once, in
:mod:`infra.service_layer.describe`, for the API and the CLI alike.
"""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from domain import limits


def _checked(problem_of):
    """A pydantic validator from a ``limits`` problem function (its message is the error)."""
    def check(value):
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(check)


Text = Field(min_length=1, max_length=limits.MAX_TEXT_LENGTH)
Id = Field(min_length=1, max_length=limits.MAX_ID_LENGTH, pattern=limits.ID_PATTERN)
Tier = Literal["member", "silver", "gold", "platinum", "diamond"]
Currency = Field(default="CNY", pattern=r"^[A-Z]{3}$")
Money = Field(gt=0, le=limits.MAX_AMOUNT_FEN)
FreeText = Annotated[str, _checked(lambda v: limits.text_problem(v, "text", required=False))]
Name = Annotated[str, _checked(lambda v: limits.name_problem(v, "name"))]
Instant = Annotated[AwareDatetime, _checked(lambda v: limits.instant_problem(v, "time"))]
Document = Annotated[dict[str, Any], _checked(lambda v: limits.json_problem(v, "document"))]


class Command(BaseModel):
    """Every command may say when it happened (data entry of a past action); default now."""

    model_config = ConfigDict(extra="forbid")
    at: Instant | None = Field(default=None, description="When it happened (ISO-8601 with zone); "
                               "at most a few seconds after the server's clock unless the caller is admin")


class Reason(Command):
    reason: FreeText = Text


class ClearOverride(Command):
    reason: FreeText = Field(default="cleared by operator", min_length=1, max_length=limits.MAX_TEXT_LENGTH)


class Override(Command):
    kind: Literal["pin", "floor"]
    tier: Tier
    reason: FreeText = Text
    expires: Instant


class Draft(Command):
    contract_id: str = Id
    kind: Literal["cooperation", "member_agreement"]
    terms: Document = Field(description="Parties, validity, fees, milestones... (see README)")


class Sign(Command):
    party_id: str = Id


class Milestone(Command):
    milestone_id: str = Id


class Amendment(Command):
    amendment_id: str = Id
    changes: Document
    kind: Literal["amendment", "supplement"] = "amendment"


class Consent(Command):
    amendment_id: str = Id
    party_id: str = Id


class Breach(Command):
    party_id: str = Id
    description: FreeText = Text
    compensation_fen: int = Field(default=0, ge=0, le=limits.MAX_AMOUNT_FEN)
    currency: str = Currency


class Dispute(Command):
    party_id: str = Id
    reason: FreeText = Text


class SettleDispute(Command):
    outcome: FreeText = Text


class Terminate(Command):
    reason: FreeText = Text
    settlement: Document | None = Field(default=None,
                                              description='{"amount_fen": .., "payer": .., "payee": ..}')


class Renew(Command):
    months: int | None = Field(default=None, ge=1, le=120)


class Invoice(Command):
    invoice_id: str = Id
    payer: str = Id
    amount_fen: int = Money
    currency: str = Currency
    kind: Literal["membership_fee", "service_fee", "settlement", "compensation"] = "service_fee"
    due: Instant | None = None


class Pay(Command):
    invoice_id: str = Id
    amount_fen: int = Money
    currency: str = Currency
    payment_id: str = Id


class Discount(Command):
    invoice_id: str = Id
    amount_fen: int = Money
    reason: FreeText = Text


class Waive(Command):
    invoice_id: str = Id
    reason: FreeText = Text


class File(Command):
    complaint_id: str = Id
    member_id: str = Id
    channel: Literal["phone", "web", "email", "app"]
    category: Name = Field(min_length=1, max_length=limits.MAX_NAME_LENGTH)
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    description: FreeText = Text


class Assign(Command):
    assignee: str = Id


class Wait(Command):
    reason: FreeText = Field(default="", max_length=limits.MAX_TEXT_LENGTH)


class Resolve(Command):
    resolution: FreeText = Text


class Rate(Command):
    score: int = Field(ge=1, le=5)


class Page(BaseModel):
    """One page of a list: ``next_offset`` is null on the last page."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class FileNew(File):
    """Filing with the id optional: left out, the server makes one (and answers it)."""

    complaint_id: str | None = Field(default=None, min_length=1, max_length=limits.MAX_ID_LENGTH,
                                     pattern=limits.ID_PATTERN,
                                     description="Leave out to have the server make one")


class Me(BaseModel):
    """Who the caller is and what they may do: the console builds its navigation from this."""

    subject: str
    role: str
    key_id: str
    permissions: list[str]
    now: str = Field(description="The server's clock: what queries without as_of answer for")
    zone: str = Field(description="The policy's time zone (the console's default display zone)")
