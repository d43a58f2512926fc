"""Avro schemas of the bus -> Arrow schemas, and Avro records -> Arrow rows.

The columns an analyst loads are the fields a bus consumer decodes, typed
the same way, so a Parquet file and a topic never disagree:

* ``long`` with ``timestamp-micros`` -> ``timestamp[us, UTC]`` (its zone
  stays in the sibling ``<name>_zone`` string column, as on the bus);
* ``boolean``/``long``/``double``/``string`` -> ``bool``/``int64``/``float64``/``string``;
  an ``enum`` -> ``string``; ``["null", T]`` -> a nullable ``T``;
* ``record`` -> ``struct``; ``array`` -> ``list``; ``map`` -> ``map<string, T>``;
* the free-form ``vip.domain.Value`` (recursive, so no Arrow type holds it)
  -> its JSON text, with instants as ISO-8601 strings.

Personal values are sealed in the events (``pii:v1:...``) and stay sealed.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

VALUE = "vip.domain.Value"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_PRIMITIVE = {"boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(), "float": pa.float32(),
              "double": pa.float64(), "string": pa.string(), "bytes": pa.binary()}


def arrow_schema(avro: dict) -> pa.Schema:
    """The Arrow schema of a top-level Avro record schema."""
    named: dict[str, Any] = {}
    fields = [pa.field(f["name"], *_type(f["type"], avro.get("namespace", ""), named))
              for f in avro["fields"]]
    return pa.schema(fields)


def _full(name: str, namespace: str) -> str:
    return name if "." in name else f"{namespace}.{name}" if namespace else name


def _type(t: Any, ns: str, named: dict) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) of an Avro type; named types are remembered as they are defined."""
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        if len(rest) == 1:
            return _type(rest[0], ns, named)[0], True
        return pa.string(), True  # an open union: its JSON text
    if isinstance(t, str):
        if t in _PRIMITIVE:
            return _PRIMITIVE[t], False
        if t == "null":
            return pa.null(), True
        return named[_full(t, ns)], False
    kind = t["type"]
    if kind in _PRIMITIVE and t.get("logicalType") == "timestamp-micros":
        return pa.timestamp("us", tz="UTC"), False
    if kind in _PRIMITIVE:
        return _PRIMITIVE[kind], False
    if kind == "enum":
        named[_full(t["name"], t.get("namespace", ns))] = pa.string()
        return pa.string(), False
    if kind == "array":
        return pa.list_(pa.field("item", *_type(t["items"], ns, named))), False
    if kind == "map":
        return pa.map_(pa.string(), pa.field("value", *_type(t["values"], ns, named))), False
    if kind == "record":
        full = _full(t["name"], t.get("namespace", ns))
        if full == VALUE:
            named[full] = pa.string()
            return pa.string(), False
        inner = t.get("namespace", full.rsplit(".", 1)[0])
        named[full] = pa.struct([pa.field(f["name"], *_type(f["type"], inner, named))
                                 for f in t["fields"]])
        return named[full], False
    raise ValueError(f"no Arrow type for the Avro type {kind!r}")


_NAMED: dict[str, dict] = {}


def row(avro: dict, record: dict) -> dict:
    """An Avro record (as ``schemas.events.to_record`` makes it) as Arrow-ready Python values."""
    ns = avro.get("namespace", "")
    named = _NAMED.get(avro["name"])
    if named is None:  # every named type the schema defines, wherever a value may first use it
        named = _NAMED[avro["name"]] = {}
        for f in avro["fields"]:
            _register(f["type"], ns, named)
    return {f["name"]: _value(f["type"], record.get(f["name"]), ns, named) for f in avro["fields"]}


def _value(t: Any, v: Any, ns: str, named: dict) -> Any:
    if v is None:
        _register(t, ns, named)
        return None
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        if len(rest) == 1:
            return _value(rest[0], v, ns, named)
        return json.dumps(_plain(v), ensure_ascii=False, sort_keys=True)
    if isinstance(t, str):
        if t in _PRIMITIVE:
            return v
        return _value(named[_full(t, ns)], v, ns, named)
    kind = t["type"]
    if kind in _PRIMITIVE and t.get("logicalType") == "timestamp-micros":
        return _EPOCH + timedelta(microseconds=v)
    if kind in _PRIMITIVE or kind == "enum":
        _register(t, ns, named)
        return v
    if kind == "array":
        return [_value(t["items"], x, ns, named) for x in v]
    if kind == "map":
        return [(k, _value(t["values"], x, ns, named)) for k, x in v.items()]
    full = _register(t, ns, named)
    if full == VALUE:
        return json.dumps(_plain(v), ensure_ascii=False, sort_keys=True)
    inner = t.get("namespace", full.rsplit(".", 1)[0])
    return {f["name"]: _value(f["type"], v.get(f["name"]), inner, named) for f in t["fields"]}


def _register(t: Any, ns: str, named: dict) -> str | None:
    """Remember a named type defined inline (a later field may name it), even for a null value."""
    if isinstance(t, list):
        for x in t:
            _register(x, ns, named)
        return None
    if not isinstance(t, dict):
        return None
    kind = t["type"]
    if kind in ("record", "enum"):
        full = _full(t["name"], t.get("namespace", ns))
        named.setdefault(full, t)
        if kind == "record" and full != VALUE:
            inner = t.get("namespace", full.rsplit(".", 1)[0])
            for f in t["fields"]:
                _register(f["type"], inner, named)
        return full
    if kind == "array":
        _register(t["items"], ns, named)
    elif kind == "map":
        _register(t["values"], ns, named)
    return None


def _plain(record: Any) -> Any:
    """A free-form Avro ``Value`` record as plain JSON (instants as ISO-8601 with their zone)."""
    return _branch(record["value"]) if isinstance(record, dict) and set(record) == {"value"} else record


def _branch(v: Any) -> Any:
    # the ``value`` branch of a Value: a primitive, an Instant {at, zone}, or an array/map of Values
    if isinstance(v, dict):
        if set(v) == {"at", "zone"} and isinstance(v["at"], int):
            at = (_EPOCH + timedelta(microseconds=v["at"])).isoformat()
            return f"{at}[{v['zone']}]"
        return {k: _branch(x["value"]) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_branch(x["value"]) for x in v]
    return v
