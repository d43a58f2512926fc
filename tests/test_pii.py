"""Personal data is sealed per member and erasable without rewriting history (PIPL)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from infra.service_layer.replay import history, replay
from projections.views import VIEWS
from tests.scenario import START

NAME, PHONE, EMAIL = "欧阳娜娜测试", "13912345678", "nana.unique@example.cn"
STORY = "投诉人欧阳娜娜住在幸福路88号"


def _files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file()]


def _found(data_dir: Path, needle: bytes) -> list[str]:
    return [p.name for p in _files(data_dir) if needle in p.read_bytes()]


def _member_with_story(s):
    s.engine.run(START, lambda u, c: u.register_member(c, "reg", "M1", {"name": NAME, "phone": PHONE, "email": EMAIL}))
    s.engine.run(START + timedelta(hours=1), lambda u, c: u.file_complaint(c, "C1", "M1", "phone", "service", "high", STORY))
    s.engine.run(START + timedelta(hours=2), lambda u, c: u.resolve_complaint(c, "C1", f"called {PHONE} back"))
    s.engine.flush()


def test_personal_data_never_reaches_the_event_or_read_store_in_clear(make_system):
    s = make_system()
    _member_with_story(s)
    data_dir = s.settings.data_dir
    for value in (NAME, PHONE, EMAIL, STORY):
        assert _found(data_dir, value.encode()) == []
    opened = history(s.app, "complaint", "C1")
    assert opened[0]["data"]["description"] == STORY


def test_erasing_a_member_shreds_the_key_and_history_still_replays(make_system):
    """After erasure nothing personal can be recovered from any file, and every log replays."""
    s = make_system()
    _member_with_story(s)
    key = s.keys.key("M1")
    data_dir = s.settings.data_dir
    assert _found(data_dir, key) == ["keys.db"]
    s.engine.run(START + timedelta(days=1), lambda u, c: u.erase_member(c, "M1"))
    s.engine.flush()
    s.close()
    assert _found(data_dir, key) == [], "the destroyed key must not survive in any file"
    for value in (NAME, PHONE, EMAIL, STORY):
        assert _found(data_dir, value.encode()) == []

    from infra.bootstrap import build
    again = build(s.settings)
    try:
        events = history(again.app, "member", "M1")
        assert events[0]["data"]["profile"] == {"name": "[erased]", "phone": "[erased]", "email": "[erased]"}
        assert events[-1]["type"] == "PersonalDataErased"
        complaint = history(again.app, "complaint", "C1")
        assert complaint[0]["data"]["description"] == "[erased]"
        assert replay(again.app, VIEWS).get("current_tier", "M1")["erased"] is True
    finally:
        again.close()


def test_erasure_never_blocks_a_complaint_and_later_free_text_is_not_kept(make_system):
    """Every step of an erased member's open complaint still works; new text is stored as erased."""
    from domain.base import ERASED
    s = make_system()
    s.engine.run(START, lambda u, c: u.register_member(c, "reg", "M1", {"name": NAME}))
    s.engine.run(START + timedelta(hours=1), lambda u, c: u.file_complaint(c, "C1", "M1", "phone", "service", "high", STORY))
    s.engine.run(START + timedelta(hours=2), lambda u, c: u.erase_member(c, "M1"))
    app, t = s.app, START + timedelta(hours=3)
    app.notices.clear()
    s.engine.run(t, lambda u, c: u.acknowledge_complaint(c, "C1"))
    s.engine.run(t, lambda u, c: u.wait_for_customer(c, "C1", "她说地址是幸福路"))
    s.engine.run(t, lambda u, c: u.record_customer_reply(c, "C1"))
    s.engine.run(t, lambda u, c: u.resolve_complaint(c, "C1", f"called {PHONE} back"))
    s.engine.run(t, lambda u, c: u.rate_complaint(c, "C1", 5))
    s.engine.run(t, lambda u, c: u.close_complaint(c, "C1"))
    s.engine.run(t, lambda u, c: u.reopen_complaint(c, "C1", f"{PHONE} again"))
    s.engine.run(t, lambda u, c: u.resolve_complaint(c, "C1", "done"))
    s.engine.run(t, lambda u, c: u.file_complaint(c, "C2", "M1", "web", "x", "low", "new text 幸福路"))
    s.engine.flush()
    assert app.complaint("C1").status == "resolved" and app.complaint("C2").status == "filed"
    # five texts and C2's category (sealed like its description since issue 16)
    assert len(app.notices) == 6 and all("not kept" in n and "M1" in n for n in app.notices)
    for value in (PHONE, "幸福路", "new text"):
        assert _found(s.settings.data_dir, value.encode()) == []
    events = history(app, "complaint", "C1")
    assert [e["data"]["resolution"] for e in events if e["type"] == "ComplaintResolved"] == [ERASED, ERASED]
    assert history(app, "complaint", "C2")[0]["data"]["description"] == ERASED
    assert s.store.get("complaints", "C1")["status"] == "resolved"


def test_complaint_reasons_are_sealed_like_the_description(make_system):
    """Reasons for waiting, escalating and reopening often quote the customer."""
    s = make_system()
    _member_with_story(s)
    app, t = s.app, START + timedelta(hours=3)
    quote = "客户欧阳娜娜说她的手机13912345678一直没收到"
    s.engine.run(t, lambda u, c: u.reopen_complaint(c, "C1", quote))
    s.engine.run(t, lambda u, c: u.wait_for_customer(c, "C1", quote))
    s.engine.run(t, lambda u, c: u.escalate_complaint(c, "C1", quote))
    s.engine.flush()
    assert _found(s.settings.data_dir, quote.encode()) == []
    events = history(app, "complaint", "C1")
    assert [e["data"]["reason"] for e in events if e["type"] == "ComplaintReopened"] == [quote]
