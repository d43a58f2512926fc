"""The event store's orjson transcoder writes the library's bytes and reads the library's values."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import (DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper,
                                       TranscodingNotRegisteredError, UUIDAsHex)
from hypothesis import given, settings, strategies as st

from infra.dev.demo import run_demo
from infra.service_layer.transcoder import FastJSONTranscoder


def _registered(transcoder):
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


def _library_mapper(app) -> Mapper:
    """The library's own mapper and JSON transcoder with the project's transcodings."""
    transcoder = JSONTranscoder()
    app.register_transcodings(transcoder)
    return Mapper(transcoder=transcoder)


@pytest.mark.integration   # a simulated year: a few seconds
def test_every_event_and_snapshot_of_a_demo_year_has_the_library_bytes_and_reads_back_equal(make_system):
    s = make_system(snapshot_interval=5)
    run_demo(s, members=10, seed=11, progress=False)
    fast, library = s.app.mapper, _library_mapper(s.app)
    assert type(fast.transcoder) is FastJSONTranscoder and fast.cipher is None
    notes = s.app.recorder.select_notifications(0, 1_000_000, inclusive_of_start=False)
    stored = list(notes)
    for oid in {n.originator_id for n in notes}:
        stored.extend(s.app.snapshots.recorder.select_events(oid))
    topics = {n.topic.replace(":", ".").rsplit(".", 1)[-1] for n in stored}
    assert len(notes) > 300 and {"OrderPaid", "Snapshot"} <= topics and len(topics) > 15
    for note in stored:
        theirs, ours = library.to_domain_event(note), fast.to_domain_event(note)
        assert type(theirs) is type(ours) and vars(theirs) == vars(ours)
        # written by either, the same bytes as the store holds
        assert fast.to_stored_event(theirs).state == library.to_stored_event(ours).state == bytes(note.state)


_zones = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30)),
                          timezone(timedelta(hours=5, seconds=7)), ZoneInfo("Asia/Shanghai"),
                          ZoneInfo("America/New_York")])
_instants = st.builds(lambda at, zone: at.replace(tzinfo=zone), st.datetimes(), _zones)
_leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
           | _instants | st.uuids() | st.decimals(allow_nan=False, allow_infinity=False))
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_any_value_is_encoded_to_the_library_bytes_and_decoded_to_the_library_value(value):
    fast, library = _registered(FastJSONTranscoder()), _registered(JSONTranscoder())
    data = library.encode(value)
    assert fast.encode(value) == data
    assert fast.decode(data) == library.decode(data)


@pytest.mark.parametrize("value", [10**19, -(10**30), 1e-5, 1e16, float("inf"), 5e-324, "x" * 19 + "1" * 20,
                                   {1: "int key"}, [datetime(2025, 1, 1, tzinfo=ZoneInfo("UTC"))]])
def test_values_orjson_would_write_or_read_otherwise_go_through_the_library(value):
    fast, library = _registered(FastJSONTranscoder()), _registered(JSONTranscoder())
    data = library.encode(value)
    assert fast.encode(value) == data
    assert fast.decode(data) == library.decode(data)


def test_an_unregistered_type_or_name_is_refused_as_the_library_refuses_it():
    fast = _registered(FastJSONTranscoder())
    with pytest.raises(TranscodingNotRegisteredError):
        fast.encode({"when": datetime(2025, 1, 1).date()})
    with pytest.raises(TranscodingNotRegisteredError):
        fast.decode(b'{"a":{"_type_":"no_such","_data_":1}}')
    assert fast.decode(b'{"_type_":"uuid_hex","_data_":"' + uuid.UUID(int=7).hex.encode() + b'"}') == uuid.UUID(int=7)
    assert fast.decode(b'[{"_type_":"decimal_str","_data_":"1.50"}]') == [Decimal("1.50")]
