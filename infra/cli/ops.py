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
from infra.service_layer import commands as c
from infra.service_layer.commands import Command
from infra.service_layer.describe import as_json as described_json, describe
from infra.service_layer.handlers import handle

STAFF_TEXT = ("Staff wording, kept in clear in the log: do not paste the customer's personal data "
              "(complaint reasons, by contrast, are sealed with the member's key).")


def common(func):
    func = click.option("--at", "at", help="When it happened (ISO-8601); default now.")(func)
    func = click.option("--actor", default=None,
                        help="Who acts, recorded on the events (default VIP_OPERATOR, else operator:<login>).")(func)
    func = click.option("--json", "as_json", is_flag=True)(func)
    return click.pass_context(domain_errors(func))


def run(ctx, at, actor, as_json, command: Command) -> None:
    """Run one command at ``--at`` (when it happened) or now, through the one handler map.

    An ``--at`` before the log's latest instant, or further after the wall
    clock than the tolerance, is refused (quoting the instant given).
    Notices (free text not kept for an erased member) go to stderr, and to
    ``notices`` in the JSON. The changed aggregate is shown by its shared
    description (:mod:`infra.service_layer.describe`), as the API answers it.
    """
    actor = actor_of(actor)  # refused before anything is opened or recorded
    system = system_of(ctx)
    engine = system.engine
    instant = when(at)
    if instant is not None:
        engine.check_command_at(instant, "--at")
    system.app.notices.clear()
    result = handle(engine, command, instant, actor=actor)
    engine.flush()
    description = describe(result, app=system.app)
    # The table shows the values as they are; --json the API's body for the same state.
    data = described_json(description) if as_json else description.model_dump()
    notices = list(dict.fromkeys(system.app.notices))  # a step run again notes the same twice
    for notice in notices:
        click.echo(f"Note: {notice}", err=True)
    if notices:
        data = {**data, "notices": notices}
    emit(data, as_json, lambda d: print_record(d, list(d), f"Recorded, as {actor}"))


class JsonObject(click.ParamType):
    """A JSON object given inline or as @file."""

    name = "json"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        try:
            text = Path(value[1:]).read_text() if value.startswith("@") else value
            data = json.loads(text)
        except OSError as exc:
            self.fail(f"cannot read {value[1:]}: {exc.strerror}", param, ctx)
        except json.JSONDecodeError as exc:
            self.fail(f"not valid JSON: {exc}", param, ctx)
        if not isinstance(data, dict):
            self.fail("expected a JSON object", param, ctx)
        return data


class Instant(click.ParamType):
    """An ISO-8601 instant (a bare date or naive time is read in the display zone)."""

    name = "instant"

    def convert(self, value, param, ctx):
        return value if not isinstance(value, str) else when(value)


JSON, INSTANT = JsonObject(), Instant()


def _op(group: click.Group, name: str, help_: str, arg: str, command: type, params: tuple) -> None:
    """Add ``vip <group> <name> ARG [options]`` running ``command(ARG, **options)``: the
    options are named as the command's fields."""
    @common
    def op(ctx, at, actor, as_json, **kwargs):
        run(ctx, at, actor, as_json, command(kwargs.pop(arg), **kwargs))
    op.__doc__ = help_
    op = click.argument(arg)(op)
    for param in reversed(params):
        op = param(op)
    group.command(name)(op)


# -- members --------------------------------------------------------------------------

@click.group()
def member():
    """VIP workflow and tier overrides of a member (seed 002 §2)."""


def _member_op(name: str, help_: str, command: type, *params):
    """``vip member <name> MEMBER_ID [options]``: one member command."""
    _op(member, name, help_, "member_id", command, params)


_REASON = click.option("--reason", required=True, help=STAFF_TEXT)
_member_op("apply", "Apply for VIP (seed 002 §2.2.1).", c.ApplyForVip)
_member_op("start-review", "Start reviewing the application (§2.2.2).", c.StartVipReview)
_member_op("approve", "Approve the application (§2.2.2).", c.ApproveVip)
_member_op("reject", "Reject the application, with a reason.", c.RejectVip, _REASON)
_member_op("revoke", "Cancel VIP status, with a reason (§2.3.2).", c.RevokeVip, _REASON)
_member_op("terminate-rights", "End rights for breach (§4.3.2).", c.TerminateRights, _REASON)
_member_op("assign-agent", "Reassign the member's dedicated agent (seed 002 §3.2.1), with a reason.", c.AssignAgent,
           click.option("--agent", required=True, help="An agent id on the policy's roster."),
           click.option("--reason", required=True, help="Why; stored sealed with the member's key."))
_member_op("clear-override", "Remove a manual tier override.", c.ClearOverride,
           click.option("--reason", default="cleared by operator"))
_member_op("override", "Pin a member's tier, or give it a floor, until an expiry.", c.SetOverride,
           click.option("--kind", type=click.Choice(["pin", "floor"]), required=True),
           click.option("--tier", required=True), click.option("--reason", required=True),
           click.option("--expires", type=INSTANT, required=True, help="When the override ends (ISO-8601)."))


@click.command("erase")
@click.argument("kind", type=click.Choice(["member"]))
@click.argument("member_id")
@common
def erase(ctx, at, actor, as_json, kind, member_id):
    """Erase a member's personal data (PIPL): their key is destroyed; history still replays."""
    run(ctx, at, actor, as_json, c.EraseMember(member_id))


# -- contracts ------------------------------------------------------------------------

@click.group()
def contract():
    """Contracts: cooperation (seed 000) and member agreements (seed 002)."""


def _contract_op(name: str, help_: str, command: type, *params):
    """``vip contract <name> CONTRACT_ID [options]``: one contract command."""
    _op(contract, name, help_, "contract_id", command, params)


_PARTY = click.option("--party", "party_id", required=True)
_AMENDMENT = click.option("--id", "amendment_id", required=True)
_INVOICE = click.option("--invoice", "invoice_id", required=True)
_AMOUNT = click.option("--amount-fen", "amount_fen", type=int, required=True)
_contract_op("draft", "Draft a contract with its terms.", c.DraftContract,
             click.option("--kind", type=click.Choice(["cooperation", "member_agreement"]), required=True),
              click.option("--terms", "terms", type=JSON, required=True,
                           help="Terms as JSON or @file.json (see README)."))
_contract_op("sign", "One party signs; the last signature makes it effective.", c.SignContract, _PARTY)
_contract_op("complete-milestone", "Mark a milestone completed.", c.CompleteMilestone,
             click.option("--milestone", "milestone_id", required=True))
_contract_op("propose-amendment", "Propose changed terms (seed 000 §11).", c.ProposeAmendment, _AMENDMENT,
             click.option("--changes", type=JSON, required=True, help="Changed terms as JSON or @file."),
             click.option("--kind", type=click.Choice(["amendment", "supplement"]), default="amendment"))
_contract_op("consent", "A party consents to an amendment.", c.ConsentToAmendment, _AMENDMENT, _PARTY)
_contract_op("breach", "Record a breach with compensation (seed 000 §8).", c.RecordBreach,
             _PARTY, click.option("--description", required=True),
             click.option("--compensation-fen", "compensation_fen", type=int, default=0),
             click.option("--currency", default="CNY"))
_contract_op("dispute", "Open a dispute (seed 000 §9).", c.OpenDispute, _PARTY, click.option("--reason", required=True))
_contract_op("settle-dispute", "Settle the open dispute.", c.SettleDispute, click.option("--outcome", required=True))
_contract_op("terminate", "Terminate with reason and settlement (seed 000 §10).", c.TerminateContract,
             click.option("--reason", required=True),
             click.option("--settlement", type=JSON, default=None,
                          help='JSON: {"amount_fen":..,"payer":..,"payee":..}'))
_contract_op("renew", "Renew for more months (seed 002 §12.3).", c.RenewContract,
             click.option("--months", type=int, default=None))
_contract_op("invoice", "Issue an invoice.", c.IssueInvoice,
             click.option("--id", "invoice_id", required=True), click.option("--payer", required=True),
             _AMOUNT, click.option("--currency", default="CNY"),
             click.option("--kind", type=click.Choice(["membership_fee", "service_fee", "settlement", "compensation"]),
                          default="service_fee"),
             click.option("--due", type=INSTANT, default=None, help="Due date (default: payment terms after now)."))
_contract_op("pay", "Record a payment against an invoice.", c.PayInvoice, _INVOICE, _AMOUNT,
             click.option("--currency", default="CNY"), click.option("--payment-id", "payment_id", required=True))
_contract_op("discount", "Grant a discount on an invoice (seed 002 §6.3).", c.GrantDiscount, _INVOICE, _AMOUNT,
             click.option("--reason", required=True))
_contract_op("waive", "Waive what is still owed on an invoice (seed 002 §6.3).", c.WaiveInvoice, _INVOICE,
             click.option("--reason", required=True))


# -- complaints -----------------------------------------------------------------------

@click.group()
def complaint():
    """Complaints and their SLA clocks (seed 002 §7)."""


complaint.add_command(show_cmd)  # `vip complaint show C1` reads, as `vip complaints show C1` does


def _complaint_op(name: str, help_: str, command: type, *params):
    """``vip complaint <name> COMPLAINT_ID [options]``: one complaint command."""
    _op(complaint, name, help_, "complaint_id", command, params)


_complaint_op("file", "File a complaint; SLA clocks start from the member's tier policy.", c.FileComplaint,
              click.option("--member", "member_id", required=True),
              click.option("--channel", type=click.Choice(["phone", "web", "email", "app"]), required=True),
              click.option("--category", required=True),
              click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]), default="medium"),
              click.option("--description", required=True, help="Free text; stored sealed with the member's key."))
_complaint_op("ack", "First response: stops the first-response clock.", c.AcknowledgeComplaint)
_complaint_op("assign", "Assign to an agent.", c.AssignComplaint, click.option("--to", "assignee", required=True))
_complaint_op("escalate", "Escalate by hand.", c.EscalateComplaint, click.option("--reason", required=True))
_complaint_op("wait", "Wait for the customer: clocks pause.", c.WaitForCustomer, click.option("--reason", default=""))
_complaint_op("reply", "The customer answered: clocks resume.", c.RecordCustomerReply)
_complaint_op("resolve", "Resolve: both clocks stop (seed 002 §7.3).", c.ResolveComplaint,
              click.option("--resolution", required=True, help="The result; stored sealed."))
_complaint_op("rate", "Satisfaction 1-5 (seed 002 §5.3).", c.RateComplaint,
              click.option("--score", type=int, required=True))
_complaint_op("close", "Close a resolved complaint.", c.CloseComplaint)
_complaint_op("reopen", "Reopen: the resolution clock resumes.", c.ReopenComplaint,
              click.option("--reason", required=True))


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
