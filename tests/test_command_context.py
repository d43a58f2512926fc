"""The command context travels with the command, never on the aggregate (issue 18).

Each public command method takes its :class:`Ctx` first and makes it current only while it runs
(``domain.base.command``). No aggregate keeps a context after a command returns, so a snapshot, a
copy or a pickle carries none, and an event triggered outside a command, or a command called
without its context, fails loudly instead of being stamped with the previous command's time and
actor.
"""
from __future__ import annotations

import copy
import inspect
import pickle
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.domain import Snapshot, event

from domain.base import CommandContextError, Ctx, VipAggregate, aggregate_id, command
from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member, MemberError
from infra.policy_file import load_policy

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=SH)
MARK = "cause-of-the-last-command"
TERMS = {
    "parties": [{"id": "platform", "role": "platform"}, {"id": "provider", "role": "provider"}],
    "service": "VIP concierge", "currency": "CNY", "zone": "Asia/Shanghai",
    "payment_terms_days": 30, "validity_months": 12,
}


def ctx(at: datetime, actor: str = "system", cause: str = "cmd") -> Ctx:
    return Ctx(at=at, actor=actor, causation_id=cause)


def holds_no_context(aggregate) -> None:
    """Neither the aggregate nor anything taken from it (snapshot, deep copy, pickle) holds a Ctx."""
    aggregate.collect_events()  # the recorded events rightly carry the command's metadata
    assert not any(isinstance(v, Ctx) or "ctx" in k for k, v in vars(aggregate).items())
    assert not any(isinstance(v, Ctx) for v in Snapshot.take(aggregate).state.values())
    assert vars(copy.deepcopy(aggregate)).keys() == vars(aggregate).keys()
    assert MARK.encode() not in pickle.dumps(aggregate)
    assert vars(pickle.loads(pickle.dumps(aggregate))).keys() == vars(aggregate).keys()


def test_no_aggregate_keeps_the_context_after_a_command():
    m = Member.register(ctx(T0, "crm"), "M1", {"name": "Li Lei"}, "crm")
    m.record_order_paid(ctx(T0, cause=MARK), "in-1", "O1", 2_100_000, "CNY", T0, POLICY)
    holds_no_context(m)
    m.apply_for_vip(ctx(T0, "member:M1", MARK), POLICY)
    holds_no_context(m)

    c = Contract.draft(ctx(T0, "legal"), "C-1", "cooperation", TERMS)
    c.sign(ctx(T0, "platform", MARK), "platform")
    holds_no_context(c)
    c.sign(ctx(T0, "provider", MARK), "provider")   # two events, the second from a helper
    holds_no_context(c)

    cp = Complaint.file(ctx(T0, "member:M1"), "CP-1", "M1", "web", "delivery", "high",
                        "pii:sealed", "gold", POLICY)
    cp.acknowledge(ctx(T0 + timedelta(minutes=5), "agent:chen", MARK), POLICY.calendar(cp.calendar_id))
    holds_no_context(cp)


def test_an_event_triggered_outside_a_command_fails_instead_of_taking_the_last_commands_stamp():
    m = Member.register(ctx(T0, "crm"), "M1", None, "orders")
    m.fill_registration(ctx(T0 + timedelta(days=1), "crm:alice"), "in-1", {"name": "Li Lei"})
    m.collect_events()
    with pytest.raises(CommandContextError, match="outside a command"):
        m._profile_updated(input_id="in-2", changes={"name": "Han Meimei"})   # a command that forgot it
    assert m.profile == {"name": "Li Lei"} and not m.collect_events()


@pytest.mark.parametrize("missing", [None, T0, "system"])
def test_a_command_without_its_context_fails_before_recording_anything(missing):
    m = Member.register(ctx(T0, "crm"), "M1", None, "orders")
    m.collect_events()
    with pytest.raises(CommandContextError, match="Member.update_profile needs the command's Ctx"):
        m.update_profile(missing, "in-1", {"name": "Li Lei"})
    assert m.profile == {} and not m.collect_events()


def test_a_refused_command_leaves_no_context_behind():
    m = Member.register(ctx(T0, "crm"), "M1", {"name": "Li Lei"}, "crm")
    with pytest.raises(MemberError):
        m.update_profile(ctx(T0, "crm:alice"), "in-1", {})     # refused inside the command
    with pytest.raises(CommandContextError):
        m._profile_updated(input_id="in-2", changes={"name": "Han Meimei"})


class _Pair(VipAggregate):
    """Two aggregates of one kind: a command on one must not stamp the other's events."""

    KEY = "pair_id"

    @staticmethod
    def create_id(pair_id: str, **_: object):
        return aggregate_id("pair", pair_id)

    @event("Opened")
    def __init__(self, pair_id: str, timestamp: datetime, meta: dict) -> None:
        self.pair_id = pair_id
        self.touched = 0

    @command
    def touch(self, ctx: Ctx, other: "_Pair | None" = None) -> None:
        self._touched()
        if other is not None:
            other._touched()

    @command
    def touch_through(self, ctx: Ctx, other: "_Pair") -> None:
        other.touch(Ctx(at=ctx.at + timedelta(hours=1), actor="inner"))
        self._touched()                 # the outer command's context is current again

    @event("Touched")
    def _touched(self) -> None:
        self.touched += 1


def test_a_command_stamps_only_its_own_aggregate_and_a_nested_one_restores_the_outer_context():
    a = _Pair(pair_id="a", timestamp=T0, meta={"key": "a"})
    b = _Pair(pair_id="b", timestamp=T0, meta={"key": "b"})
    with pytest.raises(CommandContextError):
        a.touch(ctx(T0, "outer"), other=b)
    assert b.touched == 0
    a.collect_events()
    a.touch_through(ctx(T0, "outer"), b)
    (inner,) = b.collect_events()[1:]
    (outer,) = a.collect_events()
    assert (inner.meta["actor"], inner.timestamp) == ("inner", T0 + timedelta(hours=1))
    assert (outer.meta["actor"], outer.timestamp) == ("outer", T0)


@pytest.mark.parametrize("aggregate", [Member, Contract, Complaint])
def test_every_public_command_of_an_aggregate_makes_its_context_current(aggregate):
    commands = [name for name, fn in vars(aggregate).items()
                if inspect.isfunction(fn) and not name.startswith("_")
                and list(inspect.signature(fn).parameters)[:2] == ["self", "ctx"]]
    assert len(commands) >= 10
    assert [name for name in commands if not hasattr(vars(aggregate)[name], "__wrapped__")] == []


def test_infra_reads_no_context_attribute_of_an_aggregate():
    infra = Path(__file__).resolve().parents[1] / "infra"
    found = [f"{path.relative_to(infra)}:{n}" for path in sorted(infra.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"_ctx\b|\b_use\(", line)]
    assert found == []
