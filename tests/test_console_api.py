"""The read routes the console works from, and filing without an id, through real stores."""
from __future__ import annotations

from datetime import timedelta

from infra.service_layer.upstream import apply_input, parse
from tests.api_support import T0, TERMS, api, build_api  # noqa: F401  (api is a fixture)

COMPLAINT = {"member_id": "M1", "channel": "web", "category": "delivery", "description": "late parcel"}


def test_a_complaint_filed_without_an_id_gets_one_from_the_server_and_a_retry_files_nothing_twice(api):
    key = {**api.auth("agent"), "Idempotency-Key": "console-file-1"}
    first = api.client.post("/api/complaints", headers=key, json=COMPLAINT)
    assert first.status_code == 201, first.text
    made = first.json()["complaint_id"]
    assert made.startswith("C-")
    again = api.client.post("/api/complaints", headers=key, json=COMPLAINT)
    assert again.status_code == 201 and again.json()["complaint_id"] == made
    other = api.client.post("/api/complaints", headers=api.auth("agent"), json=COMPLAINT)
    assert other.status_code == 201 and other.json()["complaint_id"] not in (made, None)
    listed = api.client.get("/api/complaints?member_id=M1", headers=api.auth("agent")).json()
    assert sorted(c["complaint_id"] for c in listed["items"]) == sorted([made, other.json()["complaint_id"]])
    # The old form, with the caller's id, still works.
    named = api.client.post("/api/complaints", headers=api.auth("agent"), json={**COMPLAINT, "complaint_id": "C9"})
    assert named.status_code == 201 and named.json()["complaint_id"] == "C9"


def test_members_are_found_by_name_or_phone_through_digests_and_not_after_erasure(make_system, event_store,
                                                                                   tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory (a PostgreSQL key store has no file)
    api = build_api(make_system, event_store)
    agent = api.auth("agent")

    def found(q):
        answer = api.client.get("/api/member-search", params={"q": q}, headers=agent)
        assert answer.status_code == 200, answer.text
        return [(m["member_id"], m["matched_by"]) for m in answer.json()["items"]]

    assert found(" 李雷 ") == [("M1", "name")]
    assert not (tmp_path / "search_index.key").exists()
    assert found("+86 137-0000-1111") == [("M1", "phone")]
    assert found("m1") == [("M1", "id")]
    assert found("13700001112") == []
    # Nothing searchable is kept in clear: the index file holds digests only.
    data = (api.system.settings.data_dir / "search.db").read_bytes()
    assert "李雷".encode() not in data and b"13700001111" not in data
    erased = api.client.post("/api/members/M1/erase", headers=api.auth("admin"), json={})
    assert erased.status_code == 200, erased.text
    assert found("李雷") == [] and found("13700001111") == []
    assert found("M1") == [("M1", "id")]   # the id is no personal value


def test_only_the_roles_that_serve_the_customer_search_by_name_and_see_the_profile(api):
    for role, sees in (("agent", True), ("supervisor", True), ("finance", False), ("auditor", False)):
        search = api.client.get("/api/member-search", params={"q": "李雷"}, headers=api.auth(role)).json()
        assert [m["member_id"] for m in search["items"]] == (["M1"] if sees else [])
        profile = api.client.get("/api/members/M1/profile", headers=api.auth(role)).json()
        assert ("profile" in profile) is sees
        if sees:
            assert profile["profile"]["phone"] == "13700001111"


def test_me_names_the_role_its_permissions_and_the_zone(api):
    me = api.client.get("/api/me", headers=api.auth("finance")).json()
    assert me["role"] == "finance" and me["subject"] == "finance-1" and me["zone"] == "Asia/Shanghai"
    assert "ledger:read" in me["permissions"] and "complaint:read" not in me["permissions"]
    assert api.client.get("/api/me").status_code == 401


def test_a_tier_above_the_window_is_held_until_the_review_and_progress_names_the_next_tier(api):
    gold = api.client.get("/api/members/M1/profile", headers=api.auth("auditor")).json()
    assert gold["progress"]["next_tier"] == "platinum"
    assert gold["progress"]["spend_needed_fen"] == 2_500_000 and gold["progress"]["held_until"] is None
    # A refund takes the window below the gold rule: gold is kept until the annual review.
    api.advance(days=1)
    apply_input(api.system.engine, parse("orders", {
        "event_id": "refund-1", "type": "OrderRefunded", "member_id": "M1", "order_id": "M1-o1",
        "occurred_at": api.clock.at.isoformat(), "amount_fen": 600_000, "currency": "CNY"}))
    api.system.engine.flush()
    held = api.client.get("/api/members/M1/profile", headers=api.auth("auditor")).json()
    assert held["tier"]["tier"] == "gold" and held["tier"]["window_spend_fen"] == 1_900_000
    assert held["progress"]["held_until"] == held["tier"]["next_review_at"] is not None


def test_a_complaint_page_offers_only_what_its_status_allows(api):
    api.client.post("/api/complaints", headers=api.auth("agent"), json={**COMPLAINT, "complaint_id": "C1"})
    page = api.client.get("/api/complaints/C1/page", headers=api.auth("agent")).json()
    assert page["actions"] == ["ack", "assign", "wait", "resolve"]
    assert page["description"] == "late parcel" and page["clocks"]["first_response"]["state"] == "running"
    assert "escalate" in api.client.get("/api/complaints/C1/page", headers=api.auth("supervisor")).json()["actions"]
    api.client.post("/api/complaints/C1/ack", headers=api.auth("agent"), json={})
    api.client.post("/api/complaints/C1/escalate", headers=api.auth("supervisor"), json={"reason": "vip"})
    page = api.client.get("/api/complaints/C1/page", headers=api.auth("supervisor")).json()
    assert page["status"] == "escalated" and "ack" not in page["actions"]   # acknowledged already
    api.client.post("/api/complaints/C1/resolve", headers=api.auth("agent"), json={"resolution": "refunded"})
    page = api.client.get("/api/complaints/C1/page", headers=api.auth("agent")).json()
    assert page["actions"] == ["rate", "close", "reopen"] and page["resolution"] == "refunded"
    assert [e["type"] for e in page["timeline"]][-1] == "ComplaintResolved"
    assert api.client.get("/api/complaints/C1/page", headers=api.auth("auditor")).json()["actions"] == []
    assert api.client.get("/api/complaints/C404/page", headers=api.auth("agent")).status_code == 404


def _contract_with_invoices(api, count: int = 3):
    app, run = api.system.app, api.system.engine.run
    start = T0 - timedelta(days=200)
    for n in range(count):
        run(start, lambda u, c, k=f"K{n}": u.draft_contract(c, k, "cooperation", TERMS), actor="legal")
    for party in ("platform", "provider"):
        run(start, lambda u, c, p=party: u.sign_contract(c, "K0", p), actor="legal")
    for inv, days in (("I1", 10), ("I2", 45), ("I3", 75), ("I4", 120)):
        run(start, lambda u, c, i=inv, d=days: u.issue_invoice(c, "K0", i, "provider", 100_000, "CNY",
                                                              "service_fee", T0 - timedelta(days=d)),
            actor="finance")
    api.system.engine.flush()


def test_aging_puts_overdue_invoices_in_buckets_with_totals(api):
    _contract_with_invoices(api)
    aging = api.client.get("/api/aging", headers=api.auth("finance")).json()
    assert {i["invoice"]: (i["days_overdue"], i["bucket"]) for i in aging["invoices"]} == {
        "I1": (10, "0-30"), "I2": (45, "31-60"), "I3": (75, "61-90"), "I4": (120, "90+")}
    assert aging["totals"]["CNY"] == {"0-30": 100_000, "31-60": 100_000, "61-90": 100_000, "90+": 100_000,
                                      "total": 400_000}
    past = api.client.get("/api/aging", params={"as_of": (T0 - timedelta(days=50)).isoformat()},
                          headers=api.auth("auditor")).json()
    assert {i["invoice"]: i["bucket"] for i in past["invoices"]} == {"I3": "0-30", "I4": "61-90"}
    assert api.client.get("/api/aging", headers=api.auth("agent")).status_code == 403


def test_the_contract_list_pages_and_filters_on_the_server(api):
    _contract_with_invoices(api)
    first = api.client.get("/api/contract-list", params={"limit": 2}, headers=api.auth("finance")).json()
    assert first["total"] == 3 and [c["contract_id"] for c in first["items"]] == ["K0", "K1"]
    assert first["next_offset"] == 2
    rest = api.client.get("/api/contract-list", params={"limit": 2, "offset": 2}, headers=api.auth("finance")).json()
    assert [c["contract_id"] for c in rest["items"]] == ["K2"] and rest["next_offset"] is None
    effective = api.client.get("/api/contract-list", params={"status": "effective"}, headers=api.auth("finance")).json()
    assert [c["contract_id"] for c in effective["items"]] == ["K0"]
    by_text = api.client.get("/api/contract-list", params={"q": "k2"}, headers=api.auth("finance")).json()
    assert [c["contract_id"] for c in by_text["items"]] == ["K2"]
    # A supervisor sees no terms: no parties, no invoices, and no search by party.
    plain = api.client.get("/api/contract-list", params={"q": "provider"}, headers=api.auth("supervisor")).json()
    assert plain["items"] == []
    row = api.client.get("/api/contract-list", headers=api.auth("supervisor")).json()["items"][0]
    assert "invoices" not in row and "parties" not in row
