"""`vip contracts`, `vip complaints [show ID]`, JSON errors, the missing data dir and --actor,
through the `vip` command as an operator types it."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hosts.main import main

CRM = [{"event_id": f"r{n}", "type": "CustomerRegistered", "member_id": f"M{n}",
        "occurred_at": "2025-02-01T09:00:00+08:00", "name": "李雷"} for n in (1, 2)]


@pytest.fixture
def vip(tmp_path):
    runner = CliRunner()
    env = {"VIP_DATA_DIR": str(tmp_path / "data"), "VIP_EVENT_STORE": "sqlite", "VIP_OPERATOR": "",
           "VIP_DISPLAY_ZONE": ""}

    def run(*args, ok=True, **extra):
        result = runner.invoke(main, list(args), env={**env, **extra}, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result
    run.tmp = tmp_path
    return run


def _crm(vip):
    path = vip.tmp / "crm.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in CRM) + "\n")
    vip("ingest", "crm", str(path), "--no-progress")


def _complaints(vip):
    _crm(vip)
    t = lambda h, m=0: ("--at", f"2025-03-04T{h:02d}:{m:02d}:00+08:00")
    vip("complaint", "file", "C1", "--member", "M1", "--channel", "web", "--category", "billing",
        "--description", "多扣了费用", *t(10))
    vip("complaint", "file", "C2", "--member", "M2", "--channel", "phone", "--category", "delivery",
        "--severity", "high", "--description", "没收到", *t(10, 5))
    vip("complaint", "ack", "C1", *t(10, 30), "--actor", "agent-7")
    vip("complaint", "assign", "C1", "--to", "agent-7", *t(10, 40))
    vip("complaint", "resolve", "C1", "--resolution", "refunded the double charge", *t(14))
    vip("complaint", "rate", "C1", "--score", "5", *t(15))


def test_complaints_list_filters_by_status_tier_assignee_and_member(vip):
    _complaints(vip)
    ids = lambda *a: [c["complaint_id"] for c in json.loads(vip("complaints", "--json", *a).stdout)]
    assert ids() == ["C2", "C1"]  # newest first
    assert ids("--status", "open") == ["C2"] and ids("--status", "resolved") == ["C1"]
    assert ids("--assignee", "agent-7") == ["C1"] and ids("--member", "M2") == ["C2"]
    assert ids("--tier", "member") == ["C2", "C1"] and ids("--tier", "gold") == []
    table = vip("complaints", "--status", "open").stdout
    assert "C2" in table and "C1" not in table and "times in Asia/Shanghai" in table


def test_complaint_show_gives_clocks_deadlines_timeline_resolution_and_rating(vip):
    _complaints(vip)
    shown = json.loads(vip("complaints", "show", "C1", "--json").stdout)
    assert shown["resolution"] == "refunded the double charge" and shown["rating"] == 5
    assert {c["clock"]: c["state"] for c in shown["clocks"]} == {"first_response": "met", "resolution": "met"}
    assert [e["type"] for e in shown["timeline"]] == [
        "ComplaintFiled", "ComplaintAcknowledged", "ComplaintAssigned", "ComplaintResolved", "ComplaintRated"]
    assert shown["timeline"][1]["actor"] == "agent-7"
    same = json.loads(vip("complaint", "show", "C1", "--json").stdout)
    assert same == shown
    table = vip("complaint", "show", "C1").stdout
    assert "refunded the double charge" in table and "2025-03-04 10:00:00" in table  # filed, in +08:00
    assert "Clocks" in table and "Timeline" in table and "ComplaintRated" in table
    # Before the resolution, as of a past instant: the clocks were running.
    earlier = json.loads(vip("complaints", "show", "C1", "--json", "--as-of", "2025-03-04T12:00:00+08:00").stdout)
    assert earlier["resolution"] is None and [e["type"] for e in earlier["timeline"]][-1] == "ComplaintAssigned"
    assert {c["clock"]: c["state"] for c in earlier["clocks"]}["resolution"] == "running"
    missing = vip("complaints", "show", "C9", ok=False)
    assert missing.exit_code == 1 and "no complaint 'C9'" in missing.stderr


def test_contracts_list_with_status_judged_at_the_query_instant_and_outstanding(vip):
    t = lambda day: ("--at", f"2025-01-{day:02d}T10:00:00+08:00")
    terms = json.dumps({"parties": [{"id": "platform"}, {"id": "P1"}], "validity_months": 1})
    vip("contract", "draft", "K1", "--kind", "cooperation", "--terms", terms, *t(2))
    vip("contract", "sign", "K1", "--party", "P1", *t(3))
    vip("contract", "sign", "K1", "--party", "platform", *t(4))
    vip("contract", "invoice", "K1", "--id", "I1", "--payer", "P1", "--amount-fen", "1234567", *t(5))
    vip("contract", "pay", "K1", "--invoice", "I1", "--amount-fen", "34567", "--payment-id", "X", *t(6))
    vip("contract", "draft", "K2", "--kind", "cooperation", "--terms", terms, *t(7))
    rows = {c["contract_id"]: c for c in json.loads(vip("contracts", "--json", "--as-of", "2025-01-20").stdout)}
    assert rows["K1"]["status"] == "effective" and rows["K1"]["outstanding_fen"] == {"CNY": 1_200_000}
    assert rows["K2"]["status"] == "draft"
    # Past its validity the contract has expired at the query's instant, recorded or not.
    later = json.loads(vip("contracts", "--json", "--status", "expired").stdout)
    assert [c["contract_id"] for c in later] == ["K1"]
    assert [c["contract_id"] for c in json.loads(vip("contracts", "--json", "--status", "draft").stdout)] == ["K2"]
    assert json.loads(vip("contracts", "--json", "--kind", "member_agreement").stdout) == []
    table = vip("contracts", "--as-of", "2025-01-20").stdout
    assert "12,000.00 CNY" in table and "outstanding_fen" not in table and "1200000" not in table


def test_errors_under_json_are_json_with_the_same_exit_code(vip):
    _crm(vip)
    for args, code in ((["tier", "NOPE", "--json"], 1), (["tier", "--json"], 2),
                       (["member", "approve", "NOPE", "--json"], 1),
                       (["tiers", "--json", "--as-of", "next tuesday"], 2),
                       (["complaints", "show", "C9", "--json"], 1)):
        result = vip(*args, ok=False)
        error = json.loads(result.stderr)
        assert result.exit_code == code and error["exit"] == code and error["error"], args
        assert result.stdout == ""
    plain = vip("tier", "NOPE", ok=False)
    assert plain.exit_code == 1 and plain.stderr.startswith("Error: no member 'NOPE'")


@pytest.mark.parametrize("where", ["nowhere", "empty dir"])
def test_a_query_without_a_data_dir_is_an_error_naming_it_and_how_to_make_one(vip, where):
    data = vip.tmp / where
    if where == "empty dir":
        data.mkdir()
    for query in (["tiers"], ["breaches"], ["complaints"], ["contracts"], ["ledger"]):
        result = vip(*query, ok=False, VIP_DATA_DIR=str(data))
        assert result.exit_code == 1, query
        assert str(data / "events.db") in result.stderr and "vip ingest" in result.stderr
        failed = vip(*query, "--json", ok=False, VIP_DATA_DIR=str(data))
        assert json.loads(failed.stderr)["exit"] == 1
    assert not (vip.tmp / "nowhere").exists()  # queries never write, not even a directory


def test_changes_are_recorded_as_the_actor_the_operator_or_the_login(vip, monkeypatch):
    _crm(vip)
    monkeypatch.setattr("getpass.getuser", lambda: "wang.fang")
    vip("complaint", "file", "C1", "--member", "M1", "--channel", "web", "--category", "billing",
        "--description", "x", "--at", "2025-03-04T10:00:00+08:00")
    vip("complaint", "ack", "C1", "--at", "2025-03-04T10:10:00+08:00", VIP_OPERATOR="desk-3")
    vip("complaint", "assign", "C1", "--to", "agent-7", "--actor", "lead-1", "--at", "2025-03-04T10:20:00+08:00",
        VIP_OPERATOR="desk-3")
    actors = [e["actor"] for e in json.loads(vip("history", "complaint", "C1", "--json").stdout)]
    assert actors == ["operator:wang.fang", "desk-3", "lead-1"]
    for bad, source in (("system", "--actor"), ("upstream:orders", "--actor"), ("Bob Smith", "--actor")):
        refused = vip("complaint", "escalate", "C1", "--reason", "r", "--actor", bad, ok=False)
        assert refused.exit_code == 1 and f"{source} {bad!r} cannot act" in refused.stderr
    refused = vip("complaint", "escalate", "C1", "--reason", "r", ok=False, VIP_OPERATOR="scheduler")
    assert refused.exit_code == 1 and "VIP_OPERATOR 'scheduler' cannot act" in refused.stderr
    monkeypatch.setattr("getpass.getuser", lambda: "")
    nobody = vip("complaint", "escalate", "C1", "--reason", "r", ok=False)
    assert nobody.exit_code == 1 and "give --actor NAME or set VIP_OPERATOR" in nobody.stderr
    # Nothing refused was recorded.
    assert len(json.loads(vip("history", "complaint", "C1", "--json").stdout)) == 3
