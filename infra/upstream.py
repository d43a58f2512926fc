"""Upstream events from the order system and CRM: validation and the one command path.

``vip ingest`` (JSON Lines) and the Kafka consumers both parse with
:func:`parse` and apply with :func:`apply_input`, so a file and a topic
have the same effect. An input is applied at most once: its event id is
remembered by the member it concerns, atomically with the events it caused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Tracking

from domain.base import DomainError
from domain.member import ACTIVITY_KINDS, Member
from infra.engine import Engine

ORDER_TYPES = ("OrderPaid", "OrderRefunded", "OrderCancelled")
CRM_TYPES = ("CustomerRegistered", "ProfileUpdated", "ActivityRecorded", "ErasureRequested")
SOURCES = {"orders": ORDER_TYPES, "crm": CRM_TYPES}
# ISO 4217 codes the platform accepts at its edge; tiers count other currencies than
# CNY only through a conversion the policy states.
CURRENCIES = {"CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD", "KRW", "TWD", "MOP", "AUD", "CAD"}


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


def parse(source: str, record: dict[str, Any], type_hint: str | None = None) -> Input:
    """Validate one upstream record (a JSON object or a decoded Avro record)."""
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r}; expected orders or crm")
    if not isinstance(record, dict):
        raise InputError("an event must be a JSON object")
    kind = type_hint or record.get("type")
    if kind not in SOURCES[source]:
        raise InputError(f"type must be one of {', '.join(SOURCES[source])}, got {kind!r}")
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
            if not isinstance(v, str):
                raise InputError(f"{k} must be text")
        if kind == "CustomerRegistered" and "name" not in fields["profile"]:
            raise InputError("CustomerRegistered needs a name")
    elif kind == "ActivityRecorded":
        if record.get("kind") not in ACTIVITY_KINDS:
            raise InputError(f"kind must be one of {', '.join(ACTIVITY_KINDS)}, got {record.get('kind')!r}")
        fields["kind"] = record["kind"]
    return Input(source, kind, event_id, member_id, occurred_at, fields,
                 str(record.get("correlation_id") or ""))


def _text(record: dict, name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} is required and must be non-empty text")
    return value


def _instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise InputError("occurred_at is required: an ISO-8601 time with a zone offset")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"occurred_at {value!r} is not an ISO-8601 time") from None
    if at.tzinfo is None:
        raise InputError(f"occurred_at {value!r} has no zone offset; add one, e.g. +08:00")
    return at


def _amount(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"amount_fen must be a positive whole number of fen, got {value!r}")
    return value


def _currency(value: Any) -> str:
    if value not in CURRENCIES:
        raise InputError(f"currency {value!r} is not a known ISO 4217 code")
    return value


def apply_input(engine: Engine, item: Input, tracking: Tracking | None = None) -> str:
    """Apply one input after the work due before it. Returns applied or duplicate.

    A business refusal raises :class:`DomainError`; the caller decides where
    the input goes (the rejects file, the dead-letter topic).
    """
    engine.advance(item.occurred_at)
    app = engine.app
    ctx = engine.ctx(item.occurred_at, actor=f"upstream:{item.source}",
                     causation_id=item.event_id, correlation_id=item.correlation_id)
    member = app.find_member(item.member_id)
    if member is not None and member.has_seen(item.event_id):
        app.save_tracked(tracking)
        return "duplicate"
    if item.type == "ErasureRequested":
        if member is None:
            raise DomainError(f"member {item.member_id} is unknown; nothing to erase")
        app.cipher.keys.destroy(item.member_id)
        member.record_erasure(ctx, item.event_id)
    elif item.type in ("CustomerRegistered", "ProfileUpdated"):
        member = _profile(app, ctx, member, item)
    else:
        member = member or Member.register(ctx, item.member_id, None, source=item.source)
        _record(member, ctx, item, app.policy)
    app.save_tracked(tracking, member)
    engine.sync()
    return "applied"


def _profile(app, ctx, member, item: Input):
    sealed = app.cipher.seal_fields(item.member_id, item.fields["profile"])
    if member is None:
        return Member.register(ctx, item.member_id, sealed, source="crm", input_id=item.event_id)
    if item.type == "CustomerRegistered":
        member.fill_registration(ctx, item.event_id, sealed)
    else:
        member.update_profile(ctx, item.event_id, sealed)
    return member


def _record(member: Member, ctx, item: Input, policy) -> None:
    f = item.fields
    if item.type == "OrderPaid":
        member.record_order_paid(ctx, item.event_id, f["order_id"], f["amount_fen"], f["currency"],
                                 item.occurred_at, policy)
    elif item.type == "OrderRefunded":
        member.record_order_refunded(ctx, item.event_id, f["order_id"], f["amount_fen"],
                                     f["currency"], item.occurred_at, policy)
    elif item.type == "OrderCancelled":
        member.record_order_cancelled(ctx, item.event_id, f["order_id"], item.occurred_at)
    else:
        member.record_activity(ctx, item.event_id, f["kind"], item.occurred_at, policy)
