"""One effect per upstream event id across the whole system (receipts kept beside the log)."""
from __future__ import annotations

import json

from infra.service_layer.ingest import ingest_file
from infra.service_layer.upstream import apply_input, parse
from tests.test_ingest import _order, _write
from domain.window import PAID


def test_the_same_event_id_for_two_members_is_applied_once_and_the_second_is_a_conflict(
        make_system, tmp_path, event_store):
    s = make_system(event_store)
    rows = [_order(1, member="M1"), {**_order(1, member="M2"), "order_id": "other"}]
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", rows), progress=False)
    assert report.applied == 1 and report.duplicates == 0
    [(line, reason, _)] = report.rejected
    assert line == 2 and "event_id e1 was already used" in reason and "give this event its own id" in reason
    assert set(s.app.member("M1").orders) == {"o1"}
    assert s.app.find_member("M2") is None
    rejects = [json.loads(x) for x in open(report.rejects_file, encoding="utf-8")]
    assert [r["line"] for r in rejects] == [2]


def test_a_reused_id_with_other_content_for_the_same_member_is_a_conflict_not_a_duplicate(
        make_system, tmp_path, event_store):
    s = make_system(event_store)
    rows = [_order(1), {**_order(1), "amount_fen": 999}, _order(1)]
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", rows), progress=False)
    assert report.applied == 1 and report.duplicates == 1
    assert [(n, "already used" in r) for n, r, _ in report.rejected] == [(2, True)]
    assert s.app.member("M1").orders["o1"][PAID] == 100_000


def test_receipts_survive_a_restart_and_keep_the_member_state_free_of_input_ids(make_system, tmp_path):
    first = make_system(name="d")
    item = parse("orders", _order(1))
    assert apply_input(first.engine, item) == "applied"
    first.close()
    again = make_system(name="d")                 # a new process on the same files
    assert apply_input(again.engine, item) == "duplicate"
    assert again.app.receipt("e1").member_id == "M1"
    assert not any("e1" in repr(v) for v in vars(again.app.member("M1")).values())
