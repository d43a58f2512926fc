"""The stream processors' folds give the embedded runner's answers, effectively once."""
from __future__ import annotations

import random
import zlib

from consumers.streams import VERSIONS, StreamViewStore, process
from infra.bootstrap import VIEWS
from infra.dev.demo import run_demo
from infra.service_layer.envelope import envelope
from schemas.events import encode_event


def _messages(app):
    """The log as the relay publishes it: per aggregate topic, partitioned by key."""
    out = []
    offsets: dict = {}
    for note in app.recorder.select_notifications(None, 1_000_000):
        event = envelope(app.mapper.to_domain_event(note), note.id)
        topic = f"vip.{event['aggregate']}.events.v1"
        partition = zlib.crc32(event["key"].encode()) % 3
        offset = offsets.get((topic, partition), -1) + 1
        offsets[(topic, partition)] = offset
        out.append((topic, partition, offset, encode_event(event)))
    return out


def test_folding_the_topics_equals_the_embedded_read_store_despite_redeliveries(make_system, tmp_path):
    s = make_system()
    run_demo(s, members=60, seed=9, progress=False)
    s.engine.flush()
    messages = _messages(s.app)
    rng = random.Random(1)
    # Partitions interleave freely; within one the order holds. Some batches come twice.
    queues = {}
    for m in messages:
        queues.setdefault((m[0], m[1]), []).append(m)
    store = StreamViewStore(tmp_path / "streams.db")
    outcomes = {"applied": 0, "duplicate": 0, "redelivered": 0}
    while queues:
        tp = rng.choice(sorted(queues))
        batch, queues[tp] = queues[tp][:5], queues[tp][5:]
        if not queues[tp]:
            del queues[tp]
        for topic, partition, offset, value in batch:
            outcomes[process(store, VIEWS, value, topic, partition, offset)] += 1
        if rng.random() < 0.2:  # a consumer restart redelivers what it had not committed
            for topic, partition, offset, value in batch:
                outcomes[process(store, VIEWS, value, topic, partition, offset)] += 1
    assert outcomes["applied"] == len(messages) and outcomes["redelivered"] > 0
    store.close()
    reopened = StreamViewStore(tmp_path / "streams.db")
    views = {name: rows for name, rows in reopened.rows.items() if name != VERSIONS}
    assert views == {name: rows for name, rows in s.store.rows.items() if rows}
    reopened.close()


def test_a_duplicate_published_at_a_new_offset_changes_nothing(make_system, tmp_path):
    """After a relay crash the same event may be published again; its version was applied."""
    s = make_system()
    run_demo(s, members=20, seed=3, progress=False)
    messages = _messages(s.app)
    store = StreamViewStore(tmp_path / "streams.db")
    for topic, partition, offset, value in messages:
        process(store, VIEWS, value, topic, partition, offset)
    before = {k: dict(v) for k, v in store.rows.items()}
    topic, partition, _, value = messages[len(messages) // 2]
    last = max(o for t, p, o, _ in messages if (t, p) == (topic, partition))
    assert process(store, VIEWS, value, topic, partition, last + 1) == "duplicate"
    assert store.rows == before
    store.close()
