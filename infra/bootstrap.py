"""The composition root: builds the whole backend from settings."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from infra.app import VipApp, utc_now
from infra.engine import Engine
from infra.pii import KeyStore, PiiCipher
from infra.policy_file import load_policy
from infra.readstore import MemoryStore, SqliteReadStore
from infra.runner import Runner
from infra.settings import Settings
from projections.complaints import COMPLAINTS
from projections.contracts import CONTRACTS
from projections.ledger import LEDGER
from projections.members import CURRENT_TIER, TIER_HISTORY
from projections.timers import TIMERS

VIEWS = [CURRENT_TIER, TIER_HISTORY, COMPLAINTS, CONTRACTS, LEDGER, TIMERS]


@dataclass
class System:
    """Everything one process needs, built once and closed once."""

    settings: Settings
    app: VipApp
    keys: KeyStore
    store: MemoryStore
    engine: Engine

    def close(self) -> None:
        self.engine.flush()
        if isinstance(self.store, SqliteReadStore):
            self.store.close()
        self.keys.close()
        self.app.close()

    def __enter__(self) -> "System":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build(settings: Settings | None = None, clock: Callable[[], datetime] = utc_now,
          memory_views: bool = False) -> System:
    """Build app, key store, read store and engine; ``memory_views`` keeps views in memory only."""
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(settings.policy_file)
    keys = KeyStore(settings.path(settings.key_store, "keys.db"))
    app = VipApp(policy, PiiCipher(keys), env=settings.eventsourcing_env())
    if memory_views or settings.event_store in ("memory", "popo"):
        store: MemoryStore = MemoryStore()
    else:
        store = SqliteReadStore(settings.path(settings.read_store, "read.db"))
    engine = Engine(app, Runner(app, store, VIEWS), clock,
                    timedelta(seconds=settings.future_tolerance_seconds))
    return System(settings, app, keys, store, engine)
