"""The schema registry: every ``.avsc`` below the ``schemas`` package, by full name and fingerprint.

Also the codec's error type and reasons, which the registry raises too.
"""
from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro.schema import (
    SchemaParseException,
    UnknownType,
    fingerprint as _fastavro_fingerprint,
    parse_schema,
    to_parsing_canonical_form,
)


#: Single-object encoding marker.
MAGIC = b"\xc3\x01"
#: Marker + 8-byte fingerprint.
HEADER_SIZE = len(MAGIC) + 8
#: Default root scanned for ``*.avsc`` files: the ``schemas`` package itself.
SCHEMAS_DIR = Path(__file__).resolve().parent

_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")
_NAMED_TYPES = ("record", "enum", "fixed", "error")

# --- errors ------------------------------------------------------------------

#: Data is not single-object encoded (wrong marker or shorter than the header).
REASON_BAD_MAGIC = "bad-magic"
#: The header's fingerprint matches no registered schema.
REASON_UNKNOWN_FINGERPRINT = "unknown-fingerprint"
#: The body cannot be read with the writer schema (truncated, corrupt, trailing bytes).
REASON_DECODE_FAILED = "decode-failed"
#: encode(): the record does not fit the schema.
REASON_INVALID_RECORD = "invalid-record"
#: decode(): the writer schema cannot be resolved against the requested reader schema.
REASON_INCOMPATIBLE_SCHEMA = "incompatible-schema"
#: A schema name/version that is not registered (or an ambiguous short name).
REASON_UNKNOWN_SCHEMA = "unknown-schema"
#: A schema file/dict that cannot be registered (unparseable, clashing, misnamed file).
REASON_BAD_SCHEMA = "bad-schema"


class CodecError(ValueError):
    """The only exception raised by this module; ``reason`` says what went wrong."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"[{reason}] {message}")
        self.reason = reason
        self.message = message


# --- registry ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RegisteredSchema:
    """One version of one schema."""

    name: str  #: full name, e.g. ``vip.upstream.OrderPaid``
    version: int
    raw: dict[str, Any] = field(repr=False)  #: the schema as written (JSON object)
    parsed: dict[str, Any] = field(repr=False)  #: fastavro-parsed schema
    canonical: str = field(repr=False)  #: Parsing Canonical Form
    fingerprint: bytes  #: 8-byte little-endian CRC-64-AVRO of ``canonical``
    source: Path | None = None  #: the ``.avsc`` file, if loaded from disk

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def _crc64_avro(canonical: str) -> bytes:
    # fastavro returns the hex of the fingerprint bytes in little-endian order,
    # which is exactly the order single-object encoding puts on the wire.
    fp = bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO"))
    if len(fp) != 8:  # pragma: no cover - guards against a fastavro change
        raise RuntimeError(f"unexpected CRC-64-AVRO fingerprint length {len(fp)}")
    return fp


class SchemaRegistry:
    """All known schemas, by (full name, version) and by fingerprint.

    ``SchemaRegistry()`` loads every ``*.avsc`` below the ``schemas`` package;
    ``SchemaRegistry(path)`` loads another tree; ``SchemaRegistry(None)`` starts
    empty (use :meth:`register`, e.g. in tests).

    Files must be named ``vN.avsc`` (N >= 1); all files of one directory must
    define the same named schema.  Versions of a name must have distinct
    Parsing Canonical Forms (a version that only changes docs is not a new
    wire version).
    """

    def __init__(self, root: str | os.PathLike[str] | None = SCHEMAS_DIR) -> None:
        self._entries: dict[str, dict[int, RegisteredSchema]] = {}
        self._by_fp: dict[bytes, RegisteredSchema] = {}
        if root is not None:
            self.load_tree(root)

    # -- loading --

    def load_tree(self, root: str | os.PathLike[str]) -> list[RegisteredSchema]:
        """Register every ``*.avsc`` below ``root``; returns what was added."""
        root = Path(root)
        if not root.is_dir():
            raise CodecError(REASON_BAD_SCHEMA, f"schema directory {root} does not exist")
        added: list[RegisteredSchema] = []
        dir_names: dict[Path, tuple[str, Path]] = {}
        for path in sorted(root.rglob("*.avsc")):
            m = _VERSION_FILE.match(path.name)
            if m is None:
                raise CodecError(
                    REASON_BAD_SCHEMA,
                    f"{path}: schema files must be named vN.avsc (N = 1, 2, ...)",
                )
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CodecError(REASON_BAD_SCHEMA, f"{path}: cannot read JSON: {exc}") from exc
            entry = self.register(raw, int(m.group(1)), source=path)
            previous = dir_names.setdefault(path.parent, (entry.name, path))
            if previous[0] != entry.name:
                raise CodecError(
                    REASON_BAD_SCHEMA,
                    f"{path} defines {entry.name} but {previous[1]} in the same "
                    f"directory defines {previous[0]}; one directory holds one schema",
                )
            added.append(entry)
        return added

    def register(
        self,
        schema: Mapping[str, Any] | str,
        version: int,
        *,
        source: Path | None = None,
    ) -> RegisteredSchema:
        """Add ``schema`` (a JSON object, or its JSON text) as ``version``."""
        where = str(source) if source is not None else "schema"
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise CodecError(REASON_BAD_SCHEMA, f"{where}: not JSON: {exc}") from exc
        if not isinstance(schema, Mapping):
            raise CodecError(REASON_BAD_SCHEMA, f"{where}: top level must be a named type (JSON object)")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CodecError(REASON_BAD_SCHEMA, f"{where}: version must be an int >= 1, got {version!r}")
        raw = copy.deepcopy(dict(schema))
        try:
            # Each version gets its own named-type namespace: v1 and v2 define
            # the same record name.
            parsed = parse_schema(copy.deepcopy(raw), named_schemas={})
            canonical = to_parsing_canonical_form(parsed)
        except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as exc:
            raise CodecError(REASON_BAD_SCHEMA, f"{where}: invalid Avro schema: {exc}") from exc
        if not isinstance(parsed, dict) or parsed.get("type") not in _NAMED_TYPES:
            raise CodecError(REASON_BAD_SCHEMA, f"{where}: top level must be a record, enum or fixed")
        name = parsed["name"]
        fp = _crc64_avro(canonical)
        entry = RegisteredSchema(name, version, raw, parsed, canonical, fp, source)

        existing = self._entries.get(name, {}).get(version)
        if existing is not None:
            raise CodecError(
                REASON_BAD_SCHEMA,
                f"{where}: {name} v{version} is already registered"
                + (f" from {existing.source}" if existing.source else ""),
            )
        clash = self._by_fp.get(fp)
        if clash is not None:
            raise CodecError(
                REASON_BAD_SCHEMA,
                f"{where}: {name} v{version} has the same fingerprint/canonical form as "
                f"{clash.name} v{clash.version}; a new version must change the wire schema",
            )
        self._entries.setdefault(name, {})[version] = entry
        self._by_fp[fp] = entry
        return entry

    # -- lookup --

    def names(self) -> list[str]:
        """Full names of all registered schemas, sorted."""
        return sorted(self._entries)

    def resolve_name(self, name: str) -> str:
        """Full name for ``name`` (a full name, or an unambiguous short name)."""
        if name in self._entries:
            return name
        matches = [full for full in self._entries if full.rsplit(".", 1)[-1] == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise CodecError(
                REASON_UNKNOWN_SCHEMA,
                f"short name {name!r} is ambiguous: {sorted(matches)}; use the full name",
            )
        raise CodecError(REASON_UNKNOWN_SCHEMA, f"no schema named {name!r}")

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.resolve_name(name)
        except CodecError:
            return False
        return True

    def versions(self, name: str) -> list[int]:
        """Registered versions of ``name``, ascending."""
        return sorted(self._entries[self.resolve_name(name)])

    def latest_version(self, name: str) -> int:
        return max(self._entries[self.resolve_name(name)])

    def entry(self, name: str, version: int | None = None) -> RegisteredSchema:
        """The :class:`RegisteredSchema` for ``name`` (latest version if ``None``)."""
        full = self.resolve_name(name)
        by_version = self._entries[full]
        if version is None:
            return by_version[max(by_version)]
        try:
            return by_version[version]
        except KeyError:
            raise CodecError(
                REASON_UNKNOWN_SCHEMA,
                f"{full} has no version {version!r} (known: {sorted(by_version)})",
            ) from None

    def get(self, name: str, version: int | None = None) -> dict[str, Any]:
        """fastavro-parsed schema of ``name`` (latest version if ``None``)."""
        return self.entry(name, version).parsed

    def raw(self, name: str, version: int | None = None) -> dict[str, Any]:
        """The schema JSON as written in the ``.avsc`` file (a copy)."""
        return copy.deepcopy(self.entry(name, version).raw)

    def by_fingerprint(self, fp: bytes) -> tuple[str, int, dict[str, Any]]:
        """``(full name, version, parsed schema)`` for an 8-byte fingerprint."""
        entry = self._by_fp.get(bytes(fp))
        if entry is None:
            raise CodecError(
                REASON_UNKNOWN_FINGERPRINT,
                f"no registered schema has fingerprint {bytes(fp).hex()}",
            )
        return entry.name, entry.version, entry.parsed

    def entry_by_fingerprint(self, fp: bytes) -> RegisteredSchema:
        name, version, _ = self.by_fingerprint(fp)
        return self._entries[name][version]
