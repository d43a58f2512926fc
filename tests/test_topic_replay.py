"""Replay from the domain topics (`vip replay --source kafka`) equals the embedded replay of the log."""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from hosts.main import main
from infra.dev.demo import run_demo
from infra.kafka.admin import create_all
from infra.kafka.bus import Topics, make_producer
from infra.kafka.relay import Relay
from infra.kafka.topic_replay import TopicReplayError, replay_topics
from infra.service_layer.replay import fold_log, replay
from infra.stores.viewstore import MemoryStore
from projections.views import VIEWS

pytestmark = pytest.mark.kafka

MIDYEAR = datetime(2025, 6, 15, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
DUPLICATED = 300  # events the relay publishes a second time, as after a crash before it recorded its position


@pytest.fixture
def published(make_system, kafka_broker):
    """A demo log on its own topics: published once, then its first events again (a relay crash)."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    system = make_system(kafka_bootstrap=kafka_broker, topic_prefix=prefix)
    topics = Topics(prefix)
    create_all(system.settings, topics)
    run_demo(system, members=40, seed=13, progress=False)
    system.engine.flush()
    producer = make_producer(kafka_broker)
    count = Relay(system.app, producer, topics).catch_up()
    assert count == system.app.recorder.max_notification_id() > DUPLICATED
    # A relay that crashed before recording its position: the same events again, at new offsets.
    assert Relay(system.app, producer, topics, batch=DUPLICATED, name="relay:crashed").pump() == DUPLICATED
    system.published, system.topics, system.producer = count, topics, producer
    yield system
    producer.close()


def _assert_same_rows(replayed, expected) -> None:
    for view in VIEWS:
        got, want = dict(replayed.view(view.name)), dict(expected.view(view.name))
        assert sorted(got) == sorted(want), f"view {view.name}: other keys"
        for key, row in want.items():
            assert got[key] == row, f"view {view.name}, row {key}"


def test_every_view_from_the_topics_equals_the_embedded_replay_row_by_row(published, kafka_broker):
    result = replay_topics(kafka_broker, published.topics.domain_topics, VIEWS, progress=True)
    _assert_same_rows(result.store, replay(published.app, VIEWS))
    assert result.folded == published.published
    assert result.duplicates == DUPLICATED and result.undecodable == 0 and result.gaps == 0
    ends = {t: sum(ps.values()) for t, ps in result.offsets.items()}
    assert sorted(ends) == sorted(published.topics.domain_topics)
    assert sum(ends.values()) == published.published + DUPLICATED


def test_views_from_the_topics_as_of_midyear_equal_the_embedded_replay_to_then(published, kafka_broker):
    result = replay_topics(kafka_broker, published.topics.domain_topics, VIEWS, until=MIDYEAR)
    expected = replay(published.app, VIEWS, until=MIDYEAR)
    _assert_same_rows(result.store, expected)
    # As many events as the embedded fold took; not its last position, which is larger when events
    # stamped after the instant sit between folded ones (a timeline per aggregate).
    folded_from_log = fold_log(published.app, MemoryStore(), VIEWS, until=MIDYEAR)[0]
    assert 0 < result.folded == folded_from_log < published.published
    # every message is accounted for once: folded, a copy of one folded, or after the instant
    assert result.folded + result.duplicates + result.after == published.published + DUPLICATED
    assert result.duplicates > 0 and result.after > 0


def test_an_undecodable_message_is_counted_and_skipped(published, kafka_broker):
    member_topic = published.topics.domain("member")
    published.producer.send(member_topic, key=b"M-bad", value=b"\x00garbage").get(timeout=10)
    published.producer.send(member_topic, key=b"M-none", value=None).get(timeout=10)
    result = replay_topics(kafka_broker, published.topics.domain_topics, VIEWS)
    assert result.undecodable == 2
    assert result.folded == published.published
    _assert_same_rows(result.store, replay(published.app, VIEWS))


def _vip(published, kafka_broker, *args):
    env = {"VIP_DATA_DIR": str(published.settings.data_dir), "VIP_EVENT_STORE": "sqlite",
           "VIP_KAFKA_BOOTSTRAP": kafka_broker, "VIP_TOPIC_PREFIX": published.topics.prefix}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_replay_from_kafka_as_of_prints_the_log_replays_summary(published, kafka_broker):
    at = MIDYEAR.isoformat()
    from_log = _vip(published, kafka_broker, "replay", "--as-of", at, "--json", "--no-progress")
    assert from_log.exit_code == 0, from_log.output
    from_kafka = _vip(published, kafka_broker, "replay", "--source", "kafka", "--as-of", at, "--json",
                      "--no-progress")
    assert from_kafka.exit_code == 0, from_kafka.output
    answer = json.loads(from_kafka.output)
    counts = answer.pop("kafka")
    assert answer == json.loads(from_log.output)
    assert answer["members"] > 0 and answer["events_replayed"] > 0
    assert counts["duplicates"] > 0 and counts["undecodable"] == 0
    assert counts["folded"] + counts["duplicates"] + counts["after_as_of"] == published.published + DUPLICATED
    table = _vip(published, kafka_broker, "replay", "--source", "kafka", "--as-of", at, "--no-progress")
    assert table.exit_code == 0 and f"{counts['duplicates']} duplicates skipped" in table.output


def test_cli_replay_from_kafka_writes_nothing(published, kafka_broker):
    data = published.settings.data_dir
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    events = published.app.recorder.max_notification_id()
    result = _vip(published, kafka_broker, "replay", "--source", "kafka", "--json", "--no-progress")
    assert result.exit_code == 0, result.output
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == before
    assert published.app.recorder.max_notification_id() == events


def test_cli_replay_from_an_unreachable_broker_says_so_in_one_line_and_exits_1(tmp_path):
    env = {"VIP_DATA_DIR": str(tmp_path / "none"), "VIP_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    result = CliRunner().invoke(main, ["replay", "--source", "kafka", "--no-progress"], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Kafka broker at 127.0.0.1:1" in lines[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "none").exists()


def test_a_missing_topic_is_a_clear_error(kafka_broker):
    with pytest.raises(TopicReplayError, match="not found"):
        replay_topics(kafka_broker, [f"t{uuid.uuid4().hex[:8]}.member.events.v1"], VIEWS, timeout=1)


def test_a_missing_version_is_counted_as_a_gap_and_the_later_event_still_folds(published, kafka_broker):
    """An event the relay dead-lettered leaves a hole in its aggregate's versions on the topic."""
    topics = Topics(f"t{uuid.uuid4().hex[:8]}")
    create_all(published.settings, topics)
    relay = Relay(published.app, published.producer, topics)
    notes = published.app.recorder.select_notifications(None, 10_000)
    first = notes[0]
    same = [n for n in notes if n.originator_id == first.originator_id]
    assert len(same) >= 3
    for note in (same[0], same[2]):  # version 2 never reached the topic
        topic, key, value, headers = relay.message(note)
        published.producer.send(topic, key=key, value=value, headers=headers).get(timeout=10)
    result = replay_topics(kafka_broker, topics.domain_topics, VIEWS)
    assert (result.folded, result.gaps, result.duplicates) == (2, 1, 0)
