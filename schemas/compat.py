"""Avro schema compatibility, by Apache Avro's own ``ReaderWriterCompatibilityChecker``.

``check_compatible(writer, reader)`` answers "can a reader using ``reader``
decode every datum written with ``writer``?" and returns the problems found
(an empty list means compatible). ``check_full_transitive`` runs it over every
ordered pair of versions (FULL_TRANSITIVE: every version reads every other
version's data). The resolution rules are the reference implementation's
(``avro.compatibility``), not ours.

Schemas may be given as JSON objects (``.avsc`` content), JSON text, or
fastavro-parsed schemas (fastavro's ``__``-prefixed bookkeeping keys are dropped).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

__all__ = ["check_compatible", "check_full_transitive"]


def _strip_fastavro(schema: Any) -> Any:
    """Copy of ``schema`` without fastavro's bookkeeping keys."""
    if isinstance(schema, dict):
        return {k: _strip_fastavro(v) for k, v in schema.items() if not (isinstance(k, str) and k.startswith("__"))}
    if isinstance(schema, list):
        return [_strip_fastavro(s) for s in schema]
    return schema


def _parse(schema: Any, role: str) -> avro.schema.Schema:
    if isinstance(schema, avro.schema.Schema):
        return schema
    if isinstance(schema, (bytes, bytearray)):
        schema = schema.decode("utf-8")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError:
            pass  # a bare primitive name such as "string"
    try:
        return avro.schema.parse(json.dumps(_strip_fastavro(schema)))
    except (avro.errors.AvroException, TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"invalid {role} schema: {exc}") from exc


def check_compatible(writer_schema: Any, reader_schema: Any) -> list[str]:
    """Problems preventing ``reader_schema`` from reading data written with
    ``writer_schema``; an empty list means compatible.

    The problem reads ``<locations>: <incompatibility kinds>: <details>``, the
    locations JSON pointers into the reader schema (``/fields/1``). Raises ``ValueError`` if
    either schema is not a valid Avro schema.
    """
    writer = _parse(writer_schema, "writer")
    reader = _parse(reader_schema, "reader")
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    # The checker reports sets (no order, no pairing): name them all, sorted.
    kinds = ", ".join(sorted(getattr(k, "value", str(k)) for k in result.incompatibilities))
    where = ", ".join(sorted(set(result.locations) - {"/"})) or "/"
    what = "; ".join(sorted(str(m) for m in result.messages))
    return [f"{where}: {kinds}: {what}"]


def check_full_transitive(versions: Sequence[Any], labels: Sequence[str] | None = None) -> list[str]:
    """FULL_TRANSITIVE: every version can read every other version's data
    (both directions, all pairs). ``labels`` name the versions in messages
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
