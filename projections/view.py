"""The shape every read model has: which rows an event touches, and how."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from eventsourcing.domain import DomainEvent

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
    ``types`` (optional) are the event types whose fold can change a row:
    any other event is skipped before ``keys`` is asked (a replay's events
    are mostly orders, which most views never fold); None = every event.
    """

    name: str
    keys: KeysFn
    fold: FoldFn
    version: int = 1
    index: IndexFn | None = None
    types: frozenset | None = None


def by_aggregate(aggregate: str) -> KeysFn:
    """Rows keyed by the business id of one aggregate type."""
    def keys(event: dict) -> list:
        return [event["key"]] if event["aggregate"] == aggregate else []
    return keys


def event_types(aggregate: type) -> frozenset:
    """The names of every event type of an aggregate class (its own and inherited)."""
    return frozenset(name for name in dir(aggregate)
                     if isinstance(getattr(aggregate, name), type)
                     and issubclass(getattr(aggregate, name), DomainEvent))
