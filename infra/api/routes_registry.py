"""A read-only, Confluent Schema Registry-compatible view of the bus schemas.

Registry-aware tools (Spark's ``from_avro``, Flink, Kafka Connect converters,
``python-schema-registry-client``) point their ``schema.registry.url`` at
``http://<api>/registry`` and resolve schemas by subject and version or by id
(see :mod:`schemas.subjects` for the subject naming and how an id follows from
a single-object message's fingerprint). Only lookups: nothing can be
registered or deleted here (new versions come from ``schemas/`` in a release),
and the schemas hold nothing confidential, so no key is asked for.
"""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from schemas.codec import default_registry
from schemas.subjects import Catalogue, schema_id, schema_text

# Not in /openapi.json: this is the registry's own API (its media type and error shape), not the VIP API.
router = APIRouter(prefix="/registry", tags=["schema registry"], include_in_schema=False)
MEDIA = "application/vnd.schemaregistry.v1+json"
_CATALOGUE: list[Catalogue] = []


def _catalogue() -> Catalogue:
    if not _CATALOGUE:  # built on first use: no work at import time
        _CATALOGUE.append(Catalogue.of(default_registry()))
    return _CATALOGUE[0]


def _answer(body, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=MEDIA)


def _missing(code: int, message: str) -> JSONResponse:
    # the registry's own error shape: clients read error_code
    return _answer({"error_code": code, "message": message}, 404)


@router.get("/subjects", summary="Every subject (a record's full name)")
def subjects() -> JSONResponse:
    return _answer(sorted(_catalogue().subjects))


@router.get("/subjects/{subject}/versions", summary="The versions of a subject")
def versions(subject: str) -> JSONResponse:
    found = _catalogue().subjects.get(subject)
    if not found:
        return _missing(40401, f"Subject '{subject[:200]}' not found.")
    return _answer(sorted(found))


@router.get("/subjects/{subject}/versions/{version}", summary="One version of a subject ('latest' too)")
def subject_version(subject: str, version: str) -> JSONResponse:
    catalogue = _catalogue()
    if subject not in catalogue.subjects:
        return _missing(40401, f"Subject '{subject[:200]}' not found.")
    entry = catalogue.version(subject, version)
    if entry is None:
        return _missing(40402, f"Version {version[:20]} not found.")
    return _answer({"subject": subject, "version": entry.version, "id": schema_id(entry.fingerprint),
                    "schemaType": "AVRO", "schema": schema_text(entry)})


@router.get("/subjects/{subject}/versions/{version}/schema", summary="The bare schema of a version")
def subject_schema(subject: str, version: str) -> JSONResponse:
    entry = _catalogue().version(subject, version)
    if entry is None:
        return _missing(40402, f"Version {version[:20]} of '{subject[:200]}' not found.")
    return _answer(entry.raw)


@router.get("/schemas/ids/{schema_id}", summary="A schema by id")
def by_id(schema_id: int) -> JSONResponse:
    entry = _catalogue().by_id.get(schema_id)
    if entry is None:
        return _missing(40403, "Schema not found")
    return _answer({"schema": schema_text(entry), "schemaType": "AVRO"})


@router.get("/schemas/ids/{schema_id}/versions", summary="The subject and version of an id")
def id_versions(schema_id: int) -> JSONResponse:
    entry = _catalogue().by_id.get(schema_id)
    if entry is None:
        return _missing(40403, "Schema not found")
    return _answer([{"subject": entry.name, "version": entry.version}])


@router.get("/config", summary="The compatibility level every subject keeps")
def config() -> JSONResponse:
    # schemas/compat.py checks every version against all earlier ones, both ways
    return _answer({"compatibilityLevel": "FULL_TRANSITIVE"})
