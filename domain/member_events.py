"""Member events declared as classes and triggered directly, not made by ``@event``.

Nearly every input is an ``OrderPaid``: the decorator's argument coercion and filtering cost a
tenth of ingest (issue 21). The library re-bases each declared class on ``Member.Event`` as
``Member.<Name>``: the same topic, fields, field order and defaults as the ``@event`` class it
replaces, so stored events are byte-identical.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.base import VipAggregate


class OrderPaid(VipAggregate.Event):
    """A paid order (``Member.record_order_paid``); the member's ``_order_paid`` applies it."""

    input_id: str
    order_id: str
    amount_fen: int
    currency: str
    occurred_at: datetime
    month: str
    counted_fen: int | None = None
    policy_version: str | None = None
    keep_from: datetime | None = None
    forget_before: datetime | None = None

    def apply(self, aggregate: Any) -> None:
        aggregate._order_paid(self)
