"""`vip ingest`: any order of arrival, one effect per event id, bad lines rejected with reasons."""
from __future__ import annotations

import json
from datetime import timedelta

from infra.service_layer.ingest import ingest_file, ingest_files
from tests.scenario import START, upstream_events, write_jsonl


def _order(n, member="M1", amount=100_000, at=None, **extra):
    at = at or START + timedelta(days=n)
    return {"event_id": f"e{n}", "type": "OrderPaid", "member_id": member, "order_id": f"o{n}",
            "occurred_at": at.isoformat(), "amount_fen": amount, "currency": "CNY", **extra}


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_the_same_event_id_twice_has_one_effect(make_system, tmp_path, event_store):
    s = make_system(event_store)
    rows = [_order(1), _order(2), _order(1)]
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", rows), progress=False)
    assert (report.applied, report.duplicates) == (2, 1)
    again = ingest_file(s.engine, "orders", tmp_path / "o.jsonl", progress=False)
    assert (again.applied, again.duplicates) == (0, 3)
    assert s.app.member("M1").standing_at(START + timedelta(days=3), s.app.policy).spend_fen == 200_000


def test_bad_lines_are_reported_with_line_number_and_reason_and_the_rest_applied(make_system, tmp_path, event_store):
    s = make_system(event_store)
    rows = [_order(1), "{not json", _order(2, amount=-5), _order(3, currency="XXX"),
            {**_order(4), "occurred_at": "2025-01-05T10:00:00"}, _order(5),
            {"event_id": "r1", "type": "OrderRefunded", "member_id": "M1", "order_id": "o1",
             "occurred_at": (START + timedelta(days=9)).isoformat(), "amount_fen": 999_999, "currency": "CNY"}]
    path = _write(tmp_path / "o.jsonl", rows)
    report = ingest_file(s.engine, "orders", path, progress=False)
    assert report.applied == 2
    reasons = {n: r for n, r, _ in report.rejected}
    assert set(reasons) == {2, 3, 4, 5, 7}
    assert "not valid JSON" in reasons[2]
    assert "amount_fen must be a positive" in reasons[3]
    assert "currency 'XXX'" in reasons[4]
    assert "no zone offset" in reasons[5]
    assert "exceeds" in reasons[7]  # a business refusal is a reject too
    lines = [json.loads(x) for x in open(report.rejects_file, encoding="utf-8")]
    assert [x["line"] for x in lines] == [2, 3, 4, 5, 7]
    assert lines[0]["raw"] == "{not json"


def test_an_order_before_registration_creates_the_member_and_registration_fills_the_profile(make_system, tmp_path):
    s = make_system()
    orders = _write(tmp_path / "o.jsonl", [_order(1, member="M9")])
    crm = _write(tmp_path / "c.jsonl", [{"event_id": "reg", "type": "CustomerRegistered", "member_id": "M9",
                                         "occurred_at": (START + timedelta(days=3)).isoformat(),
                                         "name": "王五", "email": "w@example.cn"}])
    ingest_file(s.engine, "orders", orders, progress=False)
    member = s.app.member("M9")
    assert not member.registered and member.profile == {}
    ingest_file(s.engine, "crm", crm, progress=False)
    member = s.app.member("M9")
    assert member.registered
    assert s.app.cipher.open("M9", member.profile["name"]) == "王五"
    assert member.profile["name"].startswith("pii:v1:")


def test_lines_apply_in_occurred_at_order_whatever_the_file_order(make_system, tmp_path):
    events = upstream_events(members=6, days=420)
    a, b = make_system(name="a"), make_system(name="b")
    write_jsonl(tmp_path / "o1.jsonl", [e for e in events if e["source"] == "orders"], shuffle_seed=1)
    write_jsonl(tmp_path / "c1.jsonl", [e for e in events if e["source"] == "crm"], shuffle_seed=2)
    write_jsonl(tmp_path / "o2.jsonl", [e for e in events if e["source"] == "orders"], shuffle_seed=None)
    write_jsonl(tmp_path / "c2.jsonl", [e for e in events if e["source"] == "crm"], shuffle_seed=None)
    ingest_files(a.engine, [("orders", tmp_path / "o1.jsonl"), ("crm", tmp_path / "c1.jsonl")], progress=False)
    ingest_files(b.engine, [("crm", tmp_path / "c2.jsonl"), ("orders", tmp_path / "o2.jsonl")], progress=False)
    strip = lambda store: {k: {**v, "profile": None} for k, v in store.view("current_tier").items()}
    assert strip(a.store) == strip(b.store)
    assert a.store.view("tier_history") == b.store.view("tier_history")


def test_a_hundred_thousand_line_file_shows_a_progress_bar(make_system, tmp_path, capsys):
    """Progress goes to stderr (tqdm); checked on a small file with the bar forced on."""
    s = make_system()
    path = _write(tmp_path / "o.jsonl", [_order(n, member=f"M{n % 7}") for n in range(50)])
    ingest_file(s.engine, "orders", path, progress=True)
    assert "ingest orders" in capsys.readouterr().err


def test_crm_erasure_request_destroys_the_key(make_system, tmp_path):
    s = make_system()
    crm = _write(tmp_path / "c.jsonl", [
        {"event_id": "reg", "type": "CustomerRegistered", "member_id": "M1",
         "occurred_at": START.isoformat(), "name": "赵六"},
        {"event_id": "erase", "type": "ErasureRequested", "member_id": "M1",
         "occurred_at": (START + timedelta(days=1)).isoformat()},
        {"event_id": "upd", "type": "ProfileUpdated", "member_id": "M1",
         "occurred_at": (START + timedelta(days=2)).isoformat(), "name": "赵六六"}])
    report = ingest_file(s.engine, "crm", crm, progress=False)
    # Erasure never blocks: the later update is applied, without its personal values.
    assert report.applied == 3 and report.rejected == []
    assert s.app.member("M1").erased
    assert s.app.member("M1").profile["name"] == "[erased]"
    assert any("was not kept" in notice for notice in s.app.notices)


def test_ingest_memory_does_not_grow_with_the_file_only_the_open_batch(make_system, tmp_path):
    """Ingest holds a packed sort entry per line and parses a batch at a time, not the whole
    file's parsed lines (issue 9: memory flat in event count). Re-ingesting a file applies
    nothing new (every line a duplicate), so what memory it takes is the file handling's."""
    import tracemalloc

    from bench.workloads import generate_orders

    s = make_system()
    source = tmp_path / "orders.jsonl"
    generate_orders(source, 20000, 50, seed=5)
    assert ingest_file(s.engine, "orders", source, progress=False).applied == 20000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        report = ingest_file(s.engine, "orders", source, progress=False)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert report.duplicates == 20000 and report.applied == 0
    # The parsed lines took about 1.1 kB each (22 MB here); a batch of 2,000 is a tenth of that.
    assert peak < 8_000_000, f"re-ingesting 20,000 lines peaked at {peak / 1e6:.1f} MB"
