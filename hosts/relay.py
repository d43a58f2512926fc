"""``vip relay``: the relay alone in one process (``vip serve`` runs it with the rest).

The relay itself is :class:`infra.kafka.relay.Relay`; this host waits for the
relay lease (PostgreSQL: one relay publishes at a time), opens the store and
the producer from settings, publishes until SIGTERM, then flushes and exits.
"""
from __future__ import annotations

import time
from typing import Callable

from infra.bootstrap import open_app
from infra.kafka.bus import Topics, make_producer
from infra.kafka.relay import Relay, RelayLeader, StopFlag
from infra.logs import setup_logging
from infra.settings import Settings
from infra.stores.leases import relay_lease


def run_relay(settings=None, *, batch: int = 500, idle: float = 0.05, stop: StopFlag | None = None,
              echo: Callable[[str], None] | None = None) -> int:
    """The ``vip relay`` process: publish until SIGTERM, then flush and exit."""
    settings = settings or Settings.from_env()
    topics = Topics.from_settings(settings)
    flag = None if stop else StopFlag().install()
    stop = stop or flag
    lease = relay_lease(settings)
    waiting = False
    while lease is not None and not lease.acquire():
        # Another relay publishes (PostgreSQL: one at a time); take over when it stops.
        if echo and not waiting:
            echo("relay: another process holds the relay lease; waiting to take over")
        waiting = True
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if stop():
                return 0
            time.sleep(0.1)
    app, keys = open_app(settings)
    producer = make_producer(settings.kafka_bootstrap)
    try:
        relay = Relay(app, producer, topics, batch=batch)
        if echo:
            echo(f"relay: {settings.kafka_bootstrap} from position {relay.position} to "
                 f"{', '.join(topics.domain_topics)}")
        relay.run(stop, idle, leads=RelayLeader(lease, echo, relay).leads)
        if echo:
            echo(f"relay: stopped at position {relay.position} ({relay.published} published)")
        return relay.published
    finally:
        producer.flush(timeout=10)
        producer.close(timeout=10)
        app.close()
        keys.close()
        if lease is not None:
            lease.release()
        if flag is not None:
            flag.restore()


def main() -> None:  # python -m hosts.relay
    setup_logging()
    run_relay(echo=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
