"""The scheduler and the timelines: live equals batch, due work runs first, late inputs stay late."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from infra.service_layer.ingest import ingest_files
from infra.service_layer.upstream import apply_input, parse
from tests.aggregate_logs import logs_by_aggregate
from tests.scenario import START, Z, log_of, upstream_events, write_jsonl
from domain.window import AT


def _inputs(events):
    return sorted((parse(e["source"], e) for e in events), key=lambda i: i.occurred_at)


def test_a_shuffled_file_gives_the_same_log_as_the_same_events_arriving_live(make_system, tmp_path, event_store):
    """Batch (one file, any line order) and live (wall clock ticking between arrivals) agree event for
    event, aggregate by aggregate (DOMAIN.md "Time": each aggregate has its own timeline, so the
    scheduler's ticks may interleave the members' events differently in the log, never change them)."""
    events = upstream_events(members=10, days=500)
    orders = [e for e in events if e["source"] == "orders"]
    crm = [e for e in events if e["source"] == "crm"]
    write_jsonl(tmp_path / "orders.jsonl", orders)
    write_jsonl(tmp_path / "crm.jsonl", crm)

    batch = make_system(event_store, name="batch")
    report = ingest_files(batch.engine, [("orders", tmp_path / "orders.jsonl"),
                                         ("crm", tmp_path / "crm.jsonl")], progress=False)
    assert report.applied == len(events) and not report.rejected

    live = make_system(name="live")
    rng = random.Random(5)
    for item in _inputs(events):
        # Live: the wall clock runs ahead in uneven steps and the scheduler ticks.
        live.clock.at = item.occurred_at - timedelta(seconds=rng.uniform(0, 3600))
        live.engine.tick()
        live.clock.at = item.occurred_at
        apply_input(live.engine, item)
    end = START + timedelta(days=900)
    batch.engine.advance(end)
    for step in range(1, 40):
        live.clock.at = START + timedelta(days=step * 900 / 39)
        live.engine.tick()
    batch_log, live_log = logs_by_aggregate(batch.app), logs_by_aggregate(live.app)
    assert sum(e[0] == "TierReviewed" for log in batch_log.values() for e in log) > 0, \
        "the year must include annual reviews"
    assert batch_log == live_log


def test_reviews_fire_at_the_exact_anniversary_before_a_later_input(make_system):
    """Everything due at or before an input's time runs first, stamped with its due time."""
    s = make_system()
    first = datetime(2025, 3, 1, 12, tzinfo=Z)
    apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": "e1", "member_id": "M1",
                                           "order_id": "o1", "occurred_at": first.isoformat(),
                                           "amount_fen": 600_000, "currency": "CNY"}))
    later = first + timedelta(days=400)
    apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": "e2", "member_id": "M1",
                                           "order_id": "o2", "occurred_at": later.isoformat(),
                                           "amount_fen": 10_000, "currency": "CNY"}))
    log = log_of(s.app)
    types = [e[0] for e in log]
    review = log[types.index("TierReviewed")]
    assert review[2] == datetime(2026, 3, 1, 12, tzinfo=Z)
    assert types.index("TierReviewed") < types.index("OrderPaid", types.index("OrderPaid") + 1)
    assert s.app.member("M1").vip_status == "none"
    assert s.app.member("M1").tier == "member"  # silver lowered one step at the review


def test_a_late_order_counts_by_its_occurred_at_but_is_stamped_on_the_timeline(make_system):
    """A late input never rewrites history: it is applied at arrival, windows use its occurred-at."""
    s = make_system()
    t = datetime(2025, 6, 1, 10, tzinfo=Z)
    for n, (when, amount) in enumerate([(t, 300_000), (t + timedelta(days=10), 100_000)]):
        apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": f"e{n}", "member_id": "M1",
                                               "order_id": f"o{n}", "occurred_at": when.isoformat(),
                                               "amount_fen": amount, "currency": "CNY"}))
    late = t - timedelta(days=5)
    apply_input(s.engine, parse("orders", {"type": "OrderPaid", "event_id": "late", "member_id": "M1",
                                           "order_id": "o-late", "occurred_at": late.isoformat(),
                                           "amount_fen": 150_000, "currency": "CNY"}))
    log = log_of(s.app)
    stamps = [e[2] for e in log]
    assert stamps == sorted(stamps), "the log's timeline only moves forward"
    upgrade = [e for e in log if e[0] == "TierUpgraded"][0]
    assert upgrade[2] == t + timedelta(days=10)  # stamped at arrival on the timeline
    assert s.app.member("M1").tier == "silver"
    row = s.store.view("current_tier")["M1"]
    assert row["orders"]["o-late"][AT] == late.astimezone(Z).astimezone(
        __import__("datetime").timezone.utc).isoformat()


def test_sla_breach_is_recorded_at_the_deadline_even_when_noticed_much_later(make_system):
    """Breach time is the deadline, not the moment the scheduler looked."""
    s = make_system()
    t = datetime(2025, 6, 3, 10, tzinfo=Z)  # a Tuesday (2 June is the Dragon Boat holiday)
    s.engine.run(t, lambda u, c: u.register_member(c, "r1", "M1", {"name": "x"}))
    s.engine.run(t, lambda u, c: u.file_complaint(c, "C1", "M1", "web", "billing", "high", "text"))
    s.clock.at = t + timedelta(days=30)
    s.engine.tick()
    log = log_of(s.app)
    breaches = [e for e in log if e[0] == "ComplaintSlaBreached"]
    first_response = [b for b in breaches if "first_response" in b[3]][0]
    # 8 business hours after 10:00; recorded at the first instant after it (met at it, breached after)
    assert first_response[2] == datetime(2025, 6, 3, 18, tzinfo=Z) + timedelta(microseconds=1)
    escalations = [e for e in log if e[0] == "ComplaintEscalated"]
    assert len(escalations) == 2 and escalations[0][2] == first_response[2]


def test_an_invoice_unpaid_when_its_contract_expires_still_falls_overdue(make_system):
    """Money owed outlives the contract: the due date fires and the overdue list shows it."""
    from projections import queries
    s = make_system()
    t = datetime(2025, 1, 6, 10, tzinfo=Z)
    terms = {"parties": [{"id": "platform"}, {"id": "P1"}], "validity_months": 1}
    s.engine.run(t, lambda u, c: u.draft_contract(c, "K1", "cooperation", terms))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "K1", "P1"))
    s.engine.run(t, lambda u, c: u.sign_contract(c, "K1", "platform"))
    s.engine.run(t + timedelta(days=25), lambda u, c: u.issue_invoice(
        c, "K1", "I1", "P1", 50_000, "CNY", "service_fee"))
    later = t + timedelta(days=90)
    s.engine.advance(later)
    s.engine.flush()
    contract = s.app.contract("K1")
    assert contract.status == "expired" and contract.invoices["I1"]["status"] == "overdue"
    assert [i["invoice"] for i in queries.overdue(s.store, later)["invoices"]] == ["I1"]
