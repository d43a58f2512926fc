"""Contract rows: status, validity, milestones and invoices, for overdue lists."""
from __future__ import annotations

from domain.contract import Contract
from projections.common import iso, isoify
from projections.view import View, by_aggregate, event_types

VERSION = 2  # 2: the listing index (the first due date of an open milestone or invoice)


def fold_contract(row: dict | None, event: dict, key: str) -> dict | None:
    kind, data, at = event["type"], event["data"], iso(event["timestamp"])
    if kind == "ContractDrafted":
        terms = data["terms"]
        return {"contract_id": key, "kind": data["kind"], "status": "draft",
                "parties": [p["id"] for p in terms["parties"]],
                "member_id": terms.get("member_id"), "terms_version": 1,
                "effective_at": None, "valid_until": None, "milestones": {}, "invoices": {}}
    row = dict(row)
    if kind == "ContractBecameEffective":
        row.update(status="effective", effective_at=iso(data["effective_at"]),
                   valid_until=iso(data["valid_until"]), milestones=isoify(data["milestones"]))
    elif kind in ("MilestoneCompleted", "MilestoneOverdue"):
        status = "completed" if kind == "MilestoneCompleted" else "overdue"
        milestone = {**row["milestones"][data["milestone_id"]], "status": status}
        if status == "completed":
            milestone.update(completed_at=at, late=data["late"])
        row["milestones"] = {**row["milestones"], data["milestone_id"]: milestone}
    elif kind == "InvoiceIssued":
        invoice = {"payer": data["payer"], "amount_fen": data["amount_fen"],
                   "currency": data["currency"], "kind": data["kind"],
                   "due_at": iso(data["due_at"]), "issued_at": at, "settled_fen": 0,
                   "status": "open"}
        row["invoices"] = {**row["invoices"], data["invoice_id"]: invoice}
    elif kind in ("PaymentReceived", "InvoiceCredited"):
        invoice = dict(row["invoices"][data["invoice_id"]])
        invoice["settled_fen"] += data["amount_fen"]
        if invoice["settled_fen"] >= invoice["amount_fen"]:
            invoice.update(status="paid", paid_at=at)
        row["invoices"] = {**row["invoices"], data["invoice_id"]: invoice}
    elif kind == "InvoiceOverdue":
        invoice = {**row["invoices"][data["invoice_id"]], "status": "overdue"}
        row["invoices"] = {**row["invoices"], data["invoice_id"]: invoice}
    elif kind == "TermsAmended":
        row["terms_version"] = data["terms_version"]
        if data.get("milestones") is not None:
            row.update(milestones=isoify(data["milestones"]), valid_until=iso(data["valid_until"]))
    elif kind == "DisputeOpened":
        row["status"] = "disputed"
    elif kind == "DisputeSettled":
        row["status"] = "effective"
    elif kind == "ContractRenewed":
        row["valid_until"] = iso(data["valid_until"])
        if row["status"] == "expired":  # renewed after its end: in force again
            row["status"] = "effective"
            row.pop("ended_at", None)
    elif kind == "ContractTerminated":
        row.update(status="terminated", ended_at=at)
    elif kind == "ContractExpired":
        row.update(status="expired", ended_at=at)
    return row


def first_due(row: dict) -> str | None:
    """From when the contract may show in the overdue lists; None = it never will."""
    dues = [inv["due_at"] for inv in row["invoices"].values() if inv["status"] != "paid"]
    if row["status"] in ("effective", "disputed"):
        dues += [m["due_at"] for m in row["milestones"].values() if m["status"] != "completed"]
    return min(dues) if dues else None


CONTRACTS = View("contracts", by_aggregate("contract"), fold_contract, VERSION, first_due,
                 event_types(Contract))
