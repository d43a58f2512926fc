"""The event store's transcoder: the library's JSON transcoder, encoding with orjson.

:class:`FastJSONTranscoder` is a :class:`eventsourcing.persistence.JSONTranscoder`
(the same ``register(transcoding)`` protocol, the same ``{"_type_": name,
"_data_": ...}`` wrapping of registered types) whose bytes are those the
library's transcoder writes: compact separators, non-ASCII kept, dict order
kept. Stored events stay readable by the library's own mapper and transcoder,
and the library's stored events by this one (``tests/test_fast_transcoder.py``).

Where orjson would write other bytes, the library's own encoder does the work
instead (the fallback keeps the library's errors too): a dict key that is not a
string, an int outside 64 bits, a float that ``repr`` and orjson print
differently (NaN, infinities, below 1e-4, from 1e16), a type neither JSON nor a
registered transcoding knows (a ``str`` or ``dict`` subclass, an enum, a date),
a datetime whose zone is not a fixed whole-minute offset. Reading is the
library's own decoder (faster here than orjson plus unwrapping in Python).

Why: the library's encoder calls back into Python for every datetime (an
``OrderPaid`` carries four) and ``isoformat`` was a third of mapping an
event; here orjson formats the datetime inside its wrapper, in the same ISO form.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding

_MINUTE = timedelta(minutes=1)


class _Fallback(Exception):
    """orjson would not write the library's bytes for this object: the library encodes it."""


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder with orjson encoding (the same bytes)."""

    def __init__(self) -> None:
        super().__init__()
        self._datetime_name: str | None = None   # the wrapper name when datetimes are DatetimeAsISO

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        if transcoding.type is datetime:
            self._datetime_name = transcoding.name if type(transcoding) is DatetimeAsISO else None

    # -- encoding ---------------------------------------------------------------------

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._prepare(obj))
        except (_Fallback, orjson.JSONEncodeError):
            return super().encode(obj)

    def _prepare(self, o: Any) -> Any:
        """``o`` with every registered type wrapped as the library wraps it (a copy: the
        event's own dicts are never changed)."""
        tp = type(o)
        if tp is str or tp is int or tp is bool or o is None:
            return o
        if tp is dict:
            out = {}
            for key, value in o.items():
                if type(key) is not str:
                    raise _Fallback
                vt = type(value)
                out[key] = value if vt is str or vt is int or value is None else self._prepare(value)
            return out
        if tp is list or tp is tuple:
            return [self._prepare(value) for value in o]
        if tp is float:
            if o == 0.0 or (math.isfinite(o) and 1e-4 <= abs(o) < 1e16):
                return o
            raise _Fallback
        if tp is datetime and self._datetime_name is not None and _iso_like(o):
            # orjson writes these as isoformat() does; it formats them in C
            return {"_type_": self._datetime_name, "_data_": o}
        transcoding = self.types.get(tp)
        if transcoding is None:
            raise _Fallback
        return {"_type_": transcoding.name, "_data_": self._prepare(transcoding.encode(o))}

    # Decoding stays the library's: its C scanner calls the object hook per dict, which measured
    # 6 us an event against 11 us for orjson.loads and a walk in Python to unwrap the types.


def _iso_like(at: datetime) -> bool:
    """True when orjson writes ``at`` exactly as ``at.isoformat()`` does: no zone, or a fixed
    offset of whole minutes (``isoformat`` adds seconds to an offset that has them)."""
    zone = at.tzinfo
    if zone is None:
        return True
    if type(zone) is not timezone:
        return False
    offset = zone.utcoffset(None)
    return offset % _MINUTE == timedelta(0)
