"""The composition root: builds the whole backend from settings."""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from infra.api.idempotency import IdempotencyStore
from infra.api.keys import ApiKeyStore
from infra.policy_file import load_policy
from infra.service_layer.app import VipApp, utc_now
from infra.service_layer.engine import Engine
from infra.service_layer.fastpath import paths_named
from infra.service_layer.replay import rebuild_views, serve_stale
from infra.service_layer.runner import Runner
from infra.settings import Settings
from infra.stores.pgstore import PostgresReadStore
from infra.stores.leases import schema_lock
from infra.stores.pg_keys import PostgresKeyStore
from infra.stores.pg_shared import is_pg
from infra.stores.pii import KeyStore, PiiCipher
from infra.stores.private import check_private, private_dir, private_file
from infra.stores.readstore import open_read_store
from infra.stores.streamstore import open_stream_store
from infra.stores.viewstore import MemoryStore, StaleStoreError, ViewStore
from projections.views import VIEWS

log = logging.getLogger("vip.bootstrap")


@dataclass
class System:
    """Everything one process needs, built once and closed once."""

    settings: Settings
    app: VipApp
    keys: KeyStore | PostgresKeyStore
    store: ViewStore
    engine: Engine

    @property
    def read_only(self) -> bool:
        return self.engine.read_only

    def close(self) -> None:
        try:
            if not self.read_only:
                self.engine.flush()
        finally:
            self.store.close()
            self.keys.close()
            self.app.close()

    def __enter__(self) -> "System":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build(settings: Settings | None = None, clock: Callable[[], datetime] = utc_now,
          memory_views: bool = False, read_only: bool = False) -> System:
    """Build app, key store, read store and engine; ``memory_views`` keeps views in memory only.

    ``read_only`` (queries) opens every store without writing: the views are
    brought up to the log's end in memory and nothing is ever committed; a
    SQLite data dir with no event store yet answers as an empty log.
    """
    settings = settings or Settings.from_env()
    if read_only and settings.event_store == "sqlite" and not (settings.data_dir / "events.db").exists():
        settings = replace(settings, event_store="memory")
    app, keys = open_app(settings, read_only)
    store = None
    try:
        if read_only and settings.query_views == "streams":
            store, runner = _stream_views(app, settings)
        else:
            store, runner = _embedded_views(app, settings, memory_views, read_only)
        engine = Engine(app, runner, clock, timedelta(seconds=settings.future_tolerance_seconds),
                        read_only=read_only, batch_max_inputs=settings.batch_max_inputs,
                        batch_max_ms=settings.batch_max_ms,
                        aggregate_map_bytes=settings.aggregate_map_mb * 2**20)
    except BaseException:
        # Nothing half-built stays open (the API builds systems per request and per pool slot).
        for part in (store, app, keys):
            try:
                if part is not None:
                    part.close()
            except Exception:
                log.exception("closing a half-built system failed")
        raise
    return System(settings, app, keys, store, engine)


def _embedded_views(app: VipApp, settings: Settings, memory_views: bool, read_only: bool):
    """The read store the log folds into, caught up (in memory when read-only) and current."""
    store = open_views(settings, memory_views, read_only)
    runner = Runner(app, store, VIEWS)
    problem = runner.mismatch()
    if problem:
        aside = None if read_only else store.set_aside()  # another log's rows are kept, not deleted
        log.warning("read store %s does not match the event log (%s): %srebuilding it%s",
                    getattr(store, "path", "(memory)"), problem, f"set aside as {aside}; " if aside else "",
                    " in memory" if read_only else "")
        runner.restart()
    elif read_only:
        serve_stale(app, store)
    elif store.stale():
        names = [v.name for v in store.stale()]
        log.warning("views %s in the read store are new or of another version: rebuilding them alone",
                    ", ".join(names))
        rebuild_views(app, store, store.stale())
    return store, runner


def _stream_views(app: VipApp, settings: Settings):
    """The stream workers' rows as they stand (``VIP_QUERY_VIEWS=streams``, queries only).

    Their positions are Kafka offsets, so nothing here compares them with the
    log or folds the log into them; rows folded by another version of a view
    are refused, never served (the workers fold the topics again when they
    start with the new version).
    """
    store = open_stream_store(settings, read_only=True, views=VIEWS)
    stored = getattr(store, "versions", {})
    other = sorted(v.name for v in VIEWS if v.name in stored and stored[v.name][0] != v.version)
    if other:
        store.close()
        raise StaleStoreError(
            f"the stream store holds {', '.join(other)} folded by another version of the view: the "
            f"workers rebuild it when they start with this version; until then query the embedded "
            f"views (VIP_QUERY_VIEWS=embedded)")
    runner = Runner(app, store, VIEWS)
    runner.position = app.recorder.max_notification_id() or 0  # nothing of the log is folded in
    return store, runner


def read_store_url(settings: Settings) -> str | None:
    """The PostgreSQL database of the read store: ``VIP_READ_STORE`` if it is a postgresql:// URL,
    else the event store's when that is PostgreSQL (else None: SQLite)."""
    pg = ("postgresql://", "postgres://")
    if settings.read_store and settings.read_store.startswith(pg):
        return settings.read_store
    if not settings.read_store and settings.event_store.startswith(pg):
        return settings.event_store
    return None


def open_views(settings: Settings, memory_views: bool = False, read_only: bool = False) -> ViewStore:
    """The read store the settings name: memory, PostgreSQL, or SQLite (``read.db``)."""
    if memory_views or settings.event_store in ("memory", "popo"):
        return MemoryStore()
    url = read_store_url(settings)
    if url:
        return PostgresReadStore(url, read_only, VIEWS)
    return open_read_store(settings.path(settings.read_store, "read.db"), read_only, VIEWS)


def open_key_store(settings: Settings, read_only: bool = False) -> KeyStore | PostgresKeyStore:
    """The per-member keys, decided here for every process: ``VIP_KEY_STORE`` when it names a
    postgresql:// URL or a file; else, with a PostgreSQL event store, its table
    ``vip_member_keys`` (shared by every process, whatever its data dir: the data dir's
    ``keys.db`` of an older deployment is moved into it once); else ``<data dir>/keys.db``.
    Opened on first use, never made beside a log that holds events (see :func:`open_app`)."""
    url = settings.key_store if is_pg(settings.key_store) else (
        None if settings.key_store else settings.shared_url)
    if url:
        return PostgresKeyStore(url, create=False, read_only=read_only, legacy=settings.data_dir / "keys.db")
    return KeyStore(settings.path(settings.key_store, "keys.db"), create=False, read_only=read_only)


def open_api_keys(settings: Settings) -> ApiKeyStore:
    """The API keys: with a PostgreSQL event store its table ``vip_api_keys`` (every ``vip api``
    shares them; the data dir's ``api_keys.db`` of an older deployment is moved in once),
    else ``<data dir>/api_keys.db``."""
    legacy = settings.data_dir / "api_keys.db"
    if settings.shared_url:
        return ApiKeyStore(settings.shared_url, legacy=legacy)
    private_dir(settings.data_dir)
    return ApiKeyStore(legacy)


def open_idempotency(settings: Settings) -> IdempotencyStore:
    """The Idempotency-Key records: with a PostgreSQL event store its table ``vip_idempotency``
    (a repeat sent to another ``vip api`` is answered from the record), else
    ``<data dir>/idempotency.db``."""
    return IdempotencyStore(settings.shared_url or settings.data_dir / "idempotency.db")


def open_app(settings: Settings | None = None, read_only: bool = False) -> tuple[VipApp, KeyStore]:
    """The event-store application and its key store alone (no read store, no engine): the relay's needs.

    Close both when done (``app.close()``, ``keys.close()``).
    """
    settings = settings or Settings.from_env()
    policy = load_policy(settings.policy_file)
    keys = open_key_store(settings, read_only)
    if not read_only:
        private_dir(settings.data_dir)
        if settings.event_store == "sqlite":
            private_file(settings.data_dir / "events.db")  # before SQLite makes it (and its -wal, -shm)
    elif settings.event_store == "sqlite":
        check_private(settings.data_dir / "events.db")
    app = _open_app(policy, PiiCipher(keys), settings, read_only)
    if not read_only and not app.recorder.max_notification_id():
        # A new log: its key store is made now, so from the first event on a
        # missing key store is noticed instead of replaced.
        keys.create = True
        keys.ensure()
    return app, keys


def _open_app(policy, cipher: PiiCipher, settings: Settings, read_only: bool) -> VipApp:
    """The application; its tables are made under the schema lock (processes take turns)."""
    if read_only:
        immutable = settings.event_store == "sqlite" and _needs_immutable(settings.data_dir / "events.db")
        return VipApp(policy, cipher, env=settings.eventsourcing_env(read_only, immutable=immutable),
                      snapshot_interval=settings.snapshot_interval, paths=_paths(settings))
    with schema_lock(settings.event_store):
        return VipApp(policy, cipher, env=settings.eventsourcing_env(read_only),
                      snapshot_interval=settings.snapshot_interval, paths=_paths(settings))


def _paths(settings: Settings):
    """The fast paths around the library, or its own path (``VIP_LIBRARY_PATH=1``)."""
    return paths_named("library" if settings.library_path else "fast")


def _needs_immutable(path: Path) -> bool:
    """True for a WAL database SQLite cannot open read-only here (it cannot make its lock file
    in a directory this process may not write) while no write-ahead log is pending: the file
    is then all there is, and nobody can be writing it."""
    db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA journal_mode").fetchone()
        return False
    except sqlite3.OperationalError:
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size:
            raise
        return True
    finally:
        db.close()
