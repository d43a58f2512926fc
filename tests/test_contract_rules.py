"""Business rules of the Contract aggregate: terms, signing, milestones, money, amendments, end.

Pure domain tests: contracts are built directly and driven with ``Ctx``.
Seed 000 is the cooperation contract; seed 002 the member's VIP agreement.
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.base import Ctx, aggregate_id
from domain.contract import Contract, ContractError, TermsError, add_months, check_terms

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 1, 31, 10, 0, tzinfo=SH)

BASE_TERMS = {
    "parties": [{"id": "platform", "name": "Party A"}, {"id": "provider", "name": "Party B"}],
    "validity_months": 12,
    "payment_terms_days": 30,
    "revenue_share": {"platform": 7000, "provider": 3000},
    "milestones": [
        {"id": "m1", "title": "customer service quality", "due_months": 1},
        {"id": "m2", "title": "first VIP event", "due_months": 2},
        {"id": "m3", "title": "wider product trials", "due_months": 3},
        {"id": "m4", "title": "price policy", "due_months": 4},
        {"id": "m5", "title": "recommendations", "due_months": 5},
    ],
}


def ctx(at: datetime, actor: str = "system") -> Ctx:
    return Ctx(at=at, actor=actor)


def terms(**changes) -> dict:
    t = copy.deepcopy(BASE_TERMS)
    t.update(changes)
    return t


def names(events) -> list[str]:
    return [type(e).__name__ for e in events]


def drafted(at: datetime = T0, **changes) -> Contract:
    return Contract.draft(ctx(at, "legal"), "C-2025-1", "cooperation", terms(**changes))


def effective(at: datetime = T0, **changes) -> Contract:
    c = drafted(at - timedelta(days=1), **changes)
    c.sign(ctx(at - timedelta(hours=2), "platform"), "platform")
    c.sign(ctx(at, "provider"), "provider")
    c.collect_events()
    return c


def with_invoice(amount_fen: int = 100_000, currency: str = "CNY") -> Contract:
    c = effective()
    c.issue_invoice(ctx(T0 + timedelta(days=1)), "INV-1", "provider", amount_fen, currency,
                    "service_fee")
    c.collect_events()
    return c


# -- terms ----------------------------------------------------------------------


@pytest.mark.parametrize("bad, message", [
    ({"parties": [{"id": "platform"}]}, "exactly two parties"),
    ({"parties": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}, "exactly two parties"),
    ({"parties": [{"id": "a"}, {"id": "a"}]}, "distinct ids"),
    ({"parties": [{"id": "a"}, {"name": "no id"}]}, "two parties"),
    ({"revenue_share": {"platform": 7000, "provider": 2999}}, "add up to 10000"),
    ({"revenue_share": {"platform": 11000, "provider": -1000}}, "add up to 10000"),
    ({"revenue_share": {"platform": 5000, "stranger": 5000}}, "not in the contract"),
    ({"milestones": [{"id": "m1", "title": "no due"}]}, "needs due_months or due_at"),
    ({"milestones": [{"id": "m1", "due_months": 1}, {"id": "m1", "due_months": 2}]}, "unique id"),
    ({"validity_months": 0}, "validity_months"),
    ({"payment_terms_days": -1}, "payment_terms_days"),
])
def test_check_terms_refuses_terms_that_cannot_be_run(bad, message):
    with pytest.raises(TermsError, match=message):
        check_terms("cooperation", terms(**bad))


def test_check_terms_accepts_the_seed_000_shape_and_checks_the_kind():
    check_terms("cooperation", terms())
    with pytest.raises(TermsError, match="kind"):
        check_terms("lease", terms())
    with pytest.raises(TermsError, match="member_id"):
        check_terms("member_agreement", terms())
    check_terms("member_agreement", terms(member_id="M1", parties=[{"id": "platform"}, {"id": "M1"}],
                                          revenue_share={"platform": 10000}))


def test_draft_refuses_bad_terms_and_records_good_ones():
    with pytest.raises(TermsError):
        Contract.draft(ctx(T0), "C-X", "cooperation", terms(revenue_share={"platform": 1}))
    c = drafted()
    assert c.id == aggregate_id("contract", "C-2025-1")
    assert (c.status, c.terms_version, c.effective_at) == ("draft", 1, None)
    [created] = c.collect_events()
    assert type(created).__name__ == "ContractDrafted" and created.timestamp == T0


# -- signing and effect ------------------------------------------------------------


def test_contract_takes_effect_at_the_last_signature_for_one_year():
    """Seed 000 §1.3: effective from both parties' signatures, valid for one year."""
    c = drafted(T0 - timedelta(days=3))
    c.sign(ctx(T0 - timedelta(days=1), "platform"), "platform")
    assert c.status == "draft" and c.effective_at is None
    signed_at = datetime(2025, 3, 15, 16, 45, tzinfo=SH)
    c.sign(ctx(signed_at, "provider"), "provider")
    assert c.status == "effective"
    assert c.effective_at == signed_at
    assert c.valid_until == datetime(2026, 3, 15, 16, 45, tzinfo=SH)
    assert names(c.collect_events()) == ["ContractDrafted", "ContractSigned", "ContractSigned",
                                         "ContractBecameEffective"]


def test_signing_is_refused_for_strangers_twice_and_after_effect():
    c = drafted()
    with pytest.raises(ContractError, match="not a party"):
        c.sign(ctx(T0), "stranger")
    c.sign(ctx(T0), "platform")
    with pytest.raises(ContractError, match="already signed"):
        c.sign(ctx(T0), "platform")
    c.sign(ctx(T0), "provider")
    with pytest.raises(ContractError, match="only drafts"):
        c.sign(ctx(T0), "provider")


def test_each_signature_records_the_moment_that_party_signed():
    """Seed 000 §1.3: each party's signing date matters; the last one starts the contract."""
    c = drafted(T0 - timedelta(days=3))
    c.sign(ctx(T0 - timedelta(days=1), "platform"), "platform")
    c.sign(ctx(T0, "provider"), "provider")
    assert c.signed_by == {"platform": T0 - timedelta(days=1), "provider": T0}


# -- milestones --------------------------------------------------------------------


def test_milestones_fall_due_by_month_offsets_from_effect():
    """Seed 000 §3.2: the five upgrade steps in months one to five (clamped to month end)."""
    c = effective(T0)  # 31 January
    due = {k: v["due_at"] for k, v in c.milestones.items()}
    assert due == {
        "m1": datetime(2025, 2, 28, 10, 0, tzinfo=SH),
        "m2": datetime(2025, 3, 31, 10, 0, tzinfo=SH),
        "m3": datetime(2025, 4, 30, 10, 0, tzinfo=SH),
        "m4": datetime(2025, 5, 31, 10, 0, tzinfo=SH),
        "m5": datetime(2025, 6, 30, 10, 0, tzinfo=SH),
    }
    assert all(m["status"] == "pending" for m in c.milestones.values())


def test_a_milestone_with_a_fixed_due_date_keeps_it():
    fixed = datetime(2025, 4, 1, 18, 0, tzinfo=SH)
    c = effective(milestones=[{"id": "launch", "due_at": fixed}])
    assert c.milestones["launch"]["due_at"] == fixed


def test_milestone_completed_at_its_due_instant_is_on_time_and_after_is_late():
    c = effective()
    due1 = c.milestones["m1"]["due_at"]
    c.complete_milestone(ctx(due1), "m1")
    c.complete_milestone(ctx(c.milestones["m2"]["due_at"] + timedelta(microseconds=1)), "m2")
    on_time, late = c.collect_events()
    assert (on_time.milestone_id, on_time.late) == ("m1", False)
    assert (late.milestone_id, late.late) == ("m2", True)
    assert c.milestones["m1"]["status"] == c.milestones["m2"]["status"] == "completed"
    with pytest.raises(ContractError, match="already completed"):
        c.complete_milestone(ctx(due1), "m1")
    with pytest.raises(ContractError, match="no milestone"):
        c.complete_milestone(ctx(due1), "m9")


def test_a_completed_milestone_records_when_it_was_completed():
    c = effective()
    done = T0 + timedelta(days=20)
    c.complete_milestone(ctx(done), "m1")
    assert c.milestones["m1"]["completed_at"] == done


def test_milestone_is_marked_overdue_only_at_or_after_its_due_date():
    c = effective()
    due = c.milestones["m1"]["due_at"]
    with pytest.raises(ContractError, match="not overdue"):
        c.mark_milestone_overdue(ctx(due - timedelta(microseconds=1)), "m1")
    c.mark_milestone_overdue(ctx(due + timedelta(hours=5)), "m1")
    [overdue] = c.collect_events()
    assert overdue.due_at == due and c.milestones["m1"]["status"] == "overdue"
    with pytest.raises(ContractError, match="not overdue"):
        c.mark_milestone_overdue(ctx(due + timedelta(days=1)), "m1")
    # completing an overdue milestone is still possible, and late
    c.complete_milestone(ctx(due + timedelta(days=2)), "m1")
    [completed] = c.collect_events()
    assert completed.late is True and c.milestones["m1"]["status"] == "completed"
    c.complete_milestone(ctx(T0), "m2")
    with pytest.raises(ContractError, match="not overdue"):
        c.mark_milestone_overdue(ctx(c.milestones["m2"]["due_at"]), "m2")


# -- invoices and payments -----------------------------------------------------------


def test_invoice_is_issued_only_on_a_live_contract_to_a_party_with_a_known_kind():
    """Seed 000 §6 fee settlement: an invoice with payer, amount and due date."""
    c = drafted()
    with pytest.raises(ContractError, match="draft"):
        c.issue_invoice(ctx(T0), "INV-1", "provider", 100, "CNY", "service_fee")
    c = effective()
    with pytest.raises(ContractError, match="not a party"):
        c.issue_invoice(ctx(T0), "INV-1", "stranger", 100, "CNY", "service_fee")
    with pytest.raises(ContractError, match="invoice kind"):
        c.issue_invoice(ctx(T0), "INV-1", "provider", 100, "CNY", "tip")
    with pytest.raises(ContractError, match="positive whole number"):
        c.issue_invoice(ctx(T0), "INV-1", "provider", 0, "CNY", "service_fee")
    with pytest.raises(ContractError, match="ISO 4217"):
        c.issue_invoice(ctx(T0), "INV-1", "provider", 100, "rmb", "service_fee")
    c.issue_invoice(ctx(T0), "INV-1", "provider", 100, "CNY", "service_fee")
    with pytest.raises(ContractError, match="already exists"):
        c.issue_invoice(ctx(T0), "INV-1", "provider", 100, "CNY", "service_fee")


def test_invoice_is_due_after_the_payment_terms_and_records_share_and_terms_version():
    """Seed 000 §6.3 payment term; §4.3 revenue shared by the agreed ratio."""
    c = effective(payment_terms_days=15)
    c.issue_invoice(ctx(T0), "INV-1", "provider", 100_000, "CNY", "service_fee")
    [issued] = c.collect_events()
    assert issued.due_at == T0 + timedelta(days=15)
    assert (issued.payer, issued.payee) == ("provider", "platform")
    assert issued.revenue_share == {"platform": 7000, "provider": 3000}
    assert issued.terms_version == 1
    assert c.outstanding("INV-1") == 100_000 and c.invoices["INV-1"]["status"] == "open"


def test_partial_then_full_payment_settles_the_invoice_and_overpayment_is_refused():
    c = with_invoice(100_000)
    c.receive_payment(ctx(T0 + timedelta(days=2)), "INV-1", 40_000, "CNY", "P1")
    assert c.outstanding("INV-1") == 60_000 and c.invoices["INV-1"]["status"] == "open"
    with pytest.raises(ContractError) as err:
        c.receive_payment(ctx(T0 + timedelta(days=3)), "INV-1", 60_001, "CNY", "P2")
    assert "60001" in str(err.value) and "60000" in str(err.value)
    c.receive_payment(ctx(T0 + timedelta(days=3)), "INV-1", 60_000, "CNY", "P2")
    assert c.outstanding("INV-1") == 0 and c.invoices["INV-1"]["status"] == "paid"
    events = c.collect_events()
    assert [e.amount_fen for e in events] == [40_000, 60_000]
    assert (events[0].payer, events[0].payee) == ("provider", "platform")


def test_payment_in_another_currency_or_for_an_unknown_invoice_is_refused():
    c = with_invoice(100_000)
    with pytest.raises(ContractError, match="USD"):
        c.receive_payment(ctx(T0), "INV-1", 100, "USD", "P1")
    with pytest.raises(ContractError, match="no invoice"):
        c.receive_payment(ctx(T0), "INV-9", 100, "CNY", "P1")
    assert c.outstanding("INV-1") == 100_000


def test_discount_lowers_what_is_owed_and_needs_a_reason():
    """Seed 002 §6.3: preferential policies and reductions."""
    c = with_invoice(100_000)
    with pytest.raises(ContractError, match="reason"):
        c.grant_discount(ctx(T0), "INV-1", 10_000, " ")
    with pytest.raises(ContractError, match="exceeds"):
        c.grant_discount(ctx(T0), "INV-1", 100_001, "too much")
    c.grant_discount(ctx(T0), "INV-1", 10_000, "annual promotion")
    [credited] = c.collect_events()
    assert credited.waiver is False and credited.amount_fen == 10_000
    assert credited.reason == "annual promotion"
    assert c.outstanding("INV-1") == 90_000
    c.receive_payment(ctx(T0), "INV-1", 90_000, "CNY", "P1")
    assert c.invoices["INV-1"]["status"] == "paid"


def test_waiver_forgives_everything_still_owed():
    """Seed 002 §6.3: a waiver (减免) of the remaining amount."""
    c = with_invoice(100_000)
    c.receive_payment(ctx(T0), "INV-1", 30_000, "CNY", "P1")
    c.collect_events()
    c.waive(ctx(T0), "INV-1", "service outage goodwill")
    [credited] = c.collect_events()
    assert credited.waiver is True and credited.amount_fen == 70_000
    assert c.outstanding("INV-1") == 0 and c.invoices["INV-1"]["status"] == "paid"
    with pytest.raises(ContractError, match="nothing outstanding"):
        c.waive(ctx(T0), "INV-1", "again")


def test_invoice_is_overdue_only_from_its_due_date_and_while_unpaid():
    c = with_invoice(100_000)
    due = c.invoices["INV-1"]["due_at"]
    with pytest.raises(ContractError, match="not overdue"):
        c.mark_invoice_overdue(ctx(due - timedelta(microseconds=1)), "INV-1")
    c.receive_payment(ctx(due - timedelta(days=1)), "INV-1", 25_000, "CNY", "P1")
    c.collect_events()
    c.mark_invoice_overdue(ctx(due + timedelta(hours=1)), "INV-1")
    [overdue] = c.collect_events()
    assert overdue.due_at == due and overdue.outstanding_fen == 75_000
    assert c.invoices["INV-1"]["status"] == "overdue"
    with pytest.raises(ContractError, match="not overdue"):
        c.mark_invoice_overdue(ctx(due + timedelta(days=2)), "INV-1")
    c.receive_payment(ctx(due + timedelta(days=3)), "INV-1", 75_000, "CNY", "P2")
    assert c.invoices["INV-1"]["status"] == "paid"


# -- amendments (seed 000 §11) ----------------------------------------------------------


def test_amendment_binds_only_with_both_parties_consent_and_makes_a_new_terms_version():
    """Seed 000 §11.1/§11.3: changes by consultation of both parties, effective when agreed."""
    c = effective()
    change = {"revenue_share": {"platform": 6000, "provider": 4000}}
    c.propose_amendment(ctx(T0, "platform"), "A1", change, "amendment")
    c.consent_to_amendment(ctx(T0), "A1", "platform")
    assert c.terms_version == 1 and c.terms["revenue_share"]["platform"] == 7000
    c.consent_to_amendment(ctx(T0 + timedelta(days=1)), "A1", "provider")
    assert c.terms_version == 2 and c.terms["revenue_share"] == change["revenue_share"]
    assert c.amendments["A1"]["status"] == "agreed"
    events = c.collect_events()
    assert names(events) == ["AmendmentProposed", "AmendmentConsented", "AmendmentConsented",
                             "TermsAmended"]
    assert events[-1].terms_version == 2 and events[-1].terms["parties"] == BASE_TERMS["parties"]
    c.issue_invoice(ctx(T0 + timedelta(days=2)), "INV-1", "provider", 100, "CNY", "service_fee")
    [issued] = c.collect_events()
    assert issued.terms_version == 2 and issued.revenue_share == change["revenue_share"]


def test_amendment_cannot_change_the_parties_or_break_the_terms():
    c = effective()
    with pytest.raises(TermsError, match="cannot change the parties"):
        c.propose_amendment(ctx(T0), "A1", {"parties": [{"id": "platform"}, {"id": "x"}]},
                            "amendment")
    with pytest.raises(TermsError, match="10000"):
        c.propose_amendment(ctx(T0), "A1", {"revenue_share": {"platform": 1}}, "amendment")
    with pytest.raises(ContractError, match="at least one term"):
        c.propose_amendment(ctx(T0), "A1", {}, "amendment")
    with pytest.raises(ContractError, match="kind"):
        c.propose_amendment(ctx(T0), "A1", {"payment_terms_days": 10}, "rewrite")
    assert c.amendments == {}


def test_consent_is_refused_for_strangers_twice_and_for_unknown_amendments():
    c = effective()
    c.propose_amendment(ctx(T0), "S1", {"confidentiality_years": 3}, "supplement")
    with pytest.raises(ContractError, match="not a party"):
        c.consent_to_amendment(ctx(T0), "S1", "stranger")
    c.consent_to_amendment(ctx(T0), "S1", "provider")
    with pytest.raises(ContractError, match="already consented"):
        c.consent_to_amendment(ctx(T0), "S1", "provider")
    with pytest.raises(ContractError, match="no proposed amendment"):
        c.consent_to_amendment(ctx(T0), "S9", "provider")
    with pytest.raises(ContractError, match="already exists"):
        c.propose_amendment(ctx(T0), "S1", {"confidentiality_years": 5}, "supplement")


def test_a_terminated_contract_cannot_be_amended_by_a_late_consent():
    """Seed 000 §11 changes a contract in force; §10 ends it."""
    c = effective()
    c.propose_amendment(ctx(T0), "A1", {"payment_terms_days": 10}, "amendment")
    c.consent_to_amendment(ctx(T0), "A1", "platform")
    c.terminate(ctx(T0 + timedelta(days=1)), "mutual agreement")
    with pytest.raises(ContractError):
        c.consent_to_amendment(ctx(T0 + timedelta(days=2)), "A1", "provider")
    assert c.terms_version == 1


# -- breach, dispute, termination, expiry, renewal -------------------------------------


def test_breach_records_the_party_in_breach_and_compensation_owed_to_the_other():
    """Seed 000 §8.2/§8.3: the party in breach compensates the other."""
    c = effective()
    with pytest.raises(ContractError, match="description"):
        c.record_breach(ctx(T0), "provider", " ", 500_000, "CNY")
    with pytest.raises(ContractError, match="not a party"):
        c.record_breach(ctx(T0), "stranger", "late", 500_000, "CNY")
    with pytest.raises(ContractError, match="positive"):
        c.record_breach(ctx(T0), "provider", "late", -1, "CNY")
    c.record_breach(ctx(T0), "provider", "milestone m1 missed by 30 days", 500_000, "CNY")
    c.record_breach(ctx(T0), "platform", "late user list", 0, "CNY")
    first, second = c.collect_events()
    assert (first.party_id, first.owed_to, first.compensation_fen) == ("provider", "platform", 500_000)
    assert (second.owed_to, second.compensation_fen) == ("provider", 0)
    assert len(c.breaches) == 2 and c.status == "effective"


def test_dispute_keeps_the_contract_live_until_it_is_settled():
    """Seed 000 §9: disputes are settled by negotiation; the contract stays in force."""
    c = effective()
    with pytest.raises(ContractError, match="reason"):
        c.open_dispute(ctx(T0), "provider", "")
    with pytest.raises(ContractError, match="no open dispute"):
        c.settle_dispute(ctx(T0), "nothing")
    c.open_dispute(ctx(T0), "provider", "revenue share computed on gross")
    assert c.status == "disputed"
    with pytest.raises(ContractError, match="only an effective"):
        c.open_dispute(ctx(T0), "platform", "counter claim")
    c.issue_invoice(ctx(T0), "INV-1", "provider", 100, "CNY", "service_fee")
    c.settle_dispute(ctx(T0 + timedelta(days=10)), "net basis agreed")
    assert c.status == "effective"
    assert names(c.collect_events()) == ["DisputeOpened", "InvoiceIssued", "DisputeSettled"]


def test_a_draft_cannot_be_disputed():
    c = drafted()
    with pytest.raises(ContractError, match="only an effective"):
        c.open_dispute(ctx(T0), "provider", "why")


def test_termination_needs_a_reason_and_a_settlement_payer_who_is_a_party():
    """Seed 000 §10.3: handling after termination (settlement)."""
    c = effective()
    with pytest.raises(ContractError, match="reason"):
        c.terminate(ctx(T0), " ")
    with pytest.raises(ContractError, match="not a party"):
        c.terminate(ctx(T0), "breach", {"amount_fen": 1000, "currency": "CNY", "payer": "x"})
    with pytest.raises(ContractError, match="positive"):
        c.terminate(ctx(T0), "breach", {"amount_fen": -5, "payer": "provider"})
    settlement = {"amount_fen": 250_000, "currency": "CNY", "payer": "provider"}
    c.terminate(ctx(T0 + timedelta(days=40)), "material breach by provider", settlement)
    [terminated] = c.collect_events()
    assert terminated.reason == "material breach by provider"
    assert terminated.settlement == settlement
    assert c.status == "terminated"


def test_a_disputed_contract_can_be_terminated():
    c = effective()
    c.open_dispute(ctx(T0), "platform", "quality")
    c.terminate(ctx(T0), "dispute unresolved")
    assert c.status == "terminated"


def test_commands_on_a_terminated_contract_are_refused():
    c = effective()
    c.terminate(ctx(T0 + timedelta(days=1)), "mutual agreement")
    c.collect_events()
    at = ctx(T0 + timedelta(days=2))
    refused = [
        lambda: c.sign(at, "platform"),
        lambda: c.complete_milestone(at, "m1"),
        lambda: c.mark_milestone_overdue(ctx(T0 + timedelta(days=400)), "m1"),
        lambda: c.issue_invoice(at, "INV-1", "provider", 100, "CNY", "service_fee"),
        lambda: c.propose_amendment(at, "A1", {"payment_terms_days": 10}, "amendment"),
        lambda: c.record_breach(at, "provider", "x", 0, "CNY"),
        lambda: c.open_dispute(at, "provider", "x"),
        lambda: c.terminate(at, "again"),
        lambda: c.expire(ctx(T0 + timedelta(days=400))),
        lambda: c.renew(at),
    ]
    for command in refused:
        with pytest.raises(ContractError):
            command()
    assert c.collect_events() == [] and c.status == "terminated"


def test_contract_expires_only_at_its_valid_until():
    c = effective()
    end = c.valid_until
    with pytest.raises(ContractError, match="does not expire"):
        c.expire(ctx(end - timedelta(microseconds=1)))
    c.expire(ctx(end))
    [expired] = c.collect_events()
    assert expired.valid_until == end and c.status == "expired"
    with pytest.raises(ContractError, match="ends before"):
        c.renew(ctx(end + timedelta(days=40)), months=1)  # a renewal must reach past its instant
    assert c.collect_events() == [] and c.status == "expired"


def test_renewal_extends_validity_from_the_current_end():
    """Seed 002 §12.3: renewal (续签) continues the agreement from its end."""
    c = effective()
    end = c.valid_until
    c.renew(ctx(end - timedelta(days=30)))
    assert c.valid_until == add_months(end, 12) == datetime(2027, 1, 31, 10, 0, tzinfo=SH)
    c.renew(ctx(end - timedelta(days=20)), months=6)
    assert c.valid_until == datetime(2027, 7, 31, 10, 0, tzinfo=SH)
    with pytest.raises(ContractError, match="positive"):
        c.renew(ctx(end), months=-1)
    assert [e.months for e in c.collect_events()] == [12, 6]
    with pytest.raises(ContractError, match="does not expire"):
        c.expire(ctx(end))


def test_renewal_for_zero_months_is_refused():
    c = effective()
    end = c.valid_until
    with pytest.raises(ContractError, match="positive"):
        c.renew(ctx(end), months=0)
    assert c.valid_until == end


def test_month_offsets_do_not_depend_on_the_zone_the_signing_time_is_written_in():
    """Seed 000 §3.2 '第一个月' counts calendar months in the contract's zone (Asia/Shanghai)."""
    instant_utc = datetime(2025, 1, 30, 17, 0, tzinfo=timezone.utc)  # 2025-01-31 01:00 Shanghai
    in_utc = effective(instant_utc)
    in_sh = effective(instant_utc.astimezone(SH))
    assert in_utc.effective_at == in_sh.effective_at
    assert in_utc.milestones["m1"]["due_at"] == in_sh.milestones["m1"]["due_at"]


def test_replaying_the_events_rebuilds_the_same_contract():
    c = drafted(T0 - timedelta(days=2))
    c.sign(ctx(T0 - timedelta(days=1)), "platform")
    c.sign(ctx(T0), "provider")
    c.complete_milestone(ctx(T0 + timedelta(days=10)), "m1")
    c.issue_invoice(ctx(T0 + timedelta(days=11)), "INV-1", "provider", 100_000, "CNY", "service_fee")
    c.grant_discount(ctx(T0 + timedelta(days=12)), "INV-1", 5_000, "promo")
    c.receive_payment(ctx(T0 + timedelta(days=13)), "INV-1", 20_000, "CNY", "P1")
    c.propose_amendment(ctx(T0 + timedelta(days=14)), "A1", {"payment_terms_days": 45}, "amendment")
    c.consent_to_amendment(ctx(T0 + timedelta(days=14)), "A1", "platform")
    c.consent_to_amendment(ctx(T0 + timedelta(days=15)), "A1", "provider")
    c.record_breach(ctx(T0 + timedelta(days=16)), "provider", "late", 1_000, "CNY")
    c.renew(ctx(T0 + timedelta(days=300)))
    rebuilt = None
    for e in c.collect_events():
        rebuilt = e.mutate(rebuilt)
    keep = lambda agg: {k: v for k, v in vars(agg).items() if k not in ("_ctx", "_pending_events")}
    assert keep(rebuilt) == keep(c)
    assert rebuilt.terms_version == 2 and rebuilt.outstanding("INV-1") == 75_000


def test_the_same_payment_id_is_recorded_once():
    """Seed 000 §6: a payment is one event; a re-sent confirmation must not post twice."""
    c = with_invoice(80_000)
    c.receive_payment(ctx(T0 + timedelta(days=2)), "INV-1", 40_000, "CNY", "P-1")
    with pytest.raises(ContractError, match="P-1 was already recorded"):
        c.receive_payment(ctx(T0 + timedelta(days=3)), "INV-1", 40_000, "CNY", "P-1")
    assert c.invoices["INV-1"]["paid_fen"] == 40_000


def test_an_agreed_amendment_reschedules_milestones_and_validity():
    """Seed 000 §11.3: agreed changes bind from then on, the schedule included."""
    c = effective()
    c.complete_milestone(ctx(T0 + timedelta(days=10)), "m1")
    new_milestones = BASE_TERMS["milestones"] + [{"id": "m6", "title": "loyalty app", "due_months": 7}]
    c.propose_amendment(ctx(T0 + timedelta(days=20), "legal"), "A1",
                        {"validity_months": 24, "milestones": new_milestones}, "supplement")
    c.consent_to_amendment(ctx(T0 + timedelta(days=21)), "A1", "platform")
    c.consent_to_amendment(ctx(T0 + timedelta(days=22)), "A1", "provider")
    assert c.terms_version == 2
    assert c.valid_until == datetime(2027, 1, 31, 10, 0, tzinfo=SH)
    assert c.milestones["m1"]["status"] == "completed"
    assert c.milestones["m6"]["due_at"] == datetime(2025, 8, 31, 10, 0, tzinfo=SH)
    c.complete_milestone(ctx(T0 + timedelta(days=100)), "m6")
    events = c.collect_events()
    amended = [e for e in events if type(e).__name__ == "TermsAmended"][0]
    assert amended.valid_until == c.valid_until and "m6" in amended.milestones
