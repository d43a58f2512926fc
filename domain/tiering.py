"""Pure tier arithmetic: rolling windows, active months, anniversaries."""
from __future__ import annotations

from dataclasses import dataclass
from bisect import insort
from functools import lru_cache
from datetime import datetime, timedelta

from domain.policy import Policy, tier_rank
from domain.window import AT, MONTH, WindowIndex, aged, order_live, order_net_fen


@dataclass(frozen=True)
class Standing:
    """What the window gives at one instant, and the tier it earns."""

    at: datetime
    spend_fen: int
    points: int
    active_months: int
    tier: str

    def as_dict(self) -> dict:
        return {
            "spend_fen": self.spend_fen,
            "points": self.points,
            "active_months": self.active_months,
        }


def in_window(occurred_at: datetime, at: datetime, days: int) -> bool:
    """True when ``occurred_at`` lies in the window (at - days, at]."""
    return at - timedelta(days=days) < occurred_at <= at


def months_back(at: datetime, count: int, policy: Policy) -> frozenset[str]:
    """The ``count`` calendar months ending with ``at``'s month, in the policy zone."""
    local = at.astimezone(policy.tzinfo)
    return _months_back(local.year, local.month, count)


@lru_cache(maxsize=256)
def _months_back(year: int, month: int, count: int) -> frozenset[str]:
    # Every order asks for the same few months: named once per month, not once per order.
    months = set()
    for _ in range(count):
        months.add(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return frozenset(months)


def standing(entries: list, active: set[str], at: datetime, policy: Policy) -> Standing:
    """Net spend, points and activity over the window ending at ``at``.

    ``entries`` are ``(occurred_at, spend_delta_fen, activity_points)``; points
    are the policy's points per whole CNY of net spend plus activity points.
    """
    spend = extra_points = 0
    for occurred_at, spend_delta, points_delta in entries:
        if in_window(occurred_at, at, policy.tiers.window_days):
            spend += spend_delta
            extra_points += points_delta
    return _tally(spend, extra_points, active, at, policy)


def _tally(spend: int, extra_points: int, active, at: datetime, policy: Policy) -> Standing:
    """The standing that window sums give: points from spend plus activity points, and the tier."""
    rules = policy.tiers
    points = max(spend, 0) // 100 * rules.points_per_cny + extra_points
    window = months_back(at, rules.activity_months_window, policy)
    active_count = len(window.intersection(active))
    tier = rules.tier_for(spend, points, active_count)
    return Standing(at, spend, points, active_count, tier)


def indexed_standing(index: WindowIndex, orders: dict, entries: list, months: list, at: datetime,
                     policy: Policy) -> Standing:
    """:func:`standing` over :func:`order_inputs` of the kept and closed orders and the activity,
    from the running sums of ``index`` (see :mod:`domain.window`): the same figures, at a cost
    that does not grow with the orders in the window."""
    spend, extra_points = window_sums(index, orders, entries, at, policy)
    active = set(months)
    active.update(index.months)
    return _tally(spend, extra_points, active, at, policy)


def window_sums(index: WindowIndex, orders: dict, entries: list, at: datetime,
                policy: Policy) -> tuple[int, int]:
    """``(net spend, activity points)`` of the window ending at ``at``: the sums
    :func:`indexed_standing` tallies."""
    lo = at - timedelta(days=policy.tiers.window_days)
    spend = index.net_between(orders, lo, at)
    extra_points = 0
    for occurred_at, _, points in entries:
        if lo < occurred_at <= at:
            extra_points += points
    return spend, extra_points


def rising_standing(index: WindowIndex, orders: dict, entries: list, months: list, at: datetime,
                    tier: str, policy: Policy) -> Standing | None:
    """:func:`indexed_standing` when the window's sums reach, by spend or by points, a rule
    ranked above ``tier``; else None, as that standing would earn ``tier`` or lower whatever
    the active months are.

    The upgrade check of every order asks: most reach no higher rule, and need no standing
    built (the months, their set and the :class:`Standing` cost about a tenth of applying an
    order, issue 21)."""
    spend, extra_points = window_sums(index, orders, entries, at, policy)
    rules = policy.tiers
    points = max(spend, 0) // 100 * rules.points_per_cny + extra_points
    rank = tier_rank(tier)
    for rule in rules.rules:
        if (spend >= rule.min_spend_fen or points >= rule.min_points) and tier_rank(rule.tier) > rank:
            active = set(months)
            active.update(index.months)
            return _tally(spend, extra_points, active, at, policy)
    return None


# -- bounded state --------------------------------------------------------------
#
# A member keeps what a window still to be computed can hold. The earliest
# instant any later computation asks about is the earlier of the command's
# instant (the timeline never goes back) and the pending review's due instant
# (a review looks back at its anniversary). Orders at or before
# ``keep_from = earliest - window`` count in no such window: they move to the
# closed orders, which keep what a refund or cancellation needs (paid,
# reversed, currency) and the active month the order may still give (a
# calendar-month window can reach a little further back than the day window).
# Closed orders are forgotten one window later (``forget_before``): a refund
# of an order paid more than two windows back is refused, saying so; it could
# change no tier. Activity entries and active months go at ``keep_from``.


def horizon(at: datetime, next_review_at: datetime | None, policy: Policy) -> tuple[datetime, datetime]:
    """``(keep_from, forget_before)`` for a command at ``at`` (see above)."""
    window = timedelta(days=policy.tiers.window_days)
    earliest = min(at, next_review_at) if next_review_at is not None else at
    return earliest - window, earliest - 2 * window


def prune(orders: dict, closed: dict, entries: list, months: list,
          keep_from: datetime | None, forget_before: datetime | None, index: WindowIndex) -> None:
    """Drop, in place, what no window from ``keep_from + window`` on can hold (see above).

    Deterministic from its arguments, so replaying the events that carry
    them gives the same state. The orders move through their ``index`` (kept
    in step), at the cost of what moves.
    """
    if keep_from is None:
        return
    index.prune(orders, closed, keep_from, forget_before)
    if entries and entries[0][0] <= keep_from:  # entries are in occurred-at order: cut the prefix
        del entries[:aged(entries, keep_from)]
    if months:
        oldest = oldest_month(keep_from)
        if months[0] < oldest:
            months[:] = [m for m in months if m >= oldest]


def oldest_month(keep_from: datetime) -> str:
    """The first month a window from ``keep_from`` on may still reach: the day window's first
    month, less a month of margin for the zone the month was named in."""
    return (keep_from - timedelta(days=31)).strftime("%Y-%m")


def add_entry(entries: list, occurred_at: datetime, points: int) -> None:
    """Insert an activity entry, keeping entries in occurred-at order (so pruning cuts a prefix)."""
    entry = [occurred_at, 0, points]
    if not entries or entries[-1][0] <= occurred_at:
        entries.append(entry)
    else:
        insort(entries, entry, key=lambda e: e[0])


def add_month(months: list, month: str) -> None:
    """Add a month to a sorted list of distinct months."""
    if month not in months:
        insort(months, month)


def order_inputs(orders) -> tuple[list, set[str]]:
    """Window entries and active months that orders give.

    Each order counts at its own occurred-at with what is left of it after
    refunds and cancellation, so a refund goes wherever its order goes (and
    leaves the window with it) and never lowers the spend of other orders.
    A month is active through an order only while the order is not
    cancelled or refunded in full. An order that counts nothing (another
    currency without a policy conversion) gives neither spend nor activity.
    """
    entries, months = [], set()
    for order in orders:
        if order_live(order):
            entries.append((order[AT], order_net_fen(order), 0))
            months.add(order[MONTH])
    return entries, months


def anniversary(first: datetime, years: int) -> datetime:
    """The instant ``years`` years after ``first`` (29 February falls back to the 28th)."""
    try:
        return first.replace(year=first.year + years)
    except ValueError:
        return first.replace(year=first.year + years, day=28)


def next_anniversary(first: datetime, after: datetime) -> datetime:
    """The first anniversary of ``first`` strictly after ``after``."""
    years = max(1, after.year - first.year)
    while anniversary(first, years) <= after:
        years += 1
    while years > 1 and anniversary(first, years - 1) > after:
        years -= 1
    return anniversary(first, years)


def live_override(override: dict | None, at: datetime | None = None) -> dict | None:
    """The override still in force at ``at`` (None when absent or expired by then).

    ``at=None`` takes the override as held: the aggregate drops it at its
    expiry (a scheduled command), a read model answering "as of" must not wait.
    """
    if not override or (at is not None and override["expires_at"] <= at):
        return None
    return override


def effective_tier(tier: str, override: dict | None, at: datetime | None = None) -> str:
    """The tier after a manual override in force at ``at``: a pin sets it, a floor bounds it below."""
    override = live_override(override, at)
    if not override:
        return tier
    if override["kind"] == "pin":
        return override["tier"]
    return max(tier, override["tier"], key=tier_rank)
