"""Avro schema compatibility, implemented from the spec's schema resolution rules.

``check_compatible(writer, reader)`` answers "can a reader using ``reader``
decode every datum written with ``writer``?" and returns the problems found
(an empty list means compatible).  Rules (Avro spec, "Schema Resolution"):

* primitives must be equal or a promotion: int -> long/float/double,
  long -> float/double, float -> double, string <-> bytes;
* records/enums/fixed must have the same unqualified name, or the writer's
  name must be one of the reader's ``aliases``; fixed sizes must be equal;
* record fields are matched by name (or a reader field's ``aliases``); writer
  fields the reader lacks are ignored; a reader field the writer lacks must
  have a ``default``;
* enum: every writer symbol must be a reader symbol unless the reader enum
  has a ``default`` symbol;
* arrays/maps: items/values are resolved recursively;
* unions: every branch of a writer union must be readable; a non-union
  writer is resolved against the *first* reader-union branch that matches it
  (as the spec says and as fastavro, our decoder, does) -- not just any
  branch that would be compatible.

Logical types are ignored, as in the spec (resolution uses the underlying
type).  Schemas may be given as JSON objects (``.avsc`` content), JSON text,
or fastavro-parsed schemas.

This module only depends on fastavro (a runtime dependency); the tests
cross-check it against the reference ``avro`` package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastavro.schema import parse_schema

__all__ = ["check_compatible", "check_full_transitive", "PROMOTIONS"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_COMPLEX = frozenset({"record", "error", "enum", "fixed", "array", "map"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})

#: writer type -> reader types it can be promoted to.
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


def _strip_fastavro(schema: Any) -> Any:
    """Copy of ``schema`` without fastavro's bookkeeping keys."""
    if isinstance(schema, dict):
        return {
            k: _strip_fastavro(v)
            for k, v in schema.items()
            if not (isinstance(k, str) and k.startswith("__"))
        }
    if isinstance(schema, list):
        return [_strip_fastavro(s) for s in schema]
    return schema


def _load(schema: Any, role: str) -> tuple[Any, dict[str, Any]]:
    if isinstance(schema, (bytes, bytearray)):
        schema = schema.decode("utf-8")
    if isinstance(schema, str) and schema.strip()[:1] in ("{", "[", '"'):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{role} schema is not valid JSON: {exc}") from exc
    named: dict[str, Any] = {}
    try:
        parsed = parse_schema(_strip_fastavro(schema), named_schemas=named)
    except Exception as exc:
        raise ValueError(f"invalid {role} schema: {exc}") from exc
    return parsed, named


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        kind = schema["type"]
        return "record" if kind == "error" else kind
    return schema


def _describe(schema: Any) -> str:
    if isinstance(schema, list):
        return "[" + ", ".join(_describe(s) for s in schema) + "]"
    if isinstance(schema, dict):
        kind = _kind(schema)
        if kind in _NAMED:
            return f"{kind} {schema['name']}"
        if kind == "array":
            return f"array<{_describe(schema['items'])}>"
        if kind == "map":
            return f"map<{_describe(schema['values'])}>"
        return kind
    return str(schema)


def _split(fullname: str) -> tuple[str, str]:
    namespace, _, short = fullname.rpartition(".")
    return namespace, short


class _Checker:
    def __init__(self, writer_named: dict[str, Any], reader_named: dict[str, Any]) -> None:
        self.w_named = writer_named
        self.r_named = reader_named
        self.problems: list[str] = []
        self._seen: set[tuple[int, int]] = set()

    # -- helpers --

    @staticmethod
    def _deref(schema: Any, named: dict[str, Any]) -> Any:
        for _ in range(100):  # {"type": {"type": ...}} nesting; names -> definitions
            if isinstance(schema, dict):
                inner = schema.get("type")
                if isinstance(inner, str) and inner in _COMPLEX:
                    return schema
                schema = inner
            elif isinstance(schema, str) and schema not in PRIMITIVES:
                try:
                    return named[schema]
                except KeyError:
                    raise ValueError(f"unknown named type {schema!r}") from None
            else:
                return schema
        raise ValueError("schema nesting too deep")  # pragma: no cover

    def _w(self, schema: Any) -> Any:
        return self._deref(schema, self.w_named)

    def _r(self, schema: Any) -> Any:
        return self._deref(schema, self.r_named)

    def _add(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '<root>'}: {message}")

    @staticmethod
    def _names_match(writer: dict[str, Any], reader: dict[str, Any]) -> bool:
        w_full = writer["name"]
        r_full = reader["name"]
        _, w_short = _split(w_full)
        r_namespace, r_short = _split(r_full)
        if w_short == r_short:
            return True
        aliases = reader.get("aliases") or []
        qualified = {a if "." in a or not r_namespace else f"{r_namespace}.{a}" for a in aliases}
        return w_full in qualified or w_full in aliases or w_short in aliases

    def _matches(self, writer: Any, reader: Any) -> bool:
        """The spec's shallow "match" used to pick a reader-union branch."""
        writer, reader = self._w(writer), self._r(reader)
        if isinstance(writer, list) or isinstance(reader, list):
            return True  # nested unions are invalid Avro anyway
        wk, rk = _kind(writer), _kind(reader)
        if wk in PRIMITIVES or rk in PRIMITIVES:
            return wk == rk or rk in PROMOTIONS.get(wk, ())
        if wk != rk:
            return False
        if wk == "fixed":
            return writer["size"] == reader["size"] and self._names_match(writer, reader)
        if wk in _NAMED:
            return self._names_match(writer, reader)
        if wk == "array":
            return self._matches(writer["items"], reader["items"])
        if wk == "map":
            return self._matches(writer["values"], reader["values"])
        return False  # pragma: no cover

    # -- the resolution rules --

    def check(self, writer: Any, reader: Any, path: str) -> None:
        writer, reader = self._w(writer), self._r(reader)

        if isinstance(writer, list):
            # Any branch may have been written: each one must be readable.
            for branch in writer:
                self.check(branch, reader, path)
            return

        if isinstance(reader, list):
            for branch in reader:
                if self._matches(writer, branch):
                    self.check(writer, branch, path)
                    return
            self._add(
                path,
                f"writer type {_describe(writer)} matches no branch of reader union {_describe(reader)}",
            )
            return

        wk, rk = _kind(writer), _kind(reader)
        if wk in PRIMITIVES or rk in PRIMITIVES:
            if not (wk == rk or rk in PROMOTIONS.get(wk, ())):
                self._add(
                    path,
                    f"reader type {_describe(reader)} cannot read writer type {_describe(writer)}",
                )
            return
        if wk != rk:
            self._add(
                path,
                f"reader type {_describe(reader)} cannot read writer type {_describe(writer)}",
            )
            return

        key = (id(writer), id(reader))
        if key in self._seen:  # recursive types, or a pair already checked
            return
        self._seen.add(key)

        if wk in _NAMED and not self._names_match(writer, reader):
            self._add(
                path or reader["name"],
                f"reader {wk} {reader['name']} does not match writer {wk} {writer['name']} "
                "(names differ and the reader has no matching alias)",
            )
        if wk == "record":
            self._record(writer, reader, path or reader["name"])
        elif wk == "enum":
            self._enum(writer, reader, path or reader["name"])
        elif wk == "fixed":
            if writer["size"] != reader["size"]:
                self._add(
                    path or reader["name"],
                    f"fixed size differs: writer {writer['size']}, reader {reader['size']}",
                )
        elif wk == "array":
            self.check(writer["items"], reader["items"], f"{path}[]")
        elif wk == "map":
            self.check(writer["values"], reader["values"], f"{path}{{}}")

    def _record(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for reader_field in reader["fields"]:
            name = reader_field["name"]
            writer_field = writer_fields.get(name)
            if writer_field is None:
                for alias in reader_field.get("aliases") or []:
                    if alias in writer_fields:
                        writer_field = writer_fields[alias]
                        break
            field_path = f"{path}.{name}"
            if writer_field is None:
                if "default" not in reader_field:
                    self._add(
                        field_path,
                        f"reader field {name!r} is not in the writer schema and has no default",
                    )
                continue
            self.check(writer_field["type"], reader_field["type"], field_path)

    def _enum(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if not missing:
            return
        default = reader.get("default")
        if default is not None and default in reader["symbols"]:
            return
        self._add(
            path,
            f"writer enum symbols {missing} are unknown to the reader enum, which has no default symbol",
        )


def check_compatible(writer_schema: Any, reader_schema: Any) -> list[str]:
    """Problems preventing ``reader_schema`` from reading data written with
    ``writer_schema``; an empty list means compatible.

    Raises ``ValueError`` if either schema is not a valid Avro schema.
    """
    writer, writer_named = _load(writer_schema, "writer")
    reader, reader_named = _load(reader_schema, "reader")
    checker = _Checker(writer_named, reader_named)
    checker.check(writer, reader, "")
    return list(dict.fromkeys(checker.problems))  # de-duplicate, keep order


def check_full_transitive(
    versions: Sequence[Any],
    labels: Sequence[str] | None = None,
) -> list[str]:
    """FULL_TRANSITIVE: every version can read every other version's data
    (both directions, all pairs).  ``labels`` name the versions in messages
    (default ``v1``, ``v2``, ... by position).
    """
    versions = list(versions)
    if labels is None:
        labels = [f"v{i + 1}" for i in range(len(versions))]
    if len(labels) != len(versions):
        raise ValueError("labels must have one entry per version")
    problems: list[str] = []
    for i in range(len(versions)):
        for j in range(i + 1, len(versions)):
            for w, r in ((i, j), (j, i)):
                for problem in check_compatible(versions[w], versions[r]):
                    problems.append(f"{labels[r]} cannot read {labels[w]} data: {problem}")
    return problems
