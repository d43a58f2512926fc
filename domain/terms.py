"""Contract terms, checked field by field: a pure rule set (no aggregate, no clock).

:func:`terms_problems` returns every malformed field of a set of terms, each
message naming the field and what it must be, so a user fixes a draft in one
go instead of meeting a Python error. Basis points are whole numbers (no
floats reach the ledger); currencies are ISO 4217 codes from
:mod:`domain.currencies`. The contract aggregate raises its own errors with
these messages.
"""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.base import InstantError, parse_instant
from domain.currencies import is_currency
from domain.limits import (MAX_AMOUNT_FEN, MAX_LIST_ITEMS, MAX_MONTHS, MAX_PAYMENT_DAYS, MAX_YEARS,
                           id_problem, instant_problem, is_whole, json_problem, name_problem, show)

KINDS = ("cooperation", "member_agreement")
# The platform's own party id in contract terms: the ledger keeps its books
# for this party (revenue, payables); every other party is a customer or partner.
PLATFORM = "platform"
TOTAL_BP = 10000
# Whole-number fields of the terms: (name, default, lowest, highest, unit). Bounded so
# that signing, invoicing and renewing can always compute their dates.
RANGES = (("validity_months", 12, 1, MAX_MONTHS, "months"),
          ("payment_terms_days", 30, 0, MAX_PAYMENT_DAYS, "days"),
          ("confidentiality_years", 0, 0, MAX_YEARS, "years"))
_whole = is_whole
_show = show


def money_problem(amount_fen: Any, currency: Any, what: str = "amount") -> str | None:
    """Why an amount of money cannot be used, or None: whole positive fen in an ISO 4217 currency."""
    if not _whole(amount_fen) or amount_fen <= 0:
        return f"{what} must be a positive whole number of fen, got {_show(amount_fen)}"
    if amount_fen > MAX_AMOUNT_FEN:
        return f"{what} must be at most {MAX_AMOUNT_FEN} fen, got {amount_fen}"
    if not is_currency(currency):
        return f"currency must be an ISO 4217 code like CNY, got {_show(currency)}"
    return None


def terms_problems(kind: Any, terms: Any) -> list[str]:
    """Every problem in ``terms`` for a contract of ``kind``; empty when they can be run."""
    if kind not in KINDS:
        return [f"contract kind must be one of {KINDS}, got {_show(kind)}"]
    if not isinstance(terms, dict):
        return [f"terms must be a JSON object, got {_show(terms)}"]
    shape = json_problem(terms, "terms")
    if shape:  # too big, too deep, not finite or not safe text: nothing else is worth reading
        return [shape]
    problems: list[str] = []
    ids = _party_ids(terms, problems)
    if kind == "member_agreement":
        _member_is_party(terms.get("member_id"), ids, problems)
        _member_party_is_an_id(terms, problems)
    for name, default, low, high, unit in RANGES:
        value = terms.get(name, default)
        if not _whole(value) or not low <= value <= high:
            what = "a positive whole number" if low == 1 else "a whole number, 0 or more"
            problems.append(f"{name} must be {what} of {unit}, at most {high}, got {_show(value)}")
    _revenue_share(terms.get("revenue_share"), ids, problems)
    _milestones(terms.get("milestones", []), problems)
    if "currency" in terms and not is_currency(terms["currency"]):
        problems.append(f"currency must be an ISO 4217 code like CNY, got {_show(terms['currency'])}")
    fees = terms.get("fee_schedule") or []
    for n, fee in enumerate(fees if isinstance(fees, list) else [None]):
        if not isinstance(fee, dict):
            problems.append("fee_schedule must be a list of objects")
            break
        if "currency" in fee and not is_currency(fee["currency"]):
            problems.append(f"fee_schedule[{n}].currency must be an ISO 4217 code, got {_show(fee['currency'])}")
        for key in ("annual_fee_fen", "amount_fen"):
            if key in fee and (not _whole(fee[key]) or not 0 <= fee[key] <= MAX_AMOUNT_FEN):
                problems.append(f"fee_schedule[{n}].{key} must be a whole number of fen from 0 to "
                                f"{MAX_AMOUNT_FEN}, got {_show(fee[key])}")
    if "zone" in terms and not _is_zone(terms["zone"]):
        problems.append(f"zone must be an IANA time zone name like Asia/Shanghai, got {_show(terms['zone'])}")
    _kept_as_agreed(terms, problems)
    return problems


def _is_zone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _member_is_party(member_id: Any, ids: list[str], problems: list[str]) -> None:
    """Seed 002 §2.2.3: the member signs their own agreement, so they must be one of its parties."""
    problem = id_problem(member_id, "member_id")
    if problem:
        problems.append(f"{problem}: a member agreement needs the member's id")
    elif ids and member_id not in ids:
        problems.append(f"member_id {member_id!r} is not a party to the agreement (the parties are "
                        f"{', '.join(ids)}): the member must be one of the two parties and sign it")


MEMBER_PARTY_KEYS = ("id", "role")


def _member_party_is_an_id(terms: dict, problems: list[str]) -> None:
    """The member's party in their own agreement is their id (and a role), nothing personal:
    their name and contacts live in the sealed profile, which erasure shreds, while terms are
    kept in clear for the contract's life (PIPL; DOMAIN.md "Personal data")."""
    member = terms.get("member_id")
    for n, party in enumerate(terms.get("parties") or []):
        if isinstance(party, dict) and party.get("id") == member:
            extra = sorted(str(k) for k in party if k not in MEMBER_PARTY_KEYS)
            if extra:
                problems.append(f"parties[{n}] is the member: give only {' and '.join(MEMBER_PARTY_KEYS)} "
                                f"(not {', '.join(extra)}); the member's name and contacts are kept in "
                                f"their sealed profile, not in the terms")


def _kept_as_agreed(terms: dict, problems: list[str]) -> None:
    """Terms the contract keeps as agreed (nothing computes with them) still have a shape."""
    channels = terms.get("notice_channels", [])
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        problems.append(f"notice_channels must be a list of channel names (text), got {_show(channels)}")
    targets = terms.get("sla_targets", {})
    if not (isinstance(targets, dict) or (isinstance(targets, str) and targets)):
        problems.append("sla_targets must name an SLA policy (text, e.g. a tier) or be a JSON object "
                        f"of targets, got {_show(targets)}")


def settlement_problem(settlement: Any, party_ids: list[str]) -> str | None:
    """Why a termination settlement cannot be recorded, or None; payer and payee must be parties."""
    if not isinstance(settlement, dict):
        return f"settlement must be a JSON object, got {_show(settlement)}"
    if not settlement.get("amount_fen"):
        return None
    problem = money_problem(settlement["amount_fen"], settlement.get("currency", "CNY"), "settlement amount_fen")
    if problem:
        return problem
    for role in ("payer", "payee"):
        who = settlement.get(role)
        if role == "payer" and who is None:
            return f"settlement payer must be one of the parties {', '.join(party_ids)}"
        if who is not None and who not in party_ids:
            return f"settlement {role} {_show(who)} is not a party; parties are {', '.join(party_ids)}"
    if settlement.get("payee") is not None and settlement["payee"] == settlement["payer"]:
        return "settlement payer and payee must be different parties"
    return None


def _party_ids(terms: dict, problems: list) -> list:
    parties = terms.get("parties")
    if not isinstance(parties, list) or not all(isinstance(p, dict) for p in parties):
        problems.append(f"parties must be a list of two objects like {{\"id\": \"{PLATFORM}\"}}")
        return []
    ids = [p.get("id") for p in parties]
    if len(parties) != 2 or len(set(map(str, ids))) != 2 or not all(isinstance(i, str) and i for i in ids):
        problems.append("parties: terms need exactly two parties with distinct ids (text)")
        return [i for i in ids if isinstance(i, str)]
    for n, party in enumerate(parties):
        problem = id_problem(party["id"], f"parties[{n}].id")
        if problem:
            problems.append(problem)
        if "name" in party and (problem := name_problem(party["name"], f"parties[{n}].name")):
            problems.append(problem)
    return ids


def _revenue_share(share: Any, ids: list, problems: list) -> None:
    if not share:
        return
    if not isinstance(share, dict):
        problems.append("revenue_share must be an object of party id -> basis points")
        return
    strangers = sorted(k for k in share if k not in ids)
    if strangers:
        problems.append(f"revenue_share names parties not in the contract: {strangers} "
                        f"(the parties are {', '.join(ids)})")
    bad = sorted(k for k, v in share.items() if not _whole(v) or v < 0)
    if bad:
        problems.append(f"revenue_share ratios must be whole basis points, 0 or more, that add up to "
                        f"{TOTAL_BP}: {bad} are not")
    elif sum(share.values()) != TOTAL_BP:
        problems.append(f"revenue_share ratios are basis points and must add up to {TOTAL_BP}, "
                        f"got {sum(share.values())}")


def _milestones(milestones: Any, problems: list) -> None:
    if not isinstance(milestones, list) or not all(isinstance(m, dict) for m in milestones):
        problems.append("milestones must be a list of objects like {\"id\": \"m1\", \"due_months\": 1}")
        return
    if len(milestones) > MAX_LIST_ITEMS:
        problems.append(f"milestones: at most {MAX_LIST_ITEMS}, got {len(milestones)}")
        return
    seen: set = set()
    for m in milestones:
        mid = m.get("id")
        if not isinstance(mid, str) or not mid or mid in seen:
            problems.append("milestones: every milestone needs a unique id (text)")
            continue
        if id_problem(mid, "milestone id"):
            problems.append(id_problem(mid, "milestone id"))
            continue
        seen.add(mid)
        if not m.get("due_months") and not m.get("due_at"):
            problems.append(f"milestone {mid} needs due_months or due_at")
        due = m.get("due_months")
        if due and (not _whole(due) or not 1 <= due <= MAX_MONTHS):
            problems.append(f"milestone {mid} due_months must be a positive whole number, at most "
                            f"{MAX_MONTHS}, got {_show(due)}")
        if "title" in m and (problem := name_problem(m["title"], f"milestone {mid} title")):
            problems.append(problem)
        if m.get("due_at"):
            problem = _instant_problem(m["due_at"])
            if problem:
                problems.append(f"milestone {mid} due_at: {problem}")


def _instant_problem(value: Any) -> str | None:
    try:
        at = parse_instant(value)
    except InstantError as exc:
        return str(exc)
    return instant_problem(at, "due_at")
