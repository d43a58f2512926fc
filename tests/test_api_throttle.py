"""The sign-in throttle's memory is bounded: an address spray cannot grow it."""
from __future__ import annotations

from infra.api.guard import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_failed_sign_ins_from_many_addresses_keep_a_bounded_table_and_the_latest_still_throttled():
    clock = Clock()
    throttle = Throttle(limit=3, window_s=60, clock=clock, max_clients=100)
    for n in range(10_000):
        clock.now += 0.001
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle.failures) == 100
    for _ in range(3):
        throttle.failed("203.0.113.9")
    assert throttle.retry_after("203.0.113.9") > 0
    clock.now += 61
    assert throttle.retry_after("203.0.113.9") == 0


def test_an_address_that_stops_failing_is_forgotten_once_its_window_passed():
    clock = Clock()
    throttle = Throttle(limit=3, window_s=60, clock=clock)
    throttle.failed("198.51.100.7")
    clock.now += 61
    assert throttle.retry_after("198.51.100.7") == 0
    assert "198.51.100.7" not in throttle.failures
