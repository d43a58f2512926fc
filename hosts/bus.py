"""Bus commands: ``vip broker``, ``vip topics``, ``vip serve``, ``vip relay``, ``vip consume``, ``vip produce``.

All of them read the same settings as the rest of ``vip`` (``VIP_KAFKA_BOOTSTRAP``,
``VIP_TOPIC_PREFIX``, ``VIP_TOPIC_PARTITIONS``, ``VIP_TOPIC_REPLICATION``,
``VIP_DATA_DIR``, ``VIP_EVENT_STORE``); see infra/kafka/bus.py for the topic names.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace

import click

from consumers.stream_fold import PARKED
from hosts.consume import run_consumer
from hosts.relay import run_relay
from domain.base import InstantError, parse_instant
from hosts.serve import serve
from hosts.streams import run_streams
from infra.cli.common import emit, summarise, when
from infra.cli.tables import print_summary
from infra.dev.broker import Broker, BrokerError
from infra.dev.simulator import Simulator, publish
from infra.kafka.admin import create_all
from infra.kafka.bus import Topics, make_producer
from infra.kafka.relay import StopFlag
from infra.policy_file import load_policy
from infra.service_layer.app import utc_now
from infra.settings import Settings
from infra.stores.leases import LeaseHeldError
from infra.stores.streamstore import StreamStoreError, open_stream_store


def _settings():
    """The settings from the environment; kafka-python's chatter is kept to warnings unless -v."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)
    return Settings.from_env()


@click.command("broker")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9092, show_default=True, type=int)
@click.option("--topics/--no-topics", "with_topics", default=True, show_default=True,
              help="Create the backend's topics once the broker is up.")
def broker_cmd(host, port, with_topics):
    """Run a Kafka-compatible Tansu broker in the foreground (DEVELOPMENT ONLY).

    Memory storage: every topic and message is lost when it stops. Point
    VIP_KAFKA_BOOTSTRAP at the printed address. Ctrl-C or SIGTERM stops it.
    """
    settings = _settings()
    try:
        broker = Broker(cluster_id="vip-dev").start(host=host, port=port)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    stop = StopFlag().install()
    try:
        click.echo(f"broker: Tansu on {broker.bootstrap} (memory storage: development only, "
                   "everything is lost when it stops)")
        click.echo(f"export VIP_KAFKA_BOOTSTRAP={broker.bootstrap}")
        if with_topics:
            settings = replace(settings, kafka_bootstrap=broker.bootstrap)
            created = create_all(settings)
            click.echo(f"topics: created {len(created)}: {', '.join(created)}")
        while not stop() and broker.running:
            time.sleep(0.2)
        if not broker.running:
            raise click.ClickException(f"the broker exited; log:\n{broker.log_tail()}")
    finally:
        broker.stop()
        stop.restore()
    click.echo("broker: stopped")


@click.group("topics")
def topics_grp():
    """The backend's Kafka topics."""


@topics_grp.command("create")
@click.option("--json", "as_json", is_flag=True)
def topics_create(as_json):
    """Create every topic, dead-letter topics included (partitions, replication from settings)."""
    settings = _settings()
    topics = Topics.from_settings(settings)
    try:
        created = create_all(settings, topics)
    except Exception as exc:
        raise click.ClickException(f"cannot create topics on {settings.kafka_bootstrap}: {exc}") from None
    answer = {"bootstrap": settings.kafka_bootstrap, "partitions": settings.topic_partitions,
              "replication": settings.topic_replication, "created": created,
              "existing": [t for t in topics.all() if t not in created]}
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(f"{len(created)} created, {len(answer['existing'])} already there "
                   f"({settings.topic_partitions} partitions, replication {settings.topic_replication})")
        for name in topics.all():
            click.echo(f"  {name}{'  (new)' if name in created else ''}")


@topics_grp.command("list")
def topics_list():
    """The topic names this configuration uses."""
    topics = Topics.from_settings(_settings())
    for name in topics.all():
        click.echo(name)


@click.command("serve")
@click.option("--group", help="Consumer group (default VIP_KAFKA_GROUP or <prefix>.backend).")
@click.option("--tick-seconds", default=5.0, show_default=True, help="How often the scheduler fires due work.")
@click.option("--no-consume", is_flag=True, help="Do not consume the upstream topics.")
@click.option("--no-relay", is_flag=True, help="Do not publish the domain events.")
@click.option("--api-port", type=int, default=0, help="Also serve the HTTP API and console on this port.")
def serve_cmd(group, tick_seconds, no_consume, no_relay, api_port):
    """Relay, consumers, scheduler and embedded projections in one process (SIGTERM drains)."""
    serve(_settings(), group=group, tick_seconds=tick_seconds, consume=not no_consume,
          relay=not no_relay, echo=click.echo, api_port=api_port)


@click.command("relay")
@click.option("--batch", default=500, show_default=True)
def relay_cmd(batch):
    """Publish the event log to the domain topics until SIGTERM (at least once, no gaps)."""
    run_relay(_settings(), batch=batch, echo=click.echo)


@click.command("consume")
@click.option("--group", help="Consumer group (default VIP_KAFKA_GROUP or <prefix>.backend).")
def consume_cmd(group):
    """Consume the upstream order and CRM topics until SIGTERM (exactly-once effect)."""
    stats = run_consumer(_settings(), group=group, echo=click.echo)
    logging.getLogger("vip.consumer").info("done: %s", stats.as_dict())


@click.command("produce")
@click.argument("source", type=click.Choice(["orders", "crm"]))
@click.option("--rate", default=100.0, show_default=True, help="Events per second (0: as fast as possible).")
@click.option("--count", default=1000, show_default=True, help="How many events to publish.")
@click.option("--members", default=500, show_default=True, help="How many distinct members.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same events.")
@click.option("--start", help="Simulated clock start (ISO-8601 with offset); default: the wall clock.")
def produce_cmd(source, rate, count, members, seed, start):
    """Upstream simulator: publish realistic Avro order or CRM events at a chosen rate."""

    settings = _settings()
    topic = Topics.from_settings(settings).source_topic(source)
    at = None
    if start:
        try:
            at = parse_instant(start, "--start")
        except InstantError as exc:
            raise click.BadParameter(str(exc)) from None
    stop = StopFlag().install()
    simulator = Simulator(seed=seed, members=members, start=at, stream=source)
    producer = make_producer(settings.kafka_bootstrap)
    began = time.monotonic()
    try:
        sent = publish(producer, topic, simulator.stream(source, count), rate or None, stop)
    finally:
        producer.close(timeout=10)
        stop.restore()
    took = time.monotonic() - began
    click.echo(f"produce: {sent:,} {source} events to {topic} in {took:.1f}s "
               f"({sent / took if took else 0:.0f}/s)")


@click.group("streams")
def streams():
    """Stream processors (Faust): the read models, built from the domain topics."""


@streams.command("run")
@click.option("--loglevel", default="warning", show_default=True)
def run_cmd(loglevel):
    """Fold the domain topics into the stream store until SIGTERM.

    The store is $VIP_DATA_DIR/streams.db (one worker) or VIP_STREAMS_STORE=postgresql://...
    (run as many workers as the topics have partitions; they share them).
    """
    try:
        run_streams(_settings(), loglevel=loglevel)
    except (LeaseHeldError, StreamStoreError) as exc:
        raise click.ClickException(str(exc)) from None


@streams.command("summary")
@click.option("--as-of", "as_of", help="Time-relative answers at this instant (default now).")
@click.option("--json", "as_json", is_flag=True)
def summary_cmd(as_of, as_json):
    """The read models' summary from the stream store (same shape as `vip demo`), with rows per
    view, the next offset of each partition and the events parked behind a version gap."""
    settings = Settings.from_env()
    try:
        store = open_stream_store(settings, read_only=True)
    except StreamStoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        offsets = store.offsets() if hasattr(store, "offsets") else {}
        if not offsets:
            raise click.ClickException("the stream store holds nothing yet: run `vip streams run` first")
        summary = summarise(store, when(as_of) or utc_now(), load_policy(settings.policy_file))
        summary["rows"] = store.row_counts()
        summary["offsets"] = {f"{t}[{p}]": o for (t, p), o in sorted(offsets.items())}
        summary["parked"] = sum(len(row["events"]) for row in store.view(PARKED).values())
    finally:
        store.close()
    emit(summary, as_json, _print_streams_summary)


def _print_streams_summary(summary: dict) -> None:
    print_summary(summary)
    click.echo("Rows: " + ", ".join(f"{view} {n:,}" for view, n in summary["rows"].items()))
    click.echo("Next offsets: " + ", ".join(f"{tp} {o}" for tp, o in summary["offsets"].items()))
    click.echo(f"Parked behind a version gap: {summary['parked']:,}")
