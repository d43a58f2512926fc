"""`GET /api/audit/verify`: an auditor verifies the log over HTTP as `vip verify` does."""
from __future__ import annotations

from fastapi.testclient import TestClient

from infra.api.app import create_app
from infra.api.keys import ApiKeyStore
from infra.bootstrap import build
from infra.settings import Settings
from tests.audit_support import Raw, build_log, vip


def _client(env: dict) -> tuple[TestClient, dict, object]:
    system = build(Settings.from_env(env))
    keys = ApiKeyStore(system.settings.data_dir / "api_keys.db")
    tokens = {role: keys.create(role, f"{role}-1")[1] for role in ("auditor", "agent")}
    client = TestClient(create_app(system, keys=keys))
    return client, {r: {"Authorization": f"Bearer {t}"} for r, t in tokens.items()}, system


def test_an_auditor_verifies_the_log_and_sees_the_first_changed_event(make_system, tmp_path):
    env = build_log(make_system, "sqlite", tmp_path, orders=120, members=10)
    assert vip(env, "checkpoint").exit_code == 0
    client, auth, system = _client(env)
    try:
        clean = client.get("/api/audit/verify", headers=auth["auditor"])
        assert clean.status_code == 200, clean.text
        assert clean.json()["clean"] is True and clean.json()["checkpoints"] >= 1
        assert client.get("/api/audit/verify", headers=auth["agent"]).status_code == 403

        raw = Raw(env)
        _, ids = raw.aggregate_with(3)
        [(state,)] = raw.sql("SELECT state FROM {events} WHERE {id} = ?", (ids[1],))
        raw.sql("UPDATE {events} SET state = ? WHERE {id} = ?", (bytes(state).replace(b"CNY", b"USD"), ids[1]))
        raw.close()
        found = client.get("/api/audit/verify", headers=auth["auditor"]).json()
        assert found["clean"] is False
        assert str(ids[1]) in found["summary"]
    finally:
        system.close()
