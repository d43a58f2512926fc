"""``vip consume``: the upstream consumers alone in one process (``vip serve`` runs them with the rest).

The consumer itself is :class:`consumers.upstream.UpstreamConsumer`; this host
builds the system from settings, runs it until SIGTERM, then drains and exits.
"""
from __future__ import annotations

from typing import Callable

from consumers.upstream import Stats, UpstreamConsumer
from infra.bootstrap import build
from infra.kafka.bus import Topics, group_id, make_producer
from infra.kafka.relay import StopFlag
from infra.logs import setup_logging
from infra.settings import Settings


def run_consumer(settings=None, *, group: str | None = None, stop=None, env: dict | None = None,
                 echo: Callable[[str], None] | None = None) -> Stats:
    """The ``vip consume`` process: consume until SIGTERM, then drain and exit."""

    settings = settings or Settings.from_env()
    topics = Topics.from_settings(settings)
    flag = None if stop else StopFlag().install()
    stop = stop or flag
    group = group or group_id(settings)
    system = build(settings)
    producer = make_producer(settings.kafka_bootstrap)
    consumer = UpstreamConsumer(system.engine, topics, settings.kafka_bootstrap, producer,
                                group=group, env=env)
    try:
        consumer.start()
        if echo:
            echo(f"consume: {settings.kafka_bootstrap} group {group} topics "
                 f"{', '.join(topics.upstream)}")
        consumer.run(stop)
        if echo:
            echo(f"consume: stopped {consumer.stats.as_dict()}")
        return consumer.stats
    finally:
        try:
            consumer.close()
        finally:
            producer.close(timeout=10)
            system.close()
            if flag is not None:
                flag.restore()


def main() -> None:  # python -m hosts.consume
    setup_logging()
    run_consumer(echo=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
