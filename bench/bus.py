"""Message-bus benchmark: upstream orders through consumer, aggregates and relay, on a real broker.

Run it from the project root (not part of the test suite)::

    .venv/bin/python -m bench.bus                    # 20 000 orders; 200/s for 20 s
    .venv/bin/python -m bench.bus --orders 5000 --rate 100 --seconds 10 --json

It starts its own memory-only Tansu broker unless ``--bootstrap`` names one,
and works in a fresh temporary data directory (SQLite event and read stores).

1. **Throughput.** ``--orders`` upstream order events (the simulator's mix:
   ~84% paid, ~10% refunds, ~6% cancellations, lognormal amounts, Zipf-like
   members) are published to the orders topic first. Then, in this process:

   * *baseline*: a plain kafka-python group consumer reads the same messages
     (no decoding, nothing stored);
   * *pipeline*: the ``vip serve`` loop (consumer group -> decode -> validate ->
     aggregate -> event store with the tracked position -> read models -> relay
     -> acknowledged on the member topic) handles them.

   Both clocks start at the first record received (the group join is left out)
   and the pipeline's stops when the relay has had the last domain event
   acknowledged. The figure is orders per second and the ratio pipeline/baseline.

2. **Latency.** ``vip serve`` runs as its own process on fresh topics; this
   process publishes orders at ``--rate`` per second for ``--seconds`` and
   reads the member topic; the latency of one order is from its send to the
   arrival of the domain event it caused (matched by the causation id header).
   Reports p50, p90, p99 and max.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kafka import TopicPartition

from consumers.upstream import UpstreamConsumer
from infra.bootstrap import build
from infra.dev.broker import Broker
from infra.dev.simulator import Simulator, publish
from infra.kafka.admin import create_all
from infra.kafka.bus import Topics, header_map, make_consumer, make_producer
from infra.kafka.relay import Relay
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _settings(bootstrap: str, data_dir: Path, prefix: str):
    return Settings.from_env({}, data_dir=data_dir, kafka_bootstrap=bootstrap, topic_prefix=prefix)


def _fresh_topics(bootstrap: str, data_dir: Path):
    settings = _settings(bootstrap, data_dir, "b" + uuid.uuid4().hex[:8])
    topics = Topics.from_settings(settings, env={})
    create_all(settings, topics)
    return settings, topics


def _publish_all(bootstrap: str, topic: str, messages) -> float:
    producer = make_producer(bootstrap)
    started = time.perf_counter()
    publish(producer, topic, messages)
    producer.close(timeout=10)
    return time.perf_counter() - started


def baseline(bootstrap: str, topic: str, count: int, env: dict) -> float:
    """Seconds a plain group consumer takes to read ``count`` messages (from the first one)."""
    consumer = make_consumer(bootstrap, f"bench-plain-{uuid.uuid4().hex[:6]}", env)
    consumer.subscribe([topic])
    seen, first = 0, None
    try:
        while seen < count:
            for records in consumer.poll(timeout_ms=200).values():
                if first is None:
                    first = time.perf_counter()
                seen += len(records)
        return time.perf_counter() - first
    finally:
        consumer.close(autocommit=False)


def pipeline(settings, topics, count: int, env: dict) -> tuple[float, dict]:
    """Seconds the serve loop takes from the first record to the last domain event acknowledged."""
    system = build(settings)
    producer = make_producer(settings.kafka_bootstrap)
    consumer = UpstreamConsumer(system.engine, topics, settings.kafka_bootstrap, producer,
                                group=f"bench-{uuid.uuid4().hex[:6]}", env=env).start()
    relay = Relay(system.app, producer, topics)
    first = None
    try:
        while True:
            handled = consumer.poll_once(100)
            if handled and first is None:
                first = time.perf_counter()
            relay.pump()
            if sum(consumer.stats.counts.values()) >= count:
                relay.catch_up()
                elapsed = time.perf_counter() - first
                break
        return elapsed, {"consumed": consumer.stats.as_dict(), "published": relay.published}
    finally:
        consumer.close()
        producer.close(timeout=10)
        system.close()


def latency(bootstrap: str, work: Path, rate: float, seconds: float, env: dict) -> dict:
    """p50/p99 from an order's send to its domain event's arrival, ``vip serve`` in its own process."""
    settings, topics = _fresh_topics(bootstrap, work / "latency")
    child_env = dict(os.environ, **env, VIP_DATA_DIR=str(settings.data_dir), VIP_EVENT_STORE="sqlite",
                     VIP_KAFKA_BOOTSTRAP=bootstrap, VIP_TOPIC_PREFIX=settings.topic_prefix,
                     PYTHONPATH=str(ROOT))
    log = open(work / "serve.log", "wb")
    serve = subprocess.Popen([sys.executable, "-m", "consumers.service"], cwd=ROOT, env=child_env,
                             stdout=log, stderr=subprocess.STDOUT)
    reader = make_consumer(bootstrap, None, env, fetch_max_wait_ms=20)
    member_topic = topics.domain("member")
    parts = [TopicPartition(member_topic, p) for p in sorted(reader.partitions_for_topic(member_topic) or [])]
    reader.assign(parts)
    reader.seek_to_beginning(*parts)
    producer = make_producer(bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    stop = threading.Event()

    def read():
        while not stop.is_set():
            for records in reader.poll(timeout_ms=50).values():
                now = time.perf_counter()
                for r in records:
                    h = header_map(r.headers)
                    if h.get("event_type") in ("OrderPaid", "OrderRefunded", "OrderCancelled"):
                        arrived.setdefault(h["causation_id"], now)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        # warm up: the serve process joins its group and handles a first order
        sim = Simulator(seed=11, members=2000)
        warm = sim.order()
        producer.send(topics.orders, key=warm.key.encode(), value=warm.encode())
        producer.flush()
        deadline = time.monotonic() + 60
        while warm.record["event_id"] not in arrived:
            if time.monotonic() > deadline or serve.poll() is not None:
                raise RuntimeError(f"serve did not start: {(work / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.05)
        total = int(rate * seconds)
        started = time.perf_counter()
        for n in range(total):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            message = sim.order()
            sent[message.record["event_id"]] = time.perf_counter()
            producer.send(topics.orders, key=message.key.encode(), value=message.encode())
        producer.flush()
        deadline = time.monotonic() + 60
        while len(set(sent) & set(arrived)) < total and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=5)
        reader.close(autocommit=False)
        producer.close(timeout=5)
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
        log.close()
    ms = sorted((arrived[i] - t) * 1000 for i, t in sent.items() if i in arrived)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"offered_rate_per_s": rate, "seconds": seconds, "sent": len(sent), "received": len(ms),
            "p50_ms": round(q[49], 1), "p90_ms": round(q[89], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(ms[-1], 1) if ms else None, "serve_exit_code": code}


def run(args) -> dict:
    env = {"VIP_KAFKA_SESSION_TIMEOUT_MS": "6000", "VIP_KAFKA_HEARTBEAT_MS": "1000"}
    broker = None
    bootstrap = args.bootstrap
    if not bootstrap:
        broker = Broker(cluster_id="vip-bench").start()
        bootstrap = broker.bootstrap
    work = Path(tempfile.mkdtemp(prefix="vip-bench-bus-"))
    try:
        result: dict = {"orders": args.orders, "bootstrap": "tansu (memory, this run)" if broker else bootstrap,
                        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
        settings, topics = _fresh_topics(bootstrap, work / "throughput")
        messages = list(Simulator(seed=args.seed, members=args.members).stream("orders", args.orders))
        result["produce_s"] = round(_publish_all(bootstrap, topics.orders, messages), 2)
        plain = baseline(bootstrap, topics.orders, args.orders, env)
        through, detail = pipeline(settings, topics, args.orders, env)
        result["throughput"] = {
            "plain_consume_per_s": round(args.orders / plain),
            "pipeline_per_s": round(args.orders / through),
            "ratio": round(plain / through, 3),
            "pipeline_s": round(through, 2), "plain_s": round(plain, 2), **detail}
        if args.seconds > 0:
            result["latency"] = latency(bootstrap, work, args.rate, args.seconds, env)
        return result
    finally:
        if broker is not None:
            broker.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


def main(argv=None) -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000, help="orders for the throughput run")
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=200.0, help="offered orders/s for the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run (0: skip)")
    parser.add_argument("--bootstrap", help="use this broker instead of starting Tansu")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    t = result["throughput"]
    print(f"bus throughput, {args.orders} orders ({result['machine']}):")
    print(f"  plain kafka-python consume : {t['plain_consume_per_s']:>8} msg/s")
    print(f"  consume->aggregates->relay : {t['pipeline_per_s']:>8} orders/s  "
          f"(ratio {t['ratio']:.3f}; {t['published']} domain events published)")
    if "latency" in result:
        lat = result["latency"]
        print(f"end-to-end latency at {lat['offered_rate_per_s']:.0f}/s for {lat['seconds']:.0f}s "
              f"({lat['received']}/{lat['sent']} received): p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, "
              f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms")


if __name__ == "__main__":
    main()
