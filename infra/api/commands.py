"""The one adapter between the HTTP routes and the application services.

Each entry takes ``(app, ctx, business_id, body)`` (``body`` a dict of the
request's validated fields) and returns the aggregate it changed. When the
string-dispatched ``VipApp.*_command`` methods give way to typed methods,
this module is the only one in ``infra/api`` that changes.
"""
from __future__ import annotations

from typing import Any, Callable

from infra.app import VipApp

Action = Callable[[VipApp, Any, str, dict], Any]


def _member(command: str, *fields: str, policy: bool = False) -> Action:
    def act(app: VipApp, ctx, member_id: str, body: dict):
        extra = [app.policy] if policy else []
        return app.member_command(member_id, command, ctx, *(body[f] for f in fields), *extra)
    return act


MEMBER: dict[str, Action] = {
    "apply": _member("apply_for_vip", policy=True),
    "start-review": _member("start_review"),
    "approve": _member("approve", policy=True),
    "reject": _member("reject", "reason"),
    "revoke": _member("revoke", "reason"),
    "terminate-rights": _member("terminate_rights", "reason"),
    "override": _member("set_override", "kind", "tier", "reason", "expires"),
    "clear-override": _member("clear_override", "reason"),
    "erase": lambda app, ctx, member_id, body: app.erase_member(ctx, member_id),
}


def _contract(command: str) -> Action:
    def act(app: VipApp, ctx, contract_id: str, body: dict):
        return app.contract_command(contract_id, command, ctx, **body)
    return act


def _settle(how: str) -> Action:
    def act(app: VipApp, ctx, contract_id: str, body: dict):
        body = dict(body)
        return app.settle_invoice(ctx, contract_id, body.pop("invoice_id"), how, **body)
    return act


CONTRACT: dict[str, Action] = {
    "draft": lambda app, ctx, contract_id, body: app.draft_contract(ctx, contract_id, body["kind"],
                                                                    body["terms"]),
    "sign": lambda app, ctx, contract_id, body: app.sign_contract(ctx, contract_id, body["party_id"]),
    "complete-milestone": _contract("complete_milestone"),
    "propose-amendment": _contract("propose_amendment"),
    "consent": _contract("consent_to_amendment"),
    "breach": _contract("record_breach"),
    "dispute": _contract("open_dispute"),
    "settle-dispute": _contract("settle_dispute"),
    "terminate": _contract("terminate"),
    "renew": _contract("renew"),
    "invoice": lambda app, ctx, contract_id, body: app.contract_command(
        contract_id, "issue_invoice", ctx, body["invoice_id"], body["payer"], body["amount_fen"],
        body["currency"], body["kind"], body["due"]),
    "pay": _settle("receive_payment"),
    "discount": _settle("grant_discount"),
    "waive": _settle("waive"),
}


def _complaint(command: str, calendar: bool = False) -> Action:
    def act(app: VipApp, ctx, complaint_id: str, body: dict):
        return app.complaint_command(complaint_id, command, ctx, calendar=calendar, **body)
    return act


COMPLAINT: dict[str, Action] = {
    "file": lambda app, ctx, complaint_id, body: app.file_complaint(
        ctx, complaint_id, body["member_id"], body["channel"], body["category"], body["severity"],
        body["description"]),
    "ack": _complaint("acknowledge", calendar=True),
    "assign": _complaint("assign"),
    "escalate": _complaint("escalate"),
    "wait": _complaint("wait_for_customer", calendar=True),
    "reply": _complaint("customer_replied", calendar=True),
    "resolve": lambda app, ctx, complaint_id, body: app.resolve_complaint(ctx, complaint_id,
                                                                          body["resolution"]),
    "rate": _complaint("rate"),
    "close": _complaint("close"),
    "reopen": _complaint("reopen", calendar=True),
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
    """The contract's state; its terms only for roles cleared to see them (seed 000 §7)."""
    out = {"contract_id": c.contract_id, "kind": c.kind, "status": c.status,
           "terms_version": c.terms_version, "valid_until": c.valid_until,
           "invoices": {k: {"status": v["status"], "outstanding_fen": c.outstanding(k)}
                        for k, v in c.invoices.items()}, "version": c.version}
    if terms:
        out["terms"] = c.terms
    return out


def describe_complaint(c) -> dict:
    return {"complaint_id": c.complaint_id, "member_id": c.member_id, "status": c.status,
            "tier": c.tier, "assignee": c.assignee, "escalation_level": c.escalation_level,
            "rating": c.rating, "version": c.version}
