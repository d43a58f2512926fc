"""What a member command accepts: its errors, profile fields, activity kinds and amounts."""
from __future__ import annotations

from domain.base import DomainError

PROFILE_FIELDS = ("name", "phone", "email")
ACTIVITY_KINDS = ("login", "vip_event", "review")
OVERRIDE_KINDS = ("pin", "floor")


class MemberError(DomainError):
    """A member command was refused."""


class NotQualifiedError(MemberError):
    """The member's tier does not meet the VIP standard (seed 002 §2.1.1)."""


class WorkflowError(MemberError):
    """The VIP application workflow does not allow this step now."""


class OrderError(MemberError):
    """An order event does not fit what is known of the order."""


def check_amount(amount_fen: int, currency: str) -> None:
    """Refuse an amount that is not a positive whole number of fen, or a malformed currency code."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise OrderError(f"amount must be a positive whole number of fen, got {amount_fen!r}")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() \
            or not currency.isupper():
        raise OrderError(f"currency must be an ISO 4217 code like CNY, got {currency!r}")


def check_profile(profile: dict) -> None:
    """Refuse profile fields other than name, phone and email."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise MemberError(f"unknown profile fields {sorted(unknown)}; allowed: {PROFILE_FIELDS}")
