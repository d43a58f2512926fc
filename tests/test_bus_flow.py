"""The message bus on a real broker: upstream events in, domain events out.

Every test gets its own topic prefix on the session's Tansu broker, its own
data directory and its own consumer group.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from consumers.upstream import UpstreamConsumer
from infra.kafka.admin import create_all, read_topics
from infra.kafka.bus import Topics, header_map, make_producer, tracking_name
from infra.kafka.relay import Relay, RelayError
from infra.service_layer.envelope import envelope
from schemas.codec import encode, fingerprint
from schemas.events import decode_event

pytestmark = pytest.mark.kafka

# A short session so a group's first join takes ~3 s on Tansu.
SESSION = {"VIP_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIP_KAFKA_HEARTBEAT_MS": "1000"}


def upstream(type_: str, member_id: str, at: str, **fields) -> tuple[str, dict]:
    """``(kind, record)``: a complete upstream record (all optional fields present)."""
    record = {"event_id": str(uuid.uuid4()), "member_id": member_id, "occurred_at": at,
              "correlation_id": f"corr-{uuid.uuid4().hex[:8]}"}
    optional = {"OrderPaid": {"channel": None}, "OrderRefunded": {"reason": None},
                "OrderCancelled": {"reason": None}, "CustomerRegistered": {"phone": None, "email": None},
                "ProfileUpdated": {"name": None, "phone": None, "email": None},
                "ActivityRecorded": {"detail": None}, "ErasureRequested": {"requested_by": None}}[type_]
    record.update(optional)
    record.update(fields)
    return type_, record


@dataclass
class Bus:
    """One test's slice of the broker: topics, a system, a producer."""

    bootstrap: str
    prefix: str
    topics: Topics
    system: object
    producer: object
    consumers: list = field(default_factory=list)

    def send(self, kind: str, record: dict, source: str | None = None):
        source = source or ("orders" if kind.startswith("Order") else "crm")
        value = encode(f"vip.upstream.{kind}", record)
        return self.send_raw(self.topics.source_topic(source), record["member_id"].encode(), value,
                             [("event_type", kind.encode())])

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None, headers=None):
        future = self.producer.send(topic, key=key, value=value, headers=headers or [])
        self.producer.flush()
        return future.get(timeout=10)

    def consumer(self, **kwargs) -> UpstreamConsumer:
        consumer = UpstreamConsumer(self.system.engine, self.topics, self.bootstrap, self.producer,
                                    group=f"{self.prefix}.group", env=SESSION, **kwargs).start()
        self.consumers.append(consumer)
        return consumer

    @staticmethod
    def consume(consumer: UpstreamConsumer, total: int, timeout: float = 60) -> dict:
        """Poll until ``total`` messages were handled (of any outcome)."""
        deadline = time.monotonic() + timeout
        while sum(consumer.stats.counts.values()) < total:
            assert time.monotonic() < deadline, f"only {consumer.stats.as_dict()} of {total} in {timeout}s"
            consumer.poll_once(200)
        consumer.housekeeping(force=True)
        return consumer.stats.as_dict()

    def relay(self) -> Relay:
        return Relay(self.system.app, self.producer, self.topics)

    def log(self) -> list[dict]:
        app = self.system.app
        notes = app.recorder.select_notifications(0, 1_000_000, inclusive_of_start=False)
        return [envelope(app.mapper.to_domain_event(n), n.id) for n in notes]


@pytest.fixture
def bus(kafka_broker, make_system):
    prefix = "t" + uuid.uuid4().hex[:10]
    system = make_system(name=prefix, kafka_bootstrap=kafka_broker, topic_prefix=prefix)
    topics = Topics.from_settings(system.settings, env={})
    create_all(system.settings, topics)
    producer = make_producer(kafka_broker)
    b = Bus(kafka_broker, prefix, topics, system, producer)
    yield b
    for consumer in b.consumers:
        try:
            consumer.close()
        except Exception:
            pass
    producer.close(timeout=5)


def by_event_id(records) -> dict:
    out: dict = {}
    for r in records:
        out.setdefault(header_map(r.headers)["event_id"], []).append(r)
    return out


def assert_message_matches(record, expected: dict, topics: Topics) -> None:
    """One message on a domain topic carries exactly the logged event."""
    assert record.topic == topics.domain(expected["aggregate"])
    assert record.key == expected["key"].encode()
    h = header_map(record.headers)
    assert h["event_id"] == expected["id"]
    assert h["event_type"] == expected["type"]
    assert h["schema_fingerprint"] == fingerprint(f"vip.domain.{expected['type']}").hex()
    assert h["schema_fingerprint"] == record.value[2:10].hex()
    assert datetime.fromisoformat(h["occurred_at"]) == expected["timestamp"]
    assert h["correlation_id"] == expected["meta"].get("correlation_id", "")
    assert h["causation_id"] == expected["meta"].get("causation_id", "")
    got = decode_event(record.value)
    for name in ("id", "type", "aggregate", "aggregate_id", "version", "timestamp", "key", "meta", "data"):
        assert got[name] == expected[name], (name, got[name], expected[name])


# -- in and out ------------------------------------------------------------------------


def test_upstream_events_in_domain_events_out(bus):
    m1, m2 = f"{bus.prefix}-M1", f"{bus.prefix}-M2"
    crm = [upstream("CustomerRegistered", m1, "2025-03-01T09:00:00+08:00", name="张伟",
                    phone="+8613800138000", email="zhang.wei@example.cn"),
           upstream("ActivityRecorded", m1, "2025-03-01T09:30:00+08:00", kind="login"),
           upstream("ProfileUpdated", m1, "2025-03-02T10:00:00+08:00", email="zw@example.cn")]
    orders = [upstream("OrderPaid", m1, "2025-03-03T12:00:00+08:00", order_id="O-1", amount_fen=600_000,
                       currency="CNY", channel="app"),
              upstream("OrderPaid", m2, "2025-03-03T12:05:00+08:00", order_id="O-2", amount_fen=12_345,
                       currency="CNY"),
              upstream("OrderRefunded", m1, "2025-03-04T08:00:00+08:00", order_id="O-1", amount_fen=100_000,
                       currency="CNY", reason="size"),
              upstream("OrderCancelled", m2, "2025-03-04T09:00:00+08:00", order_id="O-2")]
    consumer = bus.consumer()
    for kind, r in crm:   # CRM first, so M1 is registered before its orders arrive
        bus.send(kind, r)
    assert bus.consume(consumer, len(crm))["applied"] == 3
    for kind, r in orders:
        bus.send(kind, r)
    stats = bus.consume(consumer, len(crm) + len(orders))
    assert stats == {"applied": 7, "duplicate": 0, "dead": 0, "skipped": 0, "dead_by_reason": {}}

    # the consumed positions are in the event store
    recorder = bus.system.app.recorder
    positions = {tp: recorder.max_tracking_id(tracking_name(tp.topic, tp.partition))
                 for tp in consumer.next_offsets}
    assert sum(positions.values()) == 7 and positions == consumer.next_offsets

    relay = bus.relay()
    logged = bus.log()
    assert relay.catch_up() == len(logged) and relay.recorded_position() == logged[-1]["position"]
    records = read_topics(bus.bootstrap, bus.topics.domain_topics)
    published = by_event_id(records)
    assert set(published) == {e["id"] for e in logged}
    for expected in logged:
        [record] = published[expected["id"]]
        assert_message_matches(record, expected, bus.topics)

    # the member stream, in order, with what came from upstream
    member_topic = [r for r in records if r.topic == bus.topics.domain("member")]
    m1_events = [decode_event(r.value) for r in member_topic if r.key == m1.encode()]
    assert [e["version"] for e in m1_events] == list(range(1, len(m1_events) + 1))
    types = [e["type"] for e in m1_events]
    assert [t for t in types if t != "TierUpgraded"] == [
        "MemberRegistered", "ActivityRecorded", "ProfileUpdated", "OrderPaid", "OrderRefunded"]
    paid = m1_events[types.index("OrderPaid")]
    assert paid["data"]["order_id"] == "O-1" and paid["data"]["amount_fen"] == 600_000
    assert paid["data"]["currency"] == "CNY" and paid["data"]["input_id"] == orders[0][1]["event_id"]
    assert paid["data"]["occurred_at"] == datetime.fromisoformat("2025-03-03T12:00:00+08:00")
    assert paid["meta"]["causation_id"] == orders[0][1]["event_id"]
    assert paid["meta"]["correlation_id"] == orders[0][1]["correlation_id"]
    assert paid["meta"]["actor"] == "upstream:orders"
    refund = m1_events[types.index("OrderRefunded")]
    assert (refund["data"]["order_id"], refund["data"]["amount_fen"]) == ("O-1", 100_000)
    m2_types = [decode_event(r.value)["type"] for r in member_topic if r.key == m2.encode()]
    assert m2_types == ["MemberRegistered", "OrderPaid", "OrderCancelled"]

    # personal data travels sealed; the plain text is on no topic
    registered = m1_events[0]
    profile = registered["data"]["profile"]
    assert set(profile) == {"name", "phone", "email"}
    assert all(v.startswith("pii:v1:") for v in profile.values())
    cipher = bus.system.app.cipher
    assert cipher.open(m1, profile["name"]) == "张伟"
    for record in records:
        for secret in ("张伟", "+8613800138000", "zhang.wei@example.cn", "zw@example.cn"):
            assert secret.encode() not in record.value

    # an erased member stays erased on the bus
    bus.send(*upstream("ErasureRequested", m1, "2025-03-05T09:00:00+08:00", requested_by="member"))
    bus.consume(consumer, 8)
    assert relay.catch_up() >= 1
    again = [decode_event(r.value) for r in read_topics(bus.bootstrap, [bus.topics.domain("member")])
             if r.key == m1.encode()]
    assert again[-1]["type"] == "PersonalDataErased"
    assert cipher.open(m1, again[0]["data"]["profile"]["name"]) == "[erased]"


# -- the relay on its own ---------------------------------------------------------------


class _FailingProducer:
    """A producer whose broker never acknowledges."""

    class _Future:
        def get(self, timeout=None):
            from kafka.errors import KafkaTimeoutError
            raise KafkaTimeoutError("no acknowledgement")

    def send(self, *args, **kwargs):
        return self._Future()

    def flush(self, timeout=None):
        pass


def test_relay_resumes_with_no_gap_and_duplicates_keep_their_id(bus):
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from infra.service_layer.upstream import apply_input, parse

    at = datetime(2025, 3, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    for n in range(12):
        _, record = upstream("OrderPaid", f"{bus.prefix}-M{n % 3}", (at + timedelta(minutes=n)).isoformat(),
                             order_id=f"O-{n}", amount_fen=1000 + n, currency="CNY")
        apply_input(bus.system.engine, parse("orders", record, "OrderPaid"))
    logged = bus.log()

    # the broker does not acknowledge: nothing counts as published
    failing = Relay(bus.system.app, _FailingProducer(), bus.topics, batch=5)
    with pytest.raises(RelayError):
        failing.pump()
    assert failing.recorded_position() == 0

    # acknowledged, then "crash" before the position is written
    crashed = Relay(bus.system.app, bus.producer, bus.topics, batch=5)
    crashed._advance = lambda position: None
    assert crashed.pump() == 5
    assert crashed.recorded_position() == 0

    # a new relay resumes from the recorded position: the first batch again, then the rest
    relay = Relay(bus.system.app, bus.producer, bus.topics, batch=5)
    assert relay.catch_up() == len(logged)
    assert relay.recorded_position() == logged[-1]["position"]
    assert relay.catch_up() == 0

    records = read_topics(bus.bootstrap, bus.topics.domain_topics)
    published = by_event_id(records)
    assert set(published) == {e["id"] for e in logged}          # no gap
    doubled = {i: rs for i, rs in published.items() if len(rs) > 1}
    assert len(doubled) == 5                                      # the unrecorded batch, once more
    for copies in doubled.values():
        assert len({(r.key, r.value) for r in copies}) == 1       # same id, same bytes
    # per key, first sightings are in version order
    for key in {r.key for r in records}:
        seen, versions = set(), []
        for r in records:
            h = header_map(r.headers)
            if r.key == key and h["event_id"] not in seen:
                seen.add(h["event_id"])
                versions.append(decode_event(r.value)["version"])
        assert versions == sorted(versions)
