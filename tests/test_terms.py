"""Contract terms: every malformed field named with what it must be; ISO 4217; parties only."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from domain.base import Ctx
from domain.contract import Contract, ContractError, TermsError
from domain.terms import terms_problems
from infra.service_layer.upstream import InputError, parse
from tests.test_cli import vip  # noqa: F401  (the fixture)
from tests.test_contract_rules import BASE_TERMS

T0 = datetime(2025, 1, 2, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


def _terms(**changes):
    return {**json.loads(json.dumps(BASE_TERMS)), **changes}


@pytest.mark.parametrize("changes, field, must", [
    ({"payment_terms_days": "30"}, "payment_terms_days", "whole number"),
    ({"validity_months": 1.5}, "validity_months", "positive whole number"),
    ({"revenue_share": {"platform": 7000.5, "provider": 2999.5}}, "revenue_share", "whole basis points"),
    ({"revenue_share": "70/30"}, "revenue_share", "object"),
    ({"parties": "platform,provider"}, "parties", "list"),
    ({"milestones": [{"id": "m1", "due_months": "1"}]}, "milestone m1 due_months", "positive whole number"),
    ({"milestones": [{"id": "m1", "due_at": 20250101}]}, "milestone m1 due_at", "ISO-8601"),
    ({"milestones": "m1"}, "milestones", "list"),
    ({"currency": "ABC"}, "currency", "ISO 4217"),
    ({"fee_schedule": [{"tier": "gold", "annual_fee_fen": 19900, "currency": "RMB"}]},
     "fee_schedule[0].currency", "ISO 4217"),
])
def test_a_malformed_field_is_named_with_what_it_must_be(changes, field, must):
    with pytest.raises(TermsError) as refused:
        Contract.draft(Ctx(T0), "C1", "cooperation", _terms(**changes))
    assert field in str(refused.value) and must in str(refused.value)


def test_every_malformed_field_is_reported_at_once():
    problems = terms_problems("cooperation", _terms(payment_terms_days="30", validity_months=0,
                                                    revenue_share={"platform": 0.5, "provider": 9999.5}))
    assert [p.split(" ")[0] for p in problems] == ["validity_months", "payment_terms_days", "revenue_share"]


def test_a_member_agreement_whose_share_names_a_non_party_reports_those_names():
    terms = {"parties": [{"id": "company"}, {"id": "M1"}], "member_id": "M1",
             "revenue_share": {"platform": 5000, "company": 2000, "M2": 3000}}
    with pytest.raises(TermsError) as refused:
        Contract.draft(Ctx(T0), "VA-1", "member_agreement", terms)
    assert "['M2', 'platform']" in str(refused.value) and "the parties are company, M1" in str(refused.value)


@pytest.mark.parametrize("currency, ok", [("CNY", True), ("USD", True), ("XAF", True), ("ABC", False),
                                          ("XXX", False), ("RMB", False), ("cny", False)])
def test_currencies_are_checked_against_iso_4217_in_contracts_and_inputs(currency, ok):
    c = Contract.draft(Ctx(T0), "C1", "cooperation", _terms())
    c.sign(Ctx(T0), "platform")
    c.sign(Ctx(T0), "provider")
    order = {"event_id": "e1", "type": "OrderPaid", "member_id": "M1", "order_id": "o1",
             "occurred_at": T0.isoformat(), "amount_fen": 100, "currency": currency}
    if ok:
        c.issue_invoice(Ctx(T0), "I1", "provider", 100, currency, "service_fee")
        assert parse("orders", order).fields["currency"] == currency
    else:
        with pytest.raises(ContractError, match="ISO 4217"):
            c.issue_invoice(Ctx(T0), "I1", "provider", 100, currency, "service_fee")
        with pytest.raises(InputError, match="ISO 4217"):
            parse("orders", order)


def test_a_termination_settlement_to_a_payee_who_is_not_a_party_is_refused():
    c = Contract.draft(Ctx(T0), "C1", "cooperation", _terms())
    with pytest.raises(ContractError, match="payee 'stranger' is not a party; parties are platform, provider"):
        c.terminate(Ctx(T0), "breach", {"amount_fen": 500, "currency": "CNY", "payer": "platform",
                                        "payee": "stranger"})
    c.terminate(Ctx(T0), "breach", {"amount_fen": 500, "currency": "CNY", "payer": "platform",
                                    "payee": "provider"})
    assert c.status == "terminated"


def test_terms_with_a_text_number_are_refused_by_the_cli_without_a_traceback(vip):
    (vip.tmp / "terms.json").write_text(json.dumps(_terms(payment_terms_days="30")))
    result = vip("contract", "draft", "K1", "--kind", "cooperation", "--terms", f"@{vip.tmp / 'terms.json'}",
                 "--at", "2025-01-02T10:00:00+08:00", ok=False)
    assert result.exit_code == 1
    assert "payment_terms_days must be a whole number" in result.output
    assert "Traceback" not in result.output


def test_a_zone_that_does_not_exist_and_mis_shaped_agreed_terms_are_named_at_draft():
    problems = terms_problems("cooperation", {
        "parties": [{"id": "platform"}, {"id": "P1"}], "revenue_share": {"platform": 5000, "P1": 5000},
        "zone": "Mars/Base", "confidentiality_years": "x", "notice_channels": "email", "sla_targets": 5})
    text = "; ".join(problems)
    for field in ("zone", "confidentiality_years", "notice_channels", "sla_targets"):
        assert field in text, (field, text)
    assert terms_problems("cooperation", {
        "parties": [{"id": "platform"}, {"id": "P1"}], "revenue_share": {"platform": 5000, "P1": 5000},
        "zone": "Europe/Berlin", "confidentiality_years": 3, "notice_channels": ["email"],
        "sla_targets": {"response_h": 24}}) == []
    assert not [p for p in terms_problems("cooperation", {
        "parties": [{"id": "platform"}, {"id": "P1"}], "revenue_share": {"platform": 5000, "P1": 5000},
        "sla_targets": "gold"}) if "sla_targets" in p]


def test_the_member_party_of_a_member_agreement_carries_no_personal_data():
    """Terms stay in clear for the contract's life; a name there would survive erasure."""
    named = {"parties": [{"id": "platform", "name": "Party A"}, {"id": "M1", "name": "李雷", "phone": "137"}],
             "member_id": "M1"}
    problems = terms_problems("member_agreement", named)
    assert any("parties[1] is the member" in p and "name, phone" in p for p in problems), problems
    plain = {"parties": [{"id": "platform", "name": "Party A"}, {"id": "M1", "role": "customer"}],
             "member_id": "M1"}
    assert terms_problems("member_agreement", plain) == []
