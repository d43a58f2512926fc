"""From a request to a command: the API's side of the one command path.

A route names the command type it runs (``routes_*.py``); :func:`command_of`
builds it from the business id and the request's validated body (whose
fields are named as the command's). The command then goes through the one
handler map (:mod:`infra.service_layer.handlers`), as the CLI's do.
"""
from __future__ import annotations

from pydantic import BaseModel

from infra.service_layer.app import VipApp
from infra.service_layer.commands import Command

# The body field that names the aggregate, for commands that create one (it is the id).
ID_FIELDS = {"member": "member_id", "contract": "contract_id", "complaint": "complaint_id"}


def command_of(command: type[Command], kind: str, business_id: str, body: BaseModel) -> Command:
    """``command(business_id, **body fields)``; ``at`` is when, not what, so it is left out."""
    fields = body.model_dump(exclude={"at", ID_FIELDS[kind]})
    return command(business_id, **fields)


def aggregate(app: VipApp, kind: str, business_id: str):
    """The aggregate a command names (NotFoundError if there is none)."""
    return {"member": app.member, "contract": app.contract, "complaint": app.complaint}[kind](business_id)
