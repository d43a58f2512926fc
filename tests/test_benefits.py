"""Members' benefits (issue 20; seed 002 §3.2, §4.1, §4.3.2): a dedicated agent to whom new
complaints are routed, priority handling of work queues, benefits ending with the standing.

Through the real stores (SQLite and PostgreSQL), the engine and the services; the CLI through
click's CliRunner, the API through its TestClient.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from domain import benefits
from domain.member import Member
from hosts.main import main
from infra.policy_file import PolicyFileError, default_policy_text, load_policy
from infra.service_layer.replay import history, replay
from infra.service_layer.upstream import apply_input, parse
from projections import queries
from projections.views import VIEWS
from tests.conftest import FakeClock
from tests.scenario import Z

NOW = datetime(2026, 12, 1, tzinfo=Z)  # the wall clock: every instant below is in its past
T0 = datetime(2025, 9, 1, 10, tzinfo=Z)


def _vip(s, member: str, t: datetime, spend_fen: int, fee_fen: int = 0, validity: int = 36) -> None:
    """``member`` pays ``spend_fen`` at ``t`` (0: has paid before), applies, is approved, signs and
    pays the fee: active."""
    if spend_fen:
        apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": f"pay-{member}",
                                               "member_id": member, "order_id": f"O-{member}",
                                               "occurred_at": t.isoformat(), "amount_fen": spend_fen,
                                               "currency": "CNY"}))
    for step in ("apply_for_vip", "start_vip_review", "approve_vip"):
        s.engine.run(t, lambda u, c, step=step: getattr(u, step)(c, member))
    terms = {"parties": [{"id": "platform"}, {"id": member}], "member_id": member,
             "validity_months": validity}
    s.engine.run(t, lambda u, c: u.draft_contract(c, f"AG-{member}", "member_agreement", terms))
    s.engine.run(t, lambda u, c: u.sign_contract(c, f"AG-{member}", member))
    s.engine.run(t, lambda u, c: u.sign_contract(c, f"AG-{member}", "platform"))
    if fee_fen:
        s.engine.run(t, lambda u, c: u.issue_invoice(c, f"AG-{member}", f"FEE-{member}", member, fee_fen,
                                                       "CNY", "membership_fee"))
        s.engine.run(t, lambda u, c: u.pay_invoice(c, f"AG-{member}", f"FEE-{member}", fee_fen, "CNY",
                                                     f"P-{member}"))
    assert s.app.member(member).vip_status == "active"


def _file(s, complaint: str, member: str, at: datetime, severity: str = "medium"):
    return s.engine.run(at, lambda u, c: u.file_complaint(c, complaint, member, "web", "billing",
                                                           severity, "the parcel never came"))


def _events(s, kind: str, business_id: str, *types: str) -> list[dict]:
    return [e for e in history(s.app, kind, business_id) if e["type"] in types]


def _policy_file(tmp_path, version: str, unavailable: str = "", **changes) -> str:
    data = json.loads(default_policy_text())
    data["version"] = version
    for agent in data["benefits"]["agents"]:
        if agent["id"] == unavailable:
            agent["available"] = False
    data["benefits"].update(changes)
    path = tmp_path / f"{version}.json"
    path.write_text(json.dumps(data))
    return str(path)


# -- the dedicated agent and routing --------------------------------------------------------------


def test_an_active_vip_gets_a_dedicated_agent_and_their_complaint_goes_to_that_agent(make_system,
                                                                                     event_store):
    s = make_system(event_store, clock=FakeClock(NOW))
    _vip(s, "M1", T0, 2_500_000, 19_900)                      # gold, active once the fee is paid
    agent = benefits.choose_agent(s.app.policy, "gold", "M1")
    assert s.app.member("M1").dedicated_agent == agent.id and agent.team == "vip-care"
    [assigned] = _events(s, "member", "M1", "DedicatedAgentAssigned")
    activated = _events(s, "member", "M1", "VipActivated")[0]
    assert assigned["data"]["basis"] == "activated" and assigned["version"] == activated["version"] + 1
    assert assigned["data"]["policy_version"] == "default-2025.1" and assigned["data"]["tier"] == "gold"
    complaint = _file(s, "C1", "M1", T0 + timedelta(days=1))
    assert (complaint.assignee, complaint.status, complaint.priority) == (agent.id, "filed", 2)
    [routed] = _events(s, "complaint", "C1", "ComplaintRouted")
    assert routed["data"]["route"] == "dedicated_agent" and routed["data"]["assignee"] == agent.id
    assert routed["version"] == 2  # in the filing's save, right after ComplaintFiled


def test_a_complaint_goes_to_the_team_queue_when_the_policy_in_force_marks_the_agent_unavailable(
        make_system, event_store, tmp_path):
    s = make_system(event_store, clock=FakeClock(NOW), name="roster")
    _vip(s, "M1", T0, 2_500_000, 19_900)
    agent = s.app.member("M1").dedicated_agent
    s.close()
    # The operator publishes a new policy version whose roster marks the agent unavailable.
    s = make_system(event_store, clock=FakeClock(NOW), name="roster",
                    policy_file=_policy_file(tmp_path, "roster-2025.2", unavailable=agent))
    complaint = _file(s, "C1", "M1", T0 + timedelta(days=2))
    assert (complaint.assignee, complaint.status) == ("queue:vip-care", "filed")
    [routed] = _events(s, "complaint", "C1", "ComplaintRouted")
    assert routed["data"]["route"] == "team_queue" and routed["data"]["policy_version"] == "roster-2025.2"
    assert routed["data"]["reason"] == (f"dedicated agent {agent} is unavailable in policy roster-2025.2: "
                                        "queued for team vip-care")
    assert s.app.member("M1").dedicated_agent == agent  # still dedicated: unavailability is temporary
    s.engine.flush()
    [row] = queries.work_queue(s.store, T0 + timedelta(days=2, minutes=1))
    assert (row["assignee"], row["route"]) == ("queue:vip-care", "team_queue")


# -- priority handling -------------------------------------------------------------------------


def test_queues_order_by_time_to_breach_then_tier_then_severity(make_system, event_store, tmp_path):
    s = make_system(event_store, clock=FakeClock(NOW), name="queue")
    _vip(s, "GOLD", T0, 2_500_000, 19_900)
    _vip(s, "PLAT", T0, 6_000_000, 49_900)
    t = T0 + timedelta(days=1)
    _file(s, "E-gold-low-earlier", "GOLD", t - timedelta(minutes=45), "low")  # deadline t+15m
    _file(s, "B-gold-critical", "GOLD", t, "critical")   # critical halves 1 h: deadline t+30m
    _file(s, "A-plat-medium", "PLAT", t, "medium")       # platinum 30 min: deadline t+30m, higher tier
    _file(s, "D-gold-medium", "GOLD", t, "medium")       # deadline t+60m
    _file(s, "C-gold-high", "GOLD", t, "high")           # deadline t+60m, higher severity
    expected = ["E-gold-low-earlier", "A-plat-medium", "B-gold-critical", "C-gold-high", "D-gold-medium"]
    s.engine.flush()
    assert [r["complaint_id"] for r in queries.work_queue(s.store, t + timedelta(minutes=1))] == expected
    s.close()
    runner = CliRunner()
    env = {"VIP_DATA_DIR": str(tmp_path / "queue"), "VIP_EVENT_STORE": event_store}
    asked = (t + timedelta(hours=2)).isoformat()  # every first-response clock breached by then
    out = runner.invoke(main, ["breaches", "--json", "--as-of", asked], env=env, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    first_response = [b["complaint_id"] for b in json.loads(out.output) if b["clock"] == "first_response"]
    assert first_response == expected
    out = runner.invoke(main, ["queue", "--json", "--as-of", asked], env=env, catch_exceptions=False)
    assert [r["complaint_id"] for r in json.loads(out.output)] == expected


# -- benefits end with the standing -----------------------------------------------------------


def _revoke(s, at):
    s.engine.run(at, lambda u, c: u.revoke_vip(c, "M1", "fraud suspected"), actor="sup-1")


def _terminate_agreement(s, at):
    s.engine.run(at, lambda u, c: u.terminate_contract(c, "AG-M1", "customer withdrew"))


def _terminate_rights(s, at):
    s.engine.run(at, lambda u, c: u.terminate_rights(c, "M1", "abusive behaviour"), actor="sup-1")


def _review_below_standard(s, at):
    s.clock.at = at
    s.engine.tick()  # the anniversary review: no spend in the window any more


ENDINGS = {"revoked": (_revoke, "VipRevoked"), "lapsed": (_terminate_agreement, "VipLapsed"),
           "terminated": (_terminate_rights, "VipRightsTerminated"),
           "disqualified": (_review_below_standard, "VipDisqualified")}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_benefits_end_with_the_standing(make_system, event_store, ending):
    s = make_system(event_store, clock=FakeClock(NOW))
    _vip(s, "M1", T0, 600_000)                                # silver: no fee, active at signing
    agent = s.app.member("M1").dedicated_agent
    assert agent is not None
    end, status_event = ENDINGS[ending]
    ended_at = T0 + timedelta(days=370) if ending == "disqualified" else T0 + timedelta(days=10)
    end(s, ended_at)
    member = s.app.member("M1")
    assert member.vip_status == ending and member.dedicated_agent is None
    [status] = _events(s, "member", "M1", status_event)
    [released] = _events(s, "member", "M1", "DedicatedAgentReleased")
    # In the same save as the status change: the next version, the same command.
    assert released["version"] == status["version"] + 1 and released["at"] == status["at"]
    assert released["data"] == {"agent_id": agent, "status": ending}
    later = _file(s, "C-after", "M1", ended_at + timedelta(days=1))
    assert (later.tier, later.assignee, later.status) == ("member", None, "filed")
    assert _events(s, "complaint", "C-after", "ComplaintRouted") == []
    s.engine.flush()
    answer = queries.member_answer(s.store, "M1", s.store.get("current_tier", "M1"),
                                   ended_at + timedelta(days=1), s.app.policy)
    assert answer["benefits"] is None


# -- as of an instant ------------------------------------------------------------------------


def test_vip_tier_as_of_shows_the_benefits_replay_gives_at_that_instant(make_system, event_store, tmp_path):
    s = make_system(event_store, clock=FakeClock(NOW), name="asof")
    _vip(s, "M1", T0, 2_500_000, 19_900)
    first = s.app.member("M1").dedicated_agent
    other = next(a.id for a in s.app.policy.benefits.agents if a.team == "vip-care" and a.id != first)
    s.engine.run(T0 + timedelta(days=5), lambda u, c: u.assign_agent(c, "M1", other, "asked for Mandarin"),
                 actor="sup-1")
    s.engine.run(T0 + timedelta(days=9), lambda u, c: u.revoke_vip(c, "M1", "fraud"), actor="sup-1")
    s.engine.flush()
    instants = [T0 + timedelta(days=days) for days in (-1, 1, 6, 10)]
    replayed = {}
    for at in instants:
        store = replay(s.app, VIEWS, until=at)
        row = store.get("current_tier", "M1")
        replayed[at] = (row is not None,
                        row and queries.member_answer(store, "M1", row, at, s.app.policy)["benefits"])
    s.close()
    runner = CliRunner()
    env = {"VIP_DATA_DIR": str(tmp_path / "asof"), "VIP_EVENT_STORE": event_store}
    seen = []
    for at in instants:
        out = runner.invoke(main, ["tier", "M1", "--json", "--as-of", at.isoformat()], env=env,
                            catch_exceptions=False)
        cli = json.loads(out.output)["benefits"] if out.exit_code == 0 else None
        known, benefits_then = replayed[at]
        assert out.exit_code == (0 if known else 1)
        assert cli == json.loads(json.dumps(benefits_then, default=str))
        summary = json.loads(runner.invoke(main, ["replay", "--as-of", at.isoformat(), "--json",
                                                  "--no-progress"], env=env).output)
        assert [t["benefits"] for t in summary["tiers"] if t["member_id"] == "M1"] == ([cli] if known else [])
        seen.append(cli and (cli["dedicated_agent"], cli["priority"], cli["sla"]["first_response_s"],
                             cli["why"]["standing"], cli["why"]["policy_version"]))
    assert seen == [None, (first, 2, 3600, "active", "default-2025.1"),
                    (other, 2, 3600, "active", "default-2025.1"), None]


# -- reassignment --------------------------------------------------------------------------


def test_reassignment_is_for_supervisors_and_its_reason_is_sealed(make_system, event_store):
    from tests.api_support import build_api
    api = build_api(make_system, event_store)
    s = api.system
    s.clock.at = T0
    _vip(s, "M1", T0, 0, 19_900)  # build_api seeded M1 gold; this adds no spend
    current = s.app.member("M1").dedicated_agent
    other = next(a.id for a in s.app.policy.benefits.agents if a.team == "vip-care" and a.id != current)
    body = {"agent": other, "reason": "李雷 asked for a Mandarin speaker"}
    refused = api.client.post("/api/members/M1/assign-agent", json=body, headers=api.auth("agent"))
    assert refused.status_code == 403 and s.app.member("M1").dedicated_agent == current
    unknown = api.client.post("/api/members/M1/assign-agent", json={**body, "agent": "nobody"},
                              headers=api.auth("supervisor"))
    assert unknown.status_code == 409 and "not on the roster" in unknown.json()["detail"]
    done = api.client.post("/api/members/M1/assign-agent", json=body, headers=api.auth("supervisor"))
    assert done.status_code == 200, done.text
    assert done.json()["dedicated_agent"] == other == s.app.member("M1").dedicated_agent
    reassigned = _events(s, "member", "M1", "DedicatedAgentAssigned")[-1]
    assert reassigned["actor"] == "supervisor-1" and reassigned["data"]["basis"] == "reassigned"
    assert reassigned["data"]["previous_agent_id"] == current
    stored = [e for e in s.app.events.get(Member.create_id("M1"))
              if type(e).__name__ == "DedicatedAgentAssigned"]
    sealed = stored[-1].reason  # as recorded in the event store
    assert sealed.startswith("pii:") and "Mandarin" not in sealed
    assert s.app.cipher.open("M1", sealed) == body["reason"]
    shown = api.client.get("/api/members/M1/tier-history", headers=api.auth("supervisor")).json()["items"]
    assert shown[-1]["event"] == "DedicatedAgentAssigned" and shown[-1]["reason"] == body["reason"]
    tier = api.client.get("/api/members/M1/tier", headers=api.auth("agent")).json()
    assert tier["benefits"]["dedicated_agent"] == other
    complaint = _file(s, "C1", "M1", T0 + timedelta(minutes=5))
    assert complaint.assignee == other


def test_the_cli_refuses_an_agent_off_the_roster_and_records_nothing(tmp_path):
    env = {"VIP_DATA_DIR": str(tmp_path / "data"), "VIP_EVENT_STORE": "sqlite"}
    runner = CliRunner()
    out = runner.invoke(main, ["member", "assign-agent", "M1", "--agent", "agent-care-1", "--reason", "x"],
                        env=env)
    assert out.exit_code == 1 and "no member 'M1'" in out.output and "Traceback" not in out.output


# -- the policy's benefits are data, checked on load --------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"agents": [{"id": "a1", "team": "ghost"}]}, "names team 'ghost'"),
    ({"tiers": [{"tier": "member", "dedicated_agent": True, "priority": 1, "team": "vip-care"}]},
     "is not a VIP tier"),
    ({"tiers": [{"tier": "gold", "dedicated_agent": True, "priority": 0, "team": "vip-care"}]},
     "priority must be a whole number from 1 to 100"),
    ({"agents": [{"id": "a1", "team": "vip-care", "available": "yes"}]}, "available must be true or false"),
    ({"agents": [{"id": "a1", "team": "vip-premier"}]}, "lists nobody in that team"),
    ({"teams": [{"id": "vip-care"}]}, "missing queue"),
])
def test_a_bad_benefits_section_is_refused_with_what_to_fix(tmp_path, change, message):
    with pytest.raises(PolicyFileError, match=message):
        load_policy(_policy_file(tmp_path, "bad-1", **change))


def test_the_packaged_policy_gives_every_vip_tier_a_dedicated_agent_and_priority_by_tier():
    policy = load_policy()
    assert [(b.tier, b.dedicated_agent, b.priority) for b in policy.benefits.tiers] == [
        ("silver", True, 1), ("gold", True, 2), ("platinum", True, 3), ("diamond", True, 4)]
    assert benefits.routing(policy, "member", None) is None
