"""An independent Avro reader gets every domain event field by field.

The reader is Apache's reference implementation (the ``avro`` package), given
only the ``.avsc`` files and the documented framing (schemas/README.md): no
fastavro, no schemas.codec, no schemas.events on the read side. Every value
is compared with the domain event it came from; no JSON text and no ISO
strings are left, instants are timestamp-micros with their zone beside them.
"""
from __future__ import annotations

import io
import json
import re
import struct
from datetime import datetime
from pathlib import Path

import avro.io
import avro.schema
import pytest

from schemas.events import encode_event, headers
from tests.test_bus_flow import bus  # noqa: F401  (the fixture)
from tests.test_bus_interop import rabin
from tests.test_domain_schemas import ENVELOPES, _ids, snake

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "domain"
HEADER = ("event_id", "aggregate", "aggregate_id", "key", "version", "occurred_at", "occurred_at_zone",
          "actor", "causation_id", "correlation_id", "meta_extra")


def spec_fingerprint(schema: avro.schema.Schema) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form as the specification defines it.

    The avro package (1.12) writes a logical-type primitive as {"type":"long"} in
    its canonical form; the spec's [PRIMITIVES] rule (and Java's
    SchemaNormalization, and fastavro) make it "long". Fix that one point.
    """
    canonical = re.sub(r'\{"type":"(null|boolean|int|long|float|double|bytes|string)"\}', r'"\1"',
                       schema.canonical_form)
    return struct.pack("<Q", rabin(canonical.encode("utf-8")))


def reader_schemas() -> dict[bytes, avro.schema.Schema]:
    """Every domain schema file by its CRC-64-AVRO fingerprint, as a consumer would load them."""
    found = {}
    for path in sorted(SCHEMAS.glob("*/v*.avsc")):
        schema = avro.schema.parse(path.read_text(encoding="utf-8"))
        found[spec_fingerprint(schema)] = schema
    return found


READERS = reader_schemas()


def read(value: bytes) -> tuple[avro.schema.Schema, dict]:
    """Strip the single-object framing (C3 01 + 8-byte fingerprint) and decode the body."""
    assert value[:2] == b"\xc3\x01", "single-object marker"
    schema = READERS[value[2:10]]
    body = io.BytesIO(value[10:])
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(body))
    assert body.tell() == len(value) - 10, "the body is exactly one record"
    return schema, record


def free(value):
    """A ``vip.domain.Value`` as plain data, read with nothing but the schema's shape."""
    inner = value["value"]
    if isinstance(inner, list):
        return [free(v) for v in inner]
    if isinstance(inner, dict) and set(inner) == {"at", "zone"} and isinstance(inner["at"], datetime):
        return ("instant", inner["at"], inner["zone"])
    if isinstance(inner, dict):
        return {k: free(v) for k, v in inner.items()}
    return inner


def zone_of(at: datetime) -> str:
    return getattr(at.tzinfo, "key", None) or at.isoformat()[-6:]


def assert_same(got, expected, where: str, record: dict | None = None, name: str = "") -> None:
    """``got`` (as the reference reader returned it) carries ``expected`` (the domain value)."""
    if isinstance(got, tuple) and got[0] == "instant":  # a free-form instant
        assert got[1] == expected and got[2] == zone_of(expected), where
        return
    if isinstance(expected, datetime):
        assert isinstance(got, datetime) and got.tzinfo is not None, f"{where}: not a timestamp: {got!r}"
        assert got == expected, where
        if record is not None:
            assert record[f"{name}_zone"] == zone_of(expected), f"{where}_zone"
        return
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: {got!r}"
        extra = {k: free(v) for k, v in (got.get("extra") or {}).items()}
        for key, value in expected.items():
            if key in extra:
                assert_same(extra[key], value, f"{where}.{key}")
            else:
                assert key in got, f"{where}.{key} missing"
                assert_same(got[key], value, f"{where}.{key}", got, key)
        return
    if isinstance(expected, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(expected), f"{where}: {got!r}"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{where}[{i}]")
        return
    assert type(got) is type(expected) or (isinstance(expected, int) and isinstance(got, float)), \
        f"{where}: {type(got).__name__} {got!r} for {type(expected).__name__} {expected!r}"
    assert got == expected, where


def strings(value, where=""):
    """Every string in a decoded record, with where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")


def assert_event(value: bytes, env: dict) -> None:
    schema, record = read(value)
    assert schema.fullname == f"vip.domain.{env['type']}"
    assert record["event_id"] == env["id"] and record["key"] == env["key"]
    assert record["aggregate"] == env["aggregate"] and record["aggregate_id"] == env["aggregate_id"]
    assert record["version"] == env["version"]
    assert isinstance(record["occurred_at"], datetime) and record["occurred_at"] == env["timestamp"]
    assert record["occurred_at_zone"] == "Asia/Shanghai"
    for name in ("actor", "causation_id", "correlation_id"):
        assert record[name] == env["meta"][name]
    extra = {k: v for k, v in env["meta"].items() if k not in ("key", "actor", "causation_id", "correlation_id")}
    assert_same({k: free(v) for k, v in record["meta_extra"].items()}, extra, "meta_extra")
    attribute = {f.name: f.other_props.get("vip.attribute", f.name) for f in schema.fields}
    data_fields = [f.name for f in schema.fields if f.name not in HEADER
                   and not (f.name.endswith("_zone") and f.name[:-5] in attribute)]
    assert sorted(attribute[n] for n in data_fields) == sorted(env["data"])
    for name in data_fields:
        assert_same(record[name], env["data"][attribute[name]], f"{env['type']}.{name}", record, name)
    for where, text in strings(record):
        assert not text.lstrip().startswith(("{", "[")), f"{where}: JSON text {text!r}"
        with pytest.raises(ValueError):
            datetime.fromisoformat(text)  # no ISO strings left: instants are timestamps


def test_every_domain_schema_parses_in_the_reference_implementation():
    assert len(READERS) == len(list(SCHEMAS.glob("*/v*.avsc"))) >= 52


@pytest.mark.parametrize("env", ENVELOPES, ids=_ids(ENVELOPES))
def test_reference_reader_decodes_every_field_of_the_encoded_event(env):
    assert_event(encode_event(env), env)


@pytest.mark.kafka
def test_reference_reader_decodes_every_domain_topic_field_by_field(bus):  # noqa: F811
    """Every event type, published as the relay publishes it, read back from the broker."""
    sent = {}
    for env in ENVELOPES:
        value = encode_event(env)
        topic = bus.topics.domain(env["aggregate"])
        bus.producer.send(topic, key=env["key"].encode(), value=value, headers=headers(env, value[2:10]))
        sent[env["id"]] = env
    bus.producer.flush()
    from infra.kafka.admin import read_topics
    from infra.kafka.bus import header_map

    records = read_topics(bus.bootstrap, bus.topics.domain_topics)
    assert len(records) == len(ENVELOPES)
    for message in records:
        h = header_map(message.headers)
        env = sent[h["event_id"]]
        assert message.topic == bus.topics.domain(env["aggregate"]) and message.key == env["key"].encode()
        assert h["event_type"] == env["type"]
        assert bytes.fromhex(h["schema_fingerprint"]) == message.value[2:10]
        assert READERS[message.value[2:10]].fullname == f"vip.domain.{env['type']}"
        assert_event(message.value, env)
    assert {snake(e["type"]) for e in sent.values()} == {p.name for p in SCHEMAS.iterdir() if p.is_dir()}
    json.dumps([h for h in map(lambda r: header_map(r.headers), records)])  # headers are plain text
