"""Avro codec for every message on the bus: single-object encoding via fastavro.

Wire format (Avro spec, "Single object encoding")::

    C3 01 | 8-byte CRC-64-AVRO fingerprint (little-endian) | Avro binary body

The fingerprint is the 64-bit Rabin fingerprint of the writer schema's Parsing
Canonical Form.  A reader looks the writer schema up by fingerprint in a
:class:`SchemaRegistry` and resolves it against a reader schema (by default
the latest version of the same name), so old messages stay readable after a
schema gains a version.

Schemas live as ``<group>/<name>/vN.avsc`` files below the ``schemas`` package
(see ``schemas/README.md``).  The registry key is the record's full name
(``vip.upstream.OrderPaid``); the short name (``OrderPaid``) works too while
it is unambiguous.

All failures of encode/decode/lookup raise :class:`CodecError` (a
``ValueError``) whose ``reason`` is one of the ``REASON_*`` constants.
"""
from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import fastavro
from fastavro.validation import ValidationError, validate

from fastavro.read import SchemaResolutionError

__all__ = [
    "MAGIC",
    "HEADER_SIZE",
    "SCHEMAS_DIR",
    "CodecError",
    "Decoded",
    "RegisteredSchema",
    "SchemaRegistry",
    "Codec",
    "default_registry",
    "encode",
    "decode",
    "fingerprint",
    "REASON_BAD_MAGIC",
    "REASON_UNKNOWN_FINGERPRINT",
    "REASON_DECODE_FAILED",
    "REASON_INVALID_RECORD",
    "REASON_INCOMPATIBLE_SCHEMA",
    "REASON_UNKNOWN_SCHEMA",
    "REASON_BAD_SCHEMA",
]

#: Single-object encoding marker.
from schemas.registry import (  # noqa: F401  (re-exported: the codec's public names)
    MAGIC,
    HEADER_SIZE,
    SCHEMAS_DIR,
    REASON_BAD_MAGIC,
    REASON_UNKNOWN_FINGERPRINT,
    REASON_DECODE_FAILED,
    REASON_INVALID_RECORD,
    REASON_INCOMPATIBLE_SCHEMA,
    REASON_UNKNOWN_SCHEMA,
    REASON_BAD_SCHEMA,
    CodecError,
    RegisteredSchema,
    SchemaRegistry,
)

# --- codec -------------------------------------------------------------------


class Decoded(NamedTuple):
    """Result of :func:`decode`.

    ``name``/``version`` identify the *writer* schema (what is on the wire);
    ``record`` has the shape of the *reader* schema.
    """

    name: str
    version: int
    record: dict[str, Any]


def _schema_text(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if not k.startswith("__")}
    return json.dumps(schema, separators=(",", ":"), default=str)


def _validation_message(entry: RegisteredSchema, exc: ValidationError) -> str:
    problems = []
    for err in getattr(exc, "errors", ()) or ():
        datum = getattr(err, "datum", None)
        where = getattr(err, "field", "") or entry.name
        problems.append(
            f"{where}: got {datum!r} ({type(datum).__name__}), expected {_schema_text(err.schema)}"
        )
    if not problems:
        problems.append(str(exc))
    return f"record does not fit {entry.name} v{entry.version}: " + "; ".join(problems)


class Codec:
    """Single-object Avro encoder/decoder bound to a :class:`SchemaRegistry`."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()

    def fingerprint(self, name: str, version: int | None = None) -> bytes:
        """8-byte CRC-64-AVRO fingerprint (little-endian) of ``name``/``version``."""
        return self.registry.entry(name, version).fingerprint

    def encode(self, name: str, record: Mapping[str, Any], version: int | None = None) -> bytes:
        """Encode ``record`` with ``name`` (latest version unless ``version``)."""
        entry = self.registry.entry(name, version)
        if not isinstance(record, Mapping):
            raise CodecError(
                REASON_INVALID_RECORD,
                f"{entry.name} v{entry.version}: record must be a mapping, got {type(record).__name__}",
            )
        # validate() names the offending field and value; it ignores unknown fields, which the
        # strict writer below refuses. The quiet pass first: with raise_errors, every union branch
        # a value does not take builds (and JSON-formats) an exception, most of an encode's cost.
        if not validate(record, entry.parsed, raise_errors=False, disable_tuple_notation=True):
            try:
                validate(record, entry.parsed, raise_errors=True, disable_tuple_notation=True)
            except ValidationError as exc:
                raise CodecError(REASON_INVALID_RECORD, _validation_message(entry, exc)) from exc
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(entry.fingerprint)
        try:
            # strict_allow_default: a field the schema lacks is an error (a typo is
            # never dropped silently), a missing field takes its default if it has one.
            fastavro.schemaless_writer(buf, entry.parsed, record, strict_allow_default=True,
                                       disable_tuple_notation=True)
        except Exception as exc:
            raise CodecError(
                REASON_INVALID_RECORD,
                f"record does not fit {entry.name} v{entry.version}: {type(exc).__name__}: {exc}",
            ) from exc
        return buf.getvalue()

    def decode(
        self,
        data: bytes | bytearray | memoryview,
        reader_name: str | None = None,
        *,
        reader_version: int | None = None,
    ) -> Decoded:
        """Decode one single-object-encoded message.

        The writer schema is found by the header fingerprint.  The body is
        resolved into the reader schema: ``reader_name``/``reader_version`` if
        given, else the latest version of the writer's own name.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"decode() needs bytes, got {type(data).__name__}")
        data = bytes(data)
        if data[: len(MAGIC)] != MAGIC:
            raise CodecError(
                REASON_BAD_MAGIC,
                f"not Avro single-object encoding: starts with {data[:2].hex() or '<empty>'}, "
                f"expected {MAGIC.hex()}",
            )
        if len(data) < HEADER_SIZE:
            raise CodecError(
                REASON_BAD_MAGIC,
                f"truncated single-object header: {len(data)} bytes, need {HEADER_SIZE}",
            )
        writer = self.registry.entry_by_fingerprint(data[len(MAGIC) : HEADER_SIZE])
        if reader_name is None:
            reader = self.registry.entry(writer.name, reader_version)
        else:
            reader = self.registry.entry(reader_name, reader_version)

        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        what = f"{writer.name} v{writer.version}"
        if reader is not writer:
            what += f" (as {reader.name} v{reader.version})"
        try:
            record = fastavro.schemaless_reader(
                body,
                writer.parsed,
                None if reader is writer else reader.parsed,
            )
        except SchemaResolutionError as exc:
            raise CodecError(REASON_INCOMPATIBLE_SCHEMA, f"cannot read {what}: {exc}") from exc
        except Exception as exc:
            raise CodecError(
                REASON_DECODE_FAILED,
                f"cannot read body of {what}: {type(exc).__name__}: {exc}",
            ) from exc
        trailing = len(data) - body.tell()
        if trailing:
            raise CodecError(
                REASON_DECODE_FAILED,
                f"cannot read body of {what}: {trailing} trailing byte(s) after the record",
            )
        return Decoded(writer.name, writer.version, record)


# --- module-level convenience API (default registry) -------------------------


@functools.lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    """The registry of all ``.avsc`` files shipped in the ``schemas`` package."""
    return SchemaRegistry()


@functools.lru_cache(maxsize=1)
def _default_codec() -> Codec:
    return Codec(default_registry())


def _codec(registry: SchemaRegistry | None) -> Codec:
    return _default_codec() if registry is None else Codec(registry)


def encode(
    name: str,
    record: Mapping[str, Any],
    version: int | None = None,
    *,
    registry: SchemaRegistry | None = None,
) -> bytes:
    """Encode ``record`` as single-object Avro with schema ``name`` (latest version by default)."""
    return _codec(registry).encode(name, record, version)


def decode(
    data: bytes | bytearray | memoryview,
    reader_name: str | None = None,
    *,
    reader_version: int | None = None,
    registry: SchemaRegistry | None = None,
) -> Decoded:
    """Decode a single-object Avro message; returns ``(writer name, writer version, record)``."""
    return _codec(registry).decode(data, reader_name, reader_version=reader_version)


def fingerprint(
    name: str,
    version: int | None = None,
    *,
    registry: SchemaRegistry | None = None,
) -> bytes:
    """8-byte little-endian CRC-64-AVRO fingerprint of a registered schema."""
    return _codec(registry).fingerprint(name, version)
