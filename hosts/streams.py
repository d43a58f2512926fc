"""``vip streams run``: one stream worker process, folding the domain topics into the stream store.

The Faust app and its folding are in ``consumers.streams`` and
``consumers.stream_fold``; this host takes the worker lease (SQLite: one
worker per store), opens the store and the dead-letter producer, and runs
Faust's worker until SIGTERM.
"""
from __future__ import annotations

from consumers.stream_fold import Folder
from consumers.streams import make_app
from infra.kafka.bus import Topics, make_producer
from infra.settings import Settings
from infra.stores.streamstore import open_stream_store, worker_lease
from projections.views import VIEWS


def run_streams(settings: Settings | None = None, loglevel: str = "warning") -> None:
    """Run one worker until it is stopped (SIGTERM/SIGINT).

    Raises ``LeaseHeldError`` when another worker holds the SQLite store.
    """
    import faust

    settings = settings or Settings.from_env()
    lease = worker_lease(settings)
    try:
        store = open_stream_store(settings, views=VIEWS)
        producer = make_producer(settings.kafka_bootstrap)
        folder = Folder(store, VIEWS)
        app = make_app(settings, Topics.from_settings(settings).domain_topics, folder, producer,
                       app_id=f"{settings.topic_prefix}.views")
        try:
            faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
        finally:
            producer.close()
            store.close()
    finally:
        if lease:
            lease.release()
