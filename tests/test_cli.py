"""The `vip` command as an operator uses it: tables by default, JSON with --json, clear refusals."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from infra.cli import main


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
    assert "gold" in table and "window_spend_fen" in table
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
    tier = json.loads(vip("tier", "M1", "--json").output)
    assert tier["vip_status"] == "active" and tier["tier"] == "gold"
    ledger = json.loads(vip("ledger", "--json", "--contract", "VA-1").output)
    assert ledger["accounts"]["CNY"]["cash"] == 19900
    assert ledger["trial_balance"]["CNY"]["balanced"]
    vip("complaint", "file", "C1", "--member", "M1", "--channel", "phone", "--category", "billing",
        "--description", "账单错误", at, "2025-03-05T10:00:00+08:00")
    breaches = json.loads(vip("breaches", "--json", "--as-of", "2025-03-05T10:50:00+08:00").output)
    assert breaches[0]["state"] == "at_risk" and breaches[0]["clock"] == "first_response"
    assert "gold" == breaches[0]["tier"]
    vip("erase", "member", "M1", at, "2025-03-06T10:00:00+08:00")
    history = json.loads(vip("history", "complaint", "C1", "--json").output)
    assert history[0]["data"]["description"] == "[erased]"
