"""Every string field of every domain event, classified: the one table erasure is checked against.

A member's free text must be sealed with their key before it is recorded
(``infra.service_layer.members`` / ``complaints`` / ``contracts``), so that
destroying the key makes it unreadable in the event store, the read store, on
the bus and in every answer, while the log still replays. Every other string
is an id, an instant's zone, a currency, an enumeration, a policy version or
text the system writes from a fixed template. ``tests/test_event_fields.py``
walks every version of every ``schemas/domain`` schema and fails on a string
field this table does not classify, so a field added later has to be placed
here (and, if it is free text, sealed) before the suite passes.

Header fields (``event_id``, ``aggregate_id``, ``key``, ``actor``,
``causation_id``, ``correlation_id``), every ``..._zone`` and ``meta_extra``
(the command's trace metadata) are classified by :data:`HEADER`.
"""
from __future__ import annotations

SEALED = "sealed"                        # free text about the member, sealed with the member's key
SEALED_ON_AGREEMENT = "sealed-on-agreement"  # sealed when the contract is a member's own agreement
ID = "id"                                # a business id, an actor's id, an input id
ZONE = "zone"                            # an IANA zone or UTC offset
MONTH = "month"                          # a calendar month YYYY-MM
CURRENCY = "currency"                    # ISO 4217 code
POLICY = "policy-version"                # the id of a policy version
ENUM = "enumeration"                     # one of a fixed set of symbols the code or policy defines
SYSTEM = "system-text"                   # written by the system from a fixed template, never by a person
# Contract terms (party names and roles, milestone titles) as drafted by the company. A member
# agreement names the member by id and role only (domain/terms.py refuses a name or contact on
# the member's party), so nothing of theirs is kept in clear in the terms.
TERMS = "contract-terms"
META = "trace-metadata"

HEADER = {"event_id": ID, "aggregate_id": ID, "key": ID, "actor": ID, "causation_id": ID,
          "correlation_id": ID, "occurred_at_zone": ZONE, "meta_extra{}": META}

_TERMS = {"terms.parties[].id": ID, "terms.parties[].name": TERMS, "terms.parties[].role": TERMS,
          "terms.member_id": ID, "terms.zone": ZONE, "terms.milestones[].id": ID,
          "terms.milestones[].title": TERMS, "terms.extra{}": TERMS, "terms.parties[].extra{}": TERMS,
          "terms.milestones[].extra{}": TERMS}
_CHANGES = {k.replace("terms.", "changes.", 1): v for k, v in _TERMS.items()}
_MILESTONES = {"milestones{}.title": TERMS, "milestones{}.extra{}": TERMS}
_ORDER = {"input_id": ID, "order_id": ID}

FIELDS: dict[str, dict[str, str]] = {
    "ActivityRecorded": {"input_id": ID, "month": MONTH, "policy_version": POLICY},
    "AmendmentConsented": {"amendment_id": ID, "party_id": ID},
    "AmendmentProposed": {"amendment_id": ID, "proposed_by": ID, **_CHANGES},
    "BreachRecorded": {"party_id": ID, "owed_to": ID, "description": SEALED_ON_AGREEMENT,
                       "currency": CURRENCY},
    "ComplaintAcknowledged": {"agent": ID},
    "ComplaintAssigned": {"assignee": ID},
    "ComplaintClosed": {},
    "ComplaintCustomerReplied": {},
    # An automatic escalation's reason is the template "<clock> SLA breached".
    "ComplaintEscalated": {"reason": SEALED},
    "ComplaintFiled": {"complaint_id": ID, "member_id": ID, "category": SEALED, "description": SEALED,
                       "calendar": ID, "policy_version": POLICY},
    "ComplaintRated": {},
    "ComplaintReopened": {"reason": SEALED},
    "ComplaintResolved": {"agent": ID, "resolution": SEALED},
    # domain.benefits.routing's templates: "the member's dedicated agent", "... unavailable ...".
    "ComplaintRouted": {"assignee": ID, "reason": SYSTEM, "policy_version": POLICY},
    "ComplaintSlaAtRisk": {},
    "ComplaintSlaBreached": {},
    "ComplaintWaitingForCustomer": {"reason": SEALED},
    "ContractBecameEffective": {**_MILESTONES},
    "ContractDrafted": {"contract_id": ID, **_TERMS},
    "ContractExpired": {},
    "ContractRenewed": {},
    "ContractSigned": {"party_id": ID},
    "ContractTerminated": {"reason": SEALED_ON_AGREEMENT, "settlement.currency": CURRENCY,
                           "settlement.payer": ID, "settlement.extra{}": TERMS},
    # A supervisor's reassignment reason is about the member: sealed (empty when automatic).
    "DedicatedAgentAssigned": {"agent_id": ID, "team": ID, "previous_agent_id": ID, "reason": SEALED,
                               "policy_version": POLICY},
    "DedicatedAgentReleased": {"agent_id": ID},
    "DisputeOpened": {"party_id": ID, "reason": SEALED_ON_AGREEMENT},
    "DisputeSettled": {"outcome": SEALED_ON_AGREEMENT},
    "InvoiceCredited": {"invoice_id": ID, "payer": ID, "payee": ID, "currency": CURRENCY,
                        "reason": SEALED_ON_AGREEMENT},
    "InvoiceIssued": {"invoice_id": ID, "payer": ID, "payee": ID, "currency": CURRENCY},
    "InvoiceOverdue": {"invoice_id": ID},
    "MemberRegistered": {"member_id": ID, "profile{}": SEALED, "source": ENUM, "input_id": ID},
    "MilestoneCompleted": {"milestone_id": ID},
    "MilestoneOverdue": {"milestone_id": ID},
    "OrderCancelled": {**_ORDER},
    "OrderPaid": {**_ORDER, "currency": CURRENCY, "month": MONTH, "policy_version": POLICY},
    "OrderRefunded": {**_ORDER, "currency": CURRENCY},
    "PaymentReceived": {"invoice_id": ID, "payment_id": ID, "payer": ID, "payee": ID, "currency": CURRENCY},
    "PersonalDataErased": {"input_id": ID},
    "ProfileUpdated": {"input_id": ID, "changes{}": SEALED},
    "RegistrationFilled": {"input_id": ID, "profile{}": SEALED},
    "TermsAmended": {"amendment_id": ID, **_TERMS, **_MILESTONES},
    # Cleared by the scheduler at expiry: the template "expired"; by hand without one: "cleared by operator".
    "TierOverrideCleared": {"reason": SEALED},
    "TierOverrideSet": {"reason": SEALED, "override_actor": ID},
    "TierReviewed": {"policy_version": POLICY},
    "TierUpgraded": {"policy_version": POLICY},
    "VipActivated": {"agreement_id": ID},
    "VipAgreementSigned": {"agreement_id": ID},
    "VipApplied": {"policy_version": POLICY},
    "VipApproved": {"reviewer": ID, "policy_version": POLICY},
    # "annual review: the VIP standard is no longer met"
    "VipDisqualified": {"reason": SYSTEM, "policy_version": POLICY},
    "VipFeePaid": {"currency": CURRENCY, "reference": ID},
    # "member agreement <id> expired without renewal" / "... terminated"
    "VipLapsed": {"agreement_id": ID, "reason": SYSTEM},
    "VipRejected": {"reviewer": ID, "reason": SEALED},
    "VipRenewed": {"agreement_id": ID, "policy_version": POLICY},
    "VipReviewStarted": {"reviewer": ID},
    "VipRevoked": {"reason": SEALED, "revoked_by": ID},
    "VipRightsTerminated": {"reason": SEALED, "terminated_by": ID},
}


def classify(event_type: str, path: str) -> str | None:
    """The class of one string field (``path`` as ``a.b[].c`` / ``m{}``), or None if unclassified."""
    if path in HEADER:
        return HEADER[path]
    if path.endswith("_zone"):
        return ZONE
    return FIELDS.get(event_type, {}).get(path)


def sealed_paths(event_type: str) -> list[str]:
    """The fields of ``event_type`` that hold a member's sealed free text (always or on an agreement)."""
    return [p for p, c in FIELDS.get(event_type, {}).items() if c in (SEALED, SEALED_ON_AGREEMENT)]
