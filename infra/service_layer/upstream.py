"""Upstream events from the order system and CRM: validation and the input path.

``vip ingest`` (JSON Lines) and the Kafka consumers both parse with
:func:`parse` and apply with :func:`apply_input`, so a file and a topic
have the same effect. An input is read as a typed command
(:mod:`infra.service_layer.upstream_commands`) and handled through the one
handler map. An input is applied at most once: its event id is
recorded as an input receipt, atomically with the events it caused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from eventsourcing.persistence import Tracking

from domain.base import DomainError, InstantError, parse_instant
from domain.currencies import is_currency
from domain.limits import id_problem, name_problem
from domain.member import ACTIVITY_KINDS
from infra.service_layer.engine import Engine
from infra.service_layer.handlers import dispatch
from infra.service_layer.upstream_commands import INPUT_COMMANDS, UpstreamCommand
from infra.stores.recorders import Receipt

ORDER_TYPES = ("OrderPaid", "OrderRefunded", "OrderCancelled")
CRM_TYPES = ("CustomerRegistered", "ProfileUpdated", "ActivityRecorded", "ErasureRequested")
SOURCES = {"orders": ORDER_TYPES, "crm": CRM_TYPES}
# One order or refund: 10 billion CNY in fen. Far above any real basket, far below
# what an Avro long carries even when a year of them is summed (2**63 - 1).
MAX_AMOUNT_FEN = 1_000_000_000_000
# Instants must survive a conversion to UTC and the arithmetic of windows and
# deadlines (years, not centuries, either side), so years 1 and 9999 are out.
MIN_YEAR, MAX_YEAR = 1900, 9000


class InputConflictError(DomainError):
    """An upstream event id was reused for different content."""


class InputError(ValueError):
    """An upstream event is malformed; the message says which field and why."""


@dataclass(frozen=True)
class Input:
    """One validated upstream event."""

    source: str
    type: str
    event_id: str
    member_id: str
    occurred_at: datetime
    fields: dict = field(default_factory=dict)
    correlation_id: str = ""

    def digest(self) -> str:
        """What makes two deliveries of one event id the same input.

        Personal values (profile fields) are left out, so no hash of a
        phone number or name outlives the member's erasure: a reused id is
        still told apart by its type, member, instant and every other field.
        """
        text = _digest_text(self)
        if text is None:  # a field of another type: json.dumps itself (the fast text is its bytes)
            fields = {k: (sorted(v) if k == "profile" else v) for k, v in self.fields.items()}
            content = [self.source, self.type, self.member_id, self.occurred_at.isoformat(), fields]
            text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def command(self, known: bool = True) -> UpstreamCommand:
        """The typed command this input stands for (by its type); ``known``: the member exists."""
        return INPUT_COMMANDS[self.type](self.member_id, self.event_id, self.occurred_at, self.source,
                                         known=known, **self.fields)

    def receipt(self) -> Receipt:
        """The receipt recorded with this input's events (one effect per event id)."""
        return Receipt(self.event_id, self.digest(), self.member_id)


# What json.dumps writes for a str with its defaults (ensure_ascii): the C escaper it uses.
_json_str = json.encoder.encode_basestring_ascii


def _digest_text(item: Input) -> str | None:
    """``json.dumps(content, sort_keys=True, default=str)`` of :meth:`Input.digest`, written
    directly when every value is text or a plain int (every input ``parse`` makes), else None.

    The receipts store the digest, so these must be json's bytes exactly: its default
    separators, keys sorted, text escaped to ASCII. json.dumps with arguments builds an
    encoder per call, which cost most of the digest (~8% of applying an order, issue 21)."""
    parts = []
    for value in (item.source, item.type, item.member_id):
        if type(value) is not str:
            return None
        parts.append(_json_str(value))
    parts.append(_json_str(item.occurred_at.isoformat()))
    fields = []
    for key in sorted(item.fields):
        if type(key) is not str:
            return None
        value, kind = item.fields[key], type(item.fields[key])
        if key == "profile":
            names = sorted(value)
            if not all(type(name) is str for name in names):
                return None
            text = "[" + ", ".join(map(_json_str, names)) + "]"
        elif kind is str:
            text = _json_str(value)
        elif kind is int:
            text = int.__repr__(value)
        else:
            return None
        fields.append(f"{_json_str(key)}: {text}")
    return "[" + ", ".join(parts) + ", {" + ", ".join(fields) + "}]"


def parse(source: str, record: dict[str, Any], type_hint: str | None = None) -> Input:
    """Validate one upstream record (a JSON object or a decoded Avro record)."""
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r}; expected orders or crm")
    if not isinstance(record, dict):
        raise InputError("an event must be a JSON object")
    kind = type_hint or record.get("type")
    if kind not in SOURCES[source]:
        raise InputError(f"type must be one of {', '.join(SOURCES[source])}, got {_short(kind)}")
    event_id = _text(record, "event_id")
    member_id = _text(record, "member_id")
    occurred_at = _instant(record.get("occurred_at"))
    fields = {}
    if source == "orders":
        fields["order_id"] = _text(record, "order_id")
        if kind != "OrderCancelled":
            fields["amount_fen"] = _amount(record.get("amount_fen"))
            fields["currency"] = _currency(record.get("currency"))
    elif kind in ("CustomerRegistered", "ProfileUpdated"):
        fields["profile"] = {k: record[k] for k in ("name", "phone", "email") if record.get(k)}
        for k, v in fields["profile"].items():
            problem = name_problem(v, k)  # the shared bounds of a one-line name (domain.limits)
            if problem:
                raise InputError(problem)
        if kind == "CustomerRegistered" and "name" not in fields["profile"]:
            raise InputError("CustomerRegistered needs a name")
    elif kind == "ActivityRecorded":
        if not isinstance(record.get("kind"), str) or record["kind"] not in ACTIVITY_KINDS:
            raise InputError(f"kind must be one of {', '.join(ACTIVITY_KINDS)}, got {_short(record.get('kind'))}")
        fields["kind"] = record["kind"]
    correlation_id = record.get("correlation_id") or ""
    if correlation_id:
        correlation_id = _text(record, "correlation_id")
    return Input(source, kind, event_id, member_id, occurred_at, fields, correlation_id)


def _text(record: dict, name: str) -> str:
    """An id field: the shared id bounds (``domain.limits``: length and characters)."""
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} is required and must be non-empty text")
    problem = id_problem(value, name)
    if problem:
        raise InputError(problem)
    return value


def _instant(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise InputError("occurred_at is required: an ISO-8601 time with a zone offset")
    try:
        at = parse_instant(value, "occurred_at")
    except InstantError as exc:
        raise InputError(str(exc)) from None
    try:
        utc = at.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise InputError(f"occurred_at {value!r} is out of range: it must lie between the years "
                         f"{MIN_YEAR} and {MAX_YEAR}")
    return at


def _amount(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"amount_fen must be a positive whole number of fen, got {_short(value)}")
    if value > MAX_AMOUNT_FEN:
        raise InputError(f"amount_fen {_short(value)} is above the maximum of {MAX_AMOUNT_FEN} fen "
                         f"for one order")
    return value


def _currency(value: Any) -> str:
    if not is_currency(value):
        raise InputError(f"currency {_short(value)} is not a known ISO 4217 code")
    return value


def _short(value: Any) -> str:
    """A value for a message: quoted like repr, cut so a huge number does not flood the report."""
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"a {value.bit_length()}-bit number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def apply_input(engine: Engine, item: Input, tracking: Tracking | None = None) -> str:
    """Apply one input after the work due before it. Returns applied or duplicate.

    In the engine's open batch, the input is one step of it (recorded at the
    batch's commit); with none open, it is a batch of its own. A business
    refusal raises :class:`DomainError` and leaves no trace of the input; the
    caller decides where the input goes (the rejects file, the dead-letter topic).
    """
    return engine.in_batch(lambda: _apply(engine, item, tracking), f"input {item.event_id}")


def _apply(engine: Engine, item: Input, tracking: Tracking | None) -> str:
    engine.refuse_future(item.occurred_at, "occurred_at")
    engine.advance(item.occurred_at)
    with engine.step():
        return _apply_step(engine, item, tracking)


def _apply_step(engine: Engine, item: Input, tracking: Tracking | None) -> str:
    uow = engine.uow
    ctx = engine.ctx(item.occurred_at, actor=f"upstream:{item.source}",
                     causation_id=item.event_id, correlation_id=item.correlation_id)
    # The member is read before the receipt: a writer that commits in between is then seen
    # by the receipt, and one that commits after both reads makes our commit conflict (retried).
    known = uow.find_member(item.member_id) is not None  # a found one is kept in the unit of work
    if _seen_before(uow.receipt(item.event_id), item):
        uow.save_tracked(tracking)
        return "duplicate"
    try:
        member = dispatch(item.command(known), uow, ctx)
    except DomainError:
        # A batch looks its receipts up before it reads members: a writer that recorded this
        # input in between shows in the member, not in that lookup. Ask the store again.
        if _seen_before(engine.app.receipt(item.event_id), item):
            uow.save_tracked(tracking)
            return "duplicate"
        raise
    uow.save_tracked(tracking, member, receipts=[item.receipt()])
    return "applied"


def _seen_before(receipt: Receipt | None, item: Input) -> bool:
    """True for a redelivery of an input already applied; a reused id with other content is refused."""
    if receipt is None:
        return False
    if receipt.digest != item.digest() or receipt.member_id != item.member_id:
        raise InputConflictError(
            f"event_id {item.event_id} was already used for another input (member "
            f"{receipt.member_id}, different content); an upstream event id must be unique: "
            f"give this event its own id")
    return True
