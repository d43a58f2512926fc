"""Faust stream processors: the read models, built from the domain topics by N workers.

This module makes the Faust app (:func:`make_app`); the worker process that
runs it is ``hosts.streams`` (``vip streams run``).

The workers of one consumer group share the domain topics' partitions. Each
batch is folded by :class:`consumers.stream_fold.Folder` (the embedded
runner's own folds) and committed with each partition's next offset in one
transaction of the stream store (``infra.stores.streamstore``: SQLite for
one worker, PostgreSQL for any number). Every row belongs to one partition
(rows are keyed by an aggregate or an event id; see ADR 0007), so two
workers never write the same row.

Faust's own committed offsets do not count: a partition is folded from the
offset stored with its rows. On assignment the worker forgets its cached
rows and, once Faust has sought to the Kafka-committed offsets, seeks every
assigned partition to the stored one (the beginning when none); a message
beyond the stored offset is never folded (the consumer is sought back), one
below it is a redelivery. So a lost or fresh store rebuilds from the topics
and a lost Kafka commit changes nothing. No Kafka transactions, no changelogs.
"""
from __future__ import annotations

import asyncio
import logging
import os

from consumers.stream_fold import Batch, Folder
from infra.kafka.bus import Topics, dead_letter_headers
from infra.settings import Settings
from infra.stores.streamstore import ViewVersionsChangedError

log = logging.getLogger("vip.streams")

DLQ_TIMEOUT = 30.0
RESEEK_SECONDS = 2.0  # a seek not answered by a message at its offset by then is made again


class Seeker:
    """Where the consumer must be: the stored offsets, not Faust's (see the module docstring).

    Faust seeks every assigned partition to the group's committed offset in
    ``Consumer.perform_seek`` (after a rebalance, before it resumes the
    flow); :meth:`install` wraps that method so that our seek follows it at
    once, before any message of the new assignment is fetched.
    """

    def __init__(self, app, folder: Folder, topics: list[str]) -> None:
        self.app, self.folder, self.topics = app, folder, set(topics)
        self.sought: dict = {}     # (topic, partition) -> (offset, when)

    def install(self) -> None:
        consumer = self.app.consumer
        if getattr(consumer, "vip_seeker", None) is self:
            return
        faust_seek = consumer.perform_seek

        async def perform_seek() -> None:
            await faust_seek()
            await self.seek_assigned()

        consumer.perform_seek = perform_seek
        consumer.vip_seeker = self

    def assigned(self) -> None:
        self.folder.assigned()
        self.sought.clear()

    async def seek(self, tp: tuple, offset: int) -> None:
        from faust.types import TP

        try:
            await self.app.consumer.seek(TP(*tp), offset)
        except Exception as exc:  # not assigned any more: its new owner folds it
            log.info("cannot seek %s[%d] to %d: %s", tp[0], tp[1], offset, exc)
            return
        self.sought[tp] = (offset, asyncio.get_running_loop().time())

    async def seek_assigned(self) -> None:
        """Seek every assigned partition to its stored offset, with cached rows forgotten."""
        self.assigned()
        assignment = sorted((tp.topic, tp.partition) for tp in self.app.consumer.assignment()
                            if tp.topic in self.topics)
        for tp in assignment:
            await self.seek(tp, self.folder.next_offset(tp))
        log.info("assigned %s", ", ".join(f"{t}[{p}]@{self.folder.next_offset((t, p))}" for t, p in assignment))

    async def seek_back(self, seeks: dict) -> None:
        """Seek partitions the consumer ran ahead on (once per few seconds each)."""
        now = asyncio.get_running_loop().time()
        for tp, offset in seeks.items():
            last = self.sought.get(tp)
            if last and last[0] == offset and now - last[1] < RESEEK_SECONDS:
                continue
            await self.seek(tp, offset)


async def send_dead_letters(producer, batch: Batch, group: str | None = None) -> None:
    """Send the batch's dead letters and wait for the broker's acknowledgement, off the event loop."""
    loop = asyncio.get_running_loop()
    for message, reason in batch.dead:
        headers = dead_letter_headers(reason, message.headers, topic=message.topic,
                                      partition=message.partition, offset=message.offset, group=group)
        future = producer.send(Topics.dlq(message.topic), key=message.key, value=message.value, headers=headers)
        await loop.run_in_executor(None, future.get, DLQ_TIMEOUT)


def make_app(settings: Settings, topics: list[str], folder: Folder, producer, app_id: str):
    """The Faust app: one agent over the domain topics, folding batches into the folder's store."""
    import faust

    # Faust writes a table directory even with memory tables: under the data dir, not the cwd.
    datadir = settings.data_dir / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(app_id, broker=f"kafka://{settings.kafka_bootstrap}", store="memory://", web_enabled=False,
                    datadir=str(datadir),
                    topic_allow_declare=False, topic_disable_leader=True,
                    consumer_auto_offset_reset="earliest", broker_session_timeout=6.0,
                    broker_heartbeat_interval=1.0)
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
    seeker = Seeker(app, folder, topics)
    size, within = max(1, settings.batch_max_inputs), max(0.01, settings.batch_max_ms / 1000)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender, assigned, **kwargs):
        seeker.install()
        seeker.assigned()

    @app.task
    async def install_seeker():
        seeker.install()

    @app.agent(source)
    async def fold(stream):
        async for events in stream.take_events(size, within=within):
            batch = folder.fold_batch([event.message for event in events])
            try:
                await send_dead_letters(producer, batch, app_id)
                folder.commit(batch)
            except ViewVersionsChangedError as exc:  # another worker's code owns the store now
                log.error("%s", exc)
                os._exit(3)
            except Exception as exc:  # a lost partition, a dead-letter or database failure: fold again
                log.warning("batch of %d not committed (%s: %s): folding it again",
                            len(events), type(exc).__name__, exc)
                if batch.generation == folder.generation:
                    try:
                        folder.rollback(batch)
                    except Exception as lost:  # the store is unreachable: stop, a restart resumes from it
                        log.error("stream store unreachable (%s: %s): stopping this worker",
                                  type(lost).__name__, lost)
                        os._exit(3)
            if batch.outcomes["parked"]:
                log.warning("%d events wait for a version gap to fill", batch.outcomes["parked"])
            await seeker.seek_back(batch.seeks)

    return app
