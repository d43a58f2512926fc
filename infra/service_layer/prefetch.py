"""Load a batch's aggregates in two queries, not two per aggregate (and their view rows in one).

The library's repository loads one aggregate with one query for its latest
snapshot and one for the events after it, each in its own transaction. A
batch whose inputs name members that are not in the write-back map (a store
with more members than the map holds, or members seen for the first time)
paid that per member: 0.18 ms each, a tenth of ingest at 20,000 orders and
the whole difference between 10,000 and 100,000 members in the scaling row.

:func:`load_many` reads the latest snapshot of every id and then every event
after it in one read transaction on SQLite, and reconstructs each aggregate
exactly as the repository does (snapshot, then the events after it, through
the same mapper and projector). Ids with no events come back as ``None``
(known to be absent when the batch began). On other stores it returns
nothing and the batch loads one aggregate at a time as before.

What was read is the committed state when the batch began: a writer that
commits to one of these aggregates before the batch does makes the batch's
insert conflict (same aggregate version), and the batch is redone on fresh
state, as for the receipts the batch looks up at its start.

A bypass of the library's repository: called only through
``infra.service_layer.fastpath`` (its FAST paths), which lists what to
re-check at a library upgrade.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder

CHUNK = 500  # ids per statement (two parameters each, well under SQLite's limit)


def load_many(app, ids: Iterable[UUID], project: Callable) -> dict[UUID, Any]:
    """``{id: aggregate or None}`` for ``ids`` on a SQLite store; ``{}`` on any other store."""
    recorder = app.recorder
    snapshots = getattr(app.snapshots, "recorder", None) if app.snapshots else None
    if not isinstance(recorder, SQLiteAggregateRecorder) or \
            (snapshots is not None and not isinstance(snapshots, SQLiteAggregateRecorder)):
        return {}
    ids = list(dict.fromkeys(ids))
    found: dict[UUID, Any] = {}
    mapper = app.mapper
    with recorder.datastore.transaction(commit=False) as c:
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i:i + CHUNK]
            latest = _latest_snapshots(c, snapshots.events_table_name, chunk) if snapshots else {}
            events = _events_after(c, recorder.events_table_name, chunk, latest)
            for aggregate_id in chunk:
                stored = ([latest[aggregate_id]] if aggregate_id in latest else []) + \
                    events.get(aggregate_id, [])
                found[aggregate_id] = project(None, [mapper.to_domain_event(s) for s in stored]) \
                    if stored else None
    return found


def _latest_snapshots(c, table: str, ids: list[UUID]) -> dict[UUID, StoredEvent]:
    marks = ",".join("?" * len(ids))
    c.execute(f"SELECT s.originator_id, s.originator_version, s.topic, s.state FROM {table} s "
              f"JOIN (SELECT originator_id, MAX(originator_version) AS v FROM {table} "
              f"WHERE originator_id IN ({marks}) GROUP BY originator_id) m "
              f"ON s.originator_id = m.originator_id AND s.originator_version = m.v",
              [i.hex for i in ids])
    return {UUID(row[0]): StoredEvent(UUID(row[0]), row[1], row[2], row[3]) for row in c.fetchall()}


def _events_after(c, table: str, ids: list[UUID], latest: dict) -> dict[UUID, list[StoredEvent]]:
    # one (id, version after) pair per aggregate: the events after its snapshot, or all of them
    pairs = ",".join("(?, ?)" for _ in ids)
    params: list = []
    for aggregate_id in ids:
        snap = latest.get(aggregate_id)
        params += [aggregate_id.hex, snap.originator_version if snap else 0]
    c.execute(f"WITH want(id, after) AS (VALUES {pairs}) "
              f"SELECT e.originator_id, e.originator_version, e.topic, e.state "
              f"FROM want JOIN {table} e ON e.originator_id = want.id AND e.originator_version > want.after "
              f"ORDER BY e.originator_id, e.originator_version", params)
    out: dict[UUID, list[StoredEvent]] = {}
    for row in c.fetchall():
        oid = UUID(row[0])
        out.setdefault(oid, []).append(StoredEvent(oid, row[1], row[2], row[3]))
    return out


def prefetch_rows(runner, aggregate: str, keys: list[str]) -> None:
    """Read, in bulk, the view rows the events of these aggregates will fold into (the keys each
    view gives an event of theirs), so the batch's folds do not read them one by one."""
    for view in runner.views:
        rows = runner.store.view(view.name)
        if not hasattr(rows, "prefetch"):
            continue
        try:
            wanted = [k for key in keys for k in view.keys(
                {"aggregate": aggregate, "key": key, "type": "", "data": {}, "meta": {}})]
        except (KeyError, TypeError):  # a view whose keys need an event's data: read on use
            continue
        if wanted:
            rows.prefetch(wanted)
