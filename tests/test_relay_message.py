"""The relay's message of a stored event is the message of the domain event the library would build.

The relay decodes a notification straight to its envelope (the app's paths, not the
library's ``to_domain_event``); what goes on the bus must not change by it: the same
topic, key, Avro bytes and headers, event for event, also under the library's own paths.
"""
from __future__ import annotations

import pytest

from bench.workloads import generate_orders
from infra.audit.chain import oid_text
from infra.kafka.bus import Topics
from infra.kafka.relay import Relay
from infra.service_layer.envelope import envelope
from infra.service_layer.fastpath import FAST, LIBRARY
from infra.service_layer.ingest import ingest_file
from schemas.codec import HEADER_SIZE, MAGIC
from schemas.events import encode_event, headers


class _Sent:
    is_done = True

    def get(self, timeout=None):
        return None


class _Producer:
    """Keeps what was sent; every send is acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value, headers))
        return _Sent()

    def flush(self, timeout=None) -> None:
        pass


def _library_message(app, topics: Topics, note, event_hash: bytes) -> tuple:
    event = envelope(app.mapper.to_domain_event(note), note.id)
    value = encode_event(event)
    hdrs = headers(event, value[len(MAGIC):HEADER_SIZE]) + [("event_hash", event_hash.hex().encode("ascii"))]
    return topics.domain(event["aggregate"]), (event["key"] or event["aggregate_id"]).encode(), value, hdrs


@pytest.mark.parametrize("paths", [FAST, LIBRARY], ids=["fast", "library"])
def test_relayed_messages_equal_those_built_from_the_library_domain_event(make_system, tmp_path, paths):
    system = make_system()
    system.app.paths = paths
    generate_orders(tmp_path / "orders.jsonl", 120, 15, seed=5)
    assert ingest_file(system.engine, "orders", str(tmp_path / "orders.jsonl"), None, progress=False).applied == 120
    topics = Topics(prefix="m")
    producer = _Producer()
    relay = Relay(system.app, producer, topics, batch=50)
    assert relay.catch_up() > 120
    recorder = system.app.recorder
    notes = recorder.select_notifications(0, 10_000, inclusive_of_start=False)
    hashes = recorder.event_hashes([(oid_text(n.originator_id), n.originator_version) for n in notes])
    expected = [_library_message(system.app, topics, n, hashes[(oid_text(n.originator_id), n.originator_version)])
                for n in notes]
    assert {t for t, *_ in expected} >= {topics.domain("member")}
    assert producer.sent == expected
