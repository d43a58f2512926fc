"""Erasure reaches every free-text field (issue 16, item 3): category, reasons, descriptions.

The texts are sealed with the member's key before anything is recorded, so
destroying the key leaves none of them readable in the raw event store, the
read store, history, the complaint list or the tier answer; the log still
replays, and text given after the erasure is not kept (a notice says so).
"""
from __future__ import annotations

from datetime import timedelta

import psycopg

from domain.base import ERASED, SEALED_PREFIX
from infra.api import answers
from infra.service_layer.envelope import stored_envelope
from infra.service_layer.event_fields import sealed_paths
from infra.service_layer.replay import history
from tests.scenario import START

CATEGORY = "cat-zq7-billing-dispute"
DESCRIPTION = "desc-zq7-happiness-road-88"
OVERRIDE = "override-zq7-goodwill-for-wang"
REJECT = "reject-zq7-wang-papers-missing"
LATER = "later-zq7-after-erasure"
CLEAR = (CATEGORY, DESCRIPTION, OVERRIDE, REJECT, LATER)


def _story(s):
    app, run = s.app, s.engine.run
    run(START, lambda u, c: u.register_member(c, "reg", "M1", {"name": "Wang"}))
    run(START + timedelta(hours=1), lambda u, c: u.file_complaint(c, "C1", "M1", "phone", CATEGORY, "high",
                                                                DESCRIPTION))
    run(START + timedelta(hours=2), lambda u, c: u.set_override(c, "M1", "floor", "gold", OVERRIDE,
                                                               START + timedelta(days=200)))
    run(START + timedelta(hours=3), lambda u, c: u.apply_for_vip(c, "M1"))
    run(START + timedelta(hours=3, minutes=30), lambda u, c: u.start_vip_review(c, "M1"))
    run(START + timedelta(hours=4), lambda u, c: u.reject_vip(c, "M1", REJECT))
    s.engine.flush()


def _raw_store(s, pg_url: str | None) -> bytes:
    """Every byte the stores hold: the data dir's files, or every row of every PostgreSQL table."""
    if pg_url is None:
        return b"".join(p.read_bytes() for p in s.settings.data_dir.rglob("*") if p.is_file())
    out = []
    with psycopg.connect(pg_url) as db:
        tables = [r[0] for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"').fetchall():
                out += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    return b"\n".join(out)


def _answers(s) -> str:
    return repr([history(s.app, "member", "M1"), history(s.app, "complaint", "C1"),
                 answers.complaints(s, None, "M1", None), answers.tier_with_why(s, "M1", None),
                 answers.tier_history(s, "M1", None)])


def _at(value, path: str):
    """The strings at ``path`` (``a.b``, ``m{}``, ``l[]``) of an event's data."""
    values = [value]
    for part in path.split("."):
        name = part.rstrip("{}[]")
        values = [v.get(name) for v in values if isinstance(v, dict)]
        if part.endswith("{}"):
            values = [x for v in values if isinstance(v, dict) for x in v.values()]
        elif part.endswith("[]"):
            values = [x for v in values if isinstance(v, list) for x in v]
    return [v for v in values if isinstance(v, str) and v]


def _recorded(s) -> list[dict]:
    notes = s.app.recorder.select_notifications(0, 10_000, inclusive_of_start=False)
    return [stored_envelope(s.app.mapper, n) for n in notes]


def test_every_free_text_field_a_person_gave_is_recorded_sealed(make_system):
    s = make_system()
    _story(s)
    checked = 0
    for event in _recorded(s):
        for path in sealed_paths(event["type"]):
            for value in _at(event["data"], path):
                assert value.startswith(SEALED_PREFIX), (event["type"], path, value)
                checked += 1
    assert checked >= 5  # category, description, override reason, reject reason, profile name


def test_after_erasure_no_free_text_is_readable_anywhere_and_the_log_replays(make_system, event_store):
    s = make_system(event_store)
    pg_url = None if event_store == "sqlite" else event_store
    _story(s)
    before = _answers(s)
    assert all(text in before for text in CLEAR[:-1]), "opened for display before the erasure"
    assert not any(t.encode() in _raw_store(s, pg_url) for t in CLEAR)

    s.engine.run(START + timedelta(days=1), lambda u, c: u.erase_member(c, "M1"))
    s.app.notices.clear()
    # Erasure never blocks: a later override is recorded, its reason is not kept, a notice says so.
    s.engine.run(START + timedelta(days=2), lambda u, c: u.set_override(
        c, "M1", "pin", "silver", LATER, START + timedelta(days=100)))
    s.engine.flush()
    assert any("not kept" in n and "M1" in n for n in s.app.notices)

    after = _answers(s)
    raw = _raw_store(s, pg_url)
    for text in CLEAR:
        assert text not in after, text
        assert text.encode() not in raw, text
    complaint = answers.complaints(s, None, "M1", None)[0]
    assert complaint["category"] == ERASED
    tier = answers.tier_with_why(s, "M1", None)
    assert tier["override"]["reason"] == ERASED and tier["override"]["tier"] == "silver"
    rejected = [e for e in history(s.app, "member", "M1") if e["type"] == "VipRejected"]
    assert rejected[0]["data"]["reason"] == ERASED
