"""Member services: registration, tier reviews and overrides, the VIP workflow, benefits, erasure."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from domain import benefits
from domain.base import Ctx
from domain.member import Member


class MemberServices:
    """Typed member commands on the unit of work (:class:`infra.service_layer.uow.UnitOfWork`: get, call, save)."""


    def register_member(self, ctx: Ctx, input_id: str, member_id: str, profile: dict) -> Member:
        """Register a member (or fill in one first seen in an order); profile values are sealed."""
        sealed = {k: self.seal_for(member_id, v, k) for k, v in profile.items() if v is not None}
        member = self.find_member(member_id)
        if member is None:
            member = Member.register(ctx, member_id, sealed, source="crm", input_id=input_id)
        else:
            member.fill_registration(ctx, input_id, sealed)
        self.save(member)
        return member

    def _change_member(self, ctx: Ctx, member_id: str, change: Callable[[Member], Any]) -> Member:
        # get, call, save: every member command below is this with its own call
        member = self.member(member_id)
        change(member)
        self.save(self.provide_benefits(ctx, member))
        return member

    def provide_benefits(self, ctx: Ctx, member: Member | None) -> Member | None:
        """Seed 002 §3.2.1: a member whose standing just became active (approval, signing, fee,
        renewal) gets a dedicated agent in the same save, chosen here (``benefits.choose_agent``:
        a stable pick from the roster of the policy in force) and recorded with why. Called after
        every command that may activate a standing; a member with no agent due passes unchanged."""
        if member is None or not benefits.agent_due(member.has_benefits, member.effective_tier,
                                                    member.dedicated_agent, self.policy):
            return member
        agent = benefits.choose_agent(self.policy, member.effective_tier, member.member_id)
        if agent is not None:
            member.assign_dedicated_agent(ctx, agent.id, _basis(member), "", self.policy)
        return member

    def assign_agent(self, ctx: Ctx, member_id: str, agent_id: str, reason: str) -> Member:
        """A supervisor reassigns the member's dedicated agent; the reason (about the member) is
        sealed with the member's key like an override reason."""
        sealed = self.seal_text(member_id, reason, "reassignment reason")
        return self._change_member(ctx, member_id, lambda m: m.assign_dedicated_agent(
            ctx, agent_id, "reassigned", sealed, self.policy))

    def review_member(self, ctx: Ctx, member_id: str) -> Member:
        """The annual tier review (seed 002 §3.1.2); the scheduler runs it on the anniversary."""
        return self._change_member(ctx, member_id, lambda m: m.review(ctx, self.policy))

    def set_override(self, ctx: Ctx, member_id: str, kind: str, tier: str, reason: str,
                     expires_at: datetime) -> Member:
        """Pin the member's tier (``kind="pin"``) or give it a floor (``"floor"``) until ``expires_at``;
        the reason is sealed with the member's key (it is often about the customer)."""
        sealed = self.seal_text(member_id, reason, "override reason")
        return self._change_member(ctx, member_id,
                                   lambda m: m.set_override(ctx, kind, tier, sealed, expires_at))

    def clear_override(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """Remove the member's manual tier override; the reason is sealed."""
        sealed = self.seal_text(member_id, reason, "reason")
        return self._change_member(ctx, member_id, lambda m: m.clear_override(ctx, sealed))

    def expire_override(self, ctx: Ctx, member_id: str) -> Member:
        """End an override at its expiry (run by the scheduler)."""
        return self._change_member(ctx, member_id, lambda m: m.expire_override(ctx))

    def apply_for_vip(self, ctx: Ctx, member_id: str) -> Member:
        """The member applies for VIP standing (seed 002 §2.2.1)."""
        return self._change_member(ctx, member_id, lambda m: m.apply_for_vip(ctx, self.policy))

    def start_vip_review(self, ctx: Ctx, member_id: str) -> Member:
        """A reviewer starts reviewing the VIP application (§2.2.2)."""
        return self._change_member(ctx, member_id, lambda m: m.start_review(ctx))

    def approve_vip(self, ctx: Ctx, member_id: str) -> Member:
        """Approve the VIP application; the fee due is fixed by the policy (§2.2.2)."""
        return self._change_member(ctx, member_id, lambda m: m.approve(ctx, self.policy))

    def reject_vip(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """Reject the VIP application, with a reason the customer is told (sealed: it is about them)."""
        sealed = self.seal_text(member_id, reason, "rejection reason")
        return self._change_member(ctx, member_id, lambda m: m.reject(ctx, sealed))

    def revoke_vip(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """Cancel the member's VIP status, with a reason (§2.3.2; sealed)."""
        sealed = self.seal_text(member_id, reason, "revocation reason")
        return self._change_member(ctx, member_id, lambda m: m.revoke(ctx, sealed))

    def terminate_rights(self, ctx: Ctx, member_id: str, reason: str) -> Member:
        """End the member's rights for breach (seed 000 §4.3.2); the reason is sealed."""
        sealed = self.seal_text(member_id, reason, "termination reason")
        return self._change_member(ctx, member_id, lambda m: m.terminate_rights(ctx, sealed))

    def erase_member(self, ctx: Ctx, member_id: str, input_id: str = "") -> Member:
        """Destroy the member's key, and note the erasure in the log."""
        member = self.member(member_id)
        self.cipher.keys.destroy(member_id)
        if not member.erased:
            member.record_erasure(ctx, input_id)
            self.save(member)
        return member


def _basis(member: Member) -> str:
    """Why an agent is due now, from what this command did to the member (its pending events)."""
    done = {type(e).__name__ for e in member.pending_events}
    return "renewed" if "VipRenewed" in done else "activated" if "VipActivated" in done else "due"
