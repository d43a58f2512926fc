"""What of a rejected upstream input may be kept (a rejects file, a dead letter's reason).

Every mask here runs in time linear in its input: no pattern can backtrack
over a run it already examined (possessive quantifiers, and starts that a
fixed-width look-behind pins to the beginning of a token), so a hostile line
costs what reading it costs. An input longer than :data:`MAX_INPUT_BYTES` is
refused by its length alone, before any of this sees it.

A rejected JSON object keeps only the fields the upstream schemas know,
personal ones masked; unknown field names are not copied, only counted. A
line that is not a JSON object keeps no more than :data:`PREFIX_CHARS`
characters, e-mail-like runs and phone-like digit runs masked.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from schemas.codec import default_registry

# The largest upstream input (a line of a file, a Kafka message's value) that is read at all.
# Every upstream event is a few hundred bytes; anything near this is not an event.
MAX_INPUT_BYTES = 64 * 1024
# How much of an input that is not a JSON object a rejects file keeps.
PREFIX_CHARS = 64
# A kept field's text value is cut to this many characters.
MAX_KEPT_CHARS = 200

# Fields of an upstream event that are personal information (PIPL) or free
# text that may hold it: never written in clear outside a member's sealed data.
PERSONAL_FIELDS = ("name", "phone", "email", "detail", "description", "reason", "comment", "note",
                   "address")
MASK = "[masked]"

_STOP = r"\s\"',;:{}"
_STOPS = frozenset(" \t\r\n\"',;:{}")
# An e-mail-like token: starts only where a token starts (look-behind), scanned once.
_EMAIL = re.compile(rf"(?<![^{_STOP}])[^{_STOP}@]*+@[^{_STOP}]++")
# A run of digits, spaces and dashes not glued to a word; judged whole by _digit_run.
_DIGIT_RUN = re.compile(r"(?<![\w-])\+?\d[\d \-]*+")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_QUOTED = re.compile(r'("(?:%s)"\s*+:\s*+)"(?:[^"\\]++|\\.)*+"' % "|".join(PERSONAL_FIELDS))
# ``name: Zhang San`` or ``phone=139...`` in a line that is not JSON.
_UNQUOTED = re.compile(r"\b((?:%s)\s*+[:=]\s*+)[^,;{}\"\n]++" % "|".join(PERSONAL_FIELDS), re.IGNORECASE)


def _digit_run(match: re.Match) -> str:
    """A phone-like run masked; a leading ISO date kept (a masked date would hide what to fix).

    The run is walked once by index (never sliced and rescanned): each date
    kept moves past its ten characters and the spaces after them.
    """
    run, out, at, end = match.group(), [], 0, len(match.group())
    while at < end and _DATE.match(run, at):
        after = at + 10
        while after < end and run[after] == " ":
            after += 1
        out.append(run[at:after])
        at = after
        if at < end and run[at] == "-":  # glued to the date by a dash: not a start of its own
            out.append(run[at:])
            return "".join(out)
    if at < end:
        stop = end
        while stop > at and run[stop - 1] in " -":
            stop -= 1
        digits = stop - at - (run[at] == "+")
        out.append(MASK + run[stop:] if digits >= 7 else run[at:])
    return "".join(out)


def mask_free_text(text: str) -> str:
    """E-mail-like tokens and phone-like digit runs of ``text`` masked (linear time)."""
    return _DIGIT_RUN.sub(_digit_run, _EMAIL.sub(MASK, text))


@lru_cache(maxsize=1)
def known_fields() -> frozenset:
    """Every field name some version of an upstream schema has, and ``type``."""
    registry = default_registry()
    names = {"type"}
    for name in registry.names():
        if name.startswith("vip.upstream."):
            for version in registry.versions(name):
                names.update(f["name"] for f in registry.raw(name, version)["fields"])
    return frozenset(names)


def _kept(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        cut = value if len(value) <= MAX_KEPT_CHARS else \
            value[:MAX_KEPT_CHARS] + f"...({len(value) - MAX_KEPT_CHARS} more characters not copied)"
        return mask_free_text(cut)
    return f"[{type(value).__name__} not copied]"


def mask_record(record: Any) -> tuple[Any, int]:
    """The fields of a decoded record the schemas know, personal ones masked, and how many
    fields it had that no schema knows (their names are not copied)."""
    if not isinstance(record, dict):
        return f"[{type(record).__name__} not copied]", 0
    known = known_fields()
    kept = {k: (MASK if k in PERSONAL_FIELDS and v not in (None, "") else _kept(v))
            for k, v in record.items() if k in known}
    return kept, len(record) - len(kept)


def mask_prefix(raw: str) -> str:
    """At most :data:`PREFIX_CHARS` characters of a line that is not JSON, personal values masked.

    Masked over twice the prefix, then cut; a token the cut splits is dropped
    whole, so no piece of a number or address survives the cut unmasked.
    """
    if "\x00" in raw[:PREFIX_CHARS * 2] or "\ufffd" in raw[:PREFIX_CHARS * 2]:
        # Not text we can read (UTF-16, binary): nothing of it is copied.
        return f"[{len(raw)} characters not copied: not UTF-8 text]"
    window = raw[:PREFIX_CHARS * 2]
    text = _QUOTED.sub(lambda m: m.group(1) + f'"{MASK}"', window)
    text = mask_free_text(_UNQUOTED.sub(lambda m: m.group(1) + MASK, text))
    if len(text) > PREFIX_CHARS or len(raw) > len(window):
        cut = text[:PREFIX_CHARS]
        if len(text) > PREFIX_CHARS and text[PREFIX_CHARS] not in _STOPS:
            # The cut splits a token: drop it whole.
            cut = cut[:max((n + 1 for n, ch in enumerate(cut) if ch in _STOPS), default=0)]
        return cut + "...(the rest not copied)"
    return text


def masked_input(raw: str) -> dict:
    """What a rejects file keeps of one rejected input: ``raw`` (the known fields of a JSON
    object as JSON, or a masked prefix) and ``unknown_fields`` (how many were left out)."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        record = None
    if isinstance(record, dict):
        kept, unknown = mask_record(record)
        return {"raw": json.dumps(kept, ensure_ascii=False), "unknown_fields": unknown}
    return {"raw": mask_prefix(raw)}


def mask_text(raw: str) -> str:
    """A raw input line with personal values masked (see :func:`masked_input`)."""
    return masked_input(raw)["raw"]
