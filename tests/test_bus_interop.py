"""A message written by an independent Avro implementation (the ``avro`` package) is accepted."""
from __future__ import annotations

import io
import struct

import pytest

from schemas.codec import SCHEMAS_DIR
from tests.test_bus_flow import bus, upstream  # noqa: F401  (the fixture)
from domain.window import PAID

pytestmark = pytest.mark.kafka

# CRC-64-AVRO (Rabin), straight from the Avro specification's reference code.
EMPTY = 0xC15D213AA4D7A795
MASK = (1 << 64) - 1


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY if fp & 1 else 0)
        table.append(fp & MASK)
    return table


TABLE = _table()


def rabin(data: bytes) -> int:
    fp = EMPTY
    for byte in data:
        fp = ((fp >> 8) ^ TABLE[(fp ^ byte) & 0xFF]) & MASK
    return fp


def avro_single_object(schema_file, record: dict) -> bytes:
    """Single-object encoding built by hand around the avro package's binary encoder."""
    import avro.io
    import avro.schema

    schema = avro.schema.parse(schema_file.read_text(encoding="utf-8"))
    body = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(body))
    fingerprint = struct.pack("<Q", rabin(schema.canonical_form.encode("utf-8")))
    assert fingerprint == schema.fingerprint("CRC-64-AVRO")   # the package agrees with the spec code
    return b"\xc3\x01" + fingerprint + body.getvalue()


def test_an_order_encoded_by_the_avro_package_is_accepted(bus):
    member = f"{bus.prefix}-M1"
    _, record = upstream("OrderPaid", member, "2025-04-01T20:15:00+08:00", order_id="O-avro",
                         amount_fen=88_800, currency="CNY", channel="store")
    value = avro_single_object(SCHEMAS_DIR / "upstream" / "order_paid" / "v1.avsc", record)
    consumer = bus.consumer()
    bus.send_raw(bus.topics.orders, member.encode(), value)
    assert bus.consume(consumer, 1)["applied"] == 1
    order = bus.system.app.member(member).orders["O-avro"]
    assert order[PAID] == 88_800
