"""The Member aggregate: spend, points, activity, tier, and VIP standing.

Seed 002 §2 (qualification, application, review, signing, loss and
cancellation) and seed 000 §2 (VIP users, tiers by spend and activity).
The tier is the member's qualification; the VIP status is the standing the
application workflow gives. Benefits need both.
"""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain import benefits, vip_workflow as flow
from domain.base import Ctx, VipAggregate, aggregate_id, command, keep_declared_annotations, require_aware
from domain.member_copy import copy_member
from domain.member_errors import (
    ACTIVITY_KINDS, MemberError, NotQualifiedError, OrderError,
    WorkflowError, check_amount, check_override, check_profile, not_qualified, unknown_order,
)
from domain.member_events import OrderPaid
from domain.policy import TIERS, Policy, tier_rank
from domain import tiering
from domain.tiering import Standing, effective_tier, next_anniversary
from domain import window
from domain.window import CANCELLED, CURRENCY, PAID, REVERSED, WindowIndex

class Member(VipAggregate):
    """A customer of the program, known from CRM or first seen in an order."""

    KEY = "member_id"
    __slots__ = ("_index",)  # domain.window's running sums: derived, so never in a snapshot
    class_version = 2  # 2: orders are domain.window's lists (snapshots of 1 hold dicts)
    upcast_v1_v2 = staticmethod(window.upcast_snapshot_orders)
    dedicated_agent = None  # seed 002 §3.2.1; a class default, so older snapshots load without it
    __deepcopy__ = copy_member

    @staticmethod
    def create_id(member_id: str, **_: object) -> UUID:
        return aggregate_id("member", member_id)

    @classmethod
    def register(cls, ctx: Ctx, member_id: str, profile: dict | None, source: str,
                 input_id: str = "") -> "Member":
        """Open a member from CRM (``source='crm'``) or from a first upstream event."""
        if not member_id or not member_id.strip():
            raise MemberError("member id must not be empty")
        check_profile(profile or {})
        return cls(timestamp=ctx.at, meta=ctx.meta(member_id), member_id=member_id, profile=profile,
                   source=source, input_id=input_id)

    @event("MemberRegistered")
    def __init__(self, member_id: str, profile: dict | None, source: str, input_id: str,
                 timestamp: datetime, meta: dict) -> None:
        self.member_id = member_id
        self.profile = dict(profile or {})
        self.registered = source == "crm"
        # Bounded by the window (see domain.tiering.prune); JSON shapes, so snapshots round-trip.
        self.entries: list = []  # activity [occurred_at, 0, points], in occurred-at order
        self.active_months: list[str] = []  # months with activity, sorted
        self.orders: dict[str, list] = {}  # domain.window's order lists: instant, month, what is left
        self.closed_orders: dict[str, list] = {}  # orders past every window, still refundable
        self.forgotten_before: datetime | None = None  # closed orders before this are forgotten
        self.tier = "member"
        self.tier_since: datetime | None = None
        self.first_silver_at: datetime | None = None
        self.next_review_at: datetime | None = None
        self.override: dict | None = None
        self.vip_status = "none"
        self.fee_due_fen = 0
        self.fee_paid_fen = 0
        self.agreement_id: str | None = None
        self.erased = False

    def _window(self) -> WindowIndex:
        """The orders' running sums, built from the orders the first time they are needed."""
        try:
            return self._index
        except AttributeError:
            self._index = WindowIndex(self.orders, self.closed_orders)
            return self._index

    # -- what the member stands at ------------------------------------

    @property
    def effective_tier(self) -> str:
        """The tier after a manual override (pin sets it, floor bounds it below)."""
        return effective_tier(self.tier, self.override)

    @property
    def has_benefits(self) -> bool:
        """Seed 000 §2.1: VIP rights need an approved, paid-up, active standing and a VIP tier."""
        return self.vip_status == "active" and self.effective_tier != "member"

    def standing_at(self, at: datetime, policy: Policy) -> Standing:
        return tiering.indexed_standing(self._window(), self.orders, self.entries,
                                        self.active_months, at, policy)

    def _prune(self, keep_from: datetime | None, forget_before: datetime | None) -> None:
        # Called by the events that add to the window, with the horizon their command fixed.
        tiering.prune(self.orders, self.closed_orders, self.entries, self.active_months,
                      keep_from, forget_before, self._window())
        if forget_before is not None:
            self.forgotten_before = forget_before

    # -- profile ----------------------------------------------------------

    @command
    def fill_registration(self, ctx: Ctx, input_id: str, profile: dict) -> None:
        """CRM registration of a member first seen in an order fills the profile."""
        check_profile(profile)
        if self.registered:
            raise MemberError(f"member {self.member_id} is already registered")
        self._registration_filled(input_id=input_id, profile=profile)

    @event("RegistrationFilled")
    def _registration_filled(self, input_id: str, profile: dict) -> None:
        self.profile.update(profile)
        self.registered = True

    @command
    def update_profile(self, ctx: Ctx, input_id: str, changes: dict) -> None:
        check_profile(changes)
        if not changes:
            raise MemberError("a profile update must change at least one of name, phone, email")
        self._profile_updated(input_id=input_id, changes=changes)

    @event("ProfileUpdated")
    def _profile_updated(self, input_id: str, changes: dict) -> None:
        self.profile.update(changes)

    @command
    def record_erasure(self, ctx: Ctx, input_id: str) -> None:
        """PIPL erasure: the key is destroyed elsewhere; the log notes that it was."""
        self._personal_data_erased(input_id=input_id)

    @event("PersonalDataErased")
    def _personal_data_erased(self, input_id: str) -> None:
        self.erased = True

    # -- orders and activity ---------------------------------------------

    @command
    def record_order_paid(self, ctx: Ctx, input_id: str, order_id: str, amount_fen: int,
                          currency: str, occurred_at: datetime, policy: Policy) -> None:
        """A paid order adds spend (and points) in the window of its occurred-at.

        An order in another currency than the tier currency is recorded and
        counts only through the policy's conversion for it (none: nothing).
        """
        check_amount(amount_fen, currency)
        require_aware(occurred_at, "occurred_at")
        if order_id in self.orders or order_id in self.closed_orders:
            raise OrderError(f"order {order_id} was already recorded as paid")
        keep_from, forget_before = tiering.horizon(ctx.at, self.next_review_at, policy)
        self.trigger_event(self.OrderPaid, input_id=input_id, order_id=order_id, amount_fen=amount_fen,
                           currency=currency, occurred_at=occurred_at, month=policy.month_of(occurred_at),
                           counted_fen=policy.tiers.counted_fen(amount_fen, currency),
                           policy_version=policy.version, keep_from=keep_from, forget_before=forget_before)
        self._upgrade_if_qualified(ctx.at, policy)

    OrderPaid = OrderPaid   # declared in domain.member_events; the library makes it Member.OrderPaid

    def _order_paid(self, e: OrderPaid) -> None:
        index = self._window()  # built (if missing) before this order joins the orders
        # v1 events carry no counted_fen: only tier-currency orders were recorded then.
        counted = e.amount_fen if e.counted_fen is None else e.counted_fen
        order = self.orders[e.order_id] = window.new_order(e.occurred_at, e.month, e.amount_fen, counted, e.currency)
        index.added(e.order_id, order)
        self._prune(e.keep_from, e.forget_before)

    @command
    def record_order_refunded(self, ctx: Ctx, input_id: str, order_id: str, amount_fen: int,
                              currency: str, occurred_at: datetime, policy: Policy) -> None:
        """A refund reverses its own order's spend and points, at the order's occurred-at.

        It never lowers the tier before review, and never the spend of other orders.
        A refund of an order that left every window is recorded and counts nothing.
        """
        check_amount(amount_fen, currency)
        require_aware(occurred_at, "occurred_at")
        order = self._order(order_id)
        if order[CURRENCY] not in (None, currency):
            raise OrderError(f"refund currency {currency} differs from order {order_id}'s currency "
                             f"{order[CURRENCY]}; refund in the currency paid")
        left = order[PAID] - order[REVERSED]
        if amount_fen > left:
            raise OrderError(
                f"refund of {amount_fen} fen exceeds the {left} fen still paid on order {order_id}")
        self._order_refunded(input_id=input_id, order_id=order_id, amount_fen=amount_fen,
                             currency=currency, occurred_at=occurred_at)

    @event("OrderRefunded")
    def _order_refunded(self, input_id: str, order_id: str, amount_fen: int, currency: str,
                        occurred_at: datetime) -> None:
        window.reverse(self._window(), self.orders, self.closed_orders, order_id, amount_fen)

    @command
    def record_order_cancelled(self, ctx: Ctx, input_id: str, order_id: str,
                               occurred_at: datetime) -> None:
        """A cancelled order reverses whatever of it is still paid (nothing if unpaid)."""
        require_aware(occurred_at, "occurred_at")
        order = self.orders.get(order_id) or self.closed_orders.get(order_id)
        if order and order[CANCELLED]:
            raise OrderError(f"order {order_id} was already cancelled")
        reversed_fen = order[PAID] - order[REVERSED] if order else 0
        self._order_cancelled(input_id=input_id, order_id=order_id,
                              reversed_fen=reversed_fen, occurred_at=occurred_at)

    @event("OrderCancelled")
    def _order_cancelled(self, input_id: str, order_id: str, reversed_fen: int,
                         occurred_at: datetime) -> None:
        window.reverse(self._window(), self.orders, self.closed_orders, order_id, reversed_fen,
                       cancel_at=occurred_at)

    @command
    def record_activity(self, ctx: Ctx, input_id: str, kind: str, occurred_at: datetime,
                        policy: Policy) -> None:
        """CRM activity counts toward the month's activity and earns points by policy."""
        if kind not in ACTIVITY_KINDS:
            raise MemberError(f"activity kind {kind!r} is not one of {', '.join(ACTIVITY_KINDS)}")
        require_aware(occurred_at, "occurred_at")
        keep_from, forget_before = tiering.horizon(ctx.at, self.next_review_at, policy)
        self._activity_recorded(input_id=input_id, kind=kind, occurred_at=occurred_at,
                                points=policy.tiers.activity_points.get(kind, 0),
                                month=policy.month_of(occurred_at),
                                policy_version=policy.version, keep_from=keep_from,
                                forget_before=forget_before)
        self._upgrade_if_qualified(ctx.at, policy)

    @event("ActivityRecorded")
    def _activity_recorded(self, input_id: str, kind: str, occurred_at: datetime, points: int,
                           month: str, policy_version: str, keep_from: datetime | None = None,
                           forget_before: datetime | None = None) -> None:
        tiering.add_entry(self.entries, occurred_at, points)
        tiering.add_month(self.active_months, month)
        self._prune(keep_from, forget_before)

    def _order(self, order_id: str) -> list:
        order = self.orders.get(order_id) or self.closed_orders.get(order_id)
        if order is None:
            raise unknown_order(order_id, self.forgotten_before)
        return order

    # -- tier ---------------------------------------------------------------

    def _upgrade_if_qualified(self, at: datetime, policy: Policy) -> None:
        # Upgrades take effect at the qualifying event; only reviews lower a tier.
        now = tiering.rising_standing(self._window(), self.orders, self.entries, self.active_months, at,
                                      self.tier, policy)  # None: no rule above the tier is in reach
        if now is None or tier_rank(now.tier) <= tier_rank(self.tier):
            return
        first = self.first_silver_at or at
        self._tier_upgraded(from_tier=self.tier, to_tier=now.tier, policy_version=policy.version,
                            standing=now.as_dict(), first_silver_at=first,
                            next_review_at=next_anniversary(first, at), timestamp=at)

    @event("TierUpgraded")
    def _tier_upgraded(self, from_tier: str, to_tier: str, policy_version: str, standing: dict,
                       first_silver_at: datetime, next_review_at: datetime,
                       timestamp: datetime) -> None:
        self.tier = to_tier
        self.tier_since = timestamp
        self.first_silver_at = first_silver_at
        self.next_review_at = next_review_at

    @command
    def review(self, ctx: Ctx, policy: Policy) -> None:
        """The annual review (seed 002 §2.3.1): lower by at most the policy's steps, never raise.

        Falling to member ends the VIP standing; judged on the effective tier, as approval is.
        """
        if self.next_review_at is None or ctx.at < self.next_review_at:
            raise MemberError(f"member {self.member_id} has no review due at {ctx.at.isoformat()}")
        due = self.next_review_at
        now = self.standing_at(due, policy)
        floor = max(0, tier_rank(self.tier) - policy.tiers.max_downgrade_steps)
        new_tier = TIERS[min(tier_rank(self.tier), max(tier_rank(now.tier), floor))]
        standing = effective_tier(new_tier, self.override, due)
        following = next_anniversary(self.first_silver_at, due) if standing != "member" else None
        self._tier_reviewed(review_at=due, from_tier=self.tier, to_tier=new_tier,
                            policy_version=policy.version, standing=now.as_dict(),
                            next_review_at=following)
        if standing == "member" and flow.allowed(self.vip_status, "disqualify"):
            self._vip_disqualified(reason="annual review: the VIP standard is no longer met",
                                   policy_version=policy.version)
            self._release_agent()

    @event("TierReviewed")
    def _tier_reviewed(self, review_at: datetime, from_tier: str, to_tier: str,
                       policy_version: str, standing: dict, next_review_at: datetime | None) -> None:
        if to_tier != from_tier:
            self.tier = to_tier
            self.tier_since = review_at
        self.next_review_at = next_review_at

    @event("VipDisqualified")
    def _vip_disqualified(self, reason: str, policy_version: str) -> None:
        self.vip_status = flow.after("disqualify")

    @command
    def set_override(self, ctx: Ctx, kind: str, tier: str, reason: str,
                     expires_at: datetime) -> None:
        """A manual override pins the tier or sets a floor, with reason, actor and expiry."""
        check_override(kind, tier, reason, ctx.actor, expires_at, ctx.at)
        self._override_set(kind=kind, tier=tier, reason=reason, actor=ctx.actor,
                           expires_at=expires_at)

    @event("TierOverrideSet")
    def _override_set(self, kind: str, tier: str, reason: str, actor: str,
                      expires_at: datetime) -> None:
        self.override = {"kind": kind, "tier": tier, "reason": reason, "actor": actor,
                         "expires_at": expires_at}

    @command
    def clear_override(self, ctx: Ctx, reason: str) -> None:
        if not self.override:
            raise MemberError(f"member {self.member_id} has no tier override to clear")
        self._override_cleared(reason=reason or "cleared by operator")

    @command
    def expire_override(self, ctx: Ctx) -> None:
        """Scheduled at the override's expiry."""
        if not self.override or self.override["expires_at"] > ctx.at:
            raise MemberError(f"member {self.member_id} has no override expiring by {ctx.at}")
        self._override_cleared(reason="expired")

    @event("TierOverrideCleared")
    def _override_cleared(self, reason: str) -> None:
        self.override = None

    # -- VIP workflow (seed 002 §2.2, §2.3, §4.3) -------------------------

    @command
    def apply_for_vip(self, ctx: Ctx, policy: Policy) -> None:
        """Seed 002 §2.2.1: the customer applies; §2.1.1: the tier must qualify."""
        if not flow.allowed(self.vip_status, "apply"):
            raise WorkflowError(
                f"member {self.member_id} cannot apply while VIP status is {self.vip_status}")
        self._require_qualified(ctx.at, policy)
        self._vip_applied(tier=self.effective_tier, policy_version=policy.version)

    @event("VipApplied")
    def _vip_applied(self, tier: str, policy_version: str) -> None:
        self.vip_status = flow.after("apply")
        self.fee_due_fen = 0
        self.fee_paid_fen = 0
        self.agreement_id = None

    @command
    def start_review(self, ctx: Ctx) -> None:
        """Seed 002 §2.2.2: the company reviews the application."""
        self._require_status("start_review", "start a review")
        self._vip_review_started(reviewer=ctx.actor)

    @event("VipReviewStarted")
    def _vip_review_started(self, reviewer: str) -> None:
        self.vip_status = flow.after("start_review")

    @command
    def approve(self, ctx: Ctx, policy: Policy) -> None:
        """Approval fixes the annual fee of the tier; seed 000 §2.1 needs it paid."""
        self._require_status("approve", "approve")
        self._require_qualified(ctx.at, policy)
        self._vip_approved(reviewer=ctx.actor, tier=self.effective_tier,
                           fee_due_fen=policy.tiers.fee_for(self.effective_tier),
                           policy_version=policy.version)
        self._activate_if_complete()

    @event("VipApproved")
    def _vip_approved(self, reviewer: str, tier: str, fee_due_fen: int, policy_version: str) -> None:
        self.vip_status = flow.after("approve")
        self.fee_due_fen = fee_due_fen

    @command
    def reject(self, ctx: Ctx, reason: str) -> None:
        self._require_status("reject", "reject")
        if not reason or not reason.strip():
            raise WorkflowError("a rejection needs a reason the customer can be told")
        self._vip_rejected(reviewer=ctx.actor, reason=reason)

    @event("VipRejected")
    def _vip_rejected(self, reviewer: str, reason: str) -> None:
        self.vip_status = flow.after("reject")

    @command
    def record_agreement_signed(self, ctx: Ctx, agreement_id: str) -> None:
        """Seed 002 §2.2.3: after approval the VIP service agreement is signed."""
        self._require_status("sign_agreement", "record a signed agreement")
        self._vip_agreement_signed(agreement_id=agreement_id)
        self._activate_if_complete()

    @event("VipAgreementSigned")
    def _vip_agreement_signed(self, agreement_id: str) -> None:
        self.agreement_id = agreement_id

    @command
    def record_fee_paid(self, ctx: Ctx, amount_fen: int, currency: str, reference: str,
                        policy: Policy) -> None:
        """Seed 000 §2.1: the approved member pays the tier's annual fee in the policy currency."""
        self._require_status("pay_fee", "record a fee payment")
        if amount_fen <= 0:
            raise WorkflowError("a fee payment must be a positive amount of fen")
        if currency != policy.tiers.currency:
            raise WorkflowError(f"the fee is due in {policy.tiers.currency}, not {currency}")
        self._vip_fee_paid(amount_fen=amount_fen, currency=currency, reference=reference)
        self._activate_if_complete()

    @event("VipFeePaid")
    def _vip_fee_paid(self, amount_fen: int, currency: str, reference: str) -> None:
        self.fee_paid_fen += amount_fen

    def _activate_if_complete(self) -> None:
        if (flow.allowed(self.vip_status, "activate") and self.agreement_id
                and self.fee_paid_fen >= self.fee_due_fen):
            self._vip_activated(tier=self.effective_tier, agreement_id=self.agreement_id)

    @event("VipActivated")
    def _vip_activated(self, tier: str, agreement_id: str) -> None:
        self.vip_status = flow.after("activate")

    @command
    def revoke(self, ctx: Ctx, reason: str) -> None:
        """Seed 002 §2.3.2: the company may cancel VIP status, with a reason."""
        if not flow.allowed(self.vip_status, "revoke"):
            raise WorkflowError(f"member {self.member_id} has no VIP standing to revoke "
                                f"(status {self.vip_status})")
        if not reason or not reason.strip():
            raise WorkflowError("revoking VIP status needs a reason")
        self._vip_revoked(reason=reason, actor=ctx.actor)
        self._release_agent()

    @event("VipRevoked")
    def _vip_revoked(self, reason: str, actor: str) -> None:
        self.vip_status = flow.after("revoke")

    @command
    def terminate_rights(self, ctx: Ctx, reason: str) -> None:
        """Seed 002 §4.3.2: a customer in breach of the agreement loses the rights."""
        self._require_status("terminate_rights", "terminate rights for breach")
        if not reason or not reason.strip():
            raise WorkflowError("terminating rights for breach needs the breach as reason")
        self._vip_rights_terminated(reason=reason, actor=ctx.actor)
        self._release_agent()

    @event("VipRightsTerminated")
    def _vip_rights_terminated(self, reason: str, actor: str) -> None:
        self.vip_status = flow.after("terminate_rights")

    @command
    def lapse(self, ctx: Ctx, agreement_id: str, reason: str) -> None:
        """Seed 002 §9, §12: the standing ends with its agreement (expired unrenewed, or terminated).

        Nothing happens when the member's standing does not rest on that
        agreement (another agreement, or no standing left to end).
        """
        if self.agreement_id != agreement_id or not flow.allowed(self.vip_status, "lapse"):
            return
        self._vip_lapsed(agreement_id=agreement_id, reason=reason)
        self._release_agent()

    @event("VipLapsed")
    def _vip_lapsed(self, agreement_id: str, reason: str) -> None:
        self.vip_status = flow.after("lapse")

    @command
    def renew_standing(self, ctx: Ctx, agreement_id: str, policy: Policy) -> int:
        """Seed 002 §12.3: renewing the agreement makes the standing active again.

        Returns the annual fee of the tier held at renewal (fen), which the
        renewal charges on the agreement.
        """
        if self.agreement_id != agreement_id or not flow.allowed(self.vip_status, "renew"):
            raise WorkflowError(
                f"member {self.member_id} has no VIP standing on agreement {agreement_id} to renew "
                f"(status {self.vip_status}); a renewal needs it active or lapsed, and a member "
                "who lost the standing otherwise applies again")
        self._require_qualified(ctx.at, policy)
        fee = policy.tiers.fee_for(self.effective_tier)
        self._vip_renewed(agreement_id=agreement_id, tier=self.effective_tier, fee_due_fen=fee,
                          policy_version=policy.version)
        return fee

    @event("VipRenewed")
    def _vip_renewed(self, agreement_id: str, tier: str, fee_due_fen: int, policy_version: str) -> None:
        self.vip_status = flow.after("renew")

    # -- benefits (seed 002 §3.2, §4.1, §4.3.2) ---------------------------

    @command
    def assign_dedicated_agent(self, ctx: Ctx, agent_id: str, basis: str, reason: str,
                               policy: Policy) -> None:
        """Give the member the dedicated agent the service layer chose (domain.benefits), or a
        supervisor's reassignment (``basis="reassigned"``, with a reason, sealed by the caller)."""
        agent = benefits.check_assignment(self.member_id, self.has_benefits, self.effective_tier,
                                          self.dedicated_agent, agent_id, basis, reason, ctx.actor, policy)
        self._agent_assigned(agent_id=agent.id, team=agent.team, previous_agent_id=self.dedicated_agent,
                             basis=basis, reason=reason or "", tier=self.effective_tier,
                             policy_version=policy.version)

    @event("DedicatedAgentAssigned")
    def _agent_assigned(self, agent_id: str, team: str, previous_agent_id: str | None, basis: str,
                        reason: str, tier: str, policy_version: str) -> None:
        self.dedicated_agent = agent_id

    def _release_agent(self) -> None:
        # §4.3.2: benefits end with the standing, in the same save as the status change.
        if self.dedicated_agent:
            self._agent_released(agent_id=self.dedicated_agent, status=self.vip_status)

    @event("DedicatedAgentReleased")
    def _agent_released(self, agent_id: str, status: str) -> None:
        self.dedicated_agent = None

    def _require_status(self, action: str, what: str) -> None:
        """Refuse ``action`` (described as ``what``) unless the workflow table allows it now."""
        if not flow.allowed(self.vip_status, action):
            raise WorkflowError(f"cannot {what} for member {self.member_id}: VIP status is "
                                f"{self.vip_status}, needs {flow.needs(action)}")

    def _require_qualified(self, at: datetime, policy: Policy) -> None:
        if self.effective_tier == "member":
            now = self.standing_at(at, policy)
            raise not_qualified(self.member_id, now.spend_fen, now.points, policy.tiers.rule("silver"))


__all__ = ["Member", "MemberError", "NotQualifiedError", "WorkflowError", "OrderError"]

keep_declared_annotations(Member)
