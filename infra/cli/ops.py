"""Operations on the three aggregates: ``vip member …``, ``vip contract …``, ``vip complaint …``.

Each runs on the engine's timeline (``--at`` for data entry of a past
action; the wall clock otherwise) after the work due before it, as ``--actor``.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from infra.cli.common import domain_errors, emit, system_of, when

STAFF_TEXT = ("Staff wording, kept in clear in the log: do not paste the customer's personal data "
              "(complaint reasons, by contrast, are sealed with the member's key).")


def common(func):
    func = click.option("--at", "at", help="When it happened (ISO-8601); default now.")(func)
    func = click.option("--actor", default="operator", show_default=True, help="Who acts.")(func)
    func = click.option("--json", "as_json", is_flag=True)(func)
    return click.pass_context(domain_errors(func))


def run(ctx, at, actor, as_json, action, describe) -> None:
    """Run one operation at ``--at`` (when it happened) or now.

    An ``--at`` before the log's latest instant, or further after the wall
    clock than the tolerance, is refused (quoting the instant given).
    Notices (free text not kept for an erased member) go to stderr, and to
    ``notices`` in the JSON.
    """
    system = system_of(ctx)
    engine = system.engine
    instant = when(at)
    if instant is not None:
        engine.refuse_future(instant, "--at")
        engine.refuse_past(instant, "--at")
    system.app.notices.clear()
    result = engine.run(instant, action, actor=actor)
    engine.flush()
    data = describe(result)
    notices = list(dict.fromkeys(system.app.notices))  # a step run again notes the same twice
    for notice in notices:
        click.echo(f"Note: {notice}", err=True)
    if notices:
        data = {**data, "notices": notices}
    emit(data, as_json, lambda d: click.echo(json.dumps(d, ensure_ascii=False, default=str)))


def _member(m) -> dict:
    return {"member_id": m.member_id, "tier": m.tier, "effective_tier": m.effective_tier,
            "vip_status": m.vip_status, "override": m.override, "version": m.version}


def _contract(c) -> dict:
    return {"contract_id": c.contract_id, "kind": c.kind, "status": c.status,
            "terms_version": c.terms_version, "valid_until": c.valid_until,
            "invoices": {k: {"status": v["status"], "outstanding_fen": c.outstanding(k)}
                         for k, v in c.invoices.items()}, "version": c.version}


def _complaint(c) -> dict:
    return {"complaint_id": c.complaint_id, "status": c.status, "tier": c.tier,
            "assignee": c.assignee, "escalation_level": c.escalation_level,
            "rating": c.rating, "version": c.version}


def _json_arg(value: str) -> dict:
    """A JSON object given inline or as @file."""
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter("expected a JSON object")
    return data


def _op(group: click.Group, name: str, help_: str, arg: str, params: tuple, action, describe) -> None:
    """Add ``vip <group> <name> ARG [options]`` running ``action(app, ctx, arg, options)``."""
    @common
    def op(ctx, at, actor, as_json, **kwargs):
        ident = kwargs.pop(arg)
        app = system_of(ctx).app
        run(ctx, at, actor, as_json, lambda c: action(app, c, ident, kwargs), describe)
    op.__doc__ = help_
    op = click.argument(arg)(op)
    for param in reversed(params):
        op = param(op)
    group.command(name)(op)


def register(main: click.Group) -> None:
    main.add_command(member)
    main.add_command(contract)
    main.add_command(complaint)
    main.add_command(erase)


# -- members --------------------------------------------------------------------------

@click.group()
def member():
    """VIP workflow and tier overrides of a member (seed 002 §2)."""


def _member_op(name: str, command: str, help_: str, *params, with_policy=False):
    def action(app, c, member_id, options):
        extra = [app.policy] if with_policy else []
        return app.member_command(member_id, command, c, *options.values(), *extra)
    _op(member, name, help_, "member_id", params, action, _member)


_member_op("apply", "apply_for_vip", "Apply for VIP (seed 002 §2.2.1).", with_policy=True)
_member_op("start-review", "start_review", "Start reviewing the application (§2.2.2).")
_member_op("approve", "approve", "Approve the application (§2.2.2).", with_policy=True)
_member_op("reject", "reject", "Reject the application, with a reason.",
           click.option("--reason", required=True, help=STAFF_TEXT))
_member_op("revoke", "revoke", "Cancel VIP status, with a reason (§2.3.2).",
           click.option("--reason", required=True, help=STAFF_TEXT))
_member_op("terminate-rights", "terminate_rights", "End rights for breach (§4.3.2).",
           click.option("--reason", required=True, help=STAFF_TEXT))
_member_op("clear-override", "clear_override", "Remove a manual tier override.",
           click.option("--reason", default="cleared by operator"))


@member.command("override")
@click.argument("member_id")
@click.option("--kind", type=click.Choice(["pin", "floor"]), required=True)
@click.option("--tier", required=True)
@click.option("--reason", required=True)
@click.option("--expires", required=True, help="When the override ends (ISO-8601).")
@common
def override(ctx, at, actor, as_json, member_id, kind, tier, reason, expires):
    """Pin a member's tier, or give it a floor, until an expiry."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json,
        lambda c: app.member_command(member_id, "set_override", c, kind, tier, reason, when(expires)),
        _member)


@click.command("erase")
@click.argument("kind", type=click.Choice(["member"]))
@click.argument("member_id")
@common
def erase(ctx, at, actor, as_json, kind, member_id):
    """Erase a member's personal data (PIPL): their key is destroyed; history still replays."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json, lambda c: app.erase_member(c, member_id), _member)


# -- contracts ------------------------------------------------------------------------

@click.group()
def contract():
    """Contracts: cooperation (seed 000) and member agreements (seed 002)."""


@contract.command("draft")
@click.argument("contract_id")
@click.option("--kind", type=click.Choice(["cooperation", "member_agreement"]), required=True)
@click.option("--terms", "terms", required=True, help="Terms as JSON or @file.json (see README).")
@common
def draft(ctx, at, actor, as_json, contract_id, kind, terms):
    """Draft a contract with its terms."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json,
        lambda c: app.draft_contract(c, contract_id, kind, _json_arg(terms)), _contract)


@contract.command("sign")
@click.argument("contract_id")
@click.option("--party", required=True)
@common
def sign(ctx, at, actor, as_json, contract_id, party):
    """One party signs; the last signature makes it effective."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json, lambda c: app.sign_contract(c, contract_id, party), _contract)


def _contract_op(name: str, command: str, help_: str, *params):
    def action(app, c, contract_id, options):
        if "changes" in options:
            options["changes"] = _json_arg(options["changes"])
        if "settlement" in options:
            options["settlement"] = _json_arg(options["settlement"]) if options["settlement"] else None
        return app.contract_command(contract_id, command, c, **options)
    _op(contract, name, help_, "contract_id", params, action, _contract)


_contract_op("complete-milestone", "complete_milestone", "Mark a milestone completed.",
             click.option("--milestone", "milestone_id", required=True))
_contract_op("propose-amendment", "propose_amendment", "Propose changed terms (seed 000 §11).",
             click.option("--id", "amendment_id", required=True),
             click.option("--changes", required=True, help="Changed terms as JSON or @file."),
             click.option("--kind", type=click.Choice(["amendment", "supplement"]), default="amendment"))
_contract_op("consent", "consent_to_amendment", "A party consents to an amendment.",
             click.option("--id", "amendment_id", required=True),
             click.option("--party", "party_id", required=True))
_contract_op("breach", "record_breach", "Record a breach with compensation (seed 000 §8).",
             click.option("--party", "party_id", required=True),
             click.option("--description", required=True),
             click.option("--compensation-fen", "compensation_fen", type=int, default=0),
             click.option("--currency", default="CNY"))
_contract_op("dispute", "open_dispute", "Open a dispute (seed 000 §9).",
             click.option("--party", "party_id", required=True), click.option("--reason", required=True))
_contract_op("settle-dispute", "settle_dispute", "Settle the open dispute.",
             click.option("--outcome", required=True))
_contract_op("terminate", "terminate", "Terminate with reason and settlement (seed 000 §10).",
             click.option("--reason", required=True),
             click.option("--settlement", default=None, help='JSON: {"amount_fen":..,"payer":..,"payee":..}'))
_contract_op("renew", "renew", "Renew for more months (seed 002 §12.3).",
             click.option("--months", type=int, default=None))


@contract.command("invoice")
@click.argument("contract_id")
@click.option("--id", "invoice_id", required=True)
@click.option("--payer", required=True)
@click.option("--amount-fen", type=int, required=True)
@click.option("--currency", default="CNY")
@click.option("--kind", type=click.Choice(["membership_fee", "service_fee", "settlement", "compensation"]),
              default="service_fee")
@click.option("--due", default=None, help="Due date (default: payment terms after now).")
@common
def invoice(ctx, at, actor, as_json, contract_id, invoice_id, payer, amount_fen, currency, kind, due):
    """Issue an invoice."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json, lambda c: app.contract_command(
        contract_id, "issue_invoice", c, invoice_id, payer, amount_fen, currency, kind, when(due)), _contract)


def _settle_op(name: str, how: str, help_: str, *params):
    def action(app, c, contract_id, options):
        return app.settle_invoice(c, contract_id, options.pop("invoice_id"), how, **options)
    _op(contract, name, help_, "contract_id",
        (click.option("--invoice", "invoice_id", required=True), *params), action, _contract)


_settle_op("pay", "receive_payment", "Record a payment against an invoice.",
           click.option("--amount-fen", "amount_fen", type=int, required=True),
           click.option("--currency", default="CNY"),
           click.option("--payment-id", "payment_id", required=True))
_settle_op("discount", "grant_discount", "Grant a discount on an invoice (seed 002 §6.3).",
           click.option("--amount-fen", "amount_fen", type=int, required=True),
           click.option("--reason", required=True))
_settle_op("waive", "waive", "Waive what is still owed on an invoice (seed 002 §6.3).",
           click.option("--reason", required=True))


# -- complaints -----------------------------------------------------------------------

@click.group()
def complaint():
    """Complaints and their SLA clocks (seed 002 §7)."""


@complaint.command("file")
@click.argument("complaint_id")
@click.option("--member", "member_id", required=True)
@click.option("--channel", type=click.Choice(["phone", "web", "email", "app"]), required=True)
@click.option("--category", required=True)
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]), default="medium")
@click.option("--description", required=True, help="Free text; stored sealed with the member's key.")
@common
def file_(ctx, at, actor, as_json, complaint_id, member_id, channel, category, severity, description):
    """File a complaint; SLA clocks start from the member's tier policy."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json, lambda c: app.file_complaint(
        c, complaint_id, member_id, channel, category, severity, description), _complaint)


def _complaint_op(name: str, command: str, help_: str, *params, calendar=False):
    def action(app, c, complaint_id, options):
        return app.complaint_command(complaint_id, command, c, calendar=calendar, **options)
    _op(complaint, name, help_, "complaint_id", params, action, _complaint)


_complaint_op("ack", "acknowledge", "First response: stops the first-response clock.", calendar=True)
_complaint_op("assign", "assign", "Assign to an agent.", click.option("--to", "assignee", required=True))
_complaint_op("escalate", "escalate", "Escalate by hand.", click.option("--reason", required=True))
_complaint_op("wait", "wait_for_customer", "Wait for the customer: clocks pause.",
              click.option("--reason", default=""), calendar=True)
_complaint_op("reply", "customer_replied", "The customer answered: clocks resume.", calendar=True)
_complaint_op("rate", "rate", "Satisfaction 1-5 (seed 002 §5.3).",
              click.option("--score", type=int, required=True))
_complaint_op("close", "close", "Close a resolved complaint.")
_complaint_op("reopen", "reopen", "Reopen: the resolution clock resumes.",
              click.option("--reason", required=True), calendar=True)


@complaint.command("resolve")
@click.argument("complaint_id")
@click.option("--resolution", required=True, help="The result; stored sealed.")
@common
def resolve(ctx, at, actor, as_json, complaint_id, resolution):
    """Resolve: both clocks stop (seed 002 §7.3)."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json, lambda c: app.resolve_complaint(c, complaint_id, resolution), _complaint)
