"""Running window sums over a member's kept orders, so an order costs the same at any history.

:func:`domain.tiering.standing` over :func:`domain.tiering.order_inputs` and a
plain prune walk every kept order of the member on every order: a member with 200 orders in
the window paid ten times what one with 20 did. :class:`WindowIndex` keeps,
beside the orders (never instead of them: a refund still needs its own
order), what those walks computed:

- the kept and the closed orders in occurred-at order, so pruning cuts a
  prefix and the standing at the newest instant only looks at the few
  orders at either end that lie outside its window;
- the net the kept orders count (the sum of each order's own net, so
  exactly the integers the walk adds);
- how many live orders (not refunded in full, counting something) each
  month has, kept and closed alike: the months orders make active.

The index is derived data, not state: it is rebuilt from the orders when
missing (a snapshot restores the orders only), and the events and snapshots
are what they were without it.
"""
from __future__ import annotations

import sys
from bisect import bisect_right, insort
from collections import Counter
from datetime import datetime
from operator import itemgetter

# An order, as the member and its current-tier row keep it: a list, not a dict (members keep
# up to two windows of orders, and a dict cost about 230 bytes more per order). Both hold
# [occurred_at, month, paid, reversed, counted]; the aggregate adds [currency, cancelled].
# ``paid`` and ``reversed`` are in the order's currency, ``counted`` is what the whole payment
# counts in the tier currency. The row holds occurred_at as UTC ISO text, the member a datetime.
AT, MONTH, PAID, REVERSED, COUNTED, CURRENCY, CANCELLED = range(7)


def new_order(at: datetime, month: str, paid: int, counted: int, currency: str) -> list:
    """A member's new order, nothing reversed. Months and currencies are interned: thousands of
    orders share a few dozen of each."""
    return [at, sys.intern(month), paid, 0, counted, sys.intern(currency), False]


def new_row_order(at: str, month: str, paid: int, counted: int) -> list:
    """A current-tier row's new order (the member's shape less currency and cancellation)."""
    return [at, sys.intern(month), paid, 0, counted]


def upcast_snapshot_orders(state: dict) -> None:
    """A member snapshot of class version 1 (orders as dicts) with version 2's order lists."""
    for book in ("orders", "closed_orders"):
        state[book] = {k: [o["at"], o["month"], o["paid"], o["reversed"], o["counted"],
                           o.get("currency"), bool(o.get("cancelled"))]
                       for k, o in state[book].items()}


def order_net_fen(order: list) -> int:
    """What an order still counts toward tiers: its counted amount less the reversed share."""
    paid = order[PAID]
    return order[COUNTED] * (paid - order[REVERSED]) // paid if paid else 0


def order_live(order: list) -> bool:
    """An order makes its month active while something of it is still paid and it counts."""
    return order[PAID] > order[REVERSED] and order[COUNTED] > 0


def order_counts(order: list) -> int:
    """What an order adds to the window's net spend: its net while it is live, else nothing."""
    return order_net_fen(order) if order_live(order) else 0


class WindowIndex:
    """The kept and closed orders by occurred-at, the kept orders' net and the live months."""

    __slots__ = ("kept", "closed", "net", "months")

    def __init__(self, orders: dict, closed: dict) -> None:
        self.kept = sorted((o[AT], k) for k, o in orders.items())
        self.closed = sorted((o[AT], k) for k, o in closed.items())
        self.net = sum(order_counts(o) for o in orders.values())
        self.months = Counter(o[MONTH] for book in (orders, closed) for o in book.values()
                              if order_live(o))

    def copy(self) -> "WindowIndex":
        clone = object.__new__(WindowIndex)
        clone.kept, clone.closed = list(self.kept), list(self.closed)
        clone.net, clone.months = self.net, Counter(self.months)
        return clone

    def added(self, order_id: str, order: list) -> None:
        """A new kept order."""
        _insert(self.kept, (order[AT], order_id))
        self.net += order_counts(order)
        if order_live(order):
            self.months[order[MONTH]] += 1

    def before_change(self, order: list) -> tuple[int, bool]:
        return order_counts(order), order_live(order)

    def changed(self, order: list, kept: bool, before: tuple[int, bool]) -> None:
        """``order`` (kept or closed) was refunded or cancelled; ``before`` from :meth:`before_change`."""
        counts, live = before
        if kept:
            self.net += order_counts(order) - counts
        now = order_live(order)
        if live and not now:
            self._drop_month(order[MONTH])
        elif now and not live:
            self.months[order[MONTH]] += 1

    def prune(self, orders: dict, closed: dict, keep_from: datetime,
              forget_before: datetime | None) -> None:
        """:func:`domain.tiering.prune` for the orders: close those at or before ``keep_from``,
        forget closed ones at or before ``forget_before``; the cost is what moves."""
        # Nearly every call moves nothing: one comparison with the oldest entry says so (a
        # bisect with a key and aware datetimes cost ~7% of applying an order, issue 21).
        kept = self.kept
        if kept and kept[0][0] <= keep_from:
            n = aged(kept, keep_from)
            for entry in kept[:n]:
                order = closed[entry[1]] = orders.pop(entry[1])
                self.net -= order_counts(order)
                _insert(self.closed, entry)
            del kept[:n]
        if forget_before is None:
            return
        gone = self.closed
        if gone and gone[0][0] <= forget_before:
            n = aged(gone, forget_before)
            for _, order_id in gone[:n]:
                order = closed.pop(order_id)
                if order_live(order):
                    self._drop_month(order[MONTH])
            del gone[:n]

    def net_between(self, orders: dict, lo: datetime, at: datetime) -> int:
        """The net of the kept orders with ``lo < occurred_at <= at``: the total less the few
        orders at either end outside it."""
        kept, net = self.kept, self.net
        i, j = 0, len(kept) - 1
        while i <= j and kept[i][0] <= lo:
            net -= order_counts(orders[kept[i][1]])
            i += 1
        while j >= i and kept[j][0] > at:
            net -= order_counts(orders[kept[j][1]])
            j -= 1
        return net

    def _drop_month(self, month: str) -> None:
        left = self.months[month] - 1
        if left > 0:
            self.months[month] = left
        else:
            del self.months[month]


def aged(entries: list, bound: datetime) -> int:
    """How many of ``entries`` (sorted by their first item, an instant) are at or before ``bound``."""
    return bisect_right(entries, bound, key=_first)


_first = itemgetter(0)


def _insert(entries: list, entry: tuple) -> None:
    # Orders mostly arrive in occurred-at order: appending is the common case.
    if not entries or entries[-1] <= entry:
        entries.append(entry)
    else:
        insort(entries, entry)


def reverse(index: WindowIndex, orders: dict, closed: dict, order_id: str, amount_fen: int,
            cancel_at: datetime | None = None) -> None:
    """Reverse ``amount_fen`` of an order, kept or closed, keeping ``index`` in step.

    ``cancel_at`` marks a cancellation; an order cancelled before it was paid is kept as an
    order of nothing at that instant.
    """
    kept = order_id not in closed
    if kept and cancel_at is not None and order_id not in orders:
        orders[order_id] = [cancel_at, None, 0, 0, 0, None, False]  # no currency: none was paid
        index.added(order_id, orders[order_id])
    order = orders[order_id] if kept else closed[order_id]
    before = index.before_change(order)
    order[REVERSED] += amount_fen
    if cancel_at is not None:
        order[CANCELLED] = True
    index.changed(order, kept, before)
