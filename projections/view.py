"""The shape every read model has: which rows an event touches, and how."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

KeysFn = Callable[[dict], list]
FoldFn = Callable[[dict | None, dict, str], dict | None]
IndexFn = Callable[[dict], "str | None"]


@dataclass(frozen=True)
class View:
    """A named read model: ``keys(event)`` and a pure ``fold(row, event, key)``.

    ``version`` changes whenever the fold or the row shape does: a store
    holding rows of another version rebuilds the view alone (``vip rebuild
    VIEW``). ``index(row)`` (optional) is the instant (ISO text) from which
    the row may show in the view's listing query, or None for never: keyed
    stores keep it in an indexed column so listings read only candidates.
    """

    name: str
    keys: KeysFn
    fold: FoldFn
    version: int = 1
    index: IndexFn | None = None


def by_aggregate(aggregate: str) -> KeysFn:
    """Rows keyed by the business id of one aggregate type."""
    def keys(event: dict) -> list:
        return [event["key"]] if event["aggregate"] == aggregate else []
    return keys
