"""The VIP workflow as a transition table (seed 002 §2.2, §2.3, §4.3, §9, §12).

A pure rule set: for each action, the statuses it is allowed from and the
status it leads to. The Member aggregate checks its commands against it and
its events set the status it names; nothing else decides a VIP status.
"""
from __future__ import annotations

from typing import NamedTuple

STATUSES = ("none", "applied", "under_review", "approved", "active",
            "rejected", "revoked", "disqualified", "terminated", "lapsed")
#: A standing applied for or held: what a revocation or a disqualification ends.
IN_PROGRESS_OR_HELD = ("applied", "under_review", "approved", "active")
#: Standings that end with the member agreement they rest on (seed 002 §9, §12).
AGREEMENT_BOUND = ("approved", "active")


class Transition(NamedTuple):
    allowed_from: tuple[str, ...]
    to: str


TRANSITIONS: dict[str, Transition] = {
    # §2.2.1: apply, or apply again after any ended standing.
    "apply": Transition(("none", "rejected", "revoked", "disqualified", "terminated", "lapsed"),
                        "applied"),
    "start_review": Transition(("applied",), "under_review"),             # §2.2.2
    "approve": Transition(("under_review",), "approved"),
    "reject": Transition(("under_review",), "rejected"),
    "sign_agreement": Transition(("approved",), "approved"),              # §2.2.3
    "pay_fee": Transition(("approved",), "approved"),                     # seed 000 §2.1
    "activate": Transition(("approved",), "active"),                      # signed and paid
    "revoke": Transition(IN_PROGRESS_OR_HELD, "revoked"),                 # §2.3.2
    "disqualify": Transition(IN_PROGRESS_OR_HELD, "disqualified"),        # §2.3.1 annual review
    "terminate_rights": Transition(("active",), "terminated"),            # §4.3.2
    "lapse": Transition(AGREEMENT_BOUND, "lapsed"),                       # §9, §12
    "renew": Transition(("active", "lapsed"), "active"),                  # §12.3
}


def allowed(status: str, action: str) -> bool:
    """Whether ``action`` may be taken from ``status``."""
    return status in TRANSITIONS[action].allowed_from


def after(action: str) -> str:
    """The status ``action`` leads to."""
    return TRANSITIONS[action].to


def needs(action: str) -> str:
    """The statuses ``action`` is allowed from, for an error message ("applied", "a or b")."""
    return " or ".join(TRANSITIONS[action].allowed_from)
