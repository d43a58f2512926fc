"""Tests for schemas.codec: single-object Avro encoding via fastavro.

Independent references used here:
* a hand-written CRC-64-AVRO (Rabin) fingerprint, straight from the spec;
* the reference ``avro`` package (its canonical form, fingerprint, DatumWriter
  and DatumReader).
"""

from __future__ import annotations

import copy
import io
import json

import avro.io
import avro.schema
import fastavro
import pytest

from schemas.codec import (
    HEADER_SIZE,
    MAGIC,
    Codec,
    CodecError,
    SchemaRegistry,
    decode,
    default_registry,
    encode,
    fingerprint,
)

# --- independent CRC-64-AVRO (Avro spec, "Schema Fingerprints") -------------

_EMPTY64 = 0xC15D213AA4D7A795


def _rabin_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _rabin_table()


def rabin64(data: bytes) -> int:
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def spec_fingerprint(raw_schema: dict) -> bytes:
    """CRC-64-AVRO of the canonical form computed by the *avro* package, as the
    8 little-endian bytes single-object encoding puts on the wire."""
    canonical = avro.schema.parse(json.dumps(raw_schema)).canonical_form
    return rabin64(canonical.encode("utf-8")).to_bytes(8, "little")


def test_hand_rabin_matches_avro_test_vectors():
    # Vectors from the Avro project's own fingerprint tests (hex of the
    # little-endian bytes); anchors both the algorithm and the byte order.
    assert rabin64(b'"int"').to_bytes(8, "little").hex() == "8f5c393f1ad57572"
    assert rabin64(b'"string"').to_bytes(8, "little").hex() == "c70345637248018f"
    assert rabin64(b'"int"') == 8247732601305521295  # Java's SchemaNormalization long


# --- sample records ----------------------------------------------------------

TS = "2025-03-01T10:00:00+08:00"

SAMPLES: dict[str, dict] = {
    "vip.upstream.OrderPaid": {
        "event_id": "7f1d7a3c-1111-4a5b-9c1d-000000000001",
        "member_id": "m-1001",
        "order_id": "o-555",
        "occurred_at": TS,
        "amount_fen": 1_234_567,
        "currency": "CNY",
        "channel": "app",
        "store_id": "SH-0021",
        "correlation_id": "corr-1",
    },
    "vip.upstream.OrderRefunded": {
        "event_id": "7f1d7a3c-1111-4a5b-9c1d-000000000002",
        "member_id": "m-1001",
        "order_id": "o-555",
        "occurred_at": "2025-03-02T09:30:00+08:00",
        "amount_fen": 4_500,
        "currency": "CNY",
        "reason": "商品损坏 (damaged)",
        "correlation_id": None,
    },
    "vip.upstream.OrderCancelled": {
        "event_id": "7f1d7a3c-1111-4a5b-9c1d-000000000003",
        "member_id": "m-1002",
        "order_id": "o-556",
        "occurred_at": "2025-03-01T02:00:00+00:00",
        "reason": None,
        "correlation_id": "corr-3",
    },
    "vip.upstream.CustomerRegistered": {
        "event_id": "7f1d7a3c-1111-4a5b-9c1d-000000000004",
        "member_id": "m-1003",
        "occurred_at": TS,
        "name": "张三",
        "phone": "+8613800138000",
        "email": "zhang.san@example.com",
        "correlation_id": None,
    },
    "vip.upstream.ProfileUpdated": {
        "event_id": "7f1d7a3c-1111-4a5b-9c1d-000000000005",
        "member_id": "m-1003",
        "occurred_at": TS,
        "name": None,
        "phone": "+8613900139000",
        "email": None,
        "correlation_id": None,
    },
    "vip.upstream.ActivityRecorded": {
        "event_id": "7f1d7a3c-1111-4a5b-9c1d-000000000006",
        "member_id": "m-1003",
        "occurred_at": TS,
        "kind": "vip_event",
        "detail": "spring gala 2025",
        "correlation_id": None,
    },
    "vip.upstream.ErasureRequested": {
        "event_id": "7f1d7a3c-1111-4a5b-9c1d-000000000007",
        "member_id": "m-1003",
        "occurred_at": TS,
        "requested_by": "member",
        "correlation_id": "corr-7",
    },
}

UPSTREAM = sorted(SAMPLES)


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry()


def test_repo_has_exactly_the_upstream_schemas_we_have_samples_for(registry):
    upstream = [n for n in registry.names() if n.startswith("vip.upstream.")]
    assert upstream == UPSTREAM
    assert default_registry().names() == registry.names()


@pytest.mark.parametrize("name", UPSTREAM)
def test_round_trip_every_upstream_schema(name):
    sample = SAMPLES[name]
    data = encode(name, sample)
    got_name, got_version, record = decode(data)
    assert (got_name, got_version) == (name, default_registry().latest_version(name))
    assert record == sample


@pytest.mark.parametrize("name", UPSTREAM)
def test_optional_fields_may_be_omitted_and_decode_as_null(name, registry):
    entry = registry.entry(name)
    required = {f["name"] for f in entry.raw["fields"] if "default" not in f}
    minimal = {k: v for k, v in SAMPLES[name].items() if k in required}
    _, _, record = decode(encode(name, minimal))
    expected = {f["name"]: minimal.get(f["name"], f.get("default")) for f in entry.raw["fields"]}
    assert record == expected
    assert record["correlation_id"] is None


def test_short_name_and_full_name_are_the_same_schema():
    assert encode("CustomerRegistered", SAMPLES["vip.upstream.CustomerRegistered"]) == encode(
        "vip.upstream.CustomerRegistered", SAMPLES["vip.upstream.CustomerRegistered"]
    )
    assert fingerprint("CustomerRegistered") == fingerprint("vip.upstream.CustomerRegistered", 1)


@pytest.mark.parametrize("name", UPSTREAM)
def test_single_object_header(name, registry):
    data = encode(name, SAMPLES[name])
    assert data[:2] == b"\xc3\x01" == MAGIC
    assert data[2:HEADER_SIZE] == fingerprint(name)
    assert len(fingerprint(name)) == 8
    body = io.BytesIO()
    fastavro.schemaless_writer(body, registry.get(name), SAMPLES[name])
    assert data[HEADER_SIZE:] == body.getvalue()


@pytest.mark.parametrize("name", UPSTREAM)
def test_fingerprint_matches_independent_crc64_avro(name, registry):
    entry = registry.entry(name)
    expected = spec_fingerprint(entry.raw)
    assert fingerprint(name) == expected
    # the avro package's own implementation agrees too (also little-endian)
    assert avro.schema.parse(json.dumps(entry.raw)).fingerprint("CRC-64-AVRO") == expected
    # and by_fingerprint finds it again
    full, version, parsed = registry.by_fingerprint(expected)
    assert (full, version) == (name, entry.version)
    assert parsed is registry.get(name)


def _avro_package_encode(raw_schema: dict, record: dict) -> bytes:
    """Single-object message built with the reference avro package, header by hand."""
    schema = avro.schema.parse(json.dumps(raw_schema))
    buf = io.BytesIO()
    buf.write(b"\xc3\x01")
    buf.write(spec_fingerprint(raw_schema))
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


@pytest.mark.parametrize("name", UPSTREAM)
def test_messages_written_by_avro_package_decode(name, registry):
    data = _avro_package_encode(registry.raw(name), SAMPLES[name])
    assert decode(data) == (name, registry.latest_version(name), SAMPLES[name])
    assert data == encode(name, SAMPLES[name])


@pytest.mark.parametrize("name", UPSTREAM)
def test_our_messages_read_by_avro_package(name, registry):
    data = encode(name, SAMPLES[name])
    schema = avro.schema.parse(json.dumps(registry.raw(name)))
    decoder = avro.io.BinaryDecoder(io.BytesIO(data[HEADER_SIZE:]))
    assert avro.io.DatumReader(schema).read(decoder) == SAMPLES[name]


# --- errors ------------------------------------------------------------------


def _reason(excinfo) -> str:
    assert isinstance(excinfo.value, ValueError)
    return excinfo.value.reason


def test_unknown_fingerprint():
    data = encode("vip.upstream.OrderPaid", SAMPLES["vip.upstream.OrderPaid"])
    forged = MAGIC + bytes(8) + data[HEADER_SIZE:]
    with pytest.raises(CodecError) as excinfo:
        decode(forged)
    assert _reason(excinfo) == "unknown-fingerprint"
    assert "0000000000000000" in str(excinfo.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc3",
        b"\x00\x01" + bytes(20),
        b"\x01\xc3" + bytes(20),
        b'{"event_id": "x"}',
        b"\xc3\x01\x00\x00",  # marker but truncated header
    ],
)
def test_bad_magic(data):
    with pytest.raises(CodecError) as excinfo:
        decode(data)
    assert _reason(excinfo) == "bad-magic"


def test_plain_schemaless_body_is_bad_magic():
    body = io.BytesIO()
    fastavro.schemaless_writer(body, default_registry().get("vip.upstream.OrderPaid"), SAMPLES["vip.upstream.OrderPaid"])
    with pytest.raises(CodecError) as excinfo:
        decode(body.getvalue())
    assert _reason(excinfo) == "bad-magic"


@pytest.mark.parametrize("name", UPSTREAM)
def test_truncated_body_at_every_length(name):
    data = encode(name, SAMPLES[name])
    for cut in range(HEADER_SIZE, len(data)):
        with pytest.raises(CodecError) as excinfo:
            decode(data[:cut])
        assert _reason(excinfo) == "decode-failed", cut


def test_trailing_garbage_is_decode_failed():
    data = encode("vip.upstream.OrderPaid", SAMPLES["vip.upstream.OrderPaid"])
    with pytest.raises(CodecError) as excinfo:
        decode(data + b"\x00")
    assert _reason(excinfo) == "decode-failed"
    assert "trailing" in str(excinfo.value)


def test_corrupt_utf8_is_decode_failed():
    record = dict(SAMPLES["vip.upstream.OrderCancelled"], order_id="ab")
    data = bytearray(encode("vip.upstream.OrderCancelled", record))
    index = data.index(b"ab")
    data[index : index + 2] = b"\xff\xfe"
    with pytest.raises(CodecError) as excinfo:
        decode(bytes(data))
    assert _reason(excinfo) == "decode-failed"


def test_encode_wrong_type_is_invalid_record_with_readable_message():
    record = dict(SAMPLES["vip.upstream.OrderPaid"], amount_fen="12.34")
    with pytest.raises(CodecError) as excinfo:
        encode("vip.upstream.OrderPaid", record)
    assert _reason(excinfo) == "invalid-record"
    message = str(excinfo.value)
    assert "vip.upstream.OrderPaid.amount_fen" in message
    assert "'12.34'" in message and "str" in message and "long" in message


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"amount_fen": 12.5}, "amount_fen"),
        ({"amount_fen": True}, "amount_fen"),  # bool is an int subclass in Python
        ({"amount_fen": 2**63}, "amount_fen"),  # does not fit a long
        ({"currency": None}, "currency"),
        ({"channel": 7}, "channel"),
        ({"occurred_at": None}, "occurred_at"),
        ({"amount_fem": 1}, "amount_fem"),  # typo: unknown field is rejected, not dropped
    ],
)
def test_encode_invalid_records(change, fragment):
    record = dict(SAMPLES["vip.upstream.OrderPaid"], **change)
    with pytest.raises(CodecError) as excinfo:
        encode("vip.upstream.OrderPaid", record)
    assert _reason(excinfo) == "invalid-record"
    assert fragment in str(excinfo.value)


def test_encode_missing_required_field():
    record = dict(SAMPLES["vip.upstream.OrderPaid"])
    del record["member_id"]
    with pytest.raises(CodecError) as excinfo:
        encode("vip.upstream.OrderPaid", record)
    assert _reason(excinfo) == "invalid-record"
    assert "member_id" in str(excinfo.value)


def test_encode_non_mapping():
    with pytest.raises(CodecError) as excinfo:
        encode("vip.upstream.OrderPaid", ["not", "a", "record"])
    assert _reason(excinfo) == "invalid-record"


def test_unknown_schema_name_and_version():
    with pytest.raises(CodecError) as excinfo:
        encode("NoSuchEvent", {})
    assert _reason(excinfo) == "unknown-schema"
    with pytest.raises(CodecError) as excinfo:
        fingerprint("vip.upstream.OrderPaid", 999)
    assert _reason(excinfo) == "unknown-schema"


# --- schema evolution with test-only schemas --------------------------------

V1 = {
    "type": "record",
    "name": "Thing",
    "namespace": "test.evolve",
    "doc": "test schema",
    "fields": [
        {"name": "id", "type": "string", "doc": "id"},
        {"name": "amount_fen", "type": "long", "doc": "amount"},
    ],
}
V2 = copy.deepcopy(V1)
V2["fields"] += [
    {"name": "note", "type": ["null", "string"], "default": None, "doc": "added in v2"},
    {"name": "source", "type": "string", "default": "legacy", "doc": "added in v2"},
]
V3_BROKEN = copy.deepcopy(V2)
V3_BROKEN["fields"].append({"name": "required_now", "type": "string", "doc": "no default"})


@pytest.fixture
def evolving() -> SchemaRegistry:
    reg = SchemaRegistry(None)
    reg.register(V1, 1)
    reg.register(json.dumps(V2), 2)  # JSON text works too
    return reg


def test_v1_message_read_with_v2_reader(evolving):
    data = encode("Thing", {"id": "a", "amount_fen": 5}, version=1, registry=evolving)
    assert data[2:HEADER_SIZE] == spec_fingerprint(V1)
    # default reader = latest version of the same name
    name, version, record = decode(data, registry=evolving)
    assert (name, version) == ("test.evolve.Thing", 1)
    assert record == {"id": "a", "amount_fen": 5, "note": None, "source": "legacy"}
    # explicit reader name gives the same
    assert decode(data, "test.evolve.Thing", registry=evolving).record == record
    # and read as v1 it stays v1-shaped
    assert decode(data, reader_version=1, registry=evolving).record == {"id": "a", "amount_fen": 5}


def test_v2_message_read_with_v1_reader(evolving):
    codec = Codec(evolving)
    data = codec.encode("Thing", {"id": "b", "amount_fen": 7, "note": "hi"})
    assert codec.decode(data) == ("test.evolve.Thing", 2, {"id": "b", "amount_fen": 7, "note": "hi", "source": "legacy"})
    assert codec.decode(data, reader_version=1).record == {"id": "b", "amount_fen": 7}


def test_v1_message_from_avro_package_read_as_v2(evolving):
    data = _avro_package_encode(V1, {"id": "c", "amount_fen": -3})
    assert decode(data, registry=evolving) == (
        "test.evolve.Thing",
        1,
        {"id": "c", "amount_fen": -3, "note": None, "source": "legacy"},
    )


def test_type_promotion_int_to_long():
    narrow = dict(V1, fields=[{"name": "id", "type": "string"}, {"name": "amount_fen", "type": "int"}])
    reg = SchemaRegistry(None)
    reg.register(narrow, 1)
    reg.register(V1, 2)  # amount_fen: int -> long
    old = encode("Thing", {"id": "p", "amount_fen": 2**31 - 1}, version=1, registry=reg)
    assert decode(old, registry=reg) == ("test.evolve.Thing", 1, {"id": "p", "amount_fen": 2**31 - 1})
    new = encode("Thing", {"id": "q", "amount_fen": 2**40}, registry=reg)
    with pytest.raises(CodecError) as excinfo:  # a long cannot be read as int
        decode(new, reader_version=1, registry=reg)
    assert _reason(excinfo) == "incompatible-schema"


def test_incompatible_reader_gives_incompatible_schema(evolving):
    evolving.register(V3_BROKEN, 3)
    data = encode("Thing", {"id": "a", "amount_fen": 5}, version=1, registry=evolving)
    with pytest.raises(CodecError) as excinfo:
        decode(data, registry=evolving)
    assert _reason(excinfo) == "incompatible-schema"
    assert "required_now" in str(excinfo.value)


def test_test_registrations_do_not_touch_default_registry(evolving):
    assert "test.evolve.Thing" not in default_registry()
    assert "test.evolve.Thing" in evolving
    with pytest.raises(CodecError) as excinfo:
        decode(encode("Thing", {"id": "a", "amount_fen": 1}, registry=evolving))
    assert _reason(excinfo) == "unknown-fingerprint"


# --- registry ----------------------------------------------------------------


def test_registry_api(evolving):
    assert evolving.names() == ["test.evolve.Thing"]
    assert evolving.versions("Thing") == [1, 2]
    assert evolving.versions("test.evolve.Thing") == [1, 2]
    assert evolving.get("Thing") is evolving.get("Thing", 2)
    assert evolving.get("Thing", 1)["name"] == "test.evolve.Thing"
    fp1 = Codec(evolving).fingerprint("Thing", 1)
    assert evolving.by_fingerprint(fp1)[:2] == ("test.evolve.Thing", 1)
    with pytest.raises(CodecError) as excinfo:
        evolving.by_fingerprint(b"\x01" * 8)
    assert _reason(excinfo) == "unknown-fingerprint"


def test_ambiguous_short_name():
    reg = SchemaRegistry(None)
    reg.register({"type": "record", "name": "a.X", "fields": []}, 1)
    reg.register({"type": "record", "name": "b.X", "fields": []}, 1)
    assert reg.get("a.X")["name"] == "a.X"
    with pytest.raises(CodecError) as excinfo:
        reg.get("X")
    assert _reason(excinfo) == "unknown-schema"
    assert "ambiguous" in str(excinfo.value)


@pytest.mark.parametrize(
    "schema, version",
    [
        ({"type": "record", "name": "Y", "fields": [{"name": "f", "type": "nope"}]}, 1),
        ({"type": "string"}, 1),  # top level must be named
        ({"type": "record", "name": "Y", "fields": []}, 0),
    ],
)
def test_register_rejects_bad_schemas(schema, version):
    with pytest.raises(CodecError) as excinfo:
        SchemaRegistry(None).register(schema, version)
    assert _reason(excinfo) == "bad-schema"


def test_register_rejects_duplicates():
    reg = SchemaRegistry(None)
    reg.register(V1, 1)
    with pytest.raises(CodecError, match="already registered"):
        reg.register(V2, 1)
    doc_only_change = dict(V1, doc="only the doc changed")
    with pytest.raises(CodecError, match="same fingerprint"):
        reg.register(doc_only_change, 2)


def test_load_tree(tmp_path):
    (tmp_path / "grp" / "thing").mkdir(parents=True)
    (tmp_path / "grp" / "thing" / "v1.avsc").write_text(json.dumps(V1))
    (tmp_path / "grp" / "thing" / "v2.avsc").write_text(json.dumps(V2))
    reg = SchemaRegistry(tmp_path)
    assert reg.names() == ["test.evolve.Thing"]
    assert reg.versions("Thing") == [1, 2]
    assert reg.entry("Thing", 2).source == tmp_path / "grp" / "thing" / "v2.avsc"


@pytest.mark.parametrize(
    "files",
    [
        {"thing/current.avsc": V1},  # not vN.avsc
        {"thing/v1.avsc": V1, "thing/v2.avsc": dict(V2, name="Other")},  # 2 schemas, 1 dir
        {"thing/v1.avsc": "{not json"},
    ],
)
def test_load_tree_rejects_bad_layout(tmp_path, files):
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(CodecError) as excinfo:
        SchemaRegistry(tmp_path)
    assert _reason(excinfo) == "bad-schema"


def test_an_order_paid_written_with_v1_is_read_as_v2_with_no_store():
    """Schema evolution in the repository: v2 added an optional field; old producers keep working."""
    v1_record = {k: v for k, v in SAMPLES["vip.upstream.OrderPaid"].items() if k != "store_id"}
    data = encode("vip.upstream.OrderPaid", v1_record, version=1)
    name, version, record = decode(data)
    assert (name, version) == ("vip.upstream.OrderPaid", 1)
    assert record == {**v1_record, "store_id": None}
