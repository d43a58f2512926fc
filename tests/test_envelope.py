"""Envelopes: a recorded event decoded straight to its envelope is the one its domain event gives."""
from __future__ import annotations

from infra.dev.demo import run_demo
from infra.service_layer.envelope import envelope, lean_envelope, stored_envelope


def _notes(app):
    notes, start = [], 0
    while page := app.recorder.select_notifications(start, 500, inclusive_of_start=False):
        notes += page
        start = page[-1].id
    return notes


def test_a_recorded_event_decodes_to_the_envelope_its_domain_event_gives(make_system, event_store):
    s = make_system(event_store)
    run_demo(s, members=12, seed=7, progress=False)
    notes = _notes(s.app)
    kinds = set()
    for note in notes:
        event = s.app.mapper.to_domain_event(note)
        fast, slow = stored_envelope(s.app.mapper, note), lean_envelope(event, note.id)
        # repr, not ==: an instant must keep its own zone, a value its own type
        assert repr(fast) == repr(slow), note.topic
        assert fast["id"] == envelope(event, note.id)["id"] and fast["aggregate_id"] == slow["aggregate_id"]
        kinds.add(fast["aggregate"])
    assert kinds == {"member", "contract", "complaint"} and len(notes) > 100


def test_a_mapper_that_deciphers_takes_its_own_path(make_system):
    """A cipher (or a compressor) on the mapper: the stored bytes are not plain JSON, so the
    envelope comes from the mapper's own decoding."""
    s = make_system()
    run_demo(s, members=3, seed=2, progress=False)
    note = _notes(s.app)[0]
    mapper = s.app.mapper
    calls = []

    class Cipher:
        def decrypt(self, data):
            calls.append(data)
            return data

    original = mapper.cipher
    mapper.cipher = Cipher()
    try:
        env = stored_envelope(mapper, note)
    finally:
        mapper.cipher = original
    assert calls == [note.state]
    assert repr(env) == repr(lean_envelope(mapper.to_domain_event(note), note.id))
