"""Rebuilding read models from the log: to now, or as of a past instant."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from domain.base import ERASED, SEALED_PREFIX
from infra.progress import bar as _bar
from infra.service_layer.app import VipApp
from infra.service_layer.envelope import envelope
from infra.service_layer.fastpath import paths_of
from infra.service_layer.runner import ViewSet, apply
from infra.stores.keyed import STAGING, KeyedStore
from infra.stores.readstore import MemoryStore
from projections.common import iso

log = logging.getLogger("vip.replay")

PAGE = 2000
STAGE_ROWS = 5000  # a rebuild writes its staging rows out at this many dirty rows


def fold_log(app: VipApp, store, views, start: int = 0, stop: int | None = None,
             until: datetime | None = None, progress=None, every=None) -> tuple[int, int, datetime | None]:
    """Fold the log's events after ``start`` (up to position ``stop`` and instant ``until``) into
    ``store`` with lean envelopes; ``every(count)`` is called after each page.

    Returns (events folded, last position, latest timestamp).
    """
    with paths_of(app).fold_pause():
        return _fold_pages(app, store, views, start, stop, until, progress, every)


def _fold_pages(app: VipApp, store, views, start: int, stop: int | None, until: datetime | None,
                progress, every) -> tuple[int, int, datetime | None]:
    recorder, mapper = app.recorder, app.mapper
    decode = paths_of(app).stored_envelope
    views = ViewSet(views)
    count, position, latest = 0, start, None
    while stop is None or position < stop:
        limit = PAGE if stop is None else min(PAGE, stop - position)
        page = recorder.select_notifications(position, limit, inclusive_of_start=False)
        for note in page:
            if stop is not None and note.id > stop:
                return count, position, latest
            event = decode(mapper, note)
            if until is not None and event["timestamp"] > until:
                # Each aggregate has its own timeline (DOMAIN.md "Time"): an event of one aggregate
                # stamped after ``until`` may be followed in the log by another's stamped before it.
                continue
            apply(store, views, event)
            position = note.id
            if latest is None or event["timestamp"] > latest:
                latest = event["timestamp"]
            count += 1
        if progress:
            progress(len(page))
        if every:
            every(count)
        if len(page) < limit:
            break  # a short page is the end of the log for now
    return count, position, latest


def replay(app: VipApp, views, until: datetime | None = None, progress: bool = False) -> MemoryStore:
    """Every view folded from the first event up to ``until`` (inclusive), in memory."""
    return replay_counted(app, views, until, progress)[0]


def replay_counted(app: VipApp, views, until: datetime | None = None,
                   progress: bool = False) -> tuple[MemoryStore, int]:
    """As :func:`replay`, with the number of events folded (what ``vip replay --as-of`` reports).

    The count is not the store's position: with a timeline per aggregate, events stamped
    after ``until`` are skipped between folded ones, so the last position folded exceeds it.
    """
    store = MemoryStore()
    for view in views:
        store.view(view.name)
    bar = _bar(app.recorder.max_notification_id(), "replay", progress)
    count, store.position, latest = fold_log(app, store, views, until=until, progress=bar.update)
    store.clock = iso(latest)
    bar.close()
    return store, count


def rebuild_views(app: VipApp, store, views, progress: bool = False) -> int:
    """Rebuild some views alone, from the first event to the store's position; the others stay.

    In a keyed store the new rows are folded under a staging name and put in
    place by one transaction per view (``KeyedStore.swap``) once they reach
    the committed position, so no reader ever sees a view half built; a
    crash leaves only staging rows, dropped by the next rebuild. Returns the
    events folded.
    """
    if not isinstance(store, KeyedStore):
        fresh = MemoryStore()
        count = fold_log(app, fresh, views, stop=store.position)[0]
        for view in views:
            rows = store.view(view.name)
            rows.clear()  # in place: the engine's timer index holds the dict
            rows.update(fresh.view(view.name))
        return count
    pending = {v.name: replace(v, name=v.name + STAGING) for v in views}
    for staged in pending.values():
        store.drop(staged.name)
    bar = _bar(store.committed_position(), "rebuild", progress)

    def stage(_count) -> None:
        for staged in pending.values():
            rows = store.view(staged.name)
            if len(rows.dirty) >= STAGE_ROWS:
                store.stage(rows)

    position = count = 0
    by_name = {v.name: v for v in views}
    while pending:
        target = store.committed_position()
        folded, position, _ = fold_log(app, store, list(pending.values()), start=position, stop=target,
                                       progress=bar.update, every=stage)
        count += folded
        for name in list(pending):
            if store.swap(store.view(pending[name].name), by_name[name], position):
                del pending[name]
    bar.close()
    return count


def serve_stale(app: VipApp, store) -> list:
    """A read-only store's stale views, answered from a replay in memory (never half built).

    Returns the names of the views so served.
    """
    stale = store.stale()
    if not stale:
        return []
    fresh = MemoryStore()
    fold_log(app, fresh, stale, stop=store.position)
    for view in stale:
        log.warning("view %s in the read store is of another version or being rebuilt: answering from "
                    "a replay in memory (`vip rebuild %s` rebuilds it)", view.name, view.name)
        store.rows[view.name] = fresh.view(view.name)
    return [v.name for v in stale]


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
