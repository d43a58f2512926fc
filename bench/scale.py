"""Scale-out benchmark: 1, 2 and 3 ``vip serve`` processes, then 1 and 2 stream workers.

Run it from the project root (not part of the test suite)::

    .venv/bin/python -m bench.scale                  # 6 000 orders over 600 members
    .venv/bin/python -m bench.scale --orders 2000 --json

It starts a memory-only Tansu broker and a throwaway PostgreSQL 15 cluster
(``infra.dev.postgres``: fsync off, as in the tests), and gives each run
fresh topics (``VIP_TOPIC_PARTITIONS``, 3 by default) and a fresh database.

* **serve, N processes**: N ``vip serve`` processes join one group on the
  PostgreSQL event store; once each has said it is serving, ``--orders``
  upstream orders (after their members' registrations) are published, and
  the clock runs until the event store has recorded every message as
  applied (its tracked positions reach the partitions' ends).
* **streams, W workers**: W ``vip streams run`` processes on a fresh
  PostgreSQL stream store fold the domain topics the serve run filled, until
  the store's offsets reach the topics' ends.

Each row gives the rate, the CPU seconds of every process of the run, of
the broker and of PostgreSQL (all its backends), and the elapsed time: on
a 2-core machine the sum of CPU over elapsed says how much of the machine the
run used, which bounds what a further process can add.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.common import machine
from infra.bootstrap import open_app
from infra.dev.broker import Broker
from infra.dev.cluster import Cluster, applied, cpu_seconds, folded
from infra.dev.postgres import start_pg_cluster
from infra.dev.simulator import Simulator, publish
from infra.kafka.admin import create_all, end_offsets
from infra.kafka.bus import Topics, make_producer
from infra.settings import Settings


def postgres_cpu(data_dir: Path) -> float:
    """CPU seconds of the postmaster and every backend it started (children included)."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    root = None
    for pid in pids:
        try:
            if str(data_dir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                root = pid
                break
        except OSError:
            continue
    if root is None:
        return 0.0
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if pid == root or int(fields[1]) == root:
            ticks = os.sysconf("SC_CLK_TCK")
            # own + waited-for children (backends that ended) of each process
            total += sum(int(f) for f in fields[11:15]) / ticks
    return total


def _cpu_row(cluster: Cluster, broker: Broker, pg_data: Path, before: dict) -> dict:
    used = {name: round(cluster.cpu(name), 2) for name in cluster.members}
    used["broker"] = round(cpu_seconds(broker.pid) - before["broker"], 2)
    used["postgres"] = round(postgres_cpu(pg_data) - before["postgres"], 2)
    return used


def run_serves(n: int, orders: int, members: int, broker: Broker, pg, work: Path) -> tuple[dict, dict]:
    """N serve processes over ``orders`` orders; returns (the row, the env the run used)."""
    prefix = f"s{n}{uuid.uuid4().hex[:6]}"
    url = pg.url_for(pg.create_database(f"scale_{prefix}"))
    env = {"VIP_EVENT_STORE": url, "VIP_STREAMS_STORE": url, "VIP_DATA_DIR": str(work / prefix),
           "VIP_KAFKA_BOOTSTRAP": broker.bootstrap, "VIP_TOPIC_PREFIX": prefix,
           "VIP_KAFKA_SESSION_TIMEOUT_MS": "6000"}
    settings = Settings.from_env(env)
    topics = Topics(prefix)
    create_all(settings, topics)
    sim = Simulator(seed=5, members=members, member_prefix="B")
    registrations = [sim.crm() for _ in range(members)]
    sales = list(sim.stream("orders", orders))
    cluster = Cluster({**os.environ, **env}, work / prefix / "logs")
    app, keys = open_app(settings, read_only=True)
    producer = make_producer(broker.bootstrap)
    try:
        for k in range(1, n + 1):
            cluster.add(f"serve{k}", "serve", "--tick-seconds", "5")
        for k in range(1, n + 1):
            cluster.wait_for(f"serve{k}", "serve: ", 120)
        publish(producer, topics.crm, registrations)
        producer.flush()
        ends = end_offsets(broker.bootstrap, [topics.crm])
        cluster.wait_until(lambda: applied(app, ends), 300, "registrations applied")
        before = {"broker": cpu_seconds(broker.pid), "postgres": postgres_cpu(pg.data_dir)}
        cpu0 = {name: cluster.cpu(name) for name in cluster.members}
        started = time.monotonic()
        publish(producer, topics.orders, sales)
        producer.flush()
        ends = end_offsets(broker.bootstrap, [topics.orders])
        cluster.wait_until(lambda: applied(app, ends), 600, "orders applied")
        elapsed = time.monotonic() - started
        cpu = _cpu_row(cluster, broker, pg.data_dir, before)
        cpu.update({name: round(cpu[name] - cpu0[name], 2) for name in cpu0})
    finally:
        producer.close()
        cluster.stop()
        app.close()
        keys.close()
    return ({"run": f"serve x{n}", "orders": orders, "seconds": round(elapsed, 2),
             "per_second": round(orders / elapsed), "cpu_seconds": cpu,
             "machine_share": round(sum(cpu.values()) / elapsed / (os.cpu_count() or 1), 2)}, env)


def run_workers(w: int, env: dict, broker: Broker, pg, work: Path) -> dict:
    """W stream workers folding the domain topics of a serve run into a fresh stream store."""
    url = pg.url_for(pg.create_database(f"streams_{uuid.uuid4().hex[:8]}"))
    env = {**env, "VIP_STREAMS_STORE": url}
    settings = Settings.from_env(env)
    topics = Topics(settings.topic_prefix)
    ends = end_offsets(broker.bootstrap, topics.domain_topics)
    total = sum(ends.values())
    cluster = Cluster({**os.environ, **env}, work / f"workers{w}-{uuid.uuid4().hex[:4]}")
    before = {"broker": cpu_seconds(broker.pid), "postgres": postgres_cpu(pg.data_dir)}
    started = time.monotonic()
    try:
        for k in range(1, w + 1):
            cluster.add(f"worker{k}", "streams", "run")
        cluster.wait_until(lambda: folded(settings, ends), 600, "domain topics folded")
        elapsed = time.monotonic() - started
        cpu = _cpu_row(cluster, broker, pg.data_dir, before)
    finally:
        cluster.stop()
    return {"run": f"streams x{w}", "events": total, "seconds": round(elapsed, 2),
            "per_second": round(total / elapsed), "cpu_seconds": cpu,
            "machine_share": round(sum(cpu.values()) / elapsed / (os.cpu_count() or 1), 2),
            "note": "includes process start and the group's first join"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=6000)
    parser.add_argument("--members", type=int, default=600)
    parser.add_argument("--serves", default="1,2,3")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    broker = Broker(cluster_id="vip-scale").start()
    pg = start_pg_cluster("vip")
    rows, env = [], None
    try:
        with TemporaryDirectory(prefix="vip-scale-") as tmp:
            work = Path(tmp)
            for n in [int(x) for x in args.serves.split(",") if x]:
                row, env = run_serves(n, args.orders, args.members, broker, pg, work)
                rows.append(row)
                _show(row, args.json)
            for w in [int(x) for x in args.workers.split(",") if x]:
                row = run_workers(w, env, broker, pg, work)
                rows.append(row)
                _show(row, args.json)
    finally:
        pg.stop()
        broker.stop()
    result = {"machine": machine(), "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))


def _show(row: dict, as_json: bool) -> None:
    if not as_json:
        cpu = ", ".join(f"{k} {v}" for k, v in row["cpu_seconds"].items())
        print(f"{row['run']:<12} {row['per_second']:>7}/s  {row['seconds']:>7}s  "
              f"machine {row['machine_share']:.0%}  cpu: {cpu}", flush=True)


if __name__ == "__main__":
    main()
