"""Faust stream processors: the read models, built from the domain topics.

The agents call the same folds as the embedded runner (``infra.service_layer.runner.apply``
over ``infra.bootstrap.VIEWS``), so both give the same answer. Effectively
once without Kafka transactions or changelog recovery (Tansu cannot do
either): each message's rows, its (topic, partition, offset) and the
aggregate's applied version commit in one SQLite transaction before the
message is acknowledged; a redelivered offset or an already-applied version
(a duplicate the relay published after a crash) changes nothing.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from infra.bootstrap import VIEWS
from infra.kafka.bus import Topics, dead_letter_headers, make_producer
from infra.service_layer.runner import apply
from infra.settings import Settings
from infra.stores.readstore import MemoryStore
from schemas.events import decode_event

log = logging.getLogger("vip.streams")
VERSIONS = "_versions"


class StreamViewStore(MemoryStore):
    """Read-model rows with per-partition offsets and per-aggregate versions, in SQLite."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS rows (view TEXT, key TEXT, data TEXT NOT NULL,"
            " PRIMARY KEY (view, key));"
            "CREATE TABLE IF NOT EXISTS offsets (topic TEXT, partition INTEGER, offset INTEGER NOT NULL,"
            " PRIMARY KEY (topic, partition));")
        self.offsets: dict[tuple, int] = {}
        for view, key, data in self.db.execute("SELECT view, key, data FROM rows"):
            self.view(view)[key] = json.loads(data)
        for topic, partition, offset in self.db.execute("SELECT topic, partition, offset FROM offsets"):
            self.offsets[(topic, partition)] = offset

    def commit_message(self, changed: set, topic: str, partition: int, offset: int) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for view, key in changed:
                row = self.get(view, key)
                if row is None:
                    self.db.execute("DELETE FROM rows WHERE view = ? AND key = ?", (view, key))
                else:
                    self.db.execute("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)",
                                    (view, key, json.dumps(row, separators=(",", ":"))))
            self.db.execute("INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)", (topic, partition, offset))
        self.offsets[(topic, partition)] = offset

    def close(self) -> None:
        self.db.close()


def process(store: StreamViewStore, views, value: bytes, topic: str, partition: int, offset: int) -> str:
    """Fold one domain-event message; returns applied, duplicate or redelivered."""
    if offset <= store.offsets.get((topic, partition), -1):
        return "redelivered"
    event = decode_event(value)
    aggregate = f"{event['aggregate']}:{event['key']}"
    applied = (store.get(VERSIONS, aggregate) or {}).get("v", 0)
    changed: set = set()
    outcome = "duplicate"
    if event["version"] > applied:
        if event["version"] != applied + 1:
            log.warning("%s jumps from version %d to %d", aggregate, applied, event["version"])
        changed = apply(store, views, event)
        store.view(VERSIONS)[aggregate] = {"v": event["version"]}
        changed.add((VERSIONS, aggregate))
        outcome = "applied"
    store.commit_message(changed, topic, partition, offset)
    return outcome


def dead_letter(producer, message, reason: str) -> None:
    """A message the folds cannot take goes to ``<topic>.dlq`` with why and where it was."""
    headers = dead_letter_headers(reason, message.headers, topic=message.topic,
                                  partition=message.partition, offset=message.offset)
    producer.send(Topics.dlq(message.topic), key=message.key, value=message.value, headers=headers).get(timeout=30)


def make_app(bootstrap: str, topics: list[str], store: StreamViewStore, views, producer,
             app_id: str = "vip-views"):
    """The Faust app: one agent over the domain topics, folding into ``store``."""
    import faust

    app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                    topic_allow_declare=False, topic_disable_leader=True,
                    consumer_auto_offset_reset="earliest", broker_session_timeout=6.0,
                    broker_heartbeat_interval=1.0)
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")

    @app.agent(source)
    async def fold(stream):
        async for event in stream.events():
            message = event.message
            try:
                process(store, views, message.value, message.topic, message.partition, message.offset)
            except Exception as exc:  # a poison message must not stop the views
                log.exception("cannot fold %s[%d]@%d", message.topic, message.partition, message.offset)
                dead_letter(producer, message, f"{type(exc).__name__}: {exc}")
                store.commit_message(set(), message.topic, message.partition, message.offset)

    return app


def run_streams(settings=None, loglevel: str = "warning") -> None:
    """Run the Faust worker until it is stopped (SIGTERM/SIGINT); views go to streams.db."""
    import faust


    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    topics = Topics.from_settings(settings)
    store = StreamViewStore(streams_path(settings))
    producer = make_producer(settings.kafka_bootstrap)
    app = make_app(settings.kafka_bootstrap, topics.domain_topics, store, VIEWS, producer,
                   app_id=f"{settings.topic_prefix}.views")
    try:
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        producer.close()
        store.close()


def streams_path(settings) -> Path:
    return settings.data_dir / "streams.db"
