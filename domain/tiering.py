"""Pure tier arithmetic: rolling windows, active months, anniversaries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.policy import Policy


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
