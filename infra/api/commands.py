"""The one adapter between the HTTP routes and the application services.

Each entry takes ``(app, ctx, business_id, body)`` (``body`` a dict of the
request's validated fields) and calls one typed application service, which
returns the aggregate it changed. A new command is one line here.
"""
from __future__ import annotations

from typing import Any, Callable

from infra.service_layer.app import VipApp

Action = Callable[[VipApp, Any, str, dict], Any]


MEMBER: dict[str, Action] = {
    "apply": lambda app, ctx, m, b: app.apply_for_vip(ctx, m),
    "start-review": lambda app, ctx, m, b: app.start_vip_review(ctx, m),
    "approve": lambda app, ctx, m, b: app.approve_vip(ctx, m),
    "reject": lambda app, ctx, m, b: app.reject_vip(ctx, m, b["reason"]),
    "revoke": lambda app, ctx, m, b: app.revoke_vip(ctx, m, b["reason"]),
    "terminate-rights": lambda app, ctx, m, b: app.terminate_rights(ctx, m, b["reason"]),
    "override": lambda app, ctx, m, b: app.set_override(ctx, m, b["kind"], b["tier"], b["reason"],
                                                        b["expires"]),
    "clear-override": lambda app, ctx, m, b: app.clear_override(ctx, m, b["reason"]),
    "erase": lambda app, ctx, m, b: app.erase_member(ctx, m),
}

CONTRACT: dict[str, Action] = {
    "draft": lambda app, ctx, c, b: app.draft_contract(ctx, c, b["kind"], b["terms"]),
    "sign": lambda app, ctx, c, b: app.sign_contract(ctx, c, b["party_id"]),
    "complete-milestone": lambda app, ctx, c, b: app.complete_milestone(ctx, c, b["milestone_id"]),
    "propose-amendment": lambda app, ctx, c, b: app.propose_amendment(ctx, c, b["amendment_id"],
                                                                      b["changes"], b["kind"]),
    "consent": lambda app, ctx, c, b: app.consent_to_amendment(ctx, c, b["amendment_id"], b["party_id"]),
    "breach": lambda app, ctx, c, b: app.record_breach(ctx, c, b["party_id"], b["description"],
                                                       b["compensation_fen"], b["currency"]),
    "dispute": lambda app, ctx, c, b: app.open_dispute(ctx, c, b["party_id"], b["reason"]),
    "settle-dispute": lambda app, ctx, c, b: app.settle_dispute(ctx, c, b["outcome"]),
    "terminate": lambda app, ctx, c, b: app.terminate_contract(ctx, c, b["reason"], b["settlement"]),
    "renew": lambda app, ctx, c, b: app.renew_contract(ctx, c, b["months"]),
    "invoice": lambda app, ctx, c, b: app.issue_invoice(ctx, c, b["invoice_id"], b["payer"], b["amount_fen"],
                                                        b["currency"], b["kind"], b["due"]),
    "pay": lambda app, ctx, c, b: app.pay_invoice(ctx, c, b["invoice_id"], b["amount_fen"], b["currency"],
                                                  b["payment_id"]),
    "discount": lambda app, ctx, c, b: app.grant_discount(ctx, c, b["invoice_id"], b["amount_fen"],
                                                          b["reason"]),
    "waive": lambda app, ctx, c, b: app.waive_invoice(ctx, c, b["invoice_id"], b["reason"]),
}

COMPLAINT: dict[str, Action] = {
    "file": lambda app, ctx, k, b: app.file_complaint(ctx, k, b["member_id"], b["channel"], b["category"],
                                                      b["severity"], b["description"]),
    "ack": lambda app, ctx, k, b: app.acknowledge_complaint(ctx, k),
    "assign": lambda app, ctx, k, b: app.assign_complaint(ctx, k, b["assignee"]),
    "escalate": lambda app, ctx, k, b: app.escalate_complaint(ctx, k, b["reason"]),
    "wait": lambda app, ctx, k, b: app.wait_for_customer(ctx, k, b["reason"]),
    "reply": lambda app, ctx, k, b: app.record_customer_reply(ctx, k),
    "resolve": lambda app, ctx, k, b: app.resolve_complaint(ctx, k, b["resolution"]),
    "rate": lambda app, ctx, k, b: app.rate_complaint(ctx, k, b["score"]),
    "close": lambda app, ctx, k, b: app.close_complaint(ctx, k),
    "reopen": lambda app, ctx, k, b: app.reopen_complaint(ctx, k, b["reason"]),
}

ACTIONS = {"member": MEMBER, "contract": CONTRACT, "complaint": COMPLAINT}


def aggregate(app: VipApp, kind: str, business_id: str):
    """The aggregate a command names (NotFoundError if there is none)."""
    return {"member": app.member, "contract": app.contract, "complaint": app.complaint}[kind](business_id)


def describe_member(m) -> dict:
    return {"member_id": m.member_id, "tier": m.tier, "effective_tier": m.effective_tier,
            "vip_status": m.vip_status, "override": m.override, "erased": m.erased,
            "version": m.version}


def describe_contract(c, terms: bool) -> dict:
    """The contract's state; its terms and invoices only for roles cleared to see them (seed 000 §7)."""
    out = {"contract_id": c.contract_id, "kind": c.kind, "status": c.status,
           "terms_version": c.terms_version, "valid_until": c.valid_until, "version": c.version}
    if terms:
        out["invoices"] = {k: {"status": v["status"], "outstanding_fen": c.outstanding(k)}
                           for k, v in c.invoices.items()}
        out["terms"] = c.terms
    return out


def describe_complaint(c) -> dict:
    return {"complaint_id": c.complaint_id, "member_id": c.member_id, "status": c.status,
            "tier": c.tier, "assignee": c.assignee, "escalation_level": c.escalation_level,
            "rating": c.rating, "version": c.version}
