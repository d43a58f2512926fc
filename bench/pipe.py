"""The bus benchmark's baseline: a plain kafka-python consume -> produce forward pipe.

Each record of the source topic is sent, key, value and headers unchanged, to
the destination topic: no decoding, nothing stored. It is what any consumer
that turns messages into other messages costs on this broker and this client,
so ``bench.bus`` compares the ``vip serve`` pipeline with it.

As a process (the latency baseline)::

    python -m bench.pipe BOOTSTRAP SOURCE DESTINATION     # until SIGTERM
"""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid

from infra.kafka.bus import make_consumer, make_producer


def forward(bootstrap: str, source: str, destination: str, count: int | None, env: dict,
            stop=lambda: False) -> float:
    """Forward ``count`` records (or until ``stop()``); seconds from the first record received
    to the last one acknowledged by the broker."""
    consumer = make_consumer(bootstrap, f"bench-pipe-{uuid.uuid4().hex[:6]}", env)
    producer = make_producer(bootstrap, linger_ms=0 if count is None else 5)
    consumer.subscribe([source])
    seen, first = 0, None
    try:
        while (count is None or seen < count) and not stop():
            for records in consumer.poll(timeout_ms=100).values():
                if first is None:
                    first = time.perf_counter()
                for r in records:
                    producer.send(destination, key=r.key, value=r.value, headers=list(r.headers or []))
                seen += len(records)
            if count is None:
                producer.flush()  # live: hand each poll's records on at once
        producer.flush()
        return time.perf_counter() - (first or time.perf_counter())
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)


def main(argv: list[str] | None = None) -> int:
    bootstrap, source, destination = (argv or sys.argv[1:])[:3]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    env = {"VIP_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIP_KAFKA_HEARTBEAT_MS": "1000"}
    # the consumer settings of `vip serve` (fetch wait from VIP_KAFKA_FETCH_MAX_WAIT_MS, which
    # this dict, not os.environ, must carry): a fair floor
    if os.environ.get("VIP_KAFKA_FETCH_MAX_WAIT_MS"):
        env["VIP_KAFKA_FETCH_MAX_WAIT_MS"] = os.environ["VIP_KAFKA_FETCH_MAX_WAIT_MS"]
    forward(bootstrap, source, destination, None, env, stop=lambda: bool(stopping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
