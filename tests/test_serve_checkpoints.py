"""`vip serve` signs the audit checkpoints that fall due, as `vip tick` does (issue 20)."""
from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest

from hosts.serve import serve
from infra.audit.checkpoints import key_path, load_key
from infra.audit.sql import AuditSql
from infra.audit.verify import verify
from infra.kafka.admin import create_all
from infra.kafka.bus import Topics
from infra.service_layer.upstream import apply_input, parse
from tests.conftest import FakeClock
from tests.scenario import Z

pytestmark = pytest.mark.kafka


def test_serve_signs_due_checkpoints_that_verify(kafka_broker, make_system, monkeypatch):
    monkeypatch.setenv("VIP_CHECKPOINT_EVERY", "5")
    prefix = "c" + uuid.uuid4().hex[:10]
    system = make_system(name=prefix, kafka_bootstrap=kafka_broker, topic_prefix=prefix,
                         clock=FakeClock(datetime(2025, 6, 1, tzinfo=Z)))
    create_all(system.settings, Topics.from_settings(system.settings, env={}))
    for n in range(12):
        apply_input(system.engine, parse("orders", {
            "event_id": f"e{n}", "type": "OrderPaid", "member_id": f"M{n % 3}", "order_id": f"o{n}",
            "occurred_at": datetime(2025, 5, 1, 10, n, tzinfo=Z).isoformat(), "amount_fen": 10_000,
            "currency": "CNY"}))
    system.engine.flush()
    sql = AuditSql(system.app.recorder)
    assert sql.checkpoints() == []

    deadline = time.monotonic() + 20
    serve(system.settings, system=system, consume=False, tick_seconds=0.05, env={},
          stop=lambda: bool(sql.checkpoints()) or time.monotonic() > deadline)

    made = sql.checkpoints()
    assert made and made[-1].to_id % 5 == 0  # full ranges only: the scheduler never signs a partial one
    report = verify(sql, load_key(key_path(system.settings.data_dir), create=False))
    assert report.clean and report.checkpoints == len(made)
