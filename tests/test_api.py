"""The HTTP API: commands and queries over the real system, idempotency, If-Match, problems."""
from __future__ import annotations

from datetime import timedelta

from infra.api.idempotency import fingerprint
from infra.api.models import File
from tests.api_support import seed_member, T0, TERMS, api  # noqa: F401  (fixture)


COMPLAINT = {"complaint_id": "C1", "member_id": "M1", "channel": "phone", "category": "delivery",
             "severity": "high", "description": "parcel lost"}


def file_complaint(api, complaint_id="C1", key=None, role="agent"):
    headers = {**api.auth(role), **({"Idempotency-Key": key} if key else {})}
    return api.client.post("/api/complaints", headers=headers, json={**COMPLAINT, "complaint_id": complaint_id})


def test_tier_answer_says_why_and_equals_the_cli_query(api):
    r = api.client.get("/api/members/M1/tier", headers=api.auth("agent"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "gold" and body["window_spend_fen"] == 2_500_000
    assert body["why"]["rule"]["tier"] == "gold" and body["why"]["last_change"]["event"] == "TierUpgraded"
    assert "25,000.00 CNY" in body["why"]["summary"]
    before = api.client.get("/api/members/M1/tier", headers=api.auth("agent"),
                            params={"as_of": (T0 - timedelta(days=1)).isoformat()})
    assert before.status_code == 404 and before.headers["content-type"] == "application/problem+json"


def test_a_member_below_the_vip_standard_gets_the_silver_rule_as_why_not_a_500(api):
    seed_member(api.system, "M2", spend_fen=10_000)
    r = api.client.get("/api/members/M2/tier", headers=api.auth("agent"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "member" and body["why"]["rule"]["tier"] == "silver"
    assert "not yet VIP" in body["why"]["summary"]


def test_the_tier_answer_gives_the_same_review_as_the_tiers_list(api):
    one = api.client.get("/api/members/M1/tier", headers=api.auth("agent")).json()
    listed = {t["member_id"]: t for t in
              api.client.get("/api/tiers", headers=api.auth("agent")).json()["items"]}["M1"]
    assert one["next_review_at"] is not None
    assert (one["next_review_at"], one["review_due"]) == (listed["next_review_at"], listed["review_due"])


def test_a_command_dated_before_the_log_is_refused_like_the_cli_does(api):
    assert file_complaint(api).status_code == 201
    late = api.client.post("/api/complaints/C1/ack", headers=api.auth("agent"),
                           json={"at": (T0 - timedelta(days=30)).isoformat()})
    assert late.status_code == 409 and late.headers["content-type"] == "application/problem+json"
    assert "before the log's latest instant" in late.json()["detail"]
    history = api.client.get("/api/history/complaint/C1", headers=api.auth("auditor")).json()
    assert [e["type"] for e in history["items"]] == ["ComplaintFiled"]   # nothing recorded


def test_filed_complaint_records_the_token_subject_as_actor_not_a_request_field(api):
    r = file_complaint(api)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "filed" and r.headers["ETag"] == '"1"'
    history = api.client.get("/api/history/complaint/C1", headers=api.auth("auditor")).json()
    assert [e["actor"] for e in history["items"]] == ["agent-1"]
    refused = api.client.post("/api/complaints/C1/ack", headers=api.auth("agent"), json={"actor": "mallory"})
    assert refused.status_code == 422 and "actor" in refused.json()["detail"]


def test_repeated_idempotency_key_returns_the_first_response_and_files_once(api):
    first = file_complaint(api, key="k-1")
    again = file_complaint(api, key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    events = api.client.get("/api/history/complaint/C1", headers=api.auth("auditor")).json()
    assert events["total"] == 1
    other = api.client.post("/api/complaints", headers={**api.auth("agent"), "Idempotency-Key": "k-1"},
                            json={"complaint_id": "C2", "member_id": "M1", "channel": "web",
                                  "category": "x", "description": "y"})
    assert other.status_code == 422 and "different request" in other.json()["detail"]


def test_key_left_pending_by_a_crash_after_the_save_answers_from_the_log(api):
    store = api.client.app.state.idempotency
    file_complaint(api, key="k-crash")
    # The crash window: the command saved, the response was never kept. While the key
    # is young it may be another process's request in flight: retry later.
    store.db.execute("UPDATE idempotency SET state = 'pending', status = NULL, body = NULL")
    busy = file_complaint(api, key="k-crash")
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "5"
    store.db.execute("UPDATE idempotency SET reserved_at = reserved_at - 60")
    again = file_complaint(api, key="k-crash")
    assert again.status_code == 201 and again.json()["complaint_id"] == "C1"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.client.get("/api/history/complaint/C1", headers=api.auth("auditor")).json()["total"] == 1
    assert store.get(api.key_ids["agent"], "k-crash").state == "done"


def test_key_left_pending_by_a_crash_before_the_save_runs_the_command_once(api):
    store = api.client.app.state.idempotency
    fp = fingerprint("POST", "/api/complaints", File(**COMPLAINT).model_dump_json().encode())
    assert store.reserve("agent-1", "k-early", fp)
    assert not store.reserve("agent-1", "k-early", fp)          # held while young
    store.db.execute("UPDATE idempotency SET reserved_at = reserved_at - 60")
    r = file_complaint(api, key="k-early")                      # the log has no effect: run it
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert file_complaint(api, key="k-early").headers["Idempotent-Replayed"] == "true"
    assert api.client.get("/api/history/complaint/C1", headers=api.auth("auditor")).json()["total"] == 1


def test_refused_command_releases_its_key_so_a_corrected_retry_runs(api):
    headers = {**api.auth("agent"), "Idempotency-Key": "k-r"}
    file_complaint(api)
    api.client.post("/api/complaints/C1/ack", headers=api.auth("agent"), json={})
    api.client.post("/api/complaints/C1/resolve", headers=api.auth("agent"), json={"resolution": "found"})
    refused = api.client.post("/api/complaints/C1/rate", headers=headers, json={"score": 5, "at": None})
    assert refused.status_code == 200, refused.text  # rating a resolved complaint is fine
    closed = api.client.post("/api/complaints/C1/close", headers=api.auth("agent"), json={})
    assert closed.status_code == 200
    again = api.client.post("/api/complaints/C1/close", headers={**api.auth("agent"), "Idempotency-Key": "k-2"},
                            json={})
    assert again.status_code == 409 and again.json()["type"] == "urn:vip:refused"
    assert api.client.app.state.idempotency.get(api.key_ids["agent"], "k-2") is None


def test_stale_if_match_gets_412_and_current_version_passes(api):
    file_complaint(api)
    stale = api.client.post("/api/complaints/C1/ack", headers={**api.auth("agent"), "If-Match": '"0"'}, json={})
    assert stale.status_code == 412 and stale.headers["ETag"] == '"1"'
    assert "version 1, not 0" in stale.json()["detail"]
    ok = api.client.post("/api/complaints/C1/ack", headers={**api.auth("agent"), "If-Match": '"1"'}, json={})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'


def test_domain_refusal_is_a_problem_document_that_says_what_to_fix(api):
    r = api.client.post("/api/members/M9/approve", headers=api.auth("supervisor"), json={})
    assert r.status_code == 404
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["status"] == 404 and "M9" in body["detail"] and body["instance"] == "/api/members/M9/approve"
    bad = api.client.post("/api/complaints", headers=api.auth("agent"), json={"complaint_id": "C1"})
    assert bad.status_code == 422 and "member_id" in bad.json()["detail"]
    naive = api.client.get("/api/tiers", headers=api.auth("agent"), params={"as_of": "2025-03-01T00:00:00"})
    assert naive.status_code == 422


def test_contract_terms_only_for_finance_auditor_admin(api):
    r = api.client.post("/api/contracts", headers=api.auth("finance"),
                        json={"contract_id": "K1", "kind": "cooperation", "terms": TERMS})
    assert r.status_code == 201, r.text
    assert r.json()["terms"]["revenue_share"] == {"platform": 7000, "provider": 3000}
    for role, sees in (("finance", True), ("auditor", True), ("admin", True), ("supervisor", False)):
        body = api.client.get("/api/contracts/K1", headers=api.auth(role)).json()
        assert (body.get("terms") is not None) is sees, role
    assert api.client.get("/api/history/contract/K1", headers=api.auth("supervisor")).status_code == 403
    assert api.client.get("/api/history/contract/K1", headers=api.auth("auditor")).json()["total"] == 1


def test_invoice_settled_through_the_api_balances_the_ledger_and_leaves_nothing_overdue(api):
    h = api.auth("finance")
    api.client.post("/api/contracts", headers=h, json={"contract_id": "K1", "kind": "cooperation", "terms": TERMS})
    for party in ("platform", "provider"):
        assert api.client.post("/api/contracts/K1/sign", headers=h, json={"party_id": party}).status_code == 200
    inv = api.client.post("/api/contracts/K1/invoice", headers=h, json={
        "invoice_id": "I1", "payer": "provider", "amount_fen": 100_001, "kind": "service_fee"})
    assert inv.status_code == 200, inv.text
    api.advance(days=40)
    overdue = api.client.get("/api/overdue", headers=h).json()
    assert [i["invoice"] for i in overdue["invoices"]] == ["I1"]
    paid = api.client.post("/api/contracts/K1/pay", headers=h, json={
        "invoice_id": "I1", "amount_fen": 100_001, "payment_id": "P1"})
    assert paid.json()["invoices"]["I1"]["outstanding_fen"] == 0
    assert api.client.get("/api/overdue", headers=h).json()["invoices"] == []
    ledger = api.client.get("/api/ledger", headers=h).json()
    assert ledger["trial_balance"]["CNY"]["balanced"] is True
    assert ledger["by_party"]["provider"]["partner_payable CNY"] == -30_000


def test_revenue_by_party_and_month_splits_by_the_ratio_and_a_discount_reverses_its_shares(api):
    h = api.auth("finance")
    api.client.post("/api/contracts", headers=h, json={"contract_id": "K1", "kind": "cooperation", "terms": TERMS})
    for party in ("platform", "provider"):
        api.client.post("/api/contracts/K1/sign", headers=h, json={"party_id": party})
    for n, amount in ((1, 100_001), (2, 50_000)):
        r = api.client.post("/api/contracts/K1/invoice", headers=h, json={
            "invoice_id": f"I{n}", "payer": "provider", "amount_fen": amount})
        assert r.status_code == 200, r.text
    march = {"platform": 105_000, "provider": 45_000, "rounding": 1}
    assert api.client.get("/api/revenue", headers=h).json() == {"CNY": {"2025-03": march}}
    api.advance(days=31)
    r = api.client.post("/api/contracts/K1/discount", headers=h,
                        json={"invoice_id": "I2", "amount_fen": 50_000, "reason": "goodwill"})
    assert r.status_code == 200, r.text
    revenue = api.client.get("/api/revenue", headers=h).json()["CNY"]
    assert revenue["2025-04"] == {"platform": -35_000, "provider": -15_000}
    assert sum(revenue["2025-03"].values()) + sum(revenue["2025-04"].values()) == 100_001
    assert api.client.get("/api/revenue", headers=h,
                          params={"as_of": "2025-03-31T23:00:00+08:00"}).json()["CNY"] == {"2025-03": march}


def test_breaches_board_turns_at_risk_then_breached_on_the_test_clock(api):
    file_complaint(api)
    board = lambda: api.client.get("/api/breaches", headers=api.auth("supervisor")).json()["items"]  # noqa: E731
    assert board() == []
    # Not an active VIP, so the member SLA: first response in 8 business hours
    # (Mon 10:00 -> 18:00), at risk at 80 % (16:24).
    api.advance(hours=6, minutes=30)
    assert {(b["clock"], b["state"]) for b in board()} == {("first_response", "at_risk")}
    api.advance(hours=2)
    assert ("first_response", "breached") in {(b["clock"], b["state"]) for b in board()}
    past = api.client.get("/api/breaches", headers=api.auth("supervisor"),
                          params={"as_of": (T0 + timedelta(minutes=10)).isoformat()}).json()
    assert past["items"] == []


def test_lists_are_paginated(api):
    for n in range(3):
        file_complaint(api, complaint_id=f"C{n}")
    first = api.client.get("/api/complaints", headers=api.auth("agent"), params={"limit": 2}).json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next_offset"] == 2
    rest = api.client.get("/api/complaints", headers=api.auth("agent"), params={"limit": 2, "offset": 2}).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None


def test_health_ready_metrics_and_correlation_id(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["log_head"] >= 2
    file_complaint(api)
    r = api.client.get("/api/tiers", headers={**api.auth("agent"), "X-Correlation-ID": "abc123"})
    assert r.headers["X-Correlation-ID"] == "abc123"
    text = api.client.get("/metrics").text
    assert 'vip_api_commands_total{aggregate="complaint",command="file",outcome="ok"}' in text
    assert "vip_views_lag_events 0.0" in text
    assert 'vip_view_lag_events{view="current_tier"} 0.0' in text
    assert "vip_batches_total" in text and "vip_batch_steps_total" in text
    assert "vip_events_total 4.0" in text   # registered, order paid, tier upgraded, complaint filed
