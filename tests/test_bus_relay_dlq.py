"""The relay dead-letters an event its schema cannot carry and keeps publishing (real broker)."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from domain.base import Ctx
from domain.member import Member
from infra.kafka.admin import read_topics
from infra.kafka.bus import DLQ_POSITION, header_map
from tests.test_bus_flow import bus  # noqa: F401  (the fixture)

pytestmark = pytest.mark.kafka

AT = datetime(2025, 3, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_an_event_that_cannot_be_encoded_is_dead_lettered_and_the_events_after_it_are_published(bus):
    app = bus.system.app
    member = Member.register(Ctx(AT), f"{bus.prefix}-M1", None, source="orders", input_id="in-1")
    # A log written before amounts were bounded at parse time: a long cannot carry this.
    member.record_order_paid(Ctx(AT), "in-2", "O-huge", 10**30, "CNY", AT, app.policy)
    member.record_order_paid(Ctx(AT), "in-3", "O-ok", 1000, "CNY", AT, app.policy)
    with bus.system.engine.unit_of_work() as uow:   # the one path a change is recorded by
        uow.save(member)
    logged = bus.log()
    bad = next(e for e in logged if e["data"].get("order_id") == "O-huge")
    # The upgrade it caused carries the same sum in its standing record.
    upgrade = next(e for e in logged if e["type"] == "TierUpgraded")

    relay = bus.relay()
    assert relay.catch_up() == len(logged)
    assert relay.dead_lettered == 2 and relay.recorded_position() == logged[-1]["position"]

    published = read_topics(bus.bootstrap, bus.topics.domain_topics)
    ids = {header_map(r.headers)["event_id"] for r in published}
    assert ids == {e["id"] for e in logged} - {bad["id"], upgrade["id"]}  # everything after went out
    letters = read_topics(bus.bootstrap, [bus.topics.dlq(bus.topics.domain("member"))])
    assert len(letters) == 2
    by_id = {header_map(r.headers)["event_id"]: r for r in letters}
    h = header_map(by_id[bad["id"]].headers)
    assert h["dlq_reason"].startswith("encode-failed: ")
    assert int(h[DLQ_POSITION]) == bad["position"]
    assert json.loads(by_id[bad["id"]].value)["data"]["amount_fen"] == 10**30
