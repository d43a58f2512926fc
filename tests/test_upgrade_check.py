"""The upgrade check's shortcut (domain.tiering.rising_standing): no standing is built when the
window's sums reach no rule above the tier held, and the tier an order earns is unchanged."""
from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.base import Ctx
from domain.member import Member
from domain.member_errors import ACTIVITY_KINDS
from domain.policy import TIERS, tier_rank
from domain.tiering import rising_standing
from infra.policy_file import load_policy

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
T0 = datetime(2024, 1, 3, 9, tzinfo=SH)
_ids = itertools.count(1)


def ctx(at: datetime) -> Ctx:
    return Ctx(at=at, causation_id=f"cmd-{next(_ids)}")


def test_the_shortcut_gives_the_full_standing_whenever_some_tier_above_could_be_earned():
    rng = random.Random(5)
    m = Member.register(ctx(T0), "U1", None, "orders")
    at, seen = T0, set()
    for n in range(700):
        at += timedelta(hours=rng.randint(1, 40))
        if m.next_review_at and m.next_review_at <= at:
            m.review(ctx(m.next_review_at), POLICY)
        if rng.random() < 0.2:
            m.record_activity(ctx(at), f"a{n}", rng.choice(sorted(ACTIVITY_KINDS)), at, POLICY)
        else:
            m.record_order_paid(ctx(at), f"p{n}", f"o{n}", rng.choice([100, 5_000, 90_000, 2_000_000]),
                                "CNY", at, POLICY)
        for probe in (at, at - timedelta(days=30)):
            full = m.standing_at(probe, POLICY)
            for tier in TIERS:
                quick = rising_standing(m._window(), m.orders, m.entries, m.active_months, probe, tier, POLICY)
                if quick is None:
                    assert tier_rank(full.tier) <= tier_rank(tier), (n, tier, full)
                else:
                    assert quick == full
                seen.add((tier, quick is None, tier_rank(full.tier) > tier_rank(tier)))
    # every tier both short-cut and built, and some built standings earn no more than the tier
    assert {(t, True) for t in TIERS[1:]} | {(t, False) for t in TIERS[:-1]} <= {(t, q) for t, q, _ in seen}
    assert any(not q and not up for _, q, up in seen)
    assert m.tier != "member"
