"""Scheduled commands: what a due timer asks for, and :class:`FireTimer`, the scheduler's ask.

A timer is named ``kind`` or ``kind:item`` (projections/timers.py) on a key
``<aggregate>:<business id>``; :func:`timer_command` reads it as one of the
typed commands below, which :mod:`infra.service_layer.handlers` handles like
any other command.
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.base import DomainError
from infra.service_layer.commands import Command


@dataclass(frozen=True)
class FireTimer(Command):
    """Run the work a timer names (``key`` ``member:M1``, ``name`` ``review``...), due at ``due`` (ISO)."""
    key: str
    name: str
    due: str


@dataclass(frozen=True)
class ReviewMember(Command):
    """Review the member's tier (the periodic review fell due)."""
    member_id: str


@dataclass(frozen=True)
class ExpireOverride(Command):
    """End the member's tier override (its expiry fell due)."""
    member_id: str


@dataclass(frozen=True)
class MarkComplaintAtRisk(Command):
    """Mark an SLA clock of the complaint at risk."""
    complaint_id: str
    clock: str


@dataclass(frozen=True)
class MarkComplaintBreached(Command):
    """Mark an SLA clock of the complaint breached."""
    complaint_id: str
    clock: str


@dataclass(frozen=True)
class MarkMilestoneOverdue(Command):
    """Mark a contract milestone overdue."""
    contract_id: str
    milestone_id: str


@dataclass(frozen=True)
class MarkInvoiceOverdue(Command):
    """Mark a contract invoice overdue."""
    contract_id: str
    invoice_id: str


@dataclass(frozen=True)
class ExpireContract(Command):
    """End the contract at the end of its validity."""
    contract_id: str


# A timer's kind -> the command it stands for, built from (business id, item).
TIMER_COMMANDS = {
    "review": lambda business_id, _: ReviewMember(business_id),
    "override_expiry": lambda business_id, _: ExpireOverride(business_id),
    "at_risk": lambda business_id, clock: MarkComplaintAtRisk(business_id, clock),
    "breach": lambda business_id, clock: MarkComplaintBreached(business_id, clock),
    "milestone": lambda business_id, item: MarkMilestoneOverdue(business_id, item),
    "invoice": lambda business_id, item: MarkInvoiceOverdue(business_id, item),
    "expire": lambda business_id, _: ExpireContract(business_id),
}


def timer_command(fire: FireTimer) -> Command:
    """The typed command a due timer stands for (DomainError for a kind no code knows)."""
    _, business_id = fire.key.split(":", 1)
    kind, _, item = fire.name.partition(":")
    if kind not in TIMER_COMMANDS:
        raise DomainError(f"no scheduled work is known for timer kind {kind!r}")
    return TIMER_COMMANDS[kind](business_id, item)
