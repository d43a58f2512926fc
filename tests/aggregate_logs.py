"""The event log split by aggregate: what must not depend on how inputs of different aggregates interleave."""
from __future__ import annotations

from collections import defaultdict

from infra.service_layer.envelope import envelope


def logs_by_aggregate(app) -> dict[tuple[str, str], list[tuple]]:
    """(aggregate, business id) -> its events in version order, as comparable tuples
    (type, version, timestamp, data, causation id); sealed profiles are left out (random nonces)."""
    out: dict = defaultdict(list)
    for note in app.recorder.select_notifications(None, 1_000_000):
        env = envelope(app.mapper.to_domain_event(note))
        data = {k: v for k, v in env["data"].items() if k != "profile"}
        out[(env["aggregate"], env["key"])].append(
            (env["type"], env["version"], env["timestamp"], repr(sorted(data.items())),
             env["meta"].get("causation_id")))
    return {key: sorted(events, key=lambda e: e[1]) for key, events in out.items()}
