"""The API without a process-wide lock: requests on different aggregates run at once, reads and
as-of replays never wait for a command, requests on one aggregate queue and lose no update."""
from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest

from domain.base import NotFoundError
from infra.api.app import create_app
from infra.api import engines
from infra.api.engines import ANSWERED, Pool
from infra.service_layer import asof, commands as c
from infra.service_layer.handlers import HANDLERS
from tests.api_support import T0, TERMS, Api, build_api, seed_member

WAIT = 10  # seconds a test waits for what must happen; nothing here should take near it


class Gate:
    """Holds the first run of ``command``'s handler for one aggregate (before it runs, or after it
    ran and before its unit of work commits) until the test opens it."""

    def __init__(self, monkeypatch, command: type, business_id: str, after: bool = False) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()
        inner = HANDLERS[command]

        def held(cmd, *rest):
            first = getattr(cmd, dataclasses.fields(cmd)[0].name) == business_id and not self.entered.is_set()
            result = inner(cmd, *rest) if after else None
            if first:
                self.entered.set()
                assert self.opened.wait(WAIT), "the test never opened the gate"
            return result if after else inner(cmd, *rest)
        monkeypatch.setitem(HANDLERS, command, held)


class Call(threading.Thread):
    """One request on a thread of its own; ``response`` once it returned."""

    def __init__(self, api: Api, method: str, path: str, role: str = "admin", json=None, headers=None) -> None:
        super().__init__(daemon=True)
        body = {} if json is None and method == "POST" else json
        self.api, self.args = api, (method, path, role, body, headers or {})
        self.response = None
        self.start()

    def run(self) -> None:
        method, path, role, json, headers = self.args
        self.response = self.api.client.request(method, f"/api{path}", json=json,
                                                headers={**self.api.auth(role), **headers})

    def done(self, timeout: float = WAIT):
        self.join(timeout)
        assert not self.is_alive(), f"{self.args[:2]} did not return"
        return self.response


@pytest.fixture
def api(make_system, event_store):
    api = build_api(make_system, store=event_store)
    seed_member(api.system, "M2")
    api.advance(days=1)
    yield api
    api.client.app.state.engines.close()  # before the store's database is dropped


def _contract(api: Api, invoice_fen: int = 1000) -> None:
    """K1, effective, with invoice INV-1 of ``invoice_fen`` owed by the provider."""
    fin = api.auth("finance")
    post = api.client.post
    assert post("/api/contracts", headers=fin, json={"contract_id": "K1", "kind": "cooperation",
                                                     "terms": TERMS}).status_code == 201
    for party in ("provider", "platform"):
        assert post("/api/contracts/K1/sign", headers=fin, json={"party_id": party}).status_code == 200
    assert post("/api/contracts/K1/invoice", headers=fin, json={
        "invoice_id": "INV-1", "payer": "provider", "amount_fen": invoice_fen}).status_code == 200


def _pay(api: Api, amount: int, payment: str, headers=None) -> Call:
    return Call(api, "POST", "/contracts/K1/pay", "finance", headers=headers,
                json={"invoice_id": "INV-1", "amount_fen": amount, "payment_id": payment})


def test_a_command_held_on_one_member_holds_up_no_command_or_read_on_another(api, monkeypatch):
    gate = Gate(monkeypatch, c.ApplyForVip, "M1")
    held = Call(api, "POST", "/members/M1/apply")
    assert gate.entered.wait(WAIT)
    other = Call(api, "POST", "/members/M2/apply").done()
    reads = [Call(api, "GET", path).done() for path in ("/members/M2", "/tiers", "/members/M1/tier")]
    assert not gate.opened.is_set() and held.is_alive()  # all of that while M1's command was held
    assert other.status_code == 200 and other.json()["vip_status"] == "applied"
    assert all(r.status_code == 200 for r in reads)
    assert reads[0].json()["vip_status"] == "applied"  # a read sees what another engine recorded
    gate.opened.set()
    assert held.done().status_code == 200 and held.response.json()["vip_status"] == "applied"
    assert api.client.get("/api/members/M1", headers=api.auth("admin")).json()["vip_status"] == "applied"


def _hold_replays(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """As-of replays wait until the test opens them: (entered, opened)."""
    entered, opened = threading.Event(), threading.Event()
    replay = asof.replay

    def slow_replay(*args, **kwargs):
        entered.set()
        assert opened.wait(WAIT)
        return replay(*args, **kwargs)
    monkeypatch.setattr(asof, "replay", slow_replay)
    return entered, opened


def test_an_as_of_replay_holds_up_no_command(api, monkeypatch):
    entered, opened = _hold_replays(monkeypatch)
    past = Call(api, "GET", f"/tiers?as_of={(T0 + timedelta(hours=1)).isoformat().replace('+', '%2B')}")
    assert entered.wait(WAIT)
    command = Call(api, "POST", "/members/M1/apply").done()
    assert command.status_code == 200 and past.is_alive()
    opened.set()
    answer = past.done()
    assert answer.status_code == 200 and {t["member_id"] for t in answer.json()["items"]} == {"M1", "M2"}


def test_two_payments_on_one_contract_queue_and_both_land(api, monkeypatch):
    _contract(api)
    gate = Gate(monkeypatch, c.PayInvoice, "K1")
    first = _pay(api, 400, "P-1")
    assert gate.entered.wait(WAIT)
    second = _pay(api, 600, "P-2")
    second.join(0.3)
    assert second.is_alive(), "a second command on the same contract ran beside the first"
    gate.opened.set()
    assert first.done().status_code == 200, first.response.text
    assert second.done().status_code == 200, second.response.text
    assert first.response.json()["invoices"]["INV-1"]["outstanding_fen"] == 600
    assert second.response.json()["invoices"]["INV-1"] == {"status": "paid", "outstanding_fen": 0}
    history = api.client.get("/api/history/contract/K1", headers=api.auth("auditor")).json()["items"]
    assert [e["data"]["payment_id"] for e in history if e["type"] == "PaymentReceived"] == ["P-1", "P-2"]


def test_a_command_that_waits_too_long_for_its_aggregate_is_told_to_retry_and_changes_nothing(
        api, monkeypatch):
    monkeypatch.setattr(engines, "WAIT_S", 0.3)
    gate = Gate(monkeypatch, c.ApplyForVip, "M1")
    held = Call(api, "POST", "/members/M1/apply")
    assert gate.entered.wait(WAIT)
    waited = Call(api, "POST", "/members/M1/revoke", json={"reason": "x"}).done()
    assert waited.status_code == 503 and waited.headers["Retry-After"] == "5"
    assert waited.json()["type"] == "urn:vip:busy" and "member M1" in waited.json()["detail"]
    gate.opened.set()
    assert held.done().status_code == 200
    history = api.client.get("/api/history/member/M1", headers=api.auth("auditor")).json()["items"]
    assert not [e for e in history if e["type"] == "VipRevoked"]


def test_as_of_replays_beyond_the_bound_wait_then_are_told_to_retry(api, monkeypatch):
    monkeypatch.setattr(engines, "WAIT_S", 0.3)
    monkeypatch.setattr(api.client.app.state.engines, "replays", threading.BoundedSemaphore(1))
    entered, opened = _hold_replays(monkeypatch)
    path = f"/tiers?as_of={(T0 + timedelta(hours=1)).isoformat().replace('+', '%2B')}"
    first = Call(api, "GET", path)
    assert entered.wait(WAIT)
    second = Call(api, "GET", path).done()
    assert second.status_code == 503 and "as-of replays" in second.json()["detail"]
    opened.set()
    assert first.done().status_code == 200


def test_two_payments_sent_against_one_version_land_once_and_the_other_is_told_it_is_stale(api, monkeypatch):
    _contract(api)
    version = api.client.get("/api/contracts/K1", headers=api.auth("finance")).headers["ETag"]
    gate = Gate(monkeypatch, c.PayInvoice, "K1")
    first = _pay(api, 400, "P-1", headers={"If-Match": version})
    assert gate.entered.wait(WAIT)
    second = _pay(api, 600, "P-2", headers={"If-Match": version})
    gate.opened.set()
    assert first.done().status_code == 200
    assert second.done().status_code == 412 and second.response.json()["type"] == "urn:vip:stale-version"
    contract = api.client.get("/api/contracts/K1", headers=api.auth("finance")).json()
    assert contract["invoices"]["INV-1"]["outstanding_fen"] == 600


def test_a_repeat_of_an_idempotent_request_sent_while_the_first_runs_gets_its_answer(api, monkeypatch):
    _contract(api)
    gate = Gate(monkeypatch, c.PayInvoice, "K1")
    key = {"Idempotency-Key": "pay-once"}
    first = _pay(api, 400, "P-1", headers=key)
    assert gate.entered.wait(WAIT)
    repeat = _pay(api, 400, "P-1", headers=key)
    gate.opened.set()
    assert first.done().status_code == 200 and repeat.done().status_code == 200
    assert repeat.response.headers.get("Idempotent-Replayed") == "true"
    assert repeat.response.json() == first.response.json()
    assert first.response.json()["invoices"]["INV-1"]["outstanding_fen"] == 600


def test_two_apis_on_one_store_paying_one_invoice_at_once_lose_no_payment(api, monkeypatch, request):
    # Two apps are two processes: no lock is shared, the event store refuses the stale save and
    # the engine runs it again on fresh state.
    _contract(api)
    other = Api(type(api.client)(create_app(api.system)), api.system, api.clock, api.tokens, api.key_ids)
    request.addfinalizer(other.client.app.state.engines.close)
    gate = Gate(monkeypatch, c.PayInvoice, "K1", after=True)
    first = _pay(api, 400, "P-1")
    assert gate.entered.wait(WAIT)   # its events are made, not yet saved
    assert _pay(other, 600, "P-2").done().status_code == 200
    gate.opened.set()
    assert first.done().status_code == 200, first.response.text
    contract = api.client.get("/api/contracts/K1", headers=api.auth("finance")).json()
    assert contract["invoices"]["INV-1"] == {"status": "paid", "outstanding_fen": 0}
    history = api.client.get("/api/history/contract/K1", headers=api.auth("auditor")).json()["items"]
    # The held payment was made on the state before P-2, refused at its save, and made again after it.
    assert [e["data"]["payment_id"] for e in history if e["type"] == "PaymentReceived"] == ["P-2", "P-1"]


def test_the_hosts_turn_on_its_own_engine_holds_up_no_request(api):
    # What `vip serve --api-port` and the scheduler of `vip api` take around each of their steps.
    with api.client.app.state.lock:
        command = Call(api, "POST", "/members/M1/apply").done()
        read = Call(api, "GET", "/tiers").done()
    assert command.status_code == 200 and read.status_code == 200


def test_an_api_over_an_event_store_in_memory_runs_its_requests_on_that_one_system(make_system):
    api = build_api(make_system, store="memory")
    assert api.client.post("/api/members/M1/apply", headers=api.auth("admin"), json={}).status_code == 200
    assert api.system.app.member("M1").vip_status == "applied"
    assert api.client.get("/api/tiers", headers=api.auth("admin")).json()["total"] == 1


class _System:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_an_engine_that_failed_unforeseen_is_closed_and_one_that_refused_is_lent_again():
    pool = Pool(_System, 2, ANSWERED)
    with pytest.raises(NotFoundError), pool.lend() as refused:
        raise NotFoundError("no such member")
    with pytest.raises(RuntimeError), pool.lend() as failed:
        assert failed is refused  # the last one returned is lent first
        raise RuntimeError("a unit of work left open")
    with pool.lend() as fresh:
        assert fresh is not failed and not fresh.closed
    assert failed.closed and pool.systems() == [fresh]
