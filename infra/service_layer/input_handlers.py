"""The handlers of the upstream commands (named in :data:`infra.service_layer.handlers.HANDLERS`).

Each takes ``(command, uow, ctx)``, changes the member (registering one an
order or activity names for the first time) and returns it unsaved: the
input path saves it with the input's receipt, atomically
(:func:`infra.service_layer.upstream.apply_input`).
"""
from __future__ import annotations

from domain.base import Ctx, DomainError
from domain.member import Member
from infra.service_layer import upstream_commands as u
from infra.service_layer.uow import UnitOfWork


def _found(cmd: u.UpstreamCommand, uow: UnitOfWork) -> Member | None:
    # A known member is the batch's copy (the input path's read); an unknown one is not read again.
    return uow.find_member(cmd.member_id) if cmd.known else None


def _member(cmd: u.UpstreamCommand, uow: UnitOfWork, ctx: Ctx) -> Member:
    return _found(cmd, uow) or Member.register(ctx, cmd.member_id, None, source=cmd.source)


def record_order_paid(cmd: u.RecordOrderPaid, uow: UnitOfWork, ctx: Ctx) -> Member:
    member = _member(cmd, uow, ctx)
    member.record_order_paid(ctx, cmd.event_id, cmd.order_id, cmd.amount_fen, cmd.currency, cmd.occurred_at,
                             uow.policy)
    return member


def record_order_refunded(cmd: u.RecordOrderRefunded, uow: UnitOfWork, ctx: Ctx) -> Member:
    member = _member(cmd, uow, ctx)
    member.record_order_refunded(ctx, cmd.event_id, cmd.order_id, cmd.amount_fen, cmd.currency,
                                 cmd.occurred_at, uow.policy)
    return member


def record_order_cancelled(cmd: u.RecordOrderCancelled, uow: UnitOfWork, ctx: Ctx) -> Member:
    member = _member(cmd, uow, ctx)
    member.record_order_cancelled(ctx, cmd.event_id, cmd.order_id, cmd.occurred_at)
    return member


def record_activity(cmd: u.RecordActivity, uow: UnitOfWork, ctx: Ctx) -> Member:
    member = _member(cmd, uow, ctx)
    member.record_activity(ctx, cmd.event_id, cmd.kind, cmd.occurred_at, uow.policy)
    return member


def _sealed(cmd: u.RegisterCustomer | u.UpdateProfile, uow: UnitOfWork) -> dict:
    # An erased member's profile change is applied without its values (never blocks).
    return {k: uow.seal_for(cmd.member_id, v, k) for k, v in cmd.profile.items()}


def register_customer(cmd: u.RegisterCustomer, uow: UnitOfWork, ctx: Ctx) -> Member:
    member, sealed = _found(cmd, uow), _sealed(cmd, uow)
    if member is None:
        return Member.register(ctx, cmd.member_id, sealed, source="crm", input_id=cmd.event_id)
    member.fill_registration(ctx, cmd.event_id, sealed)
    return member


def update_profile(cmd: u.UpdateProfile, uow: UnitOfWork, ctx: Ctx) -> Member:
    member, sealed = _found(cmd, uow), _sealed(cmd, uow)
    if member is None:
        return Member.register(ctx, cmd.member_id, sealed, source="crm", input_id=cmd.event_id)
    member.update_profile(ctx, cmd.event_id, sealed)
    return member


def request_erasure(cmd: u.RequestErasure, uow: UnitOfWork, ctx: Ctx) -> Member:
    member = _found(cmd, uow)
    if member is None:
        raise DomainError(f"member {cmd.member_id} is unknown; nothing to erase")
    uow.cipher.keys.destroy(cmd.member_id)
    member.record_erasure(ctx, cmd.event_id)
    return member
