"""The read models the backend runs, in the order they fold.

The embedded runner, the stream workers, as-of replays and the queries all
fold this one list; a new read model is a :class:`projections.view.View`
added here (ADR 0005, "Where a change goes").
"""
from __future__ import annotations

from projections.complaints import COMPLAINTS
from projections.contracts import CONTRACTS
from projections.ledger import LEDGER
from projections.members import CURRENT_TIER, TIER_HISTORY
from projections.timers import TIMERS
from projections.view import View

VIEWS: list[View] = [CURRENT_TIER, TIER_HISTORY, COMPLAINTS, CONTRACTS, LEDGER, TIMERS]
