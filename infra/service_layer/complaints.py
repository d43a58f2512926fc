"""Complaint services: filing, handling, SLA marks; free text sealed with the member's key."""
from __future__ import annotations

from typing import Any, Callable

from domain import benefits
from domain.base import Ctx, DuplicateError
from domain.complaint import Complaint


class ComplaintServices:
    """Typed complaint commands on the unit of work (:class:`infra.service_layer.uow.UnitOfWork`: get, call, save)."""


    def file_complaint(self, ctx: Ctx, complaint_id: str, member_id: str, channel: str,
                       category: str, severity: str, description: str) -> Complaint:
        """File a complaint: clocks start with the tier's budgets scaled by the severity's factor
        and a VIP's complaint is routed (``domain.benefits.routing``);
        the category and the description are sealed with the member's key (a category is typed
        by an agent and often names what happened to the customer)."""
        if self._exists(Complaint, complaint_id):
            raise DuplicateError(f"complaint {complaint_id} already exists; pick another id")
        member = self.member(member_id)
        tier = member.effective_tier if member.has_benefits else "member"
        sealed = self.seal_text(member_id, description, "description")
        category = self.seal_text(member_id, category, "category")
        complaint = Complaint.file(ctx, complaint_id, member_id, channel, category, severity,
                                   sealed, tier, self.policy)
        # Seed 002 §3.2: a VIP with benefits has it routed at filing (to the dedicated agent, or
        # the team queue when the policy in force lists the agent unavailable), in the same save.
        plan = benefits.routing(self.policy, tier, member.dedicated_agent) if member.has_benefits else None
        if plan is not None:
            complaint.route_to(ctx, plan.assignee, plan.route, plan.reason, plan.priority, self.policy)
        self.save(complaint)
        return complaint

    def resolve_complaint(self, ctx: Ctx, complaint_id: str, resolution: str) -> Complaint:
        """The resolution text may identify the customer, so it is sealed like the description."""
        complaint = self.complaint(complaint_id)
        sealed = self.seal_text(complaint.member_id, resolution, "resolution")
        complaint.resolve(ctx, sealed, self.policy.calendar(complaint.calendar_id))
        self.save(complaint)
        return complaint

    def seal_text(self, member_id: str, text: str, what: str) -> str:
        """Free text about a member sealed with their key (:meth:`seal_for`); text that is empty
        or blank is passed on as it is, so the domain's "needs a ..." rules still see it."""
        if not isinstance(text, str) or not text.strip():
            return text
        return self.seal_for(member_id, text, what)

    def _change_complaint(self, ctx: Ctx, complaint_id: str,
                          change: Callable[[Complaint], Any]) -> Complaint:
        # get, call, save: every complaint command below is this with its own call
        complaint = self.complaint(complaint_id)
        change(complaint)
        self.save(complaint)
        return complaint

    def _calendar(self, complaint: Complaint):
        return self.policy.calendar(complaint.calendar_id)

    def _seal_reason(self, complaint: Complaint, reason: str) -> str:
        # A reason is often the customer's own words: sealed like the description.
        return self.seal_text(complaint.member_id, reason, "reason")

    def acknowledge_complaint(self, ctx: Ctx, complaint_id: str) -> Complaint:
        """The first response: stops the first-response clock."""
        return self._change_complaint(ctx, complaint_id,
                                      lambda c: c.acknowledge(ctx, self._calendar(c)))

    def assign_complaint(self, ctx: Ctx, complaint_id: str, assignee: str) -> Complaint:
        """Assign the complaint to an agent."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.assign(ctx, assignee))

    def escalate_complaint(self, ctx: Ctx, complaint_id: str, reason: str) -> Complaint:
        """Escalate by hand (breaches escalate by themselves); the reason is sealed."""
        return self._change_complaint(ctx, complaint_id,
                                      lambda c: c.escalate(ctx, self._seal_reason(c, reason)))

    def wait_for_customer(self, ctx: Ctx, complaint_id: str, reason: str = "") -> Complaint:
        """Wait for the customer: the clocks pause, keeping the time used; the reason is sealed."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.wait_for_customer(
            ctx, self._seal_reason(c, reason), self._calendar(c)))

    def record_customer_reply(self, ctx: Ctx, complaint_id: str) -> Complaint:
        """The customer answered: the paused clocks resume."""
        return self._change_complaint(ctx, complaint_id,
                                      lambda c: c.customer_replied(ctx, self._calendar(c)))

    def rate_complaint(self, ctx: Ctx, complaint_id: str, score: int) -> Complaint:
        """The customer's satisfaction, a whole number 1-5 (seed 002 §5.3)."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.rate(ctx, score))

    def close_complaint(self, ctx: Ctx, complaint_id: str) -> Complaint:
        """Close a resolved complaint."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.close(ctx))

    def reopen_complaint(self, ctx: Ctx, complaint_id: str, reason: str) -> Complaint:
        """Reopen: the resolution clock resumes where it stopped; the reason is sealed."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.reopen(
            ctx, self._seal_reason(c, reason), self._calendar(c)))

    def mark_complaint_at_risk(self, ctx: Ctx, complaint_id: str, clock: str) -> Complaint:
        """A clock reached its at-risk share (run by the scheduler)."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.mark_at_risk(ctx, clock))

    def mark_complaint_breached(self, ctx: Ctx, complaint_id: str, clock: str) -> Complaint:
        """A clock reached its deadline (run by the scheduler); escalates."""
        return self._change_complaint(ctx, complaint_id, lambda c: c.mark_breached(ctx, clock))
