"""Upstream inputs are bounded: a huge line or message is refused by its size, masks are linear,
and a rejects file keeps only what the schemas know (issue 16, items 10 and 11)."""
from __future__ import annotations

import json
import re

import pytest

from consumers.upstream import DeadLetter, decode_message
from infra.service_layer import ingest as ingest_module
from infra.service_layer import masking
from infra.service_layer.ingest import ingest_file
from infra.service_layer.masking import (
    MASK,
    MAX_INPUT_BYTES,
    PREFIX_CHARS,
    mask_free_text,
    mask_prefix,
    masked_input,
)
from tests.test_ingest import _order, _write

MB = 1 << 20


def test_a_1mb_malformed_line_is_rejected_by_its_length_with_a_short_masked_prefix_and_the_next_line_applies(
        make_system, tmp_path, monkeypatch):
    s = make_system()
    seen = []
    real = ingest_module.masked_input
    monkeypatch.setattr(ingest_module, "masked_input", lambda raw: seen.append(len(raw)) or real(raw))
    huge = '{"name": "Zhang San", "phone": "13800138000", "x": "' + "1 " * (MB // 2)
    path = tmp_path / "o.jsonl"
    path.write_text(huge + "\n" + json.dumps(_order(2)) + "\n")
    report = ingest_file(s.engine, "orders", path, progress=False)
    assert report.applied == 1 and report.lines == 2
    [(number, reason, held)] = report.rejected
    assert number == 1 and f"at most {MAX_INPUT_BYTES} bytes" in reason and str(len(huge)) in reason
    # By construction: the report holds a prefix only, and no mask ever sees more than the limit.
    assert len(held) <= PREFIX_CHARS * 2
    assert seen and max(seen) <= MAX_INPUT_BYTES
    text = open(report.rejects_file, encoding="utf-8").read()
    assert "Zhang San" not in text and "13800138000" not in text
    [line] = [json.loads(x) for x in text.splitlines()]
    assert len(line["raw"]) < 120 and line["raw"].startswith('{"name": "[masked]"')
    assert set(s.app.member("M1").orders) == {"o2"}


def test_a_line_of_exactly_the_limit_is_read_and_judged_on_its_content(make_system, tmp_path):
    s = make_system()
    row = json.dumps(_order(1, note="x"))
    line = row[:-1] + " " * (MAX_INPUT_BYTES - len(row)) + "}"
    assert len(line.encode()) == MAX_INPUT_BYTES
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", [line]), progress=False)
    assert report.applied == 1 and not report.rejected


@pytest.mark.parametrize("hostile", [
    "a" * MAX_INPUT_BYTES, "1 " * (MAX_INPUT_BYTES // 2), "1 -" * (MAX_INPUT_BYTES // 3),
    "a@" * (MAX_INPUT_BYTES // 2), '"name": "' * (MAX_INPUT_BYTES // 9), "name " * (MAX_INPUT_BYTES // 5),
    "2025-01-01 " * (MAX_INPUT_BYTES // 11)])
def test_masks_of_a_hostile_line_at_the_limit_finish_and_mask_what_is_personal(hostile):
    masked = mask_free_text(hostile)
    assert len(masked) <= len(hostile) + len(MASK) * 4
    assert mask_free_text(hostile + " zs@example.cn 13800001111") .endswith(f" {MASK} {MASK}")
    assert len(masked_input(hostile)["raw"]) < PREFIX_CHARS + 40


def test_masks_keep_dates_and_short_numbers_and_hide_phones_and_e_mails():
    assert mask_free_text("on 2025-03-01 call 139 0000 3333 or +86-138-0013-8000, mail a.b@c.cn") == \
        f"on 2025-03-01 call {MASK} or {MASK}, mail {MASK}"
    assert mask_free_text("2025-01-01 13800138000 order 12345 id M1234567") == \
        f"2025-01-01 {MASK} order 12345 id M1234567"
    assert mask_free_text("at 2025-03-01T10:00:00+08:00") == "at 2025-03-01T10:00:00+08:00"


def test_a_rejected_json_line_keeps_only_known_fields_and_counts_the_unknown_ones(make_system, tmp_path):
    s = make_system()
    row = {**_order(1, amount=-5), "nme": "张三", "telephone": "13900002222", "name": "李四",
           "e-mail-of-zs@example.cn": 1}
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", [row]), progress=False)
    [line] = [json.loads(x) for x in open(report.rejects_file, encoding="utf-8")]
    kept = json.loads(line["raw"])
    assert line["unknown_fields"] == 3
    assert kept["name"] == MASK and kept["event_id"] == "e1" and kept["amount_fen"] == -5
    text = json.dumps(line, ensure_ascii=False)
    for secret in ("nme", "telephone", "张三", "13900002222", "李四", "zs@example.cn"):
        assert secret not in text


def test_a_line_that_is_not_json_keeps_at_most_a_short_masked_prefix(make_system, tmp_path):
    s = make_system()
    raw = "garbage " * 3 + "call 13911112222 mail someone.long.name@example.com " + "tail " * 100
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", [raw]), progress=False)
    [line] = [json.loads(x) for x in open(report.rejects_file, encoding="utf-8")]
    assert line["raw"].startswith("garbage garbage garbage call [masked]")
    assert len(line["raw"]) <= PREFIX_CHARS + len("...(the rest not copied)")
    assert "13911112222" not in line["raw"] and "example" not in line["raw"] and "tail tail tail" not in line["raw"]


def test_a_cut_through_a_long_token_drops_the_token_whole():
    raw = "x " + "z" * 200 + "@example.com"
    assert "z" not in mask_prefix(raw)


def test_a_kafka_message_over_the_limit_is_dead_lettered_by_its_size_unread(monkeypatch):
    calls = []
    monkeypatch.setattr("consumers.upstream.decode", lambda *a, **k: calls.append(a))
    value = b"\xc3\x01" + b"13800138000 " * (MB // 12)
    with pytest.raises(DeadLetter) as caught:
        decode_message("orders", value)
    assert caught.value.reason.startswith("too-large:") and str(len(value)) in caught.value.reason
    assert "13800138000" not in caught.value.reason and calls == []


def test_the_known_fields_are_those_of_the_upstream_schemas():
    assert {"event_id", "member_id", "amount_fen", "name", "phone", "store_id", "type"} <= masking.known_fields()
    assert not {"nme", "telephone"} & masking.known_fields()
    assert all(re.fullmatch(r"[a-z_]+", f) for f in masking.known_fields())
