"""``vip serve``: consumers, relay, scheduler and embedded projections in one process.

One loop, one thread, one engine (the API beside it, ``--api-port``, runs its requests on
engines of its own): poll the upstream topics and apply what
came (each batch committed with its position), publish what the log gained
after each batch (the relay, which does not wait for the broker's
acknowledgements but settles them on a later turn), fire what the wall clock says is due (the scheduler), and commit
the read models every second. SIGTERM finishes the message in hand, publishes
what is left within a few seconds, commits and closes; the process exits 0.
"""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Callable

from consumers.upstream import UpstreamConsumer
from hosts.api_server import ApiThread
from infra.api.app import create_app
from infra.audit.schedule import checkpoint_due
from infra.bootstrap import build
from infra.kafka.bus import Topics, group_id, make_producer
from infra.kafka.relay import Relay, RelayError, RelayLeader, StopFlag
from infra.logs import setup_logging
from infra.settings import Settings
from infra.stores.leases import relay_lease, serve_lease

log = logging.getLogger("vip.serve")


def serve(settings=None, *, group: str | None = None, tick_seconds: float = 5.0, consume: bool = True,
          relay: bool = True, stop: Callable[[], bool] | None = None, env: dict | None = None,
          echo: Callable[[str], None] | None = None, system=None, api_port: int = 0,
          api_host: str = "127.0.0.1") -> dict:
    """Run until ``stop()`` (SIGTERM/SIGINT by default); returns what was done.

    With ``api_port`` the HTTP API and console run beside the loop over the same
    store: requests run on engines of their own (``infra.api.engines``), so the
    loop's system is this loop's alone; the API's host lock guards only the loop's
    own turns (and every request over an in-memory store, which opens once).
    """

    settings = settings or Settings.from_env()
    lease = serve_lease(settings)           # SQLite: one serve per data dir, refused before anything starts
    topics = Topics.from_settings(settings, env)
    flag = None if stop else StopFlag().install()
    stop = stop or flag
    own_system = system is None
    system = system or build(settings)
    # No linger: a batch's events go out as soon as it commits (an idle bus does not wait 5 ms
    # per message); under load the producer still batches what queues while it sends.
    producer = make_producer(settings.kafka_bootstrap, linger_ms=0)
    consumer = None
    publisher = Relay(system.app, producer, topics) if relay else None
    leader = RelayLeader(relay_lease(settings), echo, publisher) if relay else None
    api = ApiThread(create_app(system), api_host, api_port) if api_port else None
    guard = api.app.state.lock if api else nullcontext()
    fired = 0
    try:
        if consume:
            consumer = UpstreamConsumer(system.engine, topics, settings.kafka_bootstrap, producer,
                                        group=group or group_id(settings, env), env=env).start()
        if api is not None:
            api.app.state.serving = {"consumer": consumer, "relay": publisher}
            api.start()
            if echo:
                echo(f"serve: API and console on http://{api_host}:{api_port}/console/")
        if echo:
            echo(f"serve: {settings.kafka_bootstrap}; consuming {', '.join(topics.upstream) if consume else '-'}; "
                 f"publishing {', '.join(topics.domain_topics) if relay else '-'}")

        def publish() -> int:
            # Acknowledged batches settle (and the position moves) on a later call.
            if publisher is None or not leader.leads():
                return 0
            try:
                return publisher.send()
            except RelayError as exc:
                log.warning("%s; retrying", exc)
                return 0

        last_tick = 0.0
        while not stop():
            with guard:
                handled = consumer.poll_once(100, stop, after_batch=publish) if consumer else 0
                published = publish()
                if time.monotonic() - last_tick >= tick_seconds:
                    fired += system.engine.tick()   # the scheduler: fires due work, commits views
                    if leader is not None and leader.leads():  # one signer: the relay lease holder
                        checkpoint_due(system.app.recorder, settings.data_dir)
                    last_tick = time.monotonic()
            if not handled and not published and consumer is None:
                time.sleep(0.05)
        if publisher is not None and leader.leads():
            try:
                publisher.catch_up(max_seconds=5)
            except RelayError as exc:
                log.warning("final publish incomplete (%s); the next start resumes", exc)
    finally:
        if api is not None:
            api.stop()
        try:
            if consumer is not None:
                consumer.close()
        finally:
            producer.close(timeout=10)
            system.engine.flush()
            if own_system:
                system.close()
            if leader is not None:
                leader.release()
            if lease is not None:
                lease.release()
            if flag is not None:
                flag.restore()
    result = {"consumed": consumer.stats.as_dict() if consumer else None,
              "published": publisher.published if publisher else 0, "timers_fired": fired}
    if echo:
        echo(f"serve: stopped {result}")
    return result


def main() -> None:  # python -m hosts.serve  (the same as `vip serve`)
    setup_logging()
    serve(echo=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
