"""A member command's refusals: its errors, the checks of its inputs (amounts, overrides,
profile fields) that raise them, and the refusals other rules build."""
from __future__ import annotations

from datetime import datetime

from domain.base import DomainError, require_aware
from domain.policy import tier_rank

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


def check_override(kind: str, tier: str, reason: str, actor: str, expires_at: datetime,
                   at: datetime) -> None:
    """Refuse a manual override without a known kind and tier, a reason, a named actor, or an
    expiry after ``at`` (the moment it is set)."""
    if kind not in OVERRIDE_KINDS:
        raise MemberError(f"override kind must be 'pin' or 'floor', got {kind!r}")
    tier_rank(tier)
    if not reason or not reason.strip():
        raise MemberError("an override needs a reason")
    if actor in ("", "system"):
        raise MemberError("an override needs a named actor")
    require_aware(expires_at, "expires_at")
    if expires_at <= at:
        raise MemberError("an override must expire after the moment it is set")


def check_profile(profile: dict) -> None:
    """Refuse profile fields other than name, phone and email."""
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise MemberError(f"unknown profile fields {sorted(unknown)}; allowed: {PROFILE_FIELDS}")


def not_qualified(member_id: str, spend_fen: int, points: int, silver) -> NotQualifiedError:
    """The refusal of a member below the VIP standard: what they have and what silver asks."""
    return NotQualifiedError(
        f"member {member_id} does not meet the VIP standard: net spend {spend_fen} fen and {points} "
        f"points in the window, silver needs {silver.min_spend_fen} fen or {silver.min_points} points")


def unknown_order(order_id: str, forgotten_before) -> OrderError:
    """The refusal of a refund of an order the member does not hold (or no longer keeps)."""
    forgotten = (f", or it was paid before {forgotten_before.isoformat()} and is no longer kept "
                 "(a refund that old changes no tier)" if forgotten_before else "")
    return OrderError(f"order {order_id} has no recorded payment for this member{forgotten}")
