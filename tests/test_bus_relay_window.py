"""The relay sends without waiting for the broker; its position moves only past acknowledged batches."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from infra.kafka.relay import Relay
from infra.service_layer.upstream import apply_input, parse
from tests.test_bus_flow import bus, by_event_id, read_topics, upstream  # noqa: F401  (bus: fixture)


def _orders(bus, count: int) -> list:
    at = datetime(2025, 3, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    for n in range(count):
        _, record = upstream("OrderPaid", f"{bus.prefix}-M{n % 3}", (at + timedelta(minutes=n)).isoformat(),
                             order_id=f"O-{n}", amount_fen=1000 + n, currency="CNY")
        apply_input(bus.system.engine, parse("orders", record, "OrderPaid"))
    return bus.log()


def test_sent_batches_are_recorded_as_published_only_once_the_broker_acknowledged_them(bus):
    logged = _orders(bus, 12)
    relay = Relay(bus.system.app, bus.producer, bus.topics, batch=5, track_every=3600)
    # every batch handed to the producer, none waited for, no position written while busy
    total = len(logged)
    assert 10 < total <= 20          # four batches of five at most: the window of four never fills
    sent = [relay.send() for _ in range(5)]
    assert sent == [5, 5, min(5, total - 10), max(0, total - 15), 0]
    assert relay.recorded_position() == 0
    relay.settle(wait=True)
    assert relay.published == len(logged) and not relay.in_flight
    assert relay.recorded_position() == logged[-1]["position"]
    published = by_event_id(read_topics(bus.bootstrap, bus.topics.domain_topics))
    assert set(published) == {e["id"] for e in logged}


class _HeldProducer:
    """The real producer whose acknowledgements the test releases (``held``: not yet)."""

    def __init__(self, producer) -> None:
        self.producer, self.held = producer, True

    def send(self, *args, **kwargs):
        future, owner = self.producer.send(*args, **kwargs), self

        class Held:
            @property
            def is_done(self):
                return future.is_done and not owner.held

            def get(self, timeout=None):
                return future.get(timeout=timeout)
        return Held()

    def flush(self, timeout=None):
        self.held = False
        self.producer.flush(timeout=timeout)


def test_a_full_window_sends_nothing_more_and_a_blocking_send_waits_for_the_oldest_batch(bus):
    logged = _orders(bus, 12)
    producer = _HeldProducer(bus.producer)
    relay = Relay(bus.system.app, producer, bus.topics, batch=5, window=1, track_every=3600)
    assert relay.send() == 5
    assert relay.send() == 0 and relay.published == 0      # the loop is not held up: it goes on
    assert relay.recorded_position() == 0
    assert relay.send(block=True) == 5 and relay.published == 5     # the first batch was waited for
    assert relay.recorded_position() == logged[4]["position"]
    assert relay.catch_up() == len(logged) - 10
    assert relay.published == len(logged) and relay.recorded_position() == logged[-1]["position"]
