"""Schema compatibility: the repo's schemas, and schemas.compat itself.

Every schema name in the repo registry is checked FULL_TRANSITIVE across all
of its versions; the parametrization is taken from the registry, so schemas
added later (domain events, read-model snapshots, ...) are covered
automatically.  schemas.compat is a loop over the reference ``avro`` package's
ReaderWriterCompatibilityChecker; the scenarios below pin the rules we rely on.
"""

from __future__ import annotations

import copy
import json

import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse as avro_parse

from schemas.codec import SchemaRegistry
from schemas.compat import check_compatible, check_full_transitive

REGISTRY = SchemaRegistry()
NAMES = REGISTRY.names()
UPSTREAM_NAMES = [n for n in NAMES if n.startswith("vip.upstream.")]


# --- the repo's schemas ------------------------------------------------------


def test_registry_is_not_empty():
    assert len(UPSTREAM_NAMES) >= 7


@pytest.mark.parametrize("name", NAMES)
def test_versions_are_contiguous_from_1(name):
    versions = REGISTRY.versions(name)
    assert versions == list(range(1, len(versions) + 1)), f"{name}: version gap in {versions}"


@pytest.mark.parametrize("name", NAMES)
def test_all_versions_full_transitive_compatible(name):
    versions = REGISTRY.versions(name)
    problems = check_full_transitive(
        [REGISTRY.raw(name, v) for v in versions],
        labels=[f"{name} v{v}" for v in versions],
    )
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_reference_checker_agrees_on_repo_schemas(name):
    versions = REGISTRY.versions(name)
    for w in versions:
        for r in versions:
            assert _avro_compatible(REGISTRY.raw(name, w), REGISTRY.raw(name, r)), (name, w, r)


@pytest.mark.parametrize("name", UPSTREAM_NAMES)
def test_upstream_schemas_are_documented_and_traceable(name):
    raw = REGISTRY.raw(name)
    assert raw.get("doc"), f"{name}: record needs a doc"
    for field in raw["fields"]:
        assert field.get("doc"), f"{name}.{field['name']}: every field needs a doc"
    fields = {f["name"]: f for f in raw["fields"]}
    for required in ("event_id", "member_id", "occurred_at"):
        assert fields[required]["type"] == "string", (name, required)
    assert "+08:00" in fields["occurred_at"]["doc"]  # documents the offset-carrying format
    corr = fields["correlation_id"]
    assert corr["type"] == ["null", "string"] and corr["default"] is None


# --- check_compatible / check_full_transitive ---------------------------------

BASE = {
    "type": "record",
    "name": "Evt",
    "namespace": "test.compat",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount_fen", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def variant(mutate) -> dict:
    schema = copy.deepcopy(BASE)
    mutate(schema)
    return schema


def field(schema: dict, name: str) -> dict:
    return next(f for f in schema["fields"] if f["name"] == name)


def _avro_compatible(writer: dict, reader: dict) -> bool:
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro_parse(json.dumps(reader)), avro_parse(json.dumps(writer))
    )
    return result.compatibility is SchemaCompatibilityType.compatible


def _set_type(name, new_type):
    return lambda s: field(s, name).__setitem__("type", new_type)


def _enum_schema(symbols, default=None):
    enum = {"type": "enum", "name": "Kind", "symbols": symbols}
    if default is not None:
        enum["default"] = default
    return variant(lambda s: s["fields"].append({"name": "kind", "type": enum}))


def _inner(*names):
    return {"type": "record", "name": "Inner", "fields": [{"name": n, "type": "int"} for n in names]}


# (label, writer, reader, compatible?)
SCENARIOS = [
    ("identical", BASE, BASE, True),
    (
        "add optional field with default (old data, new reader)",
        BASE,
        variant(lambda s: s["fields"].append({"name": "x", "type": ["null", "long"], "default": None})),
        True,
    ),
    (
        "add optional field with default (new data, old reader)",
        variant(lambda s: s["fields"].append({"name": "x", "type": ["null", "long"], "default": None})),
        BASE,
        True,
    ),
    (
        "reader adds field without default",
        BASE,
        variant(lambda s: s["fields"].append({"name": "x", "type": "string"})),
        False,
    ),
    (
        "writer removed a field the reader needs (no default)",
        variant(lambda s: s["fields"].pop(1)),
        BASE,
        False,
    ),
    ("type change long -> string", BASE, variant(_set_type("amount_fen", "string")), False),
    ("promotion int -> long", variant(_set_type("amount_fen", "int")), BASE, True),
    ("no demotion long -> int", BASE, variant(_set_type("amount_fen", "int")), False),
    ("promotion long -> double", BASE, variant(_set_type("amount_fen", "double")), True),
    ("promotion float -> double", variant(_set_type("amount_fen", "float")), variant(_set_type("amount_fen", "double")), True),
    ("no double -> float", variant(_set_type("amount_fen", "double")), variant(_set_type("amount_fen", "float")), False),
    ("string -> bytes", BASE, variant(_set_type("id", "bytes")), True),
    ("bytes -> string", variant(_set_type("id", "bytes")), BASE, True),
    ("plain -> nullable union", BASE, variant(_set_type("id", ["null", "string"])), True),
    ("nullable union -> plain (null branch unreadable)", variant(_set_type("id", ["null", "string"])), BASE, False),
    ("union gains a branch (old data)", BASE, variant(_set_type("note", ["null", "string", "long"])), True),
    ("union loses a branch (data may hold it)", variant(_set_type("note", ["null", "string", "long"])), BASE, False),
    ("union branch promoted", variant(_set_type("note", ["null", "int"])), variant(_set_type("note", ["null", "long"])), True),
    (
        "record renamed without alias",
        BASE,
        variant(lambda s: s.__setitem__("name", "Renamed")),
        False,
    ),
    (
        "record renamed with alias",
        BASE,
        variant(lambda s: s.update(name="Renamed", aliases=["test.compat.Evt"])),
        True,
    ),
    (
        "field renamed with alias (old data, new reader)",
        BASE,
        variant(lambda s: field(s, "amount_fen").update(name="total_fen", aliases=["amount_fen"])),
        True,
    ),
    (
        "field renamed with alias (new data, old reader)",
        variant(lambda s: field(s, "amount_fen").update(name="total_fen", aliases=["amount_fen"])),
        BASE,
        False,
    ),
    ("enum gains symbol (old data)", _enum_schema(["A"]), _enum_schema(["A", "B"]), True),
    ("enum gains symbol (new data, old reader)", _enum_schema(["A", "B"]), _enum_schema(["A"]), False),
    ("enum unknown symbol -> reader default", _enum_schema(["A", "B"]), _enum_schema(["A", "UNKNOWN"], "UNKNOWN"), True),
    (
        "array items promoted",
        variant(_set_type("amount_fen", {"type": "array", "items": "int"})),
        variant(_set_type("amount_fen", {"type": "array", "items": "long"})),
        True,
    ),
    (
        "map values changed",
        variant(_set_type("amount_fen", {"type": "map", "values": "long"})),
        variant(_set_type("amount_fen", {"type": "map", "values": "boolean"})),
        False,
    ),
    (
        "fixed size changed",
        variant(_set_type("id", {"type": "fixed", "name": "Id", "size": 16})),
        variant(_set_type("id", {"type": "fixed", "name": "Id", "size": 8})),
        False,
    ),
    (
        "nested record field without default",
        variant(lambda s: s["fields"].append({"name": "inner", "type": _inner("a")})),
        variant(lambda s: s["fields"].append({"name": "inner", "type": _inner("a", "b")})),
        False,
    ),
    (
        "recursive record",
        {
            "type": "record",
            "name": "Node",
            "fields": [{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"], "default": None}],
        },
        {
            "type": "record",
            "name": "Node",
            "fields": [
                {"name": "v", "type": "long"},
                {"name": "next", "type": ["null", "Node"], "default": None},
                {"name": "w", "type": "string", "default": ""},
            ],
        },
        True,
    ),
    ("primitive vs record", "string", BASE, False),
]


@pytest.mark.parametrize("label, writer, reader, compatible", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_check_compatible(label, writer, reader, compatible):
    problems = check_compatible(writer, reader)
    assert (problems == []) is compatible, problems
    assert all(isinstance(p, str) and p for p in problems)


@pytest.mark.parametrize("label, writer, reader, compatible", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_reference_avro_checker_agrees(label, writer, reader, compatible):
    assert _avro_compatible(writer, reader) is compatible


def test_removed_field_without_default_is_caught_with_a_clear_message():
    v1 = BASE
    v2 = variant(lambda s: s["fields"].pop(1))  # drop amount_fen (it has no default)
    problems = check_full_transitive([v1, v2])
    assert problems == ["v1 cannot read v2 data: /fields/1: reader_field_missing_default_value: amount_fen"]


def test_changed_type_is_caught_both_ways():
    v2 = variant(_set_type("amount_fen", "string"))
    problems = check_full_transitive([BASE, v2])
    assert len(problems) == 2
    assert problems[0].startswith("v2 cannot read v1 data: /fields/1/type: type_mismatch")
    assert problems[1].startswith("v1 cannot read v2 data: /fields/1/type: type_mismatch")
    assert all("string" in p and "long" in p for p in problems)


def test_full_transitive_checks_non_adjacent_pairs():
    # v1 -> v2 and v2 -> v3 are each fine, but v3 cannot read v1 data:
    # v2 added "x" with a default, v3 dropped the default.
    v1 = BASE
    v2 = variant(lambda s: s["fields"].append({"name": "x", "type": "string", "default": ""}))
    v3 = variant(lambda s: s["fields"].append({"name": "x", "type": "string"}))
    assert check_compatible(v1, v2) == [] and check_compatible(v2, v1) == []
    assert check_compatible(v2, v3) == [] and check_compatible(v3, v2) == []
    problems = check_full_transitive([v1, v2, v3])
    assert problems and all(p.startswith("v3 cannot read v1 data") for p in problems)


def test_accepts_json_text_and_fastavro_parsed_schemas():
    parsed = REGISTRY.get(UPSTREAM_NAMES[0])
    raw = REGISTRY.raw(UPSTREAM_NAMES[0])
    assert check_compatible(parsed, json.dumps(raw)) == []
    assert check_compatible(json.dumps(raw), parsed) == []


def test_reader_union_uses_first_matching_branch():
    # Spec/fastavro semantics: a writer long resolves against the first reader
    # branch that matches it -- here the record is skipped, long is chosen.
    reader = ["null", {"type": "record", "name": "R", "fields": []}, "double", "long"]
    assert check_compatible("long", reader) == []
    assert check_compatible("boolean", reader) != []


def test_invalid_schema_raises_value_error():
    with pytest.raises(ValueError):
        check_compatible({"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}, BASE)
