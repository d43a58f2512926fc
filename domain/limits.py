"""The bounds every value meets at every edge (HTTP API, CLI, ingest, Kafka): one pure rule set.

Each ``..._problem`` function returns a message saying what to fix, or None
when the value is acceptable, so an edge refuses bad input with the same words
before anything is recorded. Standard library only; the names here are a
public interface other edges import: keep them stable.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import datetime
from typing import Any

# Business ids (members, contracts, complaints, milestones, parties).
MAX_ID_LENGTH = 100
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
# Free text (reasons, titles, notes) and short names (categories, channels).
MAX_TEXT_LENGTH = 2000
MAX_NAME_LENGTH = 100
# Contract terms: their JSON size and nesting, and the lengths of their lists.
MAX_TERMS_BYTES = 64 * 1024
MAX_TERMS_DEPTH = 8
MAX_LIST_ITEMS = 200
# Calendar ranges: validity and due months, payment days, confidentiality years.
MAX_MONTHS = 1200            # 100 years: the calendar stays far inside year 9999
MAX_PAYMENT_DAYS = 3650
MAX_YEARS = 100
# Money: whole fen, far below an Avro long, far above any contract sum.
MAX_AMOUNT_FEN = 10**15
# Instants (due dates, "at"): far from the calendar's ends, so adding months or days never overflows.
MIN_YEAR = 1970
MAX_YEAR = 2200
# Any whole number in a payload (counts, points, ...).
MAX_WHOLE = 2**53 - 1
# API key subjects, and the actors only the system itself may act as.
SUBJECT_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
RESERVED_SUBJECTS = frozenset({"system", "scheduler", "operator", "admin", "root", "platform",
                               "replay", "migration", "ingest", "relay"})
RESERVED_SUBJECT_PREFIXES = ("upstream", "timer", "system", "scheduler")

# Bidirectional overrides and isolates reorder what an operator reads (U+202E).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_ID_RE = re.compile(ID_PATTERN)
_SUBJECT_RE = re.compile(SUBJECT_PATTERN)


def show(value: Any, width: int = 40) -> str:
    """A short, printable rendering of a value for an error message."""
    text = ascii(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def is_whole(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def unsafe_character(text: str, multiline: bool = False) -> str | None:
    """The first character of ``text`` no edge accepts, described, or None.

    Refused: lone surrogates (they cannot be encoded as UTF-8), control
    characters (newlines forge rows in listings and logs; ``multiline`` lets
    newline and tab through for free text) and bidirectional overrides.
    """
    for n, ch in enumerate(text):
        if multiline and ch in "\n\t":
            continue
        category = unicodedata.category(ch)
        if category == "Cs":
            return f"a lone surrogate U+{ord(ch):04X} at position {n}"
        if category == "Cc":
            return f"a control character U+{ord(ch):04X} at position {n}"
        if ch in _BIDI:
            return f"a bidirectional control U+{ord(ch):04X} at position {n}"
    return None


def text_problem(value: Any, what: str, max_length: int = MAX_TEXT_LENGTH,
                 multiline: bool = True, required: bool = True) -> str | None:
    """Why ``value`` is not acceptable text for ``what``, or None."""
    if not isinstance(value, str):
        return f"{what} must be text, got {show(value)}"
    if required and not value.strip():
        return f"{what} must not be empty"
    if len(value) > max_length:
        return f"{what} must be at most {max_length} characters, got {len(value)}"
    bad = unsafe_character(value, multiline=multiline)
    return f"{what} must be plain text without {bad}" if bad else None


def name_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not an acceptable one-line name (category, channel, title), or None."""
    return text_problem(value, what, MAX_NAME_LENGTH, multiline=False)


def id_problem(value: Any, what: str = "id") -> str | None:
    """Why ``value`` is not an acceptable business id, or None."""
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty id (text), got {show(value)}"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} must be at most {MAX_ID_LENGTH} characters, got {len(value)}"
    if not _ID_RE.fullmatch(value):
        return (f"{what} must start with a letter or digit and hold only letters, digits and . _ : -, "
                f"got {show(value)}")
    return None


def whole_problem(value: Any, what: str, low: int = 0, high: int = MAX_WHOLE) -> str | None:
    """Why ``value`` is not a whole number in ``[low, high]``, or None."""
    if not is_whole(value) or not low <= value <= high:
        return f"{what} must be a whole number from {low} to {high}, got {show(value)}"
    return None


def months_problem(value: Any, what: str, low: int = 1) -> str | None:
    """Why ``value`` is not a number of months in ``[low, MAX_MONTHS]``, or None."""
    return whole_problem(value, what, low, MAX_MONTHS)


def days_problem(value: Any, what: str, low: int = 0) -> str | None:
    """Why ``value`` is not a number of payment days in ``[low, MAX_PAYMENT_DAYS]``, or None."""
    return whole_problem(value, what, low, MAX_PAYMENT_DAYS)


def amount_problem(value: Any, what: str = "amount_fen", low: int = 1) -> str | None:
    """Why ``value`` is not a whole number of fen in ``[low, MAX_AMOUNT_FEN]``, or None."""
    if not is_whole(value) or not low <= value <= MAX_AMOUNT_FEN:
        return f"{what} must be a whole number of fen from {low} to {MAX_AMOUNT_FEN}, got {show(value)}"
    return None


def instant_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not an aware instant between ``MIN_YEAR`` and ``MAX_YEAR``, or None."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        return f"{what} must be a time with a zone, e.g. 2025-06-30T23:59:59+08:00, got {show(value)}"
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return f"{what} must fall between the years {MIN_YEAR} and {MAX_YEAR}, got {value.isoformat()}"
    return None


def finite_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not a finite number (NaN and Infinity are refused), or None."""
    if is_whole(value):
        return None
    if not isinstance(value, float) or not math.isfinite(value):
        return f"{what} must be a finite number, got {show(value)}"
    return None


def json_problem(value: Any, what: str, max_bytes: int = MAX_TERMS_BYTES,
                 max_depth: int = MAX_TERMS_DEPTH) -> str | None:
    """Why a JSON document cannot be stored, or None.

    Bounded in size and depth; numbers finite and whole numbers within
    ``MAX_WHOLE``; every key and string safe text; lists at most
    ``MAX_LIST_ITEMS`` long.
    """
    problem = _walk(value, what, 0, max_depth)
    if problem:
        return problem
    size = len(json.dumps(value, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8"))
    if size > max_bytes:
        return f"{what} must be at most {max_bytes} bytes of JSON, got {size}"
    return None


def _walk(value: Any, where: str, depth: int, max_depth: int) -> str | None:
    if depth > max_depth:
        return f"{where} nests deeper than {max_depth} levels"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):  # how instants travel inside Python (a due_at given in code)
        return instant_problem(value, where)
    if is_whole(value):
        return None if abs(value) <= MAX_WHOLE else f"{where} must be at most {MAX_WHOLE} in size"
    if isinstance(value, float):
        return finite_problem(value, where)
    if isinstance(value, str):
        return text_problem(value, where, MAX_TEXT_LENGTH, multiline=True, required=False)
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST_ITEMS:
            return f"{where} must hold at most {MAX_LIST_ITEMS} items, got {len(value)}"
        for n, item in enumerate(value):
            problem = _walk(item, f"{where}[{n}]", depth + 1, max_depth)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        if len(value) > MAX_LIST_ITEMS:
            return f"{where} must hold at most {MAX_LIST_ITEMS} keys, got {len(value)}"
        for key, item in value.items():
            problem = (text_problem(key, f"a key in {where}", MAX_NAME_LENGTH, multiline=False)
                       or _walk(item, f"{where}.{key}", depth + 1, max_depth))
            if problem:
                return problem
        return None
    return f"{where} must be JSON (object, list, text, number, true/false, null), got {show(value)}"


def subject_problem(value: Any) -> str | None:
    """Why ``value`` cannot be the subject of an API key (the actor on its events), or None."""
    if not isinstance(value, str) or not _SUBJECT_RE.fullmatch(value):
        return ("subject must be 1 to 64 characters of lower-case letters, digits and . _ @ -, "
                f"starting with a letter or digit, got {show(value)}")
    head = re.split(r"[.:@_-]", value, maxsplit=1)[0]
    if value in RESERVED_SUBJECTS or head in RESERVED_SUBJECT_PREFIXES:
        return (f"subject {value!r} is reserved for the system's own actors; name the person or "
                "service the key belongs to")
    return None
