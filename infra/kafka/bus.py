"""The message bus: topic names, client factories and small helpers.

Everything that talks to Kafka goes through here, so pointing the backend at
an Apache Kafka cluster instead of the development broker is a change of
``VIP_KAFKA_BOOTSTRAP`` and nothing else.

Topics (``<prefix>`` is ``VIP_TOPIC_PREFIX``, default ``vip``):

* domain events, one topic per aggregate type, written by the relay:
  ``<prefix>.member.events.v1``, ``<prefix>.contract.events.v1``,
  ``<prefix>.complaint.events.v1``;
* upstream input, read by the consumers: ``<prefix>.upstream.orders.v1`` and
  ``<prefix>.upstream.crm.v1`` (or ``VIP_TOPIC_ORDERS`` / ``VIP_TOPIC_CRM``);
* a dead-letter topic ``<topic>.dlq`` beside each upstream topic.

The client defaults are chosen for correctness first: the producer waits for
all in-sync replicas (``acks=all``) and keeps one request in flight, so a
retried batch cannot overtake the next one and each key stays in order; the
consumer never auto-commits (the event store holds the consumed positions).
Neither uses Kafka transactions or the idempotent producer (see
docs/decisions/0003-message-bus.md).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from kafka import KafkaConsumer, KafkaProducer

from infra.settings import Settings


AGGREGATES = ("member", "contract", "complaint")
SOURCES = ("orders", "crm")
DLQ_SUFFIX = ".dlq"

# Headers a dead letter carries besides the original message's own headers.
DLQ_REASON = "dlq_reason"
DLQ_TOPIC = "dlq_original_topic"
DLQ_PARTITION = "dlq_original_partition"
DLQ_OFFSET = "dlq_original_offset"
DLQ_TIMESTAMP = "dlq_original_timestamp"
DLQ_GROUP = "dlq_consumer_group"
DLQ_POSITION = "dlq_log_position"  # the relay's: where in the notification log the event sits


@dataclass(frozen=True)
class Topics:
    """The topic names of one deployment."""

    prefix: str = "vip"
    orders: str = ""
    crm: str = ""
    domain_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.orders:
            object.__setattr__(self, "orders", f"{self.prefix}.upstream.orders.v1")
        if not self.crm:
            object.__setattr__(self, "crm", f"{self.prefix}.upstream.crm.v1")
        names = {a: f"{self.prefix}.{a}.events.v1" for a in AGGREGATES}
        names.update(self.domain_names or {})
        object.__setattr__(self, "domain_names", names)

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None) -> "Topics":
        """Names from the settings' prefix; ``VIP_TOPIC_ORDERS``, ``VIP_TOPIC_CRM`` and
        ``VIP_TOPIC_MEMBER`` / ``_CONTRACT`` / ``_COMPLAINT`` override single names."""
        env = os.environ if env is None else env
        domain = {a: env[f"VIP_TOPIC_{a.upper()}"] for a in AGGREGATES if env.get(f"VIP_TOPIC_{a.upper()}")}
        return cls(settings.topic_prefix, env.get("VIP_TOPIC_ORDERS", ""), env.get("VIP_TOPIC_CRM", ""),
                   domain)

    def domain(self, aggregate: str) -> str:
        """The topic a domain event of ``aggregate`` (member, contract, complaint) goes to."""
        try:
            return self.domain_names[aggregate]
        except KeyError:
            raise ValueError(f"no topic for aggregate {aggregate!r}; known: {', '.join(AGGREGATES)}") from None

    @property
    def domain_topics(self) -> list[str]:
        return [self.domain_names[a] for a in AGGREGATES]

    @property
    def upstream(self) -> dict[str, str]:
        """Upstream topic -> source (``orders`` or ``crm``)."""
        return {self.orders: "orders", self.crm: "crm"}

    def source_topic(self, source: str) -> str:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        return self.orders if source == "orders" else self.crm

    @staticmethod
    def dlq(topic: str) -> str:
        return topic + DLQ_SUFFIX

    @property
    def dlq_topics(self) -> list[str]:
        """Dead letters of every consumed topic: upstream (consumers) and domain (stream processors)."""
        return [self.dlq(t) for t in [*self.upstream, *self.domain_topics]]

    def all(self) -> list[str]:
        """Every topic the backend needs, dead-letter topics included."""
        return self.domain_topics + list(self.upstream) + self.dlq_topics

    def relay_name(self) -> str:
        """The relay's tracking name: a new topic set starts publishing from the beginning."""
        return "relay:" + ",".join(self.domain_topics)


def tracking_name(topic: str, partition: int) -> str:
    """The event store's tracking name for one consumed partition."""
    return f"kafka:{topic}:{partition}"


def group_id(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("VIP_KAFKA_GROUP") or f"{settings.topic_prefix}.backend"


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a whole number of milliseconds") from None


def producer_config(bootstrap: str, **overrides) -> dict:
    """Producer settings: acks=all, one request in flight, no idempotence/transactions."""
    config = dict(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,           # Tansu 0.6 has no producer ids; we dedupe by event id
        max_in_flight_requests_per_connection=1,  # a retry cannot reorder a key's messages
        retries=2_147_483_647,
        delivery_timeout_ms=120_000,
        request_timeout_ms=30_000,
        linger_ms=5,
        batch_size=256 * 1024,
        bootstrap_timeout_ms=10_000,
        client_id="vip-backend",
    )
    config.update(overrides)
    return config


def consumer_config(bootstrap: str, group: str | None, env: Mapping[str, str] | None = None,
                    **overrides) -> dict:
    """Consumer settings: no auto-commit, earliest reset, session timeout from the environment.

    ``VIP_KAFKA_SESSION_TIMEOUT_MS`` (default 10000) and
    ``VIP_KAFKA_HEARTBEAT_MS`` (default a fifth of it) tune group membership;
    a consumer group's first join takes about half the session timeout.
    ``VIP_KAFKA_FETCH_MAX_WAIT_MS`` (default 20) bounds how long the broker
    may hold a fetch: Tansu 0.6 holds a fetch for the full wait even when data
    arrives meanwhile, so a message waits half of it on average (500 ms, the
    Kafka default, gave a median delay of ~130 ms at 100 msg/s). At 50 orders/s
    ``vip serve``'s median from send to domain event was 25-31 ms at 50 ms and
    14.5-16.6 ms at 20 ms (10 ms: 12.5-14 ms); an idle consumer's CPU was 3.4 %
    of a core at 50 ms, 7.3 % at 20 ms, 9.4 % at 10 ms (docs/benchmarks.md, issue 21). Apache
    Kafka answers as soon as data arrives, so there the value only sets how
    often an idle consumer asks.
    """
    env = os.environ if env is None else env
    session = _env_int(env, "VIP_KAFKA_SESSION_TIMEOUT_MS", 10_000)
    config = dict(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",       # never "latest": Tansu 0.6 answers LATEST wrongly
        session_timeout_ms=session,
        heartbeat_interval_ms=_env_int(env, "VIP_KAFKA_HEARTBEAT_MS", max(100, session // 5)),
        max_poll_records=500,
        fetch_max_wait_ms=_env_int(env, "VIP_KAFKA_FETCH_MAX_WAIT_MS", 20),
        bootstrap_timeout_ms=10_000,
        client_id="vip-backend",
    )
    config.update(overrides)
    return config


def make_producer(bootstrap: str, **overrides):
    return KafkaProducer(**producer_config(bootstrap, **overrides))


def make_consumer(bootstrap: str, group: str | None, env: Mapping[str, str] | None = None, **overrides):
    return KafkaConsumer(**consumer_config(bootstrap, group, env, **overrides))



def dead_letter_headers(reason: str, original: Iterable[tuple[str, bytes]] | None = None, *,
                        topic: str | None = None, partition: int | None = None,
                        offset: int | None = None, timestamp: int | None = None,
                        group: str | None = None, log_position: int | None = None,
                        ) -> list[tuple[str, bytes]]:
    """The headers of a dead-lettered message: the original's, then why and where it was.

    The one place the DLQ header set is built (consumer, views, relay); a
    header is left out when its value is not known where the message failed.
    """
    out = list(original or [])
    out.append((DLQ_REASON, reason.encode("utf-8")))
    for name, value in ((DLQ_TOPIC, topic), (DLQ_PARTITION, partition), (DLQ_OFFSET, offset),
                        (DLQ_TIMESTAMP, timestamp), (DLQ_GROUP, group), (DLQ_POSITION, log_position)):
        if value is not None:
            out.append((name, str(value).encode("utf-8")))
    return out


def header_map(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka headers as a dict of text (the last value of a repeated name wins)."""
    return {name: (value or b"").decode("utf-8", "replace") for name, value in (headers or [])}


