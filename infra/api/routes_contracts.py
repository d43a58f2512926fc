"""Contract routes: drafting, signing, milestones, invoices and their settlement, disputes, end."""
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from infra.api import answers, models as m
from infra.api.auth import allowed, principal, route
from infra.api.commands import aggregate
from infra.api.execute import etag
from infra.api.keys import Principal
from infra.api.routes_common import ID_PATTERN, MAX_PAGE, command_route, describer, page
from infra.service_layer import commands as c
from infra.service_layer.describe import ContractState, as_json

router = APIRouter()
AS_OF = Query(default=None, description="Answer as of this past instant (ISO-8601 with zone)")

command_route(router, "contract", "draft", c.DraftContract, "/contracts", "contract:write", m.Draft,
              "Draft a contract with its terms", id_field="contract_id")
for name, command, model, summary in (
        ("sign", c.SignContract, m.Sign, "One party signs; the last signature makes it effective"),
        ("complete-milestone", c.CompleteMilestone, m.Milestone, "Mark a milestone completed"),
        ("propose-amendment", c.ProposeAmendment, m.Amendment, "Propose changed terms (seed 000 §11)"),
        ("consent", c.ConsentToAmendment, m.Consent, "A party consents to an amendment"),
        ("breach", c.RecordBreach, m.Breach, "Record a breach with compensation (seed 000 §8)"),
        ("dispute", c.OpenDispute, m.Dispute, "Open a dispute (seed 000 §9)"),
        ("settle-dispute", c.SettleDispute, m.SettleDispute, "Settle the open dispute"),
        ("terminate", c.TerminateContract, m.Terminate, "Terminate with reason and settlement (seed 000 §10)"),
        ("renew", c.RenewContract, m.Renew, "Renew for more months (seed 002 §12.3)"),
        ("invoice", c.IssueInvoice, m.Invoice, "Issue an invoice"),
        ("pay", c.PayInvoice, m.Pay, "Record a payment against an invoice"),
        ("discount", c.GrantDiscount, m.Discount, "Grant a discount on an invoice (seed 002 §6.3)"),
        ("waive", c.WaiveInvoice, m.Waive, "Waive what is still owed on an invoice (seed 002 §6.3)")):
    command_route(router, "contract", name, command, f"/contracts/{{id}}/{name}", "contract:write", model,
                  summary)


# What a role without ``contract:terms`` sees of a contract row: nothing the terms say
# (parties, member, milestones with titles and dates, invoices with payers and amounts).
UNCLASSIFIED = ("contract_id", "kind", "status", "terms_version", "effective_at", "valid_until")


@route(router, "GET", "/contracts", "contract:read", response_model=m.Page, tags=["contracts"],
       summary="Contracts with status and validity; parties, milestones and invoices only for "
               "finance, auditor, admin")
def contracts(request: Request, as_of: AwareDatetime | None = AS_OF,
              limit: int = Query(50, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0),
              who: Principal = Depends(principal)) -> dict:
    with request.app.state.engines.at(as_of) as system:
        rows = answers.contracts(system, as_of)
    if not allowed(who.role, "contract:terms"):
        rows = [{k: row.get(k) for k in UNCLASSIFIED} for row in rows]
    return page(rows, limit, offset)


@route(router, "GET", "/contracts/{id}", "contract:read", 404, response_model=ContractState,
       tags=["contracts"], summary="A contract's state and version; terms only for finance, auditor, admin")
def contract_state(request: Request, id: str = Path(min_length=1, max_length=100, pattern=ID_PATTERN),
                   who: Principal = Depends(principal)):
    with request.app.state.engines.reader() as system:
        contract = aggregate(system.app, "contract", id)
        body = as_json(describer("contract", who)(contract, system.app))
    return JSONResponse(body, headers={"ETag": etag(contract.version)})
