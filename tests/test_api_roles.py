"""Who may do what: every guarded route, every role (the table is the app's own route list)."""
from __future__ import annotations

import json

import logging
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from hosts.main import main
from infra.api.app import create_app
from infra.api.auth import PERMISSIONS, route_table
from infra.api.keys import ROLES
from infra.bootstrap import build
from infra.settings import Settings
from tests.api_support import api  # noqa: F401  (fixture)


def _route_table() -> list[tuple[str, str, str]]:
    """(method, path, permission) of every guarded route, read from a built app's OpenAPI document."""
    with tempfile.TemporaryDirectory() as tmp:
        system = build(Settings.from_env({}, data_dir=Path(tmp), event_store="memory"))
        app = create_app(system)
        table = route_table(app.openapi())
        app.state.keys.close()
        app.state.idempotency.close()
        system.close()
    return table


ROUTES = _route_table()


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "member" if m.group(1) == "kind" else "X1", path)


def test_route_table_covers_every_command_and_query():
    paths = {p for _, p, _ in ROUTES}
    assert len(ROUTES) >= 45
    for needed in ("/api/members/{id}/override", "/api/complaints/{id}/escalate", "/api/contracts/{id}/pay",
                   "/api/members/{id}/tier", "/api/breaches", "/api/ledger", "/api/kpis", "/api/overdue",
                   "/api/history/{kind}/{id}", "/api/members/{id}/tier-history", "/api/tiers",
                   "/api/api-keys", "/api/members/{id}/erase"):
        assert needed in paths, needed


@pytest.mark.parametrize("method,path,permission", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_refuses_a_missing_or_unknown_token_with_401(api, method, path, permission):
    for headers in ({}, {"Authorization": "Bearer vip_not-a-key"}):
        r = api.client.request(method, _concrete(path), headers=headers, json={})
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("method,path,permission", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_lets_exactly_its_roles_through(api, method, path, permission):
    for role in ROLES:
        r = api.client.request(method, _concrete(path), headers=api.auth(role), json={})
        if role in PERMISSIONS[permission]:
            assert r.status_code not in (401, 403), f"{role}: {r.text}"
        else:
            assert r.status_code == 403, f"{role}: {r.status_code} {r.text}"
            assert role in r.json()["detail"] and permission in r.json()["detail"]


def test_roles_matrix_matches_the_issue():
    assert PERMISSIONS["complaint:write"] == {"agent", "supervisor", "admin"}
    assert PERMISSIONS["complaint:escalate"] == {"supervisor", "admin"}
    assert PERMISSIONS["member:supervise"] == {"supervisor", "admin"}
    assert PERMISSIONS["contract:write"] == {"finance", "admin"}
    assert PERMISSIONS["contract:terms"] == {"finance", "auditor", "admin"}
    assert PERMISSIONS["member:erase"] == PERMISSIONS["keys:admin"] == {"admin"}
    writes = [p for p in PERMISSIONS if not p.endswith((":read", ":terms"))]
    assert not any("auditor" in PERMISSIONS[p] for p in writes)


def test_refusals_are_logged_with_who_and_what(api, caplog):
    with caplog.at_level(logging.WARNING, logger="vip.api.auth"):
        api.client.post("/api/complaints/C1/escalate", headers=api.auth("agent"), json={"reason": "x"})
        api.client.get("/api/ledger")
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("403 POST /api/complaints/C1/escalate: agent-1 (agent) lacks complaint:escalate")
               for line in lines), lines
    assert any(line.startswith("401 GET /api/ledger") for line in lines), lines


def test_admin_makes_and_revokes_keys_over_the_api(api):
    made = api.client.post("/api/api-keys", headers=api.auth("admin"), json={"role": "agent", "subject": "bob"})
    assert made.status_code == 201
    token = made.json()["token"]
    me = api.client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["subject"] == "bob" and "complaint:write" in me["permissions"]
    stored = api.client.get("/api/api-keys", headers=api.auth("admin")).json()
    assert all(token not in str(row) for row in stored)
    assert api.client.delete(f"/api/api-keys/{made.json()['key_id']}", headers=api.auth("admin")).status_code == 204
    assert api.client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_cli_api_key_create_prints_the_token_once_and_stores_only_its_hash(tmp_path):
    env = {"VIP_DATA_DIR": str(tmp_path / "data")}
    made = CliRunner().invoke(main, ["api-key", "create", "--role", "finance", "--subject", "carol"], env=env)
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("vip_")
    stored = (tmp_path / "data" / "api_keys.db").read_bytes()
    assert token.encode() not in stored
    listed = CliRunner().invoke(main, ["api-key", "list"], env=env)
    assert "finance  carol" in listed.stdout
    as_json = json.loads(CliRunner().invoke(main, ["api-key", "list", "--json"], env=env).stdout)
    assert [(k["role"], k["subject"]) for k in as_json] == [("finance", "carol")]
    assert token not in json.dumps(as_json)
    bad = CliRunner().invoke(main, ["api-key", "create", "--role", "root", "--subject", "x"], env=env)
    assert bad.exit_code == 2 and "root" in bad.output
