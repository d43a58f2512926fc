"""Shared set-up for the API tests: a system on a test clock, a member, a key per role."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from infra.api.app import create_app
from infra.api.keys import ROLES
from infra.service_layer.upstream import apply_input, parse

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=SH)

TERMS = {
    "parties": [{"id": "platform", "name": "Party A"}, {"id": "provider", "name": "Party B"}],
    "validity_months": 12, "payment_terms_days": 30,
    "revenue_share": {"platform": 7000, "provider": 3000},
    "milestones": [{"id": "m1", "title": "customer service quality", "due_months": 1}],
}


@dataclass
class Api:
    """The app under test, its system and clock, and a bearer header per role."""

    client: TestClient
    system: object
    clock: object
    tokens: dict = field(default_factory=dict)
    key_ids: dict = field(default_factory=dict)

    def auth(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def advance(self, **delta) -> None:
        self.clock.at = self.clock.at + timedelta(**delta)


def seed_member(system, member_id: str = "M1", spend_fen: int = 2_500_000, at: datetime = T0) -> None:
    """Register a member (from CRM) and record a paid order: 25,000 CNY makes them gold."""
    app = system.app
    system.engine.run(at, lambda u, c: u.register_member(c, f"reg-{member_id}", member_id,
                                                        {"name": "李雷", "phone": "13700001111"}),
                      actor="crm")
    apply_input(system.engine, parse("orders", {
        "event_id": f"pay-{member_id}", "type": "OrderPaid", "member_id": member_id,
        "order_id": f"{member_id}-o1", "occurred_at": at.isoformat(), "amount_fen": spend_fen,
        "currency": "CNY"}))
    system.engine.flush()


def build_api(make_system, store: str = "sqlite", name: str = "api") -> Api:
    """The API over a fresh system on ``store`` (SQLite or a PostgreSQL url), member M1 seeded."""
    system = make_system(store, name=name)
    system.clock.at = T0
    seed_member(system)
    app = create_app(system)
    result = Api(TestClient(app), system, system.clock)
    for role in ROLES:
        result.key_ids[role], result.tokens[role] = app.state.keys.create(role, f"{role}-1")
    return result


@pytest.fixture
def api(make_system) -> Api:
    return build_api(make_system)
