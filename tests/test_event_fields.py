"""Every string field of every domain event is classified (issue 16, item 3).

Walks every version of every schema in ``schemas/domain``: a string field (or
a free-form Value) that ``infra.service_layer.event_fields`` does not classify
fails here, so a field added later must be placed (and sealed if it is free
text) before the suite passes.
"""
from __future__ import annotations

import json
from pathlib import Path

from infra.service_layer import event_fields as ef

ROOT = Path(__file__).resolve().parents[1] / "schemas" / "domain"
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes"}
FREE_FORM = {"vip.domain.Value"}
INSTANT = {"vip.domain.Instant"}


def string_paths(schema: dict) -> set[str]:
    """Paths (``a.b``, ``l[]``, ``m{}``) of every string or free-form value in a record schema."""
    named: dict[str, dict] = {}
    found: set[str] = set()

    def full(name: str, namespace: str) -> str:
        return name if "." in name else f"{namespace}.{name}"

    def walk(t, path: str, ns: str) -> None:
        if isinstance(t, list):
            for x in t:
                walk(x, path, ns)
        elif isinstance(t, str):
            if t == "string":
                found.add(path)
            elif t not in PRIMITIVES:
                name = full(t, ns)
                if name in FREE_FORM:
                    found.add(path)
                elif name not in INSTANT:
                    walk(named[name], path, ns)
        elif t["type"] in ("record", "enum", "fixed"):
            name = full(t["name"], t.get("namespace", ns))
            named[name] = t
            if name in FREE_FORM:
                found.add(path)
            elif t["type"] == "record" and name not in INSTANT:
                for f in t["fields"]:
                    walk(f["type"], f"{path}.{f['name']}" if path else f["name"], name.rpartition(".")[0])
        elif t["type"] == "array":
            walk(t["items"], path + "[]", ns)
        elif t["type"] == "map":
            walk(t["values"], path + "{}", ns)
        else:
            walk(t["type"], path, ns)

    walk(schema, "", schema.get("namespace", "vip.domain"))
    return found


def _schemas():
    for path in sorted(ROOT.glob("*/v*.avsc")):
        schema = json.loads(path.read_text())
        yield schema["name"], path, schema


def test_every_string_field_of_every_domain_event_is_classified():
    unclassified = [f"{name}.{p} ({path.relative_to(ROOT)})" for name, path, schema in _schemas()
                    for p in sorted(string_paths(schema)) if ef.classify(name, p) is None]
    assert unclassified == [], ("classify these in infra/service_layer/event_fields.py (and seal them "
                                f"at the service layer if they are free text): {unclassified}")


def test_the_table_names_only_fields_that_exist_and_every_event_type():
    paths = {}
    for name, _, schema in _schemas():
        paths.setdefault(name, set()).update(string_paths(schema))
    assert set(ef.FIELDS) == set(paths)
    stale = [f"{n}.{p}" for n, fields in ef.FIELDS.items() for p in fields if p not in paths[n]]
    assert stale == []


def test_the_walk_sees_nested_and_named_fields():
    paths = set()
    for name, _, schema in _schemas():
        if name == "ComplaintFiled":
            paths |= string_paths(schema)
    assert {"category", "description", "clocks.resolution.deadline_zone", "meta_extra{}"} <= paths


def test_free_text_of_a_person_is_sealed_and_nothing_is_left_as_free_text():
    allowed = {ef.SEALED, ef.SEALED_ON_AGREEMENT, ef.ID, ef.ZONE, ef.MONTH, ef.CURRENCY, ef.POLICY,
               ef.ENUM, ef.SYSTEM, ef.TERMS, ef.META}
    assert {c for fields in ef.FIELDS.values() for c in fields.values()} <= allowed
    assert ef.classify("ComplaintFiled", "category") == ef.SEALED
    assert ef.classify("TierOverrideSet", "reason") == ef.SEALED
    assert ef.classify("VipRejected", "reason") == ef.SEALED
    assert ef.classify("DisputeOpened", "reason") == ef.SEALED_ON_AGREEMENT
