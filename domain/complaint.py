"""The Complaint aggregate and its SLA clocks.

Seed 002 §7 (complaint channels, process and results), §3.2.2 (priority
handling by tier), §5.3 (satisfaction feedback). Each complaint has two
clocks, first response and resolution, with budgets taken from the policy
for the member's tier at filing, scaled by the policy's factor for the
complaint's severity (``sla.severity_factors``; critical halves them by default). A clock runs on its tier's calendar, pauses
while waiting for the customer (time already used is kept) and is "at risk"
at the policy's ratio of its budget and "breached" at 100 %; both instants
are computed from events, so breach time is the exact deadline.
"""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Ctx, DomainError, VipAggregate, aggregate_id, command
from domain.benefits import ROUTES
from domain import sla
from domain.deadlines import missed
from domain.calendar import Calendar
from domain.policy import Policy, tier_rank

CHANNELS = ("phone", "web", "email", "app")
SEVERITIES = ("low", "medium", "high", "critical")
CLOCKS = ("first_response", "resolution")
OPEN = ("filed", "acknowledged", "assigned", "escalated", "waiting", "reopened")


class ComplaintError(DomainError):
    """A complaint command was refused."""


class Complaint(VipAggregate):
    """One complaint by one member, from filing to closing."""

    KEY = "complaint_id"

    @staticmethod
    def create_id(complaint_id: str, **_: object) -> UUID:
        return aggregate_id("complaint", complaint_id)

    @classmethod
    def file(cls, ctx: Ctx, complaint_id: str, member_id: str, channel: str, category: str,
             severity: str, description: str, tier: str, policy: Policy) -> "Complaint":
        """Seed 002 §7.1: a member files through phone, web, email or app.

        The clocks start now with the budgets of the member's tier (§3.2.2),
        scaled by the policy's factor for the severity (recorded in the event).
        ``description`` arrives sealed with the member's key.
        """
        if channel not in CHANNELS:
            raise ComplaintError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
        if severity not in SEVERITIES:
            raise ComplaintError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        if not category or not category.strip():
            raise ComplaintError("a complaint needs a category")
        tier_rank(tier)
        target = policy.sla.target(tier)
        calendar = policy.calendar(target.calendar)
        factor = policy.sla.severity_factor(severity)
        clocks = {
            name: sla.start({"budget_s": max(1, round(budget * factor)), "used_s": 0.0},
                            ctx.at, calendar, policy.sla.at_risk_ratio)
            for name, budget in (("first_response", target.first_response_s),
                                 ("resolution", target.resolution_s))}
        return cls(timestamp=ctx.at, meta=ctx.meta(complaint_id), complaint_id=complaint_id,
                   member_id=member_id, channel=channel, category=category, severity=severity,
                   description=description, tier=tier, calendar=calendar.id,
                   at_risk_ratio=policy.sla.at_risk_ratio, severity_factor=factor,
                   policy_version=policy.version, clocks=clocks)

    @event("ComplaintFiled")
    def __init__(self, complaint_id: str, member_id: str, channel: str, category: str,
                 severity: str, description: str, tier: str, calendar: str,
                 at_risk_ratio: float, policy_version: str, clocks: dict, timestamp: datetime,
                 meta: dict, severity_factor: float = 1.0) -> None:
        self.complaint_id = complaint_id
        self.member_id = member_id
        self.tier = tier
        self.calendar_id = calendar
        self.at_risk_ratio = at_risk_ratio
        self.severity = severity
        self.severity_factor = severity_factor  # events before v2 of ComplaintFiled: 1
        self.policy_version = policy_version
        self.clocks = _copy(clocks)
        self.status = "filed"
        self.assignee: str | None = None
        self.escalation_level = 0
        self.rating: int | None = None
        self.status_before_wait: str | None = None
        self.route: str | None = None
        self.priority = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    # -- handling -------------------------------------------------------------

    @command
    def route_to(self, ctx: Ctx, assignee: str, route: str, reason: str, priority: int,
                 policy: Policy) -> None:
        """Seed 002 §3.2: at filing, a VIP's complaint goes to their dedicated agent or to the
        team queue (``domain.benefits.routing`` decides; the service passes the outcome)."""
        if route not in ROUTES:
            raise ComplaintError(f"route {route!r} is not one of {', '.join(ROUTES)}")
        if self.status != "filed" or self.route is not None:
            raise ComplaintError(f"complaint {self.complaint_id} is routed once, when it is filed")
        if not assignee or not assignee.strip():
            raise ComplaintError("routing needs the agent's or the queue's id")
        self._routed(assignee=assignee, route=route, reason=reason, priority=priority,
                     policy_version=policy.version)

    @event("ComplaintRouted")
    def _routed(self, assignee: str, route: str, reason: str, priority: int,
                policy_version: str) -> None:
        self.assignee = assignee
        self.route = route
        self.priority = priority  # the status stays: acknowledging is still the first response

    @command
    def acknowledge(self, ctx: Ctx, calendar: Calendar) -> None:
        """The first response stops the first-response clock."""
        self._require_open("acknowledge")
        if self.clocks["first_response"].get("stopped_at"):
            raise ComplaintError(f"complaint {self.complaint_id} was already acknowledged")
        self._acknowledged(agent=ctx.actor, clocks=self._stop(["first_response"], ctx.at, calendar))

    @event("ComplaintAcknowledged")
    def _acknowledged(self, agent: str, clocks: dict) -> None:
        self.clocks = _copy(clocks)
        if self.status == "filed":
            self.status = "acknowledged"

    @command
    def assign(self, ctx: Ctx, assignee: str) -> None:
        self._require_open("assign")
        if not assignee or not assignee.strip():
            raise ComplaintError("assign needs the agent's id")
        self._assigned(assignee=assignee)

    @event("ComplaintAssigned")
    def _assigned(self, assignee: str) -> None:
        self.assignee = assignee
        if self.status in ("filed", "acknowledged"):
            self.status = "assigned"

    @command
    def escalate(self, ctx: Ctx, reason: str) -> None:
        """Escalation by hand; breaches escalate automatically."""
        self._require_open("escalate")
        if not reason or not reason.strip():
            raise ComplaintError("an escalation needs a reason")
        self._escalated(level=self.escalation_level + 1, reason=reason, automatic=False)

    @event("ComplaintEscalated")
    def _escalated(self, level: int, reason: str, automatic: bool) -> None:
        self.escalation_level = level
        if self.status == "waiting":
            self.status_before_wait = "escalated"  # restored when the customer replies
        else:
            self.status = "escalated"

    @command
    def wait_for_customer(self, ctx: Ctx, reason: str, calendar: Calendar) -> None:
        """Clocks pause while the customer owes an answer; time used so far is kept."""
        self._require_open("wait for the customer")
        if self.status == "waiting":
            raise ComplaintError(f"complaint {self.complaint_id} is already waiting for the customer")
        running = [name for name in CLOCKS if sla.running(self.clocks[name])]
        self._waiting_for_customer(reason=reason or "", clocks=self._pause(running, ctx.at, calendar))

    @event("ComplaintWaitingForCustomer")
    def _waiting_for_customer(self, reason: str, clocks: dict) -> None:
        self.status_before_wait = self.status
        self.status = "waiting"
        self.clocks = _copy(clocks)

    @command
    def customer_replied(self, ctx: Ctx, calendar: Calendar) -> None:
        if self.status != "waiting":
            raise ComplaintError(f"complaint {self.complaint_id} is not waiting for the customer")
        paused = [name for name in CLOCKS if self.clocks[name].get("paused_at")]
        self._customer_replied(clocks=self._resume(paused, ctx.at, calendar))

    @event("ComplaintCustomerReplied")
    def _customer_replied(self, clocks: dict) -> None:
        self.status = self.status_before_wait or "acknowledged"
        self.status_before_wait = None
        self.clocks = _copy(clocks)

    @command
    def resolve(self, ctx: Ctx, resolution: str, calendar: Calendar) -> None:
        """Seed 002 §7.3: the result is recorded; both clocks stop."""
        self._require_open("resolve")
        if not resolution or not resolution.strip():
            raise ComplaintError("a resolution needs a description of the result")
        running = [n for n in CLOCKS if not self.clocks[n].get("stopped_at")]
        clocks = self._resume([n for n in running if self.clocks[n].get("paused_at")], ctx.at, calendar)
        self._resolved(agent=ctx.actor, resolution=resolution,
                       clocks=sla.stop_all(clocks, running, ctx.at, calendar))

    @event("ComplaintResolved")
    def _resolved(self, agent: str, resolution: str, clocks: dict) -> None:
        self.clocks = _copy(clocks)
        self.status = "resolved"

    @command
    def rate(self, ctx: Ctx, score: int) -> None:
        """Seed 002 §5.3.1: the customer rates satisfaction 1 to 5 after resolution."""
        if self.status not in ("resolved", "closed"):
            raise ComplaintError("satisfaction can be rated only after the complaint is resolved")
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise ComplaintError(f"satisfaction must be a whole number 1-5, got {score!r}")
        if self.rating is not None:
            raise ComplaintError(f"complaint {self.complaint_id} was already rated {self.rating}")
        self._rated(score=score)

    @event("ComplaintRated")
    def _rated(self, score: int) -> None:
        self.rating = score

    @command
    def close(self, ctx: Ctx) -> None:
        if self.status != "resolved":
            raise ComplaintError(f"only a resolved complaint can be closed (status {self.status})")
        self._closed()

    @event("ComplaintClosed")
    def _closed(self) -> None:
        self.status = "closed"

    @command
    def reopen(self, ctx: Ctx, reason: str, calendar: Calendar) -> None:
        """A reopened complaint resumes its resolution clock where it stopped."""
        if self.status not in ("resolved", "closed"):
            raise ComplaintError(f"only a resolved or closed complaint can be reopened "
                                 f"(status {self.status})")
        if not reason or not reason.strip():
            raise ComplaintError("reopening needs a reason")
        clock = dict(self.clocks["resolution"])
        clock.pop("stopped_at", None)
        clock = sla.start(clock, ctx.at, calendar, self.at_risk_ratio)
        self._reopened(reason=reason, clocks={**self.clocks, "resolution": clock})

    @event("ComplaintReopened")
    def _reopened(self, reason: str, clocks: dict) -> None:
        self.status = "reopened"
        self.rating = None
        self.clocks = _copy(clocks)

    # -- scheduled: SLA instants ------------------------------------------------

    @command
    def mark_at_risk(self, ctx: Ctx, clock: str) -> None:
        """Scheduled at the instant the clock has used its at-risk share."""
        state = self._clock(clock)
        if not sla.running(state) or state.get("at_risk_marked") or state["at_risk_at"] > ctx.at:
            raise ComplaintError(f"clock {clock} of {self.complaint_id} is not at risk at {ctx.at}")
        self._sla_at_risk(clock=clock, at_risk_at=state["at_risk_at"], deadline=state["deadline"])

    @event("ComplaintSlaAtRisk")
    def _sla_at_risk(self, clock: str, at_risk_at: datetime, deadline: datetime) -> None:
        self.clocks = {**self.clocks, clock: {**self.clocks[clock], "at_risk_marked": True}}

    @command
    def mark_breached(self, ctx: Ctx, clock: str) -> None:
        """Scheduled just after the deadline (met at it, missed only after it); escalates automatically."""
        state = self._clock(clock)
        if not sla.running(state) or state.get("breached") or not missed(state["deadline"], ctx.at):
            raise ComplaintError(f"clock {clock} of {self.complaint_id} is not breached at {ctx.at}")
        self._sla_breached(clock=clock, deadline=state["deadline"])
        self._escalated(level=self.escalation_level + 1, reason=f"{clock} SLA breached",
                        automatic=True)

    @event("ComplaintSlaBreached")
    def _sla_breached(self, clock: str, deadline: datetime) -> None:
        self.clocks = {**self.clocks,
                       clock: {**self.clocks[clock], "breached": True, "at_risk_marked": True}}

    # -- clock arithmetic (domain.sla, outside @event bodies) ----------------------

    def _clock(self, name: str) -> dict:
        if name not in CLOCKS:
            raise ComplaintError(f"unknown clock {name!r}; expected one of {CLOCKS}")
        return self.clocks[name]

    def _stop(self, names: list, at: datetime, calendar: Calendar) -> dict:
        return sla.stop(self.clocks, names, at, calendar, self.at_risk_ratio)

    def _pause(self, names: list, at: datetime, calendar: Calendar) -> dict:
        return sla.pause(self.clocks, names, at, calendar)

    def _resume(self, names: list, at: datetime, calendar: Calendar) -> dict:
        return sla.resume(self.clocks, names, at, calendar, self.at_risk_ratio)

    def _require_open(self, action: str) -> None:
        if not self.is_open:
            raise ComplaintError(f"cannot {action} complaint {self.complaint_id}: it is {self.status}")


def _copy(clocks: dict) -> dict:
    # State must never share dicts with the event object that carried them.
    return {name: dict(clock) for name, clock in clocks.items()}
