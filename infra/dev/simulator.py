"""The upstream simulator: realistic order and CRM events, Avro encoded, at a chosen rate.

``vip produce orders|crm`` publishes what :class:`Simulator` generates. The
same seed gives the same events (ids, members, amounts, times), so a test or a
benchmark can compute the expected effect independently from the records.

Orders: mostly payments (lognormal amounts around 300 CNY, in fen), some
partial or full refunds of an earlier payment of the same member, some
cancellations. CRM: a member's first event is their registration, then
activity (logins, VIP events, reviews) and profile updates, rarely an erasure
request (after which the member gets no new personal data). Every message is
keyed by member id, so one member's events stay in order.

Times: ``start=None`` stamps events with the wall clock (live); a ``start``
datetime runs a simulated clock that moves a random few minutes per event.
"""
from __future__ import annotations

import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator

from schemas.codec import encode

CST = timezone(timedelta(hours=8))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "桂英", "建华"]
CHANNELS = ["app", "web", "store", "mini-program"]
ACTIVITY = ["login", "login", "login", "vip_event", "review"]


@dataclass
class Message:
    """One upstream event: its schema's short name, the record, and the Kafka key."""

    type: str
    record: dict
    key: str

    def encode(self) -> bytes:
        return encode(f"vip.upstream.{self.type}", self.record)


@dataclass
class _Member:
    member_id: str
    registered: bool = False
    erased: bool = False
    orders: dict = field(default_factory=dict)   # order id -> {"paid", "reversed", "cancelled"}


class Simulator:
    """Deterministic generator of upstream traffic for ``members`` members."""

    def __init__(self, seed: int = 7, members: int = 500, start: datetime | None = None,
                 member_prefix: str = "M", stream: str = "") -> None:
        # ``stream`` keeps two simulators with one seed apart (``vip produce orders`` and
        # ``vip produce crm`` with the same --seed must not share event ids).
        self.rng = random.Random(f"{seed}/{stream}" if stream else seed)
        self.seed = seed
        self.tag = f"{seed}{'-' + stream if stream else ''}"
        self.members = [_Member(f"{member_prefix}{n:06d}") for n in range(1, members + 1)]
        self.clock = start
        self.count = 0

    # -- helpers ----------------------------------------------------------------------

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _now(self) -> str:
        if self.clock is None:
            return datetime.now(CST).isoformat(timespec="milliseconds")
        self.clock += timedelta(seconds=self.rng.randint(5, 600))
        return self.clock.isoformat()

    def _member(self) -> _Member:
        # A few members buy far more often than most (Zipf-like).
        n = len(self.members)
        index = min(n - 1, int(n * self.rng.random() ** 2.2))
        return self.members[index]

    def _base(self, member: _Member) -> dict:
        self.count += 1
        return {"event_id": self._id(), "member_id": member.member_id, "occurred_at": self._now(),
                "correlation_id": f"sim-{self.tag}-{self.count}"}

    # -- orders -----------------------------------------------------------------------

    def order(self) -> Message:
        member = self._member()
        roll = self.rng.random()
        refundable = [o for o, s in member.orders.items() if s["paid"] > s["reversed"] and not s["cancelled"]]
        cancellable = [o for o, s in member.orders.items() if not s["cancelled"]]
        if roll < 0.10 and refundable:
            order_id = self.rng.choice(refundable)
            state = member.orders[order_id]
            left = state["paid"] - state["reversed"]
            amount = left if self.rng.random() < 0.5 else max(1, int(left * self.rng.uniform(0.1, 0.9)))
            state["reversed"] += amount
            record = {**self._base(member), "order_id": order_id, "amount_fen": amount, "currency": "CNY",
                      "reason": self.rng.choice([None, "damaged", "size", "changed mind"])}
            return Message("OrderRefunded", record, member.member_id)
        if roll < 0.16 and cancellable:
            order_id = self.rng.choice(cancellable)
            state = member.orders[order_id]
            state["reversed"], state["cancelled"] = state["paid"], True
            record = {**self._base(member), "order_id": order_id,
                      "reason": self.rng.choice([None, "customer request", "out of stock"])}
            return Message("OrderCancelled", record, member.member_id)
        amount = int(min(5_000_000, max(100, math.exp(self.rng.gauss(10.3, 1.0)))))
        order_id = f"O{self.tag}-{self.count + 1:08d}"
        member.orders[order_id] = {"paid": amount, "reversed": 0, "cancelled": False}
        record = {**self._base(member), "order_id": order_id, "amount_fen": amount, "currency": "CNY",
                  "channel": self.rng.choice(CHANNELS)}
        return Message("OrderPaid", record, member.member_id)

    # -- CRM ----------------------------------------------------------------------------

    def crm(self) -> Message:
        member = self._member()
        if not member.registered:
            member.registered = True
            name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)
            record = {**self._base(member), "name": name,
                      "phone": f"+861{self.rng.choice('3589')}{self.rng.randrange(10**9):09d}",
                      "email": f"user{member.member_id.lower()}@example.cn" if self.rng.random() < 0.7 else None}
            return Message("CustomerRegistered", record, member.member_id)
        roll = self.rng.random()
        if roll < 0.01 and not member.erased:
            member.erased = True
            record = {**self._base(member), "requested_by": self.rng.choice(["member", "dpo"])}
            return Message("ErasureRequested", record, member.member_id)
        if roll < 0.20 and not member.erased:
            record = {**self._base(member), "name": None, "phone": None,
                      "email": f"new.{member.member_id.lower()}@example.cn"}
            return Message("ProfileUpdated", record, member.member_id)
        record = {**self._base(member), "kind": self.rng.choice(ACTIVITY),
                  "detail": self.rng.choice([None, "campaign-spring", "store-visit"])}
        return Message("ActivityRecorded", record, member.member_id)

    def stream(self, source: str, count: int) -> Iterator[Message]:
        make = self.order if source == "orders" else self.crm
        for _ in range(count):
            yield make()


def expected_effects(messages) -> dict:
    """The independent computation: per member net spend (fen) and paid-order count."""
    net: dict[str, int] = {}
    paid: dict[str, int] = {}
    orders: dict[tuple, dict] = {}
    for m in messages:
        r, member = m.record, m.record["member_id"]
        if m.type == "OrderPaid":
            orders[(member, r["order_id"])] = {"paid": r["amount_fen"], "reversed": 0}
            net[member] = net.get(member, 0) + r["amount_fen"]
            paid[member] = paid.get(member, 0) + 1
        elif m.type == "OrderRefunded":
            orders[(member, r["order_id"])]["reversed"] += r["amount_fen"]
            net[member] -= r["amount_fen"]
        elif m.type == "OrderCancelled":
            state = orders.get((member, r["order_id"]), {"paid": 0, "reversed": 0})
            left = state["paid"] - state["reversed"]
            state["reversed"] += left
            net[member] = net.get(member, 0) - left
    return {"net_spend_fen": net, "orders_paid": paid}


def publish(producer, topic: str, messages, rate: float | None = None, stop=lambda: False,
            on_sent=None) -> int:
    """Send ``messages`` to ``topic`` at ``rate`` per second (as fast as possible if None)."""
    started, sent = time.monotonic(), 0
    for message in messages:
        if stop():
            break
        if rate:
            due = started + sent / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        future = producer.send(topic, key=message.key.encode(), value=message.encode(),
                               headers=[("event_type", message.type.encode()),
                                        ("event_id", message.record["event_id"].encode())])
        if on_sent is not None:
            on_sent(message, future)
        sent += 1
    producer.flush(timeout=60)
    return sent
