"""Settings from environment variables, with embedded defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlparse


@dataclass(frozen=True)
class Settings:
    """Everything the composition root needs; nothing connects at import time."""

    data_dir: Path = Path(".vip")
    event_store: str = "sqlite"          # sqlite | memory | postgresql://user:pw@host:port/db
    policy_file: str | None = None
    # The per-member keys: default <data_dir>/keys.db, or with a PostgreSQL event store its
    # table vip_member_keys; a path (a SQLite file) or a postgresql:// URL chooses.
    key_store: str | None = None
    read_store: str | None = None        # default: <data_dir>/read.db
    # The stream processors' store: <data_dir>/streams.db (one worker) or a postgresql:// URL (N workers).
    streams_store: str | None = None
    # Where queries read the read models: "embedded" (the read store the log folds into)
    # or "streams" (the stream processors' store, folded from the domain topics).
    query_views: str = "embedded"
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "vip"
    topic_partitions: int = 3
    topic_replication: int = 1
    aggregate_cache: int = 20000
    # The engine's write-back map of aggregates is bounded by this many MB (estimated), not a count:
    # ~27,000 members of a few orders. 256 MB (100,000 warm) measured no faster (docs/benchmarks.md).
    aggregate_map_mb: int = 64
    # How far after the wall clock a command's --at or an upstream
    # occurred_at may lie before it is refused as a typo or a bad clock.
    future_tolerance_seconds: int = 300
    # Every N-th member version is snapshotted (0: never), so a cold load reads < N events.
    snapshot_interval: int = 100
    # A batch of inputs (file ingest, Kafka consumers, the scheduler) is one event-store
    # transaction: it ends after this many inputs or this many milliseconds.
    batch_max_inputs: int = 2000
    batch_max_ms: int = 1000
    # The library's own path for each of its bypasses (infra/service_layer/fastpath.py): slower;
    # for checking the fast paths against it, e.g. after a library upgrade.
    library_path: bool = False
    # PostgreSQL connections an application keeps (0: the library's 5, plus 10 on demand). The API's
    # request engines run one thread each, so they keep one (plus one on demand).
    pg_pool_size: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        env = os.environ if env is None else env
        values = dict(
            data_dir=Path(env.get("VIP_DATA_DIR", ".vip")),
            event_store=env.get("VIP_EVENT_STORE", "sqlite"),
            policy_file=env.get("VIP_POLICY_FILE") or None,
            key_store=env.get("VIP_KEY_STORE") or None,
            read_store=env.get("VIP_READ_STORE") or None,
            streams_store=env.get("VIP_STREAMS_STORE") or None,
            query_views=env.get("VIP_QUERY_VIEWS") or "embedded",
            kafka_bootstrap=env.get("VIP_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            topic_prefix=env.get("VIP_TOPIC_PREFIX", "vip"),
            topic_partitions=int(env.get("VIP_TOPIC_PARTITIONS", "3")),
            topic_replication=int(env.get("VIP_TOPIC_REPLICATION", "1")),
            aggregate_cache=int(env.get("VIP_AGGREGATE_CACHE", "20000")),
            aggregate_map_mb=int(env.get("VIP_AGGREGATE_MAP_MB", "64")),
            future_tolerance_seconds=int(env.get("VIP_FUTURE_TOLERANCE_SECONDS", "300")),
            snapshot_interval=int(env.get("VIP_SNAPSHOT_INTERVAL", "100")),
            batch_max_inputs=int(env.get("VIP_BATCH_MAX_INPUTS", "2000")),
            batch_max_ms=int(env.get("VIP_BATCH_MAX_MS", "1000")),
            library_path=env.get("VIP_LIBRARY_PATH", "") not in ("", "0"),
        )
        values.update(overrides)
        if values["query_views"] not in ("embedded", "streams"):
            raise ValueError(f"VIP_QUERY_VIEWS={values['query_views']!r}: use embedded or streams")
        return cls(**values)

    def eventsourcing_env(self, read_only: bool = False, immutable: bool = False) -> dict:
        """The eventsourcing library's own settings for the chosen event store.

        ``read_only`` (queries): SQLite is opened with a ``mode=ro`` URI and no
        store creates tables, so a query takes no write lock and works on a
        read-only data dir or database role. ``immutable`` opens a SQLite file
        that no process writes (a read-only dir where SQLite cannot make its
        ``-shm`` lock file) without any locking.
        """
        store = self.event_store
        # Cached aggregates are deep-copied on every get (a refused command
        # must not leave a half-changed aggregate behind) and fast-forwarded
        # from the store, so other processes' events are never missed.
        cache = {"AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache)}
        if store in ("memory", "popo"):
            return {"PERSISTENCE_MODULE": "infra.stores.recorders:ReceiptPOPOFactory", **cache}
        if store == "sqlite":
            path = self.data_dir / "events.db"
            mode = "immutable=1" if immutable else "mode=ro"
            name = f"file:{quote(str(path.resolve()))}?{mode}" if read_only else str(path)
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": name,
                    "PROCESS_RECORDER_TOPIC": "infra.stores.recorders:SQLiteReceiptRecorder",
                    "SQLITE_LOCK_TIMEOUT": "30", **cache, **({"CREATE_TABLE": "n"} if read_only else {})}
        if store.startswith(("postgresql://", "postgres://")):
            url = urlparse(store)
            return {**cache, "PERSISTENCE_MODULE": "eventsourcing.postgres",
                    "PROCESS_RECORDER_TOPIC": "infra.stores.recorders:PostgresReceiptRecorder",
                    "POSTGRES_DBNAME": url.path.lstrip("/") or "vip",
                    "POSTGRES_HOST": url.hostname or "127.0.0.1",
                    "POSTGRES_PORT": str(url.port or 5432),
                    "POSTGRES_USER": unquote(url.username or "postgres"),
                    "POSTGRES_PASSWORD": unquote(url.password or ""),
                    # eventsourcing 9.5.6's insert function drops a save's
                    # tracking row and skips the table lock (notification ids
                    # could commit out of order): keep the plain path, and
                    # keep saves small (one command's aggregates) instead.
                    "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
                    **({"POSTGRES_POOL_SIZE": str(self.pg_pool_size), "POSTGRES_MAX_OVERFLOW": "1"}
                       if self.pg_pool_size else {}),
                    **({"CREATE_TABLE": "n"} if read_only else {})}
        raise ValueError(f"VIP_EVENT_STORE={store!r}: use sqlite, memory, or a postgresql:// URL")

    @property
    def shared_url(self) -> str | None:
        """The PostgreSQL database every process of a cluster shares: the event store's when it
        is PostgreSQL (None for the embedded stores, whose state is the data dir's files)."""
        store = self.event_store
        return store if store.startswith(("postgresql://", "postgres://")) else None

    def path(self, value: str | None, default: str) -> Path:
        return Path(value) if value else self.data_dir / default
