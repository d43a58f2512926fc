"""Upstream commands: what an order-system or CRM event asks of its member.

``vip ingest`` and the Kafka consumers validate a record into an
:class:`~infra.service_layer.upstream.Input`, read it as one of these
(:data:`INPUT_COMMANDS`, by its type), and the input path
(:func:`~infra.service_layer.upstream.apply_input`) runs it through the one
handler map with its receipt. Each carries the upstream event id (its
causation, at most one effect per id) and when it occurred.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from infra.service_layer.commands import Command


@dataclass(frozen=True)
class UpstreamCommand(Command):
    """Base of the upstream commands: whose, which event, when, from which source (orders, crm).

    ``known``: whether the member existed when the input path read it, before it looked
    up the input's receipt. An unknown member is registered, never looked up again: a
    writer that registered it meanwhile then makes this save conflict (and the input is
    run again, when its receipt shows), instead of this input being applied on top.
    """
    member_id: str
    event_id: str
    occurred_at: datetime
    source: str
    known: bool = True


@dataclass(frozen=True)
class RecordOrderPaid(UpstreamCommand):
    """Count a paid order towards the member's tier (registering an unknown member)."""
    order_id: str = ""
    amount_fen: int = 0
    currency: str = "CNY"


@dataclass(frozen=True)
class RecordOrderRefunded(UpstreamCommand):
    """Take a refunded amount off the member's counted spend."""
    order_id: str = ""
    amount_fen: int = 0
    currency: str = "CNY"


@dataclass(frozen=True)
class RecordOrderCancelled(UpstreamCommand):
    """Take a cancelled order out of the member's counted spend."""
    order_id: str = ""


@dataclass(frozen=True)
class RecordActivity(UpstreamCommand):
    """Record one of the member's activities (points, per the policy)."""
    kind: str = ""


@dataclass(frozen=True)
class RegisterCustomer(UpstreamCommand):
    """Register the member from the CRM, with their profile (sealed with their key)."""
    profile: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateProfile(UpstreamCommand):
    """Change the member's profile (sealed with their key; not kept for an erased member)."""
    profile: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestErasure(UpstreamCommand):
    """Erase the member's personal data on the CRM's request (their key is destroyed)."""


# An upstream event type -> the command it stands for (built from the input's fields).
INPUT_COMMANDS: dict[str, type[UpstreamCommand]] = {
    "OrderPaid": RecordOrderPaid,
    "OrderRefunded": RecordOrderRefunded,
    "OrderCancelled": RecordOrderCancelled,
    "ActivityRecorded": RecordActivity,
    "CustomerRegistered": RegisterCustomer,
    "ProfileUpdated": UpdateProfile,
    "ErasureRequested": RequestErasure,
}
