"""Running window sums (domain.window): the same standing as walking every order, at a cost
that does not grow with the orders a member keeps."""
from __future__ import annotations

import copy
import itertools
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from eventsourcing.domain import Snapshot

from domain.base import Ctx
from domain.member import Member
from domain.tiering import order_inputs, standing
from infra.policy_file import load_policy
from infra.service_layer.fastpath import FAST
from domain.window import CANCELLED, CURRENCY, PAID, REVERSED

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
T0 = datetime(2024, 1, 3, 9, tzinfo=SH)
_ids = itertools.count(1)


def ctx(at: datetime) -> Ctx:
    return Ctx(at=at, causation_id=f"cmd-{next(_ids)}")


def walked(m: Member, at: datetime):
    """The standing by walking every kept and closed order (the rule as first written): kept
    orders give spend and months, closed ones only the months they may still hold."""
    kept, months = order_inputs(m.orders.values())
    _, closed_months = order_inputs(m.closed_orders.values())
    return standing(m.entries + kept, set(m.active_months) | months | closed_months, at, POLICY)


def test_running_sums_give_the_walked_standing_through_late_orders_refunds_cancels_and_reviews():
    rng = random.Random(11)
    m = Member.register(ctx(T0), "W1", None, "orders")
    paid: list[str] = []
    at = T0
    for n in range(900):
        at += timedelta(hours=rng.randint(1, 30))
        if m.next_review_at and m.next_review_at <= at:
            m.review(ctx(m.next_review_at), POLICY)
        roll = rng.random()
        live = [o for o in paid if o in m.orders or o in m.closed_orders]
        if roll < 0.12 and live:
            order_id = rng.choice(live)
            order = m.orders.get(order_id) or m.closed_orders[order_id]
            left = order[PAID] - order[REVERSED]
            if left > 0 and not order[CANCELLED]:
                m.record_order_refunded(ctx(at), f"r{n}", order_id, rng.randint(1, left),
                                        order[CURRENCY], at, POLICY)
        elif roll < 0.16:
            target = rng.choice(live) if live and rng.random() < 0.7 else f"never-paid-{n}"
            order = m.orders.get(target) or m.closed_orders.get(target)
            if not (order and order[CANCELLED]):
                m.record_order_cancelled(ctx(at), f"c{n}", target, at)
        else:
            # a tenth of the orders arrive late: their occurred-at is up to 40 days back
            occurred = at - timedelta(days=rng.randint(0, 40)) if rng.random() < 0.1 else at
            currency = "USD" if rng.random() < 0.05 else "CNY"
            m.record_order_paid(ctx(at), f"p{n}", f"o{n}", rng.randint(100, 900_000), currency,
                                occurred, POLICY)
            paid.append(f"o{n}")
        for probe in (at, at - timedelta(days=20), m.next_review_at or at):
            assert m.standing_at(probe, POLICY) == walked(m, probe), (n, probe)
    assert m.closed_orders and m.forgotten_before is not None   # pruning did run, both ways
    assert m.tier != "member"


def test_the_index_is_rebuilt_from_the_orders_of_a_snapshot_and_of_a_copy():
    m = Member.register(ctx(T0), "W2", None, "orders")
    for n in range(60):
        at = T0 + timedelta(days=n * 9)
        m.record_order_paid(ctx(at), f"p{n}", f"o{n}", 40_000, "CNY", at, POLICY)
    m.collect_events()
    snap = Snapshot.take(copy.deepcopy(m))     # of a copy: the snapshot's state is not m's
    assert "_index" not in snap.state          # derived data: never stored
    restored = FAST.project(None, [snap])
    clone = copy.deepcopy(m)
    at = T0 + timedelta(days=60 * 9)
    for other in (restored, clone):
        other.record_order_paid(ctx(at), "late", "o-late", 90_000, "CNY", at - timedelta(days=3), POLICY)
        assert other.standing_at(at, POLICY) == walked(other, at)
    assert "o-late" not in m.orders             # the copy's index is its own


def test_a_snapshot_taken_when_orders_were_dicts_restores_as_order_lists():
    m = Member.register(ctx(T0), "W4", None, "orders")
    for n in range(40):
        at = T0 + timedelta(days=n * 11)
        m.record_order_paid(ctx(at), f"p{n}", f"o{n}", 40_000 + n, "USD" if n == 5 else "CNY", at, POLICY)
    at = T0 + timedelta(days=440)
    m.record_order_cancelled(ctx(at), "c-unpaid", "o-unpaid", at)   # cancelled before it was paid
    m.collect_events()
    snap = Snapshot.take(copy.deepcopy(m))
    assert snap.state.pop("class_version") == 2
    names = ("at", "month", "paid", "reversed", "counted", "currency", "cancelled")
    def as_v1(order: list) -> dict:   # currency only once paid, cancelled only once true
        return {n: v for n, v in zip(names, order)
                if not (n == "currency" and v is None or n == "cancelled" and not v)}

    v1 = {**snap.state, **{book: {k: as_v1(o) for k, o in snap.state[book].items()}
                           for book in ("orders", "closed_orders")}}
    old = Snapshot(originator_id=snap.originator_id, originator_version=snap.originator_version,
                   timestamp=snap.timestamp, topic=snap.topic, state=v1)
    restored = FAST.project(None, [old])
    assert restored.orders == m.orders and restored.closed_orders == m.closed_orders
    assert restored.orders["o-unpaid"][CURRENCY] is None and restored.orders["o-unpaid"][CANCELLED]
    restored.record_order_refunded(ctx(at), "r39", "o39", 1_000, "CNY", at, POLICY)
    assert restored.orders["o39"][REVERSED] == 1_000
    assert restored.standing_at(at, POLICY) == walked(restored, at)


class _CountingDict(dict):
    """Counts the walks over a member's orders (items, values, iteration)."""

    walks = 0

    def items(self):
        _CountingDict.walks += 1
        return super().items()

    def values(self):
        _CountingDict.walks += 1
        return super().values()

    def __iter__(self):
        _CountingDict.walks += 1
        return super().__iter__()


def test_an_order_walks_none_of_the_orders_a_member_already_keeps():
    m = Member.register(ctx(T0), "W3", None, "orders")
    for n in range(300):
        at = T0 + timedelta(hours=n * 20)
        m.record_order_paid(ctx(at), f"p{n}", f"o{n}", 10_000, "CNY", at, POLICY)
    m.orders, m.closed_orders = _CountingDict(m.orders), _CountingDict(m.closed_orders)
    _CountingDict.walks = 0
    at = T0 + timedelta(hours=300 * 20)
    m.record_order_paid(ctx(at), "p-next", "o-next", 10_000, "CNY", at, POLICY)
    m.record_order_refunded(ctx(at), "r-next", "o299", 5_000, "CNY", at, POLICY)
    assert _CountingDict.walks == 0
    assert m.standing_at(at, POLICY) == walked(m, at)
