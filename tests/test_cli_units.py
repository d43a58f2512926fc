"""Tables speak the operators' units (issue 19): instants in one named zone to the second,
durations in days/hours/minutes, money in CNY with separators, what is owed as a positive
amount; --json keeps the machine values. Checked on every query table of a simulated year."""
from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from hosts.main import main
from projections import presentation as show

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_durations_read_as_their_two_largest_units():
    assert show.duration(3 * 86400 + 4 * 3600 + 59) == "3 d 4 h"
    assert show.duration(2 * 3600 + 5 * 60 + 10) == "2 h 5 min"
    assert show.duration(40.4) == "40 s" and show.duration(0) == "0 s" and show.duration(86400) == "1 d"
    assert show.time_left(-(2 * 3600 + 5 * 60)) == "overdue 2 h 5 min"
    assert show.time_left(90) == "1 min 30 s"
    assert show.duration(35_406_767.6) == "409 d 19 h"  # the overdue_s main printed raw


def test_money_is_units_of_the_currency_with_thousands_separators():
    assert show.money(2_400_000) == "24,000.00 CNY"
    assert show.money(-5, "USD") == "-0.05 USD"
    assert show.value("outstanding_fen", 123_456_789, SHANGHAI) == "1,234,567.89 CNY"


def test_instants_are_shown_in_the_stated_zone_to_the_second():
    assert show.instant("2025-03-05T02:00:00.123456+00:00", SHANGHAI) == "2025-03-05 10:00:00"
    assert show.instant("2025-03-05T02:00:00+00:00", ZoneInfo("UTC")) == "2025-03-05 02:00:00"
    assert show.text("signed 2025-03-05T02:00:00+00:00, ok", SHANGHAI) == "signed 2025-03-05 10:00:00, ok"
    assert show.zone_note(SHANGHAI) == "times in Asia/Shanghai"


def test_ledger_balances_stand_on_their_natural_side():
    # Rows are debit positive: a payable we owe is a credit (negative) there, positive here.
    assert show.natural_balance("partner_payable:P1", -30_000) == 30_000
    assert show.natural_balance("receivable:P1", 19_900) == 19_900
    assert show.natural_balance("revenue:service_fee", -100) == 100
    assert show.account_nature("payable:P9") == "we owe" and show.account_nature("receivable:M1") == "owed to us"


# -- every query table of a simulated year --------------------------------------------------

RAW = {
    "an ISO instant": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"),
    "an offset": re.compile(r"\d{2}:\d{2}(:\d{2})?(\.\d+)?[+-]\d{2}:\d{2}"),
    "microseconds": re.compile(r"\d{2}:\d{2}:\d{2}\.\d"),
    "a unit in a column name": re.compile(r"\b\w+_(s|fen)\b"),
    "a float of seconds or fen": re.compile(r"(?<![\w.,])\d+\.\d{3,}"),
    # Whole numbers of 4+ digits without separators (an amount in fen, a count of seconds);
    # ids and dates have letters or hyphens next to them.
    "a long bare number": re.compile(r"(?<![\w.,:-])\d{4,}(?![\w.,:-])"),
    "money without its currency": re.compile(r"\d\.\d{2}(?! [A-Z]{3})(?!\d)(?!\.\.\.$)"),  # ... = cut
}


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    data = tmp_path_factory.mktemp("year") / "data"
    env = {"VIP_DATA_DIR": str(data), "VIP_EVENT_STORE": "sqlite", "VIP_DISPLAY_ZONE": ""}
    runner = CliRunner()

    def vip(*args, ok=True, **extra):
        result = runner.invoke(main, list(args), env={**env, **extra}, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result
    summary = vip("demo", "--members", "40", "--no-progress").stdout
    vip.demo = summary
    return vip


def _ids(vip) -> dict:
    tiers = json.loads(vip("tiers", "--json").stdout)
    complaints = json.loads(vip("complaints", "--json").stdout)
    contracts = json.loads(vip("contracts", "--json").stdout)
    assert tiers and complaints and contracts
    return {"member": tiers[0]["member_id"], "complaint": complaints[0]["complaint_id"],
            "contract": next(c["contract_id"] for c in contracts if c["kind"] == "cooperation")}


def _queries(ids: dict) -> list[list[str]]:
    return [["tier", ids["member"]], ["tiers"], ["tier-history", ids["member"]], ["breaches"], ["queue"],
            ["ledger"], ["ledger", "--contract", ids["contract"]], ["kpis"], ["overdue"],
            ["history", "member", ids["member"]], ["history", "complaint", ids["complaint"]],
            ["history", "contract", ids["contract"]], ["contracts"], ["complaints"],
            ["complaints", "show", ids["complaint"]], ["complaint", "show", ids["complaint"]],
            ["replay", "--as-of", "2025-12-01", "--no-progress"], ["verify", "--no-progress"]]


def test_no_query_table_prints_raw_instants_seconds_or_fen(year):
    outputs = {"demo": year.demo}
    for args in _queries(_ids(year)):
        outputs[" ".join(args)] = year(*args).stdout
    found = [f"`vip {name}` shows {what}: {m.group(0)!r} in {line!r}"
             for name, out in outputs.items() for line in out.splitlines()
             for what, pattern in RAW.items() for m in [pattern.search(line)] if m]
    assert found == []
    # Every table with instants says which zone they are in.
    for name, out in outputs.items():
        if re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", out):
            assert "times in Asia/Shanghai" in out, name


def test_the_display_zone_is_one_setting_for_what_is_shown_and_what_is_read(year):
    ids = _ids(year)
    raw = json.loads(year("history", "member", ids["member"], "--json").stdout)[0]["at"]
    utc = show.instant(raw, ZoneInfo("UTC"))
    table = year("history", "member", ids["member"], VIP_DISPLAY_ZONE="UTC").stdout
    assert "times in UTC" in table and utc in table
    # A bare --as-of is read in the same zone: 00:00 UTC is 08:00 in Shanghai.
    as_utc = json.loads(year("tiers", "--json", "--as-of", "2025-06-01T00:00:00", VIP_DISPLAY_ZONE="UTC").stdout)
    as_cst = json.loads(year("tiers", "--json", "--as-of", "2025-06-01T08:00:00").stdout)
    assert as_utc == as_cst
    bad = year("tiers", "--as-of", "2025-06-01", ok=False, VIP_DISPLAY_ZONE="Mars/Base")
    assert bad.exit_code == 1 and "VIP_DISPLAY_ZONE='Mars/Base' is not a time zone" in bad.stderr


def test_json_keeps_the_machine_values(year):
    breaches = json.loads(year("breaches", "--json").stdout)
    assert breaches and all(isinstance(b.get("overdue_s", b.get("left_s")), float) for b in breaches)
    ledger = json.loads(year("ledger", "--json").stdout)
    payables = {a: v for a, v in ledger["accounts"]["CNY"].items() if a.startswith("partner_payable:")}
    assert payables and all(isinstance(v, int) and v < 0 for v in payables.values())  # credits, in fen
    table = year("ledger").stdout
    for account, net in payables.items():
        line = next(line for line in table.splitlines() if line.startswith(account))
        assert "we owe" in line and show.money(-net) in line  # owed: a positive amount in CNY
