"""Policies as versioned data: tier thresholds, fees, SLA targets, calendars, benefits.

A :class:`Policy` is loaded from a file the operator can replace (see
``infra/policy_file.py``); every event a policy decided records its version,
so a replay gives the same answer and the log can say why a member has a tier.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.base import DomainError
from domain.calendar import Calendar

TIERS = ("member", "silver", "gold", "platinum", "diamond")
VIP_TIERS = TIERS[1:]


class UnknownTierError(DomainError, ValueError):
    """A tier name that is not on the ladder."""


def tier_rank(tier: str) -> int:
    """Position of a tier in the ladder; ``member`` (not VIP) is 0."""
    try:
        return TIERS.index(tier)
    except ValueError:
        raise UnknownTierError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}") from None


@dataclass(frozen=True)
class TierRule:
    """What one tier needs, and what it costs per year."""

    tier: str
    min_spend_fen: int
    min_points: int
    annual_fee_fen: int
    min_active_months: int = 0


@dataclass(frozen=True)
class TierPolicy:
    """How spend, points and activity give a tier, and how reviews lower it."""

    rules: tuple[TierRule, ...]
    window_days: int = 365
    activity_months_window: int = 12
    points_per_cny: int = 1
    activity_points: dict[str, int] = field(default_factory=dict)
    max_downgrade_steps: int = 1
    currency: str = "CNY"
    #: Orders in another currency count toward tiers only through a rate stated
    #: here: currency -> tier-currency fen per 1,000,000 minor units (integers,
    #: so no float enters a tier). A currency not listed does not count.
    conversions: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Members and their rows keep activity and orders one day window back, plus a month
        # (domain.tiering.oldest_month): a months window reaching further would lose active months.
        days, months = self.window_days, self.activity_months_window
        if not (isinstance(days, int) and days >= 28):
            raise ValueError(f"tiers.window_days must be a whole number of days, at least 28; got {days!r}")
        most = (days + 31) // 31
        if not (isinstance(months, int) and 1 <= months <= most):
            raise ValueError(f"tiers.activity_months_window must be 1 to {most} months for a window of "
                             f"{days} days (members keep activity one window back plus a month); got "
                             f"{months!r}: lengthen tiers.window_days or shorten the months window")

    def rule(self, tier: str) -> TierRule:
        for rule in self.rules:
            if rule.tier == tier:
                return rule
        raise ValueError(f"policy has no rule for tier {tier!r}")

    def tier_for(self, spend_fen: int, points: int, active_months: int) -> str:
        """The highest tier that spend or points reach, with its activity need met."""
        best = "member"
        for rule in self.rules:
            reached = spend_fen >= rule.min_spend_fen or points >= rule.min_points
            if reached and active_months >= rule.min_active_months:
                if tier_rank(rule.tier) > tier_rank(best):
                    best = rule.tier
        return best

    def counted_fen(self, amount_fen: int, currency: str) -> int:
        """How much of an order in ``currency`` counts toward tiers, in tier-currency fen."""
        if currency == self.currency:
            return amount_fen
        rate = self.conversions.get(currency)
        return 0 if rate is None else amount_fen * rate // 1_000_000

    def fee_for(self, tier: str) -> int:
        return 0 if tier == "member" else self.rule(tier).annual_fee_fen


@dataclass(frozen=True)
class SlaTarget:
    """Budgets of one tier's complaint clocks, in working seconds of a calendar."""

    tier: str
    first_response_s: int
    resolution_s: int
    calendar: str


@dataclass(frozen=True)
class SlaPolicy:
    """Complaint clock budgets per tier, scaled by a factor per severity."""

    targets: tuple[SlaTarget, ...]
    at_risk_ratio: float = 0.8
    # Severity -> factor on the tier's budgets (0.5 halves them); a severity
    # not listed keeps the tier's budgets (factor 1).
    severity_factors: dict = field(default_factory=dict)

    def severity_factor(self, severity: str) -> float:
        """The factor a complaint of ``severity`` scales its tier's budgets by."""
        return float(self.severity_factors.get(severity, 1.0))

    def target(self, tier: str) -> SlaTarget:
        for target in self.targets:
            if target.tier == tier:
                return target
        raise ValueError(f"SLA policy has no target for tier {tier!r}")


@dataclass(frozen=True)
class Agent:
    """A service agent on the roster: the team they belong to, and whether they take work now."""

    id: str
    team: str
    available: bool = True


@dataclass(frozen=True)
class Team:
    """A team of agents and the queue its unassigned work waits in."""

    id: str
    queue: str


@dataclass(frozen=True)
class TierBenefits:
    """What one tier's VIP standing gives (seed 002 §3.2, §4.1): a dedicated agent, a priority
    rank in work queues (higher first), and the team that serves it."""

    tier: str
    dedicated_agent: bool
    priority: int
    team: str


@dataclass(frozen=True)
class BenefitsPolicy:
    """Benefits per tier and the agent roster; a tier not listed has no benefits (priority 0)."""

    tiers: tuple[TierBenefits, ...] = ()
    teams: tuple[Team, ...] = ()
    agents: tuple[Agent, ...] = ()

    def for_tier(self, tier: str) -> TierBenefits | None:
        return next((b for b in self.tiers if b.tier == tier), None)

    def priority(self, tier: str) -> int:
        found = self.for_tier(tier)
        return found.priority if found else 0

    def agent(self, agent_id: str | None) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def team(self, team_id: str) -> Team | None:
        return next((t for t in self.teams if t.id == team_id), None)


@dataclass(frozen=True)
class Policy:
    """One versioned bundle of every rule the domain takes from data."""

    version: str
    zone: str
    tiers: TierPolicy
    sla: SlaPolicy
    calendars: dict[str, Calendar]
    benefits: BenefitsPolicy = field(default_factory=BenefitsPolicy)

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def calendar(self, calendar_id: str) -> Calendar:
        try:
            return self.calendars[calendar_id]
        except KeyError:
            raise ValueError(f"policy {self.version} has no calendar {calendar_id!r}") from None

    def month_of(self, at: datetime) -> str:
        """The calendar month (YYYY-MM) of an instant in the policy's zone."""
        return at.astimezone(self.tzinfo).strftime("%Y-%m")
