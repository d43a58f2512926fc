"""The library floor: what the eventsourcing library itself costs per event, with nothing of ours.

One aggregate event constructed the way ``Member.record_order_paid`` does it
(a ``@event`` method on a :class:`~domain.base.VipAggregate`, the command's
:class:`~domain.base.Ctx` stamping timestamp and metadata, the same field
shapes as ``OrderPaid``), mapped to a stored event by the application's own
mapper (``app.mapper.to_stored_event``: the library's JSON transcoder, no
compression, no cipher) and inserted by the application's SQLite recorder,
``BATCH`` events per transaction. No rules, no receipts, no views, no
snapshots. Ingest on this design does all of this and more for each order,
so this rate over the raw ``sqlite3`` insert is the ceiling of the ingest
ratio: if it is below the target, no work on our side reaches the target.

Each phase is timed on its own (construct, map, insert), so the floor's own
profile is printed with it.

The floor keeps this first definition (issue 9): the library's own ``JSONTranscoder``, not
the application's. The *new floor* (issue 21, ``new=True``) is the library path as this
application now uses it: an explicit event class triggered directly (as ``Member.OrderPaid``
is) and the application's transcoder (orjson, the same bytes); ``bench.run`` measures both
in the same run.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

from eventsourcing.domain import event
from eventsourcing.persistence import JSONTranscoder, Mapper

from domain.base import Ctx, VipAggregate, aggregate_id, command
from infra.bootstrap import open_app
from infra.settings import Settings

BATCH = 2000
WINDOW = timedelta(days=365)


class FloorMember(VipAggregate):
    """A member with OrderPaid's event shape and none of its rules."""

    KEY = "member_id"

    @staticmethod
    def create_id(member_id: str, **_: object):
        return aggregate_id("floor-member", member_id)

    @event("Registered")
    def __init__(self, member_id: str, timestamp: datetime, meta: dict) -> None:
        self.member_id = member_id
        self.paid = 0

    @command
    def pay(self, ctx: Ctx, input_id: str, order_id: str, amount_fen: int, currency: str,
            occurred_at: datetime) -> None:
        """The command half of ``record_order_paid`` minus its rules: the same event arguments."""
        self._order_paid(input_id=input_id, order_id=order_id, amount_fen=amount_fen,
                         currency=currency, occurred_at=occurred_at,
                         month=occurred_at.strftime("%Y-%m"), counted_fen=amount_fen,
                         policy_version="tiers-2025.1", keep_from=ctx.at - WINDOW,
                         forget_before=ctx.at - 2 * WINDOW)

    @event("OrderPaid")
    def _order_paid(self, input_id: str, order_id: str, amount_fen: int, currency: str,
                    occurred_at: datetime, month: str, counted_fen: int | None = None,
                    policy_version: str | None = None, keep_from: datetime | None = None,
                    forget_before: datetime | None = None) -> None:
        self.paid += amount_fen


class FastFloorMember(VipAggregate):
    """The new floor's member: the same event shape, its event class declared and triggered
    directly (no ``@event`` argument coercion and filtering per event)."""

    KEY = "member_id"

    @staticmethod
    def create_id(member_id: str, **_: object):
        return aggregate_id("floor-member", member_id)

    @event("Registered")
    def __init__(self, member_id: str, timestamp: datetime, meta: dict) -> None:
        self.member_id = member_id
        self.paid = 0

    class OrderPaid(VipAggregate.Event):
        input_id: str
        order_id: str
        amount_fen: int
        currency: str
        occurred_at: datetime
        month: str
        counted_fen: int | None = None
        policy_version: str | None = None
        keep_from: datetime | None = None
        forget_before: datetime | None = None

        def apply(self, aggregate: "FastFloorMember") -> None:
            aggregate.paid += self.amount_fen

    @command
    def pay(self, ctx: Ctx, input_id: str, order_id: str, amount_fen: int, currency: str,
            occurred_at: datetime) -> None:
        self.trigger_event(self.OrderPaid, input_id=input_id, order_id=order_id, amount_fen=amount_fen,
                           currency=currency, occurred_at=occurred_at, month=occurred_at.strftime("%Y-%m"),
                           counted_fen=amount_fen, policy_version="tiers-2025.1",
                           keep_from=ctx.at - WINDOW, forget_before=ctx.at - 2 * WINDOW)


def library_floor(data: Path, lines: list[str], new: bool = False) -> dict:
    """Construct, map and insert one OrderPaid-shaped event per order line; seconds per phase.

    The floor as first defined (``new=False``): an ``@event`` method and the library's own
    ``JSONTranscoder``. The new floor (``new=True``): the library path with the application's
    transcoder (orjson, the same bytes: ``infra.service_layer.transcoder``) and an explicit
    event class triggered directly (:class:`FastFloorMember`)."""
    app, keys = open_app(Settings.from_env({"VIP_DATA_DIR": str(data)}), False)
    try:
        mapper, recorder = app.mapper, app.recorder
        assert mapper.compressor is None and mapper.cipher is None, "the floor maps without either"
        if not new:
            transcoder = JSONTranscoder()
            app.register_transcodings(transcoder)
            mapper = Mapper(transcoder=transcoder)
        cls = FastFloorMember if new else FloorMember
        orders = [json.loads(line) for line in lines]
        members: dict[str, FloorMember] = {}
        construct = mapping = insert = 0.0
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        events = 0
        for i in range(0, len(orders), BATCH):
            t0 = time.perf_counter()
            pending = []
            for order in orders[i:i + BATCH]:
                at = datetime.fromisoformat(order["occurred_at"])
                ctx = Ctx(at=at, causation_id=order["event_id"])
                member = members.get(order["member_id"])
                if member is None:
                    member = members[order["member_id"]] = cls(
                        member_id=order["member_id"], timestamp=at, meta=ctx.meta(order["member_id"]))
                member.pay(ctx, order["event_id"], order["order_id"], order["amount_fen"],
                           order["currency"], at)
                pending.extend(member.collect_events())
            t1 = time.perf_counter()
            stored = [mapper.to_stored_event(e) for e in pending]
            t2 = time.perf_counter()
            recorder.insert_events(stored)
            t3 = time.perf_counter()
            construct, mapping, insert = construct + t1 - t0, mapping + t2 - t1, insert + t3 - t2
            events += len(stored)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return {"orders": len(orders), "events": events, "wall_s": wall, "cpu_s": cpu,
                "construct_s": construct, "map_s": mapping, "insert_s": insert}
    finally:
        keys.close()
        app.close()
