"""`vip ingest` against hostile lines: out-of-range instants, future dates, bad bytes, huge numbers, PII."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from infra.service_layer.ingest import ingest_file
from infra.service_layer.upstream import MAX_AMOUNT_FEN, InputError, parse
from projections.common import iso
from tests.conftest import FakeClock
from tests.scenario import START
from tests.test_ingest import _order, _write


def test_instants_that_overflow_in_utc_are_rejected_at_parse_time_and_a_rerun_does_not_crash(
        make_system, tmp_path, event_store):
    s = make_system(event_store)
    rows = [_order(1), {**_order(2), "occurred_at": "0001-01-01T00:00:00+08:00"},
            {**_order(3), "occurred_at": "9999-12-31T23:00:00-08:00"}, _order(4)]
    path = _write(tmp_path / "o.jsonl", rows)
    for _ in range(2):  # the re-run meets the same lines and still finishes
        report = ingest_file(s.engine, "orders", path, progress=False)
        reasons = {n: r for n, r, _ in report.rejected}
        assert set(reasons) == {2, 3}
        assert all("out of range" in r for r in reasons.values())
        assert report.rejects_file is not None
    assert report.duplicates == 2
    assert set(s.app.member("M1").orders) == {"o1", "o4"}


def test_a_fold_never_crashes_on_an_instant_utc_cannot_hold():
    from zoneinfo import ZoneInfo
    assert iso(datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))).startswith("0001-01-01T00:00:00")
    assert iso(datetime(9999, 12, 31, 23, tzinfo=ZoneInfo("America/Los_Angeles"))).startswith("9999-12-31")


def test_an_input_dated_after_the_wall_clock_tolerance_is_rejected_and_does_not_move_the_timeline(
        make_system, tmp_path):
    clock = FakeClock(START + timedelta(days=30))
    s = make_system(clock=clock)
    rows = [_order(1), {**_order(2), "occurred_at": "2999-01-01T00:00:00+08:00"},
            _order(3, at=clock.at + timedelta(minutes=4)), _order(4, at=clock.at + timedelta(minutes=6))]
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", rows), progress=False)
    reasons = {n: r for n, r, _ in report.rejected}
    assert set(reasons) == {2, 4}
    assert "after the wall clock" in reasons[2] and "VIP_FUTURE_TOLERANCE_SECONDS" in reasons[2]
    assert report.applied == 2
    assert s.engine.timeline() < clock.at + timedelta(minutes=5)
    rejects = [json.loads(x) for x in open(report.rejects_file, encoding="utf-8")]
    assert [r["line"] for r in rejects] == [2, 4]


def test_a_byte_that_is_not_utf8_rejects_its_line_only_with_its_number(make_system, tmp_path):
    s = make_system()
    lines = [json.dumps(_order(1)).encode(), json.dumps(_order(2)).encode().replace(b"o2", b"o\xff2"),
             json.dumps(_order(3), ensure_ascii=False).encode()]
    path = tmp_path / "o.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = ingest_file(s.engine, "orders", path, progress=False)
    assert report.applied == 2
    assert [(n, r) for n, r, _ in report.rejected] == [(2, "not UTF-8: byte 0xff at column " +
                                                        str(lines[1].index(b"\xff") + 1))]
    assert set(s.app.member("M1").orders) == {"o1", "o3"}


def test_a_utf16_file_is_rejected_line_by_line_with_the_reason_and_no_traceback(make_system, tmp_path):
    s = make_system()
    path = tmp_path / "o.jsonl"
    path.write_text("\n".join(json.dumps(_order(n)) for n in (1, 2)) + "\n", encoding="utf-16")
    report = ingest_file(s.engine, "orders", path, progress=False)
    assert report.applied == 0
    assert [n for n, _, _ in report.rejected] == [1, 2]
    assert all(r.startswith("not UTF-8 (looks like UTF-16)") for _, r, _ in report.rejected)


@pytest.mark.parametrize("amount, reason", [
    (10**30, "above the maximum"), (MAX_AMOUNT_FEN + 1, "above the maximum"), (2**63, "above the maximum"),
    (0, "positive"), (-1, "positive"), (1.5, "positive"), (True, "positive"), ("100", "positive")])
def test_amounts_are_bounded_at_parse_time(amount, reason):
    with pytest.raises(InputError, match=reason):
        parse("orders", {**_order(1), "amount_fen": amount})
    assert parse("orders", {**_order(1), "amount_fen": MAX_AMOUNT_FEN}).fields["amount_fen"] == MAX_AMOUNT_FEN


def test_a_huge_amount_is_a_reject_not_an_event(make_system, tmp_path):
    s = make_system()
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", [_order(1, amount=10**30), _order(2)]),
                         progress=False)
    assert [n for n, _, _ in report.rejected] == [1] and report.applied == 1
    assert set(s.app.member("M1").orders) == {"o2"}


def test_rejects_files_keep_personal_fields_masked(make_system, tmp_path):
    s = make_system()
    at = START.isoformat()
    rows = [{"event_id": "r1", "type": "CustomerRegistered", "member_id": "M1", "occurred_at": at,
             "name": "张三", "phone": "13800001111", "email": "zs@example.cn"},
            {"event_id": "e1", "type": "ErasureRequested", "member_id": "M1",
             "occurred_at": (START + timedelta(days=1)).isoformat()},
            {"event_id": "u1", "type": "ProfileUpdated", "member_id": "M1",
             "occurred_at": (START + timedelta(days=2)).isoformat(), "name": "张三丰", "phone": "13900002222"},
            {"event_id": "u2", "type": "ProfileUpdated", "member_id": "M2", "occurred_at": "bad",
             "name": "李四", "email": "ls@example.cn"},
            '{"event_id": "u3", "name": "王五", "phone": "139 0000 3333", "email": "ww@example.cn"']
    report = ingest_file(s.engine, "crm", _write(tmp_path / "c.jsonl", rows), progress=False)
    # The update after the erasure is applied without its values (erasure never blocks).
    assert sorted(n for n, _, _ in report.rejected) == [4, 5]
    text = open(report.rejects_file, encoding="utf-8").read()
    for secret in ("张三", "13900002222", "李四", "ls@example.cn", "王五", "139 0000 3333", "ww@example.cn"):
        assert secret not in text
    rejects = [json.loads(x) for x in text.splitlines()]
    assert json.loads(rejects[0]["raw"])["name"] == "[masked]"
    assert json.loads(rejects[0]["raw"])["event_id"] == "u2"   # what is not personal stays readable
    s.close()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "vip").iterdir() if p.is_file())
    assert "张三丰".encode() not in stored and b"13900002222" not in stored


def test_rejected_lines_that_are_not_json_or_not_utf8_keep_no_personal_data_in_clear(make_system, tmp_path):
    s = make_system()
    utf16 = tmp_path / "u16.jsonl"
    utf16.write_text(json.dumps({"event_id": "c1", "type": "CustomerRegistered", "member_id": "M9",
                                 "occurred_at": START.isoformat(), "name": "U Sixteen"}) + "\n",
                     encoding="utf-16")
    plain = tmp_path / "plain.jsonl"
    plain.write_text("not json at all, name: Secret Person 13911112222\n"
                     '{"event_id": "t1", "occurred_at": "2025-03-01T10:00:00+08:00", "name": "王五"\n')
    for path in (utf16, plain):
        report = ingest_file(s.engine, "crm", path, progress=False)
        text = open(report.rejects_file, encoding="utf-8").read()
        for secret in ("U Sixteen", "U\\u0000 \\u0000S", "Secret Person", "13911112222", "王五"):
            assert secret not in text, (secret, text)
    assert "2025-03-01T10:00:00+08:00" in text    # a date is not personal: it stays to be fixed
