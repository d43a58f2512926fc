"""The `vip` command as an operator uses it: tables by default, JSON with --json, clear refusals."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hosts.main import main


@pytest.fixture
def vip(tmp_path):
    runner = CliRunner()
    env = {"VIP_DATA_DIR": str(tmp_path / "data"), "VIP_EVENT_STORE": "sqlite"}

    def run(*args, ok=True):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result
    run.tmp = tmp_path
    return run


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return str(path)


ORDERS = [{"event_id": f"e{n}", "type": "OrderPaid", "member_id": "M1", "order_id": f"o{n}",
           "occurred_at": f"2025-03-0{n}T10:00:00+08:00", "amount_fen": 1_200_000, "currency": "CNY"}
          for n in range(1, 3)]
CRM = [{"event_id": "r1", "type": "CustomerRegistered", "member_id": "M1",
        "occurred_at": "2025-02-01T09:00:00+08:00", "name": "李雷", "phone": "13700001111"}]


def test_ingest_then_query_tier_as_table_and_json(vip):
    vip("ingest", "crm", _write(vip.tmp / "crm.jsonl", CRM), "--no-progress")
    out = vip("ingest", "orders", _write(vip.tmp / "o.jsonl", ORDERS), "--json", "--no-progress").output
    assert json.loads(out)["applied"] == 2
    table = vip("tier", "M1", "--as-of", "2025-03-10T00:00:00+08:00").output
    assert "gold" in table and "24,000.00 CNY" in table and "window_spend_fen" not in table
    data = json.loads(vip("tier", "M1", "--json", "--as-of", "2025-03-10T00:00:00+08:00").output)
    assert data["tier"] == "gold" and data["window_spend_fen"] == 2_400_000
    tiers = json.loads(vip("tiers", "--json", "--as-of", "2025-03-01T12:00:00+08:00").output)
    assert [t["tier"] for t in tiers] == ["silver"]


def test_as_of_answers_equal_replay_as_of(vip):
    vip("ingest-all", "--orders", _write(vip.tmp / "o.jsonl", ORDERS), "--crm",
        _write(vip.tmp / "c.jsonl", CRM), "--no-progress")
    at = "2025-03-01T12:00:00+08:00"
    tiers = json.loads(vip("tiers", "--json", "--as-of", at).output)
    replayed = json.loads(vip("replay", "--as-of", at, "--json", "--no-progress").output)
    assert replayed["tiers"] == tiers


def test_history_shows_every_event_with_actor_and_policy_version(vip):
    vip("ingest", "crm", _write(vip.tmp / "crm.jsonl", CRM), "--no-progress")
    vip("ingest", "orders", _write(vip.tmp / "o.jsonl", ORDERS), "--no-progress")
    events = json.loads(vip("history", "member", "M1", "--json").output)
    types = [e["type"] for e in events]
    assert types[0] == "MemberRegistered" and "TierUpgraded" in types
    upgrade = events[types.index("TierUpgraded")]
    assert upgrade["policy_version"] == "default-2025.1" and upgrade["actor"] == "upstream:orders"
    assert events[0]["data"]["profile"]["name"] == "李雷"


def test_a_refused_command_exits_1_and_says_what_to_fix(vip):
    vip("ingest", "crm", _write(vip.tmp / "crm.jsonl", CRM), "--no-progress")
    result = vip("member", "apply", "M1", "--at", "2025-02-02T10:00:00+08:00", ok=False)
    assert result.exit_code == 1
    assert "does not meet the VIP standard" in result.output and "silver needs" in result.output
    missing = vip("member", "start-review", "NOPE", ok=False)
    assert missing.exit_code == 1 and "no member 'NOPE'" in missing.output


def test_the_vip_workflow_end_to_end_through_the_cli(vip, tmp_path):
    vip("ingest-all", "--orders", _write(vip.tmp / "o.jsonl", ORDERS), "--crm",
        _write(vip.tmp / "c.jsonl", CRM), "--no-progress")
    at = "--at"
    vip("member", "apply", "M1", at, "2025-03-03T10:00:00+08:00")
    vip("member", "start-review", "M1", at, "2025-03-03T11:00:00+08:00", "--actor", "reviewer")
    vip("member", "approve", "M1", at, "2025-03-03T12:00:00+08:00", "--actor", "reviewer")
    terms = json.dumps({"parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1"})
    vip("contract", "draft", "VA-1", "--kind", "member_agreement", "--terms", terms, at, "2025-03-03T13:00:00+08:00")
    vip("contract", "sign", "VA-1", "--party", "M1", at, "2025-03-03T13:05:00+08:00")
    vip("contract", "sign", "VA-1", "--party", "platform", at, "2025-03-03T13:10:00+08:00")
    vip("contract", "invoice", "VA-1", "--id", "FEE-1", "--payer", "M1", "--amount-fen", "19900",
        "--kind", "membership_fee", at, "2025-03-03T13:20:00+08:00")
    out = json.loads(vip("contract", "pay", "VA-1", "--invoice", "FEE-1", "--amount-fen", "19900",
                         "--payment-id", "P1", at, "2025-03-04T09:00:00+08:00", "--json").output)
    assert out["invoices"]["FEE-1"]["status"] == "paid"
    vip("complaint", "file", "C1", "--member", "M1", "--channel", "phone", "--category", "billing",
        "--description", "账单错误", at, "2025-03-05T10:00:00+08:00")
    # Queries bring the timeline to the wall clock, so every back-dated entry comes first.
    tier = json.loads(vip("tier", "M1", "--json", "--as-of", "2025-03-04T10:00:00+08:00").output)
    assert tier["vip_status"] == "active" and tier["tier"] == "gold"
    ledger = json.loads(vip("ledger", "--json", "--contract", "VA-1").output)
    assert ledger["accounts"]["CNY"]["cash"] == 19900
    assert ledger["trial_balance"]["CNY"]["balanced"]
    breaches = json.loads(vip("breaches", "--json", "--as-of", "2025-03-05T10:50:00+08:00").output)
    assert breaches[0]["state"] == "at_risk" and breaches[0]["clock"] == "first_response"
    assert "gold" == breaches[0]["tier"]
    vip("erase", "member", "M1", at, "2025-03-06T10:00:00+08:00")
    history = json.loads(vip("history", "complaint", "C1", "--json").output)
    assert history[0]["data"]["description"] == "[erased]"


def test_a_cooperation_contract_runs_its_life_cycle_through_the_cli(vip):
    """Seed 000 §1.3, §3.2, §4.3, §6, §8, §9, §10, §11 as an operator types them."""
    terms = {"parties": [{"id": "platform"}, {"id": "P1"}], "revenue_share": {"platform": 7000, "P1": 3000},
             "milestones": [{"id": "M1", "title": "客服服务质量提升", "due_at": "2025-01-10T00:00:00+08:00"},
                            {"id": "M2", "title": "首场VIP用户活动", "due_months": 2}]}
    (vip.tmp / "terms.json").write_text(json.dumps(terms, ensure_ascii=False))
    t = lambda day, h=10: ("--at", f"2025-01-{day:02d}T{h:02d}:00:00+08:00")
    vip("contract", "draft", "K1", "--kind", "cooperation", "--terms", f"@{vip.tmp / 'terms.json'}", *t(2))
    vip("contract", "sign", "K1", "--party", "P1", *t(3))
    state = json.loads(vip("contract", "sign", "K1", "--party", "platform", "--json", *t(4)).output)
    assert state["status"] == "effective" and state["valid_until"].startswith("2026-01-04")
    vip("contract", "invoice", "K1", "--id", "I1", "--payer", "P1", "--amount-fen", "100001", *t(5))
    vip("contract", "discount", "K1", "--invoice", "I1", "--amount-fen", "1", "--reason", "rounding goodwill", *t(6))
    vip("contract", "pay", "K1", "--invoice", "I1", "--amount-fen", "100000", "--payment-id", "X", *t(7))
    vip("contract", "invoice", "K1", "--id", "I2", "--payer", "P1", "--amount-fen", "5000", *t(8))
    vip("contract", "waive", "K1", "--invoice", "I2", "--reason", "launch month", *t(9))
    vip("contract", "propose-amendment", "K1", "--id", "A1", "--changes", '{"payment_terms_days": 15}', *t(10))
    vip("contract", "consent", "K1", "--id", "A1", "--party", "P1", *t(11))
    amended = json.loads(vip("contract", "consent", "K1", "--id", "A1", "--party", "platform", "--json", *t(12)).output)
    assert amended["terms_version"] == 2
    vip("contract", "breach", "K1", "--party", "P1", "--description", "late milestone",
        "--compensation-fen", "20000", *t(13))
    vip("contract", "dispute", "K1", "--party", "P1", "--reason", "compensation too high", *t(14))
    vip("contract", "settle-dispute", "K1", "--outcome", "halved", *t(15))
    vip("contract", "renew", "K1", "--months", "6", *t(16))
    done = json.loads(vip("contract", "terminate", "K1", "--reason", "strategy change", "--settlement",
                          '{"amount_fen": 3000, "payer": "P1", "currency": "CNY"}', "--json", *t(20)).output)
    assert done["status"] == "terminated"
    overdue = json.loads(vip("overdue", "--json", "--as-of", "2025-01-15T00:00:00+08:00").output)
    assert [m["milestone"] for m in overdue["milestones"]] == ["M1"]
    events = [e["type"] for e in json.loads(vip("history", "contract", "K1", "--json").output)]
    assert events.index("MilestoneOverdue") == events.index("AmendmentProposed") - 1  # fired at its due time
    ledger = json.loads(vip("ledger", "--json", "--contract", "K1").output)
    accounts = ledger["accounts"]["CNY"]
    assert accounts["revenue:service_fee"] == -(100001 + 5000) + 30000 + 1500 + 1  # net of partner share
    # The waived 5,000 is not shared: the partner's 1,500 of it is reversed; the 1 fen
    # discount takes back the 1 fen rounding remainder of the first invoice.
    assert accounts["partner_payable:P1"] == -30000
    assert accounts["rounding"] == 0
    assert accounts["discounts"] == 1 + 5000 - 1 - 1500
    assert accounts["cash"] == 100000 and accounts["compensation_income"] == -20000
    assert ledger["trial_balance"]["CNY"]["balanced"]
    refused = vip("contract", "renew", "K1", ok=False)
    assert refused.exit_code == 1 and "terminated" in refused.output


def test_a_complaint_runs_its_life_cycle_through_the_cli(vip):
    """Seed 002 §7.1-§7.3 and §5.3 as an agent types them."""
    vip("ingest", "crm", _write(vip.tmp / "crm.jsonl", CRM), "--no-progress")
    t = lambda h, m=0: ("--at", f"2025-03-04T{h:02d}:{m:02d}:00+08:00")
    vip("complaint", "file", "C9", "--member", "M1", "--channel", "email", "--category", "delivery",
        "--severity", "low", "--description", "包裹丢失", *t(9))
    vip("complaint", "ack", "C9", *t(9, 30))
    vip("complaint", "assign", "C9", "--to", "agent-7", *t(9, 40))
    vip("complaint", "wait", "C9", "--reason", "need tracking number", *t(10))
    vip("complaint", "reply", "C9", *t(15))
    vip("complaint", "escalate", "C9", "--reason", "customer asked for a supervisor", *t(15, 30))
    vip("complaint", "resolve", "C9", "--resolution", "resent the parcel", *t(16))
    vip("complaint", "rate", "C9", "--score", "4", *t(17))
    vip("complaint", "close", "C9", *t(18))
    reopened = json.loads(vip("complaint", "reopen", "C9", "--reason", "parcel lost again", "--json", *t(19)).output)
    assert reopened["status"] == "reopened" and reopened["rating"] is None
    kpis = json.loads(vip("kpis", "--json").output)
    assert kpis[0]["tier"] == "member" and kpis[0]["filed"] == 1
    events = [e["type"] for e in json.loads(vip("history", "complaint", "C9", "--json").output)]
    assert events[:2] == ["ComplaintFiled", "ComplaintAcknowledged"]
    # The reopened clock ran out long ago: the query says so, but records nothing.
    assert events[-1] == "ComplaintReopened"
    breached = json.loads(vip("breaches", "--json").output)
    assert {(b["complaint_id"], b["state"]) for b in breached} == {("C9", "breached")}
    # The scheduler records it, each at its own due instant.
    vip("tick")
    events = [e["type"] for e in json.loads(vip("history", "complaint", "C9", "--json").output)]
    after = events[events.index("ComplaintReopened"):]
    assert after[-3:] == ["ComplaintSlaAtRisk", "ComplaintSlaBreached", "ComplaintEscalated"]


def test_overrides_and_revocation_through_the_cli(vip):
    vip("ingest-all", "--orders", _write(vip.tmp / "o.jsonl", ORDERS), "--crm",
        _write(vip.tmp / "c.jsonl", CRM), "--no-progress")
    missing_actor = vip("member", "override", "M1", "--kind", "pin", "--tier", "diamond", "--reason", "vip guest",
                        "--expires", "2025-06-01T00:00:00+08:00", "--actor", "system",
                        "--at", "2025-03-05T00:00:00+08:00", ok=False)
    assert missing_actor.exit_code == 1 and "reserved for the system's own actors" in missing_actor.output
    vip("member", "override", "M1", "--kind", "pin", "--tier", "diamond", "--reason", "vip guest",
        "--expires", "2025-06-01T00:00:00+08:00", "--actor", "alice", "--at", "2025-03-05T00:00:00+08:00")
    pinned = json.loads(vip("tier", "M1", "--json", "--as-of", "2025-04-01T00:00:00+08:00").output)
    assert pinned["effective_tier"] == "diamond" and pinned["override"]["actor"] == "alice"
    expired = json.loads(vip("tier", "M1", "--json", "--as-of", "2025-06-02T00:00:00+08:00").output)
    assert expired["effective_tier"] == "gold" and expired["override"] is None
    history = [h["event"] for h in json.loads(vip("tier-history", "M1", "--json").output)]
    # Queries record nothing: the expiry and the reviews wait for the scheduler.
    assert history == ["TierUpgraded", "TierUpgraded", "TierOverrideSet"]
    now = json.loads(vip("tier", "M1", "--json").output)
    assert now["review_due"] is True and now["override"] is None
    vip("tick")
    history = [h["event"] for h in json.loads(vip("tier-history", "M1", "--json").output)]
    assert history[:4] == ["TierUpgraded", "TierUpgraded", "TierOverrideSet", "TierOverrideCleared"]
    assert "TierReviewed" in history[4:]


def test_a_member_agreement_cannot_take_effect_before_approval(vip):
    """Seed 002 §2.2.3: the agreement is signed after the application is approved."""
    vip("ingest-all", "--orders", _write(vip.tmp / "o.jsonl", ORDERS), "--crm",
        _write(vip.tmp / "c.jsonl", CRM), "--no-progress")
    at = "--at"
    vip("member", "apply", "M1", at, "2025-03-03T10:00:00+08:00")
    terms = json.dumps({"parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1"})
    vip("contract", "draft", "VA-1", "--kind", "member_agreement", "--terms", terms, at, "2025-03-03T11:00:00+08:00")
    vip("contract", "sign", "VA-1", "--party", "M1", at, "2025-03-03T11:05:00+08:00")
    early = vip("contract", "sign", "VA-1", "--party", "platform", at, "2025-03-03T11:10:00+08:00", ok=False)
    assert early.exit_code == 1 and "VIP status is applied, needs approved" in early.output
    vip("member", "start-review", "M1", at, "2025-03-03T12:00:00+08:00")
    vip("member", "approve", "M1", at, "2025-03-03T13:00:00+08:00")
    vip("contract", "sign", "VA-1", "--party", "platform", at, "2025-03-03T14:00:00+08:00")
    out = json.loads(vip("history", "member", "M1", "--json").output)
    assert "VipAgreementSigned" in [e["type"] for e in out]


def test_tier_history_of_an_unknown_member_is_an_error_not_an_empty_table(vip):
    vip("ingest", "orders", _write(vip.tmp / "o.jsonl", ORDERS), "--no-progress")
    missing = vip("tier-history", "NOPE", ok=False)
    assert missing.exit_code == 1 and "no member 'NOPE'" in missing.output
    assert json.loads(vip("tier-history", "M1", "--json").output)[0]["to"] == "silver"
