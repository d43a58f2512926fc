"""Claims: amounts a contract books as owed before any invoice asks for them.

Breach compensation is owed from the breach (seed 000 §8.3) and the
post-termination settlement from the termination (§10.3): each is booked
then, once. An invoice of the same kind only collects it, up to what is not
yet invoiced, and stays possible after the contract ended: money owed
outlives the contract. Pure rules over a ``{claim_key: fen}`` dict.
"""
from __future__ import annotations

#: Invoice kinds that collect a claim, and what they collect.
CLAIM_KINDS = {"compensation": "a recorded breach's compensation",
               "settlement": "the termination settlement"}

_FIRST = {"compensation": "record the breach with its compensation first",
          "settlement": "terminate with the settlement first"}


def claim_key(kind: str, payer: str, currency: str) -> str:
    """The key of what ``payer`` owes of ``kind`` in ``currency``."""
    return f"{kind}:{payer}:{currency}"


def add_claim(claims: dict, kind: str, payer: str, currency: str, fen: int) -> None:
    """Book ``fen`` more owed (an invoice that collects it books a negative amount)."""
    key = claim_key(kind, payer, currency)
    claims[key] = claims.get(key, 0) + fen


def claim_problem(claims: dict, kind: str, payer: str, amount_fen: int, currency: str,
                  contract_id: str) -> str | None:
    """Why an invoice of a claim kind cannot be issued, or None."""
    unbilled = claims.get(claim_key(kind, payer, currency), 0)
    if amount_fen <= unbilled:
        return None
    return (f"a {kind} invoice collects {CLAIM_KINDS[kind]}: {payer} owes {unbilled} fen {currency} "
            f"of it not yet invoiced on {contract_id}, not {amount_fen}; {_FIRST[kind]}")
