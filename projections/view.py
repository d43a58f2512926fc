"""The shape every read model has: which rows an event touches, and how."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

KeysFn = Callable[[dict], list]
FoldFn = Callable[[dict | None, dict, str], dict | None]


@dataclass(frozen=True)
class View:
    """A named read model: ``keys(event)`` and a pure ``fold(row, event, key)``."""

    name: str
    keys: KeysFn
    fold: FoldFn


def by_aggregate(aggregate: str) -> KeysFn:
    """Rows keyed by the business id of one aggregate type."""
    def keys(event: dict) -> list:
        return [event["key"]] if event["aggregate"] == aggregate else []
    return keys
