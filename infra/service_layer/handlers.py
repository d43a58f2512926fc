"""The one dispatch map: each command type to the handler that runs it, and :func:`handle`.

A handler takes ``(command, uow, ctx)`` and calls one typed application
service on the unit of work it is handed (:class:`~infra.service_layer.uow.UnitOfWork`:
it loads the aggregates and collects what the handler saves) with the
command's fields; it returns the aggregate it changed. Every edge (CLI, API, the
scheduler, the upstream feeds) builds a command and goes through here; :func:`handle` runs one
in the engine's unit of work, on its aggregates' timelines, with conflict
retry (:meth:`~infra.service_layer.engine.Engine.run`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from domain.base import Ctx
from infra.service_layer import commands as c, input_handlers as i, scheduled as s, upstream_commands as u
from infra.service_layer.uow import UnitOfWork

Handler = Callable[[Any, UnitOfWork, Ctx], Any]


def dispatch(command: c.Command, uow: UnitOfWork, ctx: Ctx) -> Any:
    """Run ``command``'s handler on ``uow`` in the step already open (the engine's)."""
    return HANDLERS[type(command)](command, uow, ctx)


HANDLERS: dict[type, Handler] = {
    # members
    c.ApplyForVip: lambda cmd, uow, ctx: uow.apply_for_vip(ctx, cmd.member_id),
    c.StartVipReview: lambda cmd, uow, ctx: uow.start_vip_review(ctx, cmd.member_id),
    c.ApproveVip: lambda cmd, uow, ctx: uow.approve_vip(ctx, cmd.member_id),
    c.RejectVip: lambda cmd, uow, ctx: uow.reject_vip(ctx, cmd.member_id, cmd.reason),
    c.RevokeVip: lambda cmd, uow, ctx: uow.revoke_vip(ctx, cmd.member_id, cmd.reason),
    c.TerminateRights: lambda cmd, uow, ctx: uow.terminate_rights(ctx, cmd.member_id, cmd.reason),
    c.AssignAgent: lambda cmd, uow, ctx: uow.assign_agent(ctx, cmd.member_id, cmd.agent, cmd.reason),
    c.SetOverride: lambda cmd, uow, ctx: uow.set_override(ctx, cmd.member_id, cmd.kind, cmd.tier, cmd.reason,
                                                          cmd.expires),
    c.ClearOverride: lambda cmd, uow, ctx: uow.clear_override(ctx, cmd.member_id, cmd.reason),
    c.EraseMember: lambda cmd, uow, ctx: uow.erase_member(ctx, cmd.member_id),
    # contracts
    c.DraftContract: lambda cmd, uow, ctx: uow.draft_contract(ctx, cmd.contract_id, cmd.kind, cmd.terms),
    c.SignContract: lambda cmd, uow, ctx: uow.sign_contract(ctx, cmd.contract_id, cmd.party_id),
    c.CompleteMilestone: lambda cmd, uow, ctx: uow.complete_milestone(ctx, cmd.contract_id, cmd.milestone_id),
    c.ProposeAmendment: lambda cmd, uow, ctx: uow.propose_amendment(ctx, cmd.contract_id, cmd.amendment_id,
                                                                    cmd.changes, cmd.kind),
    c.ConsentToAmendment: lambda cmd, uow, ctx: uow.consent_to_amendment(ctx, cmd.contract_id,
                                                                         cmd.amendment_id, cmd.party_id),
    c.RecordBreach: lambda cmd, uow, ctx: uow.record_breach(ctx, cmd.contract_id, cmd.party_id, cmd.description,
                                                            cmd.compensation_fen, cmd.currency),
    c.OpenDispute: lambda cmd, uow, ctx: uow.open_dispute(ctx, cmd.contract_id, cmd.party_id, cmd.reason),
    c.SettleDispute: lambda cmd, uow, ctx: uow.settle_dispute(ctx, cmd.contract_id, cmd.outcome),
    c.TerminateContract: lambda cmd, uow, ctx: uow.terminate_contract(ctx, cmd.contract_id, cmd.reason,
                                                                      cmd.settlement),
    c.RenewContract: lambda cmd, uow, ctx: uow.renew_contract(ctx, cmd.contract_id, cmd.months),
    c.IssueInvoice: lambda cmd, uow, ctx: uow.issue_invoice(ctx, cmd.contract_id, cmd.invoice_id, cmd.payer,
                                                            cmd.amount_fen, cmd.currency, cmd.kind, cmd.due),
    c.PayInvoice: lambda cmd, uow, ctx: uow.pay_invoice(ctx, cmd.contract_id, cmd.invoice_id, cmd.amount_fen,
                                                        cmd.currency, cmd.payment_id),
    c.GrantDiscount: lambda cmd, uow, ctx: uow.grant_discount(ctx, cmd.contract_id, cmd.invoice_id,
                                                              cmd.amount_fen, cmd.reason),
    c.WaiveInvoice: lambda cmd, uow, ctx: uow.waive_invoice(ctx, cmd.contract_id, cmd.invoice_id, cmd.reason),
    # complaints
    c.FileComplaint: lambda cmd, uow, ctx: uow.file_complaint(ctx, cmd.complaint_id, cmd.member_id, cmd.channel,
                                                              cmd.category, cmd.severity, cmd.description),
    c.AcknowledgeComplaint: lambda cmd, uow, ctx: uow.acknowledge_complaint(ctx, cmd.complaint_id),
    c.AssignComplaint: lambda cmd, uow, ctx: uow.assign_complaint(ctx, cmd.complaint_id, cmd.assignee),
    c.EscalateComplaint: lambda cmd, uow, ctx: uow.escalate_complaint(ctx, cmd.complaint_id, cmd.reason),
    c.WaitForCustomer: lambda cmd, uow, ctx: uow.wait_for_customer(ctx, cmd.complaint_id, cmd.reason),
    c.RecordCustomerReply: lambda cmd, uow, ctx: uow.record_customer_reply(ctx, cmd.complaint_id),
    c.ResolveComplaint: lambda cmd, uow, ctx: uow.resolve_complaint(ctx, cmd.complaint_id, cmd.resolution),
    c.RateComplaint: lambda cmd, uow, ctx: uow.rate_complaint(ctx, cmd.complaint_id, cmd.score),
    c.CloseComplaint: lambda cmd, uow, ctx: uow.close_complaint(ctx, cmd.complaint_id),
    c.ReopenComplaint: lambda cmd, uow, ctx: uow.reopen_complaint(ctx, cmd.complaint_id, cmd.reason),
    # scheduled work (the engine fires a due timer as FireTimer, read as one of these)
    s.FireTimer: lambda cmd, uow, ctx: dispatch(s.timer_command(cmd), uow, ctx),
    s.ReviewMember: lambda cmd, uow, ctx: uow.review_member(ctx, cmd.member_id),
    s.ExpireOverride: lambda cmd, uow, ctx: uow.expire_override(ctx, cmd.member_id),
    s.MarkComplaintAtRisk: lambda cmd, uow, ctx: uow.mark_complaint_at_risk(ctx, cmd.complaint_id, cmd.clock),
    s.MarkComplaintBreached: lambda cmd, uow, ctx: uow.mark_complaint_breached(ctx, cmd.complaint_id, cmd.clock),
    s.MarkMilestoneOverdue: lambda cmd, uow, ctx: uow.mark_milestone_overdue(ctx, cmd.contract_id,
                                                                             cmd.milestone_id),
    s.MarkInvoiceOverdue: lambda cmd, uow, ctx: uow.mark_invoice_overdue(ctx, cmd.contract_id, cmd.invoice_id),
    s.ExpireContract: lambda cmd, uow, ctx: uow.expire_contract(ctx, cmd.contract_id),
    # upstream inputs (the input path saves the member they return with the input's receipt)
    u.RecordOrderPaid: i.record_order_paid,
    u.RecordOrderRefunded: i.record_order_refunded,
    u.RecordOrderCancelled: i.record_order_cancelled,
    u.RecordActivity: i.record_activity,
    u.RegisterCustomer: i.register_customer,
    u.UpdateProfile: i.update_profile,
    u.RequestErasure: i.request_erasure,
}


def handle(engine, command: c.Command, at: datetime | None = None, actor: str = "operator",
           causation_id: str = "", correlation_id: str = "", what: str = "the instant") -> Any:
    """Run one command at ``at`` (None: now) through the engine's unit of work; returns the
    aggregate it changed. ``what`` names the instant in a refusal (``--at``, ``at``).

    Upstream commands come through the input path (receipts, late inputs stamped), and due
    timers through the engine's scheduler: both dispatch through :data:`HANDLERS` too.
    """
    if type(command) not in HANDLERS:
        raise TypeError(f"no handler for {type(command).__name__}: add one to HANDLERS")
    return engine.run(at, lambda uow, ctx: dispatch(command, uow, ctx), actor=actor,
                      causation_id=causation_id, correlation_id=correlation_id, what=what)
