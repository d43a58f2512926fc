"""The schemas as a Confluent Schema Registry sees them: subjects, versions and integer ids.

Subjects follow the RecordNameStrategy: a subject is a record's full name
(``vip.domain.OrderPaid``), because one topic carries several event types of
an aggregate. A schema's id is derived from its CRC-64-AVRO fingerprint (the
8 bytes after the ``C3 01`` marker of every single-object message): the
first four bytes, little-endian, as a positive 31-bit integer. So the id is
the same on every server and after every restart, and a consumer that reads
a single-object message can compute the id to ask for from the message alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from schemas.registry import CodecError, RegisteredSchema, SchemaRegistry


def schema_id(fingerprint: bytes) -> int:
    """The registry id of the schema with this 8-byte fingerprint."""
    return int.from_bytes(fingerprint[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Catalogue:
    """Every registered schema by subject and version, and by id."""

    subjects: dict[str, dict[int, RegisteredSchema]]
    by_id: dict[int, RegisteredSchema]

    @classmethod
    def of(cls, registry: SchemaRegistry) -> "Catalogue":
        subjects: dict[str, dict[int, RegisteredSchema]] = {}
        by_id: dict[int, RegisteredSchema] = {}
        for name in registry.names():
            for version in registry.versions(name):
                entry = registry.entry(name, version)
                sid = schema_id(entry.fingerprint)
                clash = by_id.get(sid)
                if clash is not None:  # 31 bits of a CRC-64: a clash must be seen, never served
                    raise CodecError("bad-schema", f"{entry.name} v{version} and {clash.name} "
                                                   f"v{clash.version} share the registry id {sid}")
                by_id[sid] = entry
                subjects.setdefault(name, {})[version] = entry
        return cls(subjects, by_id)

    def version(self, subject: str, version: str) -> RegisteredSchema | None:
        """``version`` is a number or ``latest``; None if the subject or version is unknown."""
        versions = self.subjects.get(subject)
        if not versions:
            return None
        if version == "latest":
            return versions[max(versions)]
        return versions.get(int(version)) if version.isdigit() and len(version) < 10 else None


def schema_text(entry: RegisteredSchema) -> str:
    """The schema as the registry returns it: the ``.avsc`` JSON as one string."""
    return json.dumps(entry.raw, ensure_ascii=False, separators=(",", ":"))
