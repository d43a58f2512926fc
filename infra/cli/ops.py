"""Operations on the three aggregates: ``vip member …``, ``vip contract …``, ``vip complaint …``,
``vip erase``, and the scheduler ``vip tick``.

Each runs on the engine's timeline (``--at`` for data entry of a past
action; the wall clock otherwise) after the work due before it, as
``--actor`` (default VIP_OPERATOR, else ``operator:<login>``; see
:func:`infra.cli.common.actor_of`).
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from infra.audit.schedule import checkpoint_due
from infra.cli.common import actor_of, domain_errors, emit, print_record, system_of, when
from infra.cli.lists import show_cmd

STAFF_TEXT = ("Staff wording, kept in clear in the log: do not paste the customer's personal data "
              "(complaint reasons, by contrast, are sealed with the member's key).")


def common(func):
    func = click.option("--at", "at", help="When it happened (ISO-8601); default now.")(func)
    func = click.option("--actor", default=None,
                        help="Who acts, recorded on the events (default VIP_OPERATOR, else operator:<login>).")(func)
    func = click.option("--json", "as_json", is_flag=True)(func)
    return click.pass_context(domain_errors(func))


def run(ctx, at, actor, as_json, action, describe) -> None:
    """Run one operation at ``--at`` (when it happened) or now.

    An ``--at`` before the log's latest instant, or further after the wall
    clock than the tolerance, is refused (quoting the instant given).
    Notices (free text not kept for an erased member) go to stderr, and to
    ``notices`` in the JSON.
    """
    actor = actor_of(actor)  # refused before anything is opened or recorded
    system = system_of(ctx)
    engine = system.engine
    instant = when(at)
    if instant is not None:
        engine.check_command_at(instant, "--at")
    system.app.notices.clear()
    result = engine.run(instant, action, actor=actor)
    engine.flush()
    data = describe(result)
    notices = list(dict.fromkeys(system.app.notices))  # a step run again notes the same twice
    for notice in notices:
        click.echo(f"Note: {notice}", err=True)
    if notices:
        data = {**data, "notices": notices}
    emit(data, as_json, lambda d: print_record(d, list(d), f"Recorded, as {actor}"))


def _member(m) -> dict:
    return {"member_id": m.member_id, "tier": m.tier, "effective_tier": m.effective_tier,
            "vip_status": m.vip_status, "override": m.override, "dedicated_agent": m.dedicated_agent,
            "version": m.version}


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


# -- members --------------------------------------------------------------------------

@click.group()
def member():
    """VIP workflow and tier overrides of a member (seed 002 §2)."""


def _member_op(name: str, help_: str, action, *params):
    """``vip member <name> MEMBER_ID``: ``action(app, ctx, member_id, options)`` calls one app method."""
    _op(member, name, help_, "member_id", params, action, _member)


_REASON = click.option("--reason", required=True, help=STAFF_TEXT)
_member_op("apply", "Apply for VIP (seed 002 §2.2.1).", lambda app, c, mid, o: app.apply_for_vip(c, mid))
_member_op("start-review", "Start reviewing the application (§2.2.2).",
           lambda app, c, mid, o: app.start_vip_review(c, mid))
_member_op("approve", "Approve the application (§2.2.2).", lambda app, c, mid, o: app.approve_vip(c, mid))
_member_op("reject", "Reject the application, with a reason.",
           lambda app, c, mid, o: app.reject_vip(c, mid, o["reason"]), _REASON)
_member_op("revoke", "Cancel VIP status, with a reason (§2.3.2).",
           lambda app, c, mid, o: app.revoke_vip(c, mid, o["reason"]), _REASON)
_member_op("terminate-rights", "End rights for breach (§4.3.2).",
           lambda app, c, mid, o: app.terminate_rights(c, mid, o["reason"]), _REASON)
_member_op("assign-agent", "Reassign the member's dedicated agent (seed 002 §3.2.1), with a reason.",
           lambda app, c, mid, o: app.assign_agent(c, mid, o["agent"], o["reason"]),
           click.option("--agent", required=True, help="An agent id on the policy's roster."),
           click.option("--reason", required=True, help="Why; stored sealed with the member's key."))
_member_op("clear-override", "Remove a manual tier override.",
           lambda app, c, mid, o: app.clear_override(c, mid, o["reason"]),
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
        lambda c: app.set_override(c, member_id, kind, tier, reason, when(expires)),
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


def _contract_op(name: str, help_: str, action, *params):
    """``vip contract <name> CONTRACT_ID``: ``action(app, ctx, contract_id, options)`` calls one app method."""
    _op(contract, name, help_, "contract_id", params, action, _contract)


_PARTY = click.option("--party", "party_id", required=True)
_AMENDMENT = click.option("--id", "amendment_id", required=True)
_contract_op("complete-milestone", "Mark a milestone completed.",
             lambda app, c, cid, o: app.complete_milestone(c, cid, o["milestone_id"]),
             click.option("--milestone", "milestone_id", required=True))
_contract_op("propose-amendment", "Propose changed terms (seed 000 §11).",
             lambda app, c, cid, o: app.propose_amendment(c, cid, o["amendment_id"],
                                                          _json_arg(o["changes"]), o["kind"]),
             _AMENDMENT,
             click.option("--changes", required=True, help="Changed terms as JSON or @file."),
             click.option("--kind", type=click.Choice(["amendment", "supplement"]), default="amendment"))
_contract_op("consent", "A party consents to an amendment.",
             lambda app, c, cid, o: app.consent_to_amendment(c, cid, o["amendment_id"], o["party_id"]),
             _AMENDMENT, _PARTY)
_contract_op("breach", "Record a breach with compensation (seed 000 §8).",
             lambda app, c, cid, o: app.record_breach(c, cid, o["party_id"], o["description"],
                                                      o["compensation_fen"], o["currency"]),
             _PARTY, click.option("--description", required=True),
             click.option("--compensation-fen", "compensation_fen", type=int, default=0),
             click.option("--currency", default="CNY"))
_contract_op("dispute", "Open a dispute (seed 000 §9).",
             lambda app, c, cid, o: app.open_dispute(c, cid, o["party_id"], o["reason"]),
             _PARTY, click.option("--reason", required=True))
_contract_op("settle-dispute", "Settle the open dispute.",
             lambda app, c, cid, o: app.settle_dispute(c, cid, o["outcome"]),
             click.option("--outcome", required=True))
_contract_op("terminate", "Terminate with reason and settlement (seed 000 §10).",
             lambda app, c, cid, o: app.terminate_contract(
                 c, cid, o["reason"], _json_arg(o["settlement"]) if o["settlement"] else None),
             click.option("--reason", required=True),
             click.option("--settlement", default=None, help='JSON: {"amount_fen":..,"payer":..,"payee":..}'))
_contract_op("renew", "Renew for more months (seed 002 §12.3).",
             lambda app, c, cid, o: app.renew_contract(c, cid, o["months"]),
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
    run(ctx, at, actor, as_json, lambda c: app.issue_invoice(
        c, contract_id, invoice_id, payer, amount_fen, currency, kind, when(due)), _contract)


_INVOICE = click.option("--invoice", "invoice_id", required=True)
_contract_op("pay", "Record a payment against an invoice.",
             lambda app, c, cid, o: app.pay_invoice(c, cid, o["invoice_id"], o["amount_fen"],
                                                    o["currency"], o["payment_id"]),
             _INVOICE, click.option("--amount-fen", "amount_fen", type=int, required=True),
             click.option("--currency", default="CNY"),
             click.option("--payment-id", "payment_id", required=True))
_contract_op("discount", "Grant a discount on an invoice (seed 002 §6.3).",
             lambda app, c, cid, o: app.grant_discount(c, cid, o["invoice_id"], o["amount_fen"], o["reason"]),
             _INVOICE, click.option("--amount-fen", "amount_fen", type=int, required=True),
             click.option("--reason", required=True))
_contract_op("waive", "Waive what is still owed on an invoice (seed 002 §6.3).",
             lambda app, c, cid, o: app.waive_invoice(c, cid, o["invoice_id"], o["reason"]),
             _INVOICE, click.option("--reason", required=True))


# -- complaints -----------------------------------------------------------------------

@click.group()
def complaint():
    """Complaints and their SLA clocks (seed 002 §7)."""


complaint.add_command(show_cmd)  # `vip complaint show C1` reads, as `vip complaints show C1` does


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


def _complaint_op(name: str, help_: str, action, *params):
    """``vip complaint <name> COMPLAINT_ID``: ``action(app, ctx, complaint_id, options)`` calls one app method."""
    _op(complaint, name, help_, "complaint_id", params, action, _complaint)


_complaint_op("ack", "First response: stops the first-response clock.",
              lambda app, c, cid, o: app.acknowledge_complaint(c, cid))
_complaint_op("assign", "Assign to an agent.",
              lambda app, c, cid, o: app.assign_complaint(c, cid, o["assignee"]),
              click.option("--to", "assignee", required=True))
_complaint_op("escalate", "Escalate by hand.",
              lambda app, c, cid, o: app.escalate_complaint(c, cid, o["reason"]),
              click.option("--reason", required=True))
_complaint_op("wait", "Wait for the customer: clocks pause.",
              lambda app, c, cid, o: app.wait_for_customer(c, cid, o["reason"]),
              click.option("--reason", default=""))
_complaint_op("reply", "The customer answered: clocks resume.",
              lambda app, c, cid, o: app.record_customer_reply(c, cid))
_complaint_op("rate", "Satisfaction 1-5 (seed 002 §5.3).",
              lambda app, c, cid, o: app.rate_complaint(c, cid, o["score"]),
              click.option("--score", type=int, required=True))
_complaint_op("close", "Close a resolved complaint.", lambda app, c, cid, o: app.close_complaint(c, cid))
_complaint_op("reopen", "Reopen: the resolution clock resumes.",
              lambda app, c, cid, o: app.reopen_complaint(c, cid, o["reason"]),
              click.option("--reason", required=True))


@complaint.command("resolve")
@click.argument("complaint_id")
@click.option("--resolution", required=True, help="The result; stored sealed.")
@common
def resolve(ctx, at, actor, as_json, complaint_id, resolution):
    """Resolve: both clocks stop (seed 002 §7.3)."""
    app = system_of(ctx).app
    run(ctx, at, actor, as_json, lambda c: app.resolve_complaint(c, complaint_id, resolution), _complaint)


# -- the scheduler --------------------------------------------------------------------

@click.command("tick")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@domain_errors
def tick_cmd(ctx, as_json):
    """The scheduler: record every item the wall clock says is due (reviews, SLA, due dates).

    Queries never do this; run `vip serve`, or `vip tick` from cron. The
    items are recorded as the scheduler's (actor ``scheduler``), whoever runs
    it. Then it signs the audit checkpoints that fell due (`vip verify`).
    """
    system = system_of(ctx)
    fired = system.engine.tick()
    checkpoint_due(system.app.recorder, system.settings.data_dir)
    emit({"fired": fired}, as_json, lambda d: click.echo(f"{d['fired']:,} scheduled items fired"))
