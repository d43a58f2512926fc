"""Pure tier arithmetic: rolling windows, active months, anniversaries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.policy import Policy, tier_rank


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


def months_back(at: datetime, count: int, policy: Policy) -> set[str]:
    """The ``count`` calendar months ending with ``at``'s month, in the policy zone."""
    local = at.astimezone(policy.tzinfo)
    year, month = local.year, local.month
    months = set()
    for _ in range(count):
        months.add(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return months


def standing(entries: list, active: set[str], at: datetime, policy: Policy) -> Standing:
    """Net spend, points and activity over the window ending at ``at``.

    ``entries`` are ``(occurred_at, spend_delta_fen, activity_points)``; points
    are the policy's points per whole CNY of net spend plus activity points.
    """
    rules = policy.tiers
    spend = extra_points = 0
    for occurred_at, spend_delta, points_delta in entries:
        if in_window(occurred_at, at, rules.window_days):
            spend += spend_delta
            extra_points += points_delta
    points = max(spend, 0) // 100 * rules.points_per_cny + extra_points
    window = months_back(at, rules.activity_months_window, policy)
    active_count = len(window & active)
    tier = rules.tier_for(spend, points, active_count)
    return Standing(at, spend, points, active_count, tier)


def order_net_fen(order: dict) -> int:
    """What an order still counts toward tiers: its counted amount less the reversed share.

    ``order`` holds ``paid`` and ``reversed`` (in the order's currency) and
    ``counted`` (what the whole payment counts, in the tier currency).
    """
    paid = order["paid"]
    return order["counted"] * (paid - order["reversed"]) // paid if paid else 0


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
        if order["paid"] > order["reversed"] and order["counted"] > 0:
            entries.append((order["at"], order_net_fen(order), 0))
            months.add(order["month"])
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
