"""Safe to expose (issue 16, HTTP part; issue 17 item 3): every value bounded and refused before
anything is recorded, replies that always encode, no terms for the uncleared, security headers,
the caller's clock bounded, safe key subjects, authentication before the body."""
from __future__ import annotations

import asyncio
import copy
import json
from datetime import timedelta

import pytest

from tests.api_support import T0, TERMS, api, build_api  # noqa: F401  (api: the fixture)

AGREEMENT = {"parties": [{"id": "platform"}, {"id": "M1"}], "member_id": "M1",
             "revenue_share": {"platform": 10000}, "validity_months": 12}


def _draft(api, contract_id="K1", terms=None, kind="cooperation", role="finance", **extra):
    body = {"contract_id": contract_id, "kind": kind,
            "terms": copy.deepcopy(TERMS) if terms is None else terms, **extra}
    # json.dumps writes NaN and Infinity as a hostile client would (httpx refuses to).
    return api.client.post("/api/contracts", headers={**api.auth(role), "Content-Type": "application/json"},
                           content=json.dumps(body))


def _signed(api, contract_id="K1"):
    assert _draft(api, contract_id).status_code == 201
    for party in ("platform", "provider"):
        r = api.client.post(f"/api/contracts/{contract_id}/sign", headers=api.auth("finance"),
                            json={"party_id": party})
        assert r.status_code == 200, r.text


def _recorded(api, kind, business_id) -> list[str]:
    r = api.client.get(f"/api/history/{kind}/{business_id}", headers=api.auth("auditor"))
    return [] if r.status_code == 404 else [e["type"] for e in r.json()["items"]]


def _is_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


# -- 1: replies always encode --------------------------------------------------------------

def test_a_signed_contract_reads_back_with_its_validity_as_iso_text(api):
    _signed(api)
    for role in ("finance", "supervisor"):
        r = api.client.get("/api/contracts/K1", headers=api.auth(role))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "effective" and r.json()["valid_until"].startswith("2026-03-03T10:00")


def test_a_member_with_an_override_reads_back_with_its_expiry_as_iso_text(api):
    expires = (T0 + timedelta(days=30)).isoformat()
    r = api.client.post("/api/members/M1/override", headers=api.auth("supervisor"),
                        json={"kind": "pin", "tier": "platinum", "reason": "key account", "expires": expires})
    assert r.status_code == 200, r.text
    got = api.client.get("/api/members/M1", headers=api.auth("agent"))
    assert got.status_code == 200, got.text
    assert got.json()["override"]["expires_at"] == expires and got.json()["effective_tier"] == "platinum"


def test_an_unexpected_error_is_a_problem_with_a_correlation_id_not_a_bare_500(api, monkeypatch, caplog):
    from infra.api import answers

    def broken(*args):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(answers, "tiers", broken)
    r = api.client.get("/api/tiers", headers={**api.auth("agent"), "X-Correlation-ID": "trace-42"})
    body = _is_problem(r, 500)
    assert body["correlation_id"] == "trace-42" and "trace-42" in body["detail"]
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert any("trace-42" in rec.getMessage() and rec.exc_info for rec in caplog.records)


# -- 2: values that break the aggregate later are refused at draft ---------------------------

@pytest.mark.parametrize("change, field", [
    ({"validity_months": 1_000_000}, "validity_months"),
    ({"milestones": [{"id": "m1", "due_months": 1_000_000}]}, "due_months"),
    ({"payment_terms_days": 1_000_000_000}, "payment_terms_days"),
    ({"validity_months": float("nan")}, "finite"),
    ({"fee_schedule": [{"amount_fen": float("inf")}]}, "finite"),
    ({"notes": "x" * 70_000}, "at most"),
    ({"notes": "\ud800"}, "surrogate"),
    ({"milestones": [{"id": "m1", "due_months": 1, "title": "a\u202eb"}]}, "bidirectional"),
    ({"notes": [[[[[[[[[["deep"]]]]]]]]]]}, "deeper"),
])
def test_terms_that_would_break_signing_or_invoicing_are_refused_before_anything_is_recorded(
        api, change, field):
    body = _is_problem(_draft(api, terms={**copy.deepcopy(TERMS), **change}), 422)
    assert field in body["detail"] or field in json.dumps(body.get("errors"))
    assert _recorded(api, "contract", "K1") == []


def test_the_largest_accepted_terms_still_sign_and_invoice(api):
    terms = {**copy.deepcopy(TERMS), "validity_months": 1200, "payment_terms_days": 3650,
             "milestones": [{"id": "m1", "due_months": 1200}]}
    assert _draft(api, terms=terms).status_code == 201
    for party in ("platform", "provider"):
        assert api.client.post("/api/contracts/K1/sign", headers=api.auth("finance"),
                               json={"party_id": party}).status_code == 200
    r = api.client.post("/api/contracts/K1/invoice", headers=api.auth("finance"),
                        json={"invoice_id": "I1", "payer": "provider", "amount_fen": 10**15})
    assert r.status_code == 200, r.text
    assert api.client.get("/api/contracts/K1", headers=api.auth("finance")).status_code == 200


@pytest.mark.parametrize("raw", [b'{"reason": "\\ud800"}', b'{"reason": "a\\u0000b"}',
                                 b'{"reason": "x", "\\ud800": 1}', b'{"reason": NaN}'])
def test_a_lone_surrogate_or_control_character_is_a_422_problem(api, raw):
    api.client.post("/api/complaints", headers=api.auth("agent"), json={
        "complaint_id": "C1", "member_id": "M1", "channel": "web", "category": "billing",
        "description": "charged twice"})
    r = api.client.post("/api/complaints/C1/escalate", headers={**api.auth("supervisor"),
                                                                 "Content-Type": "application/json"},
                        content=raw)
    _is_problem(r, 422)
    assert _recorded(api, "complaint", "C1") == ["ComplaintFiled"]


def test_a_body_larger_than_the_limit_is_413(api):
    r = _draft(api, terms={**copy.deepcopy(TERMS), "notes": "x" * (2 * 1024 * 1024)})
    _is_problem(r, 413)
    assert _recorded(api, "contract", "K1") == []


# -- issue 17 item 3: the member is a party to their own agreement ----------------------------

def test_a_member_agreement_the_member_is_not_a_party_to_is_refused_at_draft(make_system, event_store):
    api = build_api(make_system, event_store)
    for step in ("apply", "start-review", "approve"):
        assert api.client.post(f"/api/members/M1/{step}", headers=api.auth("supervisor"),
                               json={}).status_code == 200
    stranger = {**AGREEMENT, "parties": [{"id": "STRANGER"}, {"id": "platform"}],
                "revenue_share": {"platform": 10000}}
    body = _is_problem(_draft(api, "VA-1", stranger, kind="member_agreement"), 422)
    assert "member_id 'M1' is not a party" in body["detail"]
    assert _recorded(api, "contract", "VA-1") == []
    assert api.client.get("/api/members/M1", headers=api.auth("agent")).json()["vip_status"] != "active"
    # The member as a party: drafted, and the member's signature counts.
    assert _draft(api, "VA-1", AGREEMENT, kind="member_agreement").status_code == 201


# -- 5: nothing of the terms for roles without contract:terms ---------------------------------

def test_a_supervisor_sees_no_part_of_the_terms_in_lists_or_states(api):
    _signed(api)
    api.client.post("/api/contracts/K1/invoice", headers=api.auth("finance"),
                    json={"invoice_id": "I1", "payer": "provider", "amount_fen": 123_456})
    listed = api.client.get("/api/contracts", headers=api.auth("supervisor"))
    one = api.client.get("/api/contracts/K1", headers=api.auth("supervisor"))
    assert listed.status_code == one.status_code == 200
    for text in (listed.text, one.text):
        for secret in ("m1", "customer service quality", "provider", "123456", "due_at", "payer"):
            assert secret not in text, (secret, text)
    assert listed.json()["items"][0]["status"] == "effective"
    finance = api.client.get("/api/contracts", headers=api.auth("finance")).json()["items"][0]
    assert "m1" in finance["milestones"] and finance["invoices"]["I1"]["payer"] == "provider"


# -- 6: security headers ------------------------------------------------------------------------

def test_every_response_carries_security_headers_and_api_answers_are_not_cached(api):
    for path, auth in (("/console/", {}), ("/openapi.json", {}), ("/api/whoami", api.auth("agent")),
                       ("/api/whoami", {}), ("/nowhere", {})):
        r = api.client.get(path, headers=auth)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        if path.startswith("/api/"):
            assert r.headers["cache-control"] == "no-store"
    assert api.client.get("/docs").status_code == 404 and api.client.get("/redoc").status_code == 404
    assert api.client.get("/openapi.json").json()["paths"]


# -- 7: the caller's clock ------------------------------------------------------------------------

def test_an_at_beyond_the_allowed_skew_is_refused_unless_the_caller_is_admin(api):
    ahead = (T0 + timedelta(seconds=300)).isoformat()
    body = _is_problem(_draft(api, at=ahead), 422)
    assert body["type"] == "urn:vip:at-in-future" and "leave at out" in body["detail"]
    assert _recorded(api, "contract", "K1") == []
    assert _draft(api, at=(T0 + timedelta(seconds=3)).isoformat()).status_code == 201
    assert _draft(api, "K2", role="admin", at=ahead).status_code == 201


# -- 8: key subjects --------------------------------------------------------------------------------

@pytest.mark.parametrize("subject", ["alice\nK9  admin  eve", "a\x00b", "mallory\u202eevil", "scheduler",
                                     "upstream:crm", "upstream-crm", "system", "operator", "Alice", ""])
def test_a_key_subject_must_be_safe_and_not_a_system_actor(api, subject, tmp_path):
    r = api.client.post("/api/api-keys", headers=api.auth("admin"), json={"role": "admin", "subject": subject})
    _is_problem(r, 422)
    from click.testing import CliRunner

    from hosts.main import main
    result = CliRunner().invoke(main, ["api-key", "create", "--role", "agent", "--subject", subject],
                                env={"VIP_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code != 0 and "Traceback" not in result.output
    listed = CliRunner().invoke(main, ["api-key", "list"], env={"VIP_DATA_DIR": str(tmp_path / "d")})
    assert listed.output.strip() == "(no keys)"


def test_a_good_subject_is_accepted_by_the_api_and_the_cli(api, tmp_path):
    r = api.client.post("/api/api-keys", headers=api.auth("admin"),
                        json={"role": "agent", "subject": "alice.wang@example"})
    assert r.status_code == 201


# -- 9: authentication before the body; throttling; key ids; idempotency per key ----------------

def test_an_unauthenticated_request_is_refused_before_its_body_is_read(api):
    app = api.client.app
    read = []
    sent = []

    async def receive():
        read.append(True)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": len(read) < 5}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/contracts", "raw_path": b"/api/contracts",
             "query_string": b"", "headers": [(b"content-type", b"application/json"),
                                              (b"content-length", str(100 * 1024 * 1024).encode())],
             "client": ("127.0.0.9", 5000), "server": ("testserver", 80), "scheme": "http",
             "http_version": "1.1", "root_path": "", "app": app}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401 and read == []


def test_failed_sign_ins_from_one_address_are_throttled_with_retry_after(api):
    for _ in range(10):
        assert api.client.get("/api/whoami", headers={"Authorization": "Bearer vip_wrong"}).status_code == 401
    r = api.client.get("/api/whoami", headers={"Authorization": "Bearer vip_wrong"})
    _is_problem(r, 429)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Even a good key waits: the address is guessing.
    assert api.client.get("/api/whoami", headers=api.auth("agent")).status_code == 429


def test_a_key_id_tells_nothing_of_the_secret_and_old_ids_are_migrated(api, tmp_path):
    from infra.api.keys import ApiKeyStore
    for role, token in api.tokens.items():
        assert api.key_ids[role] not in token and api.key_ids[role].startswith("key_")
    store = ApiKeyStore(tmp_path / "keys.db")
    key_id, token = store.create("agent", "bob")
    old_id = token[4:12]  # how ids were made before: the token's first 8 secret characters
    store.db.execute("UPDATE api_keys SET key_id = ? WHERE key_id = ?", (old_id, key_id))
    store.close()
    reopened = ApiKeyStore(tmp_path / "keys.db")
    assert [old for old, _ in reopened.migrated] == [old_id]
    assert reopened.verify(token).subject == "bob" and reopened.verify(token).key_id != old_id
    assert old_id not in json.dumps(reopened.list())
    reopened.close()


def test_idempotency_keys_are_scoped_by_api_key_not_by_subject(api):
    _, second = api.client.app.state.keys.create("agent", "agent-1")   # the same person's second key
    file = {"member_id": "M1", "channel": "web", "category": "billing", "description": "d"}
    one = api.client.post("/api/complaints", headers={**api.auth("agent"), "Idempotency-Key": "same"},
                          json={"complaint_id": "C1", **file})
    two = api.client.post("/api/complaints", headers={"Authorization": f"Bearer {second}",
                                                      "Idempotency-Key": "same"},
                          json={"complaint_id": "C2", **file})
    assert one.status_code == two.status_code == 201, two.text
    assert two.json()["complaint_id"] == "C2" and "Idempotent-Replayed" not in two.headers
