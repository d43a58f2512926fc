"""Members' benefits as pure rules (seed 002 §3.2, §4.1, §4.3.2; DOMAIN.md "Settled rules").

A VIP with benefits (an active standing and a VIP tier, ``Member.has_benefits``)
has a dedicated service agent (专属客服) to whom new complaints are routed, and
priority handling (优先处理): work queues order by time to breach, then the
tier's priority rank, then severity. Benefits end with the standing.

Everything here is decided from the policy's ``benefits`` data (tiers, teams,
agent roster) and the values passed in; nothing reads the clock or a store.
The service layer asks these rules, passes the outcome to an aggregate
method, and the event records it with the policy version.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from domain.base import DomainError
from domain.policy import Agent, Policy, tier_rank

#: Why a dedicated agent was assigned: the standing became active (approval, signing, fee),
#: it was renewed after lapsing, a supervisor reassigned the member, or an agent was otherwise
#: due (a standing from before agents were kept, or an override that raised the tier).
ASSIGN_BASES = ("activated", "renewed", "reassigned", "due")
#: Where a new complaint went: to the member's dedicated agent, or to their team's queue.
ROUTES = ("dedicated_agent", "team_queue")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class BenefitsError(DomainError):
    """A benefits command was refused; the message says what to fix."""


def agent_due(has_benefits: bool, tier: str, current_agent: str | None, policy: Policy) -> bool:
    """Whether a member should get a dedicated agent now: benefits, none yet, and the tier grants one."""
    granted = policy.benefits.for_tier(tier)
    return has_benefits and current_agent is None and bool(granted and granted.dedicated_agent)


def choose_agent(policy: Policy, tier: str, member_id: str) -> Agent | None:
    """The dedicated agent for a member of ``tier``: one of the tier's team, picked by a stable hash
    of the member id among the agents available in the policy (all of the team if none is).

    The pick depends only on the member and the policy, never on other members or on the order
    inputs arrive in, so a member's log is the same however inputs interleave (DOMAIN.md Time);
    the hash spreads members evenly over the roster. None when the tier grants no agent.
    """
    granted = policy.benefits.for_tier(tier)
    if granted is None or not granted.dedicated_agent:
        return None
    team = [a for a in policy.benefits.agents if a.team == granted.team]
    pool = [a for a in team if a.available] or team
    if not pool:
        return None
    digest = hashlib.sha256(member_id.encode("utf-8")).digest()
    return pool[int.from_bytes(digest[:8], "big") % len(pool)]


def check_assignment(member_id: str, has_benefits: bool, tier: str, current_agent: str | None,
                     agent_id: str, basis: str, reason: str, actor: str, policy: Policy) -> Agent:
    """The roster entry of ``agent_id`` if it may become the member's dedicated agent; else a
    :class:`BenefitsError` saying what to fix."""
    if basis not in ASSIGN_BASES:
        raise BenefitsError(f"assignment basis {basis!r} is not one of {', '.join(ASSIGN_BASES)}")
    if not has_benefits:
        raise BenefitsError(f"member {member_id} has no VIP benefits now (an active standing and a VIP "
                            "tier are needed): a dedicated agent serves a VIP with benefits only")
    granted = policy.benefits.for_tier(tier)
    if granted is None or not granted.dedicated_agent:
        raise BenefitsError(f"the {tier} tier carries no dedicated agent in policy {policy.version}")
    agent = policy.benefits.agent(agent_id)
    if agent is None:
        known = ", ".join(a.id for a in policy.benefits.agents) or "none"
        raise BenefitsError(f"agent {agent_id!r} is not on the roster of policy {policy.version} "
                            f"(agents: {known})")
    if agent_id == current_agent:
        raise BenefitsError(f"agent {agent_id} is already member {member_id}'s dedicated agent")
    if basis == "reassigned":
        if not agent.available:
            raise BenefitsError(f"agent {agent_id} is marked unavailable in policy {policy.version}; "
                                "choose an available agent")
        if not reason or not reason.strip():
            raise BenefitsError("a reassignment needs a reason (why this member changes agent)")
        if actor in ("", "system"):
            raise BenefitsError("a reassignment needs a named supervisor as actor")
    return agent


@dataclass(frozen=True)
class Routing:
    """Where a new complaint goes, and why (recorded in ``ComplaintRouted``)."""

    assignee: str
    route: str
    reason: str
    priority: int


def routing(policy: Policy, tier: str, dedicated_agent: str | None) -> Routing | None:
    """Seed 002 §3.2: a complaint of a VIP with benefits goes to their dedicated agent when the
    policy in force lists that agent as available, else to the team queue (the agent's team, or
    the tier's when the member has no agent on the roster). None for a tier without benefits."""
    granted = policy.benefits.for_tier(tier)
    if granted is None:
        return None
    agent = policy.benefits.agent(dedicated_agent)
    if agent is not None and agent.available:
        return Routing(agent.id, "dedicated_agent", "the member's dedicated agent", granted.priority)
    team = policy.benefits.team(agent.team if agent is not None else granted.team)
    if agent is not None:
        why = f"dedicated agent {agent.id} is unavailable in policy {policy.version}"
    elif dedicated_agent:
        why = f"dedicated agent {dedicated_agent} is not on the roster of policy {policy.version}"
    else:
        why = "the member has no dedicated agent"
    return Routing(team.queue, "team_queue", f"{why}: queued for team {team.id}", granted.priority)


def queue_key(time_to_breach_s: float, priority: int, tier: str, severity: str) -> tuple:
    """Priority handling (优先处理): the sort key of a work queue's entry, first first.

    Sooner to breach first (overdue is negative), then higher priority rank (the tier's, recorded
    at routing), then higher tier, then higher severity.
    """
    return (time_to_breach_s, -priority, -tier_rank(tier), -SEVERITY_RANK.get(severity, 0))


def benefits_in_force(policy: Policy, has_benefits: bool, tier: str,
                      dedicated_agent: str | None) -> dict | None:
    """What a member receives now (for the tier answer): dedicated agent, priority, SLA budgets."""
    granted = policy.benefits.for_tier(tier)
    if not has_benefits or granted is None:
        return None
    target = policy.sla.target(tier)
    agent = policy.benefits.agent(dedicated_agent)
    return {"dedicated_agent": dedicated_agent if granted.dedicated_agent else None,
            "agent_available": bool(agent and agent.available),
            "team": granted.team, "priority": granted.priority,
            "sla": {"first_response_s": target.first_response_s, "resolution_s": target.resolution_s,
                    "calendar": target.calendar}}
