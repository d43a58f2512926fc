"""Rebuilding read models from the log: to now, or as of a past instant."""
from __future__ import annotations

from datetime import datetime

from domain.base import ERASED, SEALED_PREFIX
from infra.progress import bar as _bar
from infra.service_layer.app import VipApp
from infra.service_layer.envelope import envelope
from infra.service_layer.runner import Runner
from infra.stores.readstore import MemoryStore


def replay(app: VipApp, views, until: datetime | None = None, progress: bool = False) -> MemoryStore:
    """Every view folded from the first event up to ``until`` (inclusive), in memory."""
    store = MemoryStore()
    runner = Runner(app, store, views, page=2000)
    bar = _bar(app.recorder.max_notification_id(), "replay", progress)
    runner.catch_up(until=until, progress=bar.update)
    bar.close()
    return store


def rebuild(system, progress: bool = False) -> int:
    """Drop the read store and fold the whole log into it again."""
    engine = system.engine
    engine.runner.restart()
    bar = _bar(system.app.recorder.max_notification_id(), "rebuild", progress)
    count = engine.runner.catch_up(progress=bar.update)
    bar.close()
    engine.timers.rows = engine.runner.store.view("timers")
    engine.timers.heap.clear()
    engine.timers.refresh(engine.timers.rows.keys())
    engine.runner.touched.clear()
    return count


def history(app: VipApp, kind: str, business_id: str) -> list[dict]:
    """Every event of one aggregate, with personal fields opened (or shown as erased / unreadable).

    A member the log says was erased shows ``[erased]`` whatever the key
    store holds; a value that cannot be opened shows ``[unreadable]``.
    """
    if kind not in ("member", "contract", "complaint"):
        raise ValueError(f"history of {kind!r}? use member, contract or complaint")
    getter = getattr(app, kind)
    aggregate = getter(business_id)
    member_id = business_id if kind == "member" else getattr(aggregate, "member_id", None) or \
        getattr(aggregate, "terms", {}).get("member_id")
    erased = bool(member_id) and _erased_in_log(app, member_id)
    out = []
    for event in app.events.get(aggregate.id):
        env = envelope(event)
        out.append({"version": env["version"], "at": env["timestamp"], "type": env["type"],
                     "actor": env["meta"].get("actor"), "policy_version": env["data"].get("policy_version"),
                     "causation_id": env["meta"].get("causation_id"),
                     "data": _open(app, member_id, env["data"], erased) if member_id else env["data"]})
    return out


def _erased_in_log(app: VipApp, member_id: str) -> bool:
    member = app.find_member(member_id)
    return bool(member is not None and member.erased)


def _open(app: VipApp, member_id: str, value, erased: bool = False):
    if isinstance(value, dict):
        return {k: _open(app, member_id, v, erased) for k, v in value.items()}
    if isinstance(value, list):
        return [_open(app, member_id, v, erased) for v in value]
    if not isinstance(value, str):
        return value
    if erased and value.startswith(SEALED_PREFIX):
        return ERASED
    return app.cipher.open(member_id, value)
