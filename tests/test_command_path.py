"""One command path: every command a frozen dataclass with one handler, and the CLI and the API
describing the aggregate a command changed in the same words."""
from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from click.testing import CliRunner

from hosts.main import main
from infra.service_layer import commands, scheduled, upstream_commands
from infra.service_layer.handlers import HANDLERS
from tests.api_support import T0, TERMS, build_api, seed_member

ABSTRACT = {commands.Command, upstream_commands.UpstreamCommand}


def _command_types() -> set[type]:
    found, todo = set(), [commands.Command]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls not in ABSTRACT and cls.__module__.startswith("infra."):
            found.add(cls)
    return found


def test_every_command_has_a_handler_and_every_handler_a_command():
    kinds = _command_types()
    assert len(kinds) > 40  # members, contracts, complaints, timers, upstream inputs
    assert kinds - set(HANDLERS) == set(), "commands no handler runs"
    assert set(HANDLERS) - kinds == set(), "handlers of no command"


def test_every_command_is_a_frozen_dataclass_saying_what_it_asks():
    for kind in set(HANDLERS):
        assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen, kind
        assert (kind.__doc__ or "").strip() and not kind.__doc__.startswith(kind.__name__ + "("), kind


def test_the_edges_build_commands_from_the_modules_that_define_them():
    # the three command modules are where every handled command comes from
    homes = {commands.__name__, scheduled.__name__, upstream_commands.__name__}
    assert {kind.__module__ for kind in HANDLERS} == homes


def _cli_system(make_system):
    """A second data dir in the same state as the API's: M1 seeded at T0, then closed for the CLI."""
    system = make_system("sqlite", name="cli")
    seed_member(system)
    data_dir = system.settings.data_dir
    system.close()
    runner = CliRunner()
    env = {"VIP_DATA_DIR": str(data_dir), "VIP_EVENT_STORE": "sqlite"}

    def vip(*args):
        result = runner.invoke(main, [*args, "--json", "--actor", "admin-1"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        data.pop("notices", None)
        return data
    return vip


def test_the_cli_and_the_api_describe_a_changed_aggregate_alike(make_system):
    api = build_api(make_system)
    api.advance(days=2)
    vip = _cli_system(make_system)
    at = (T0 + timedelta(hours=1)).isoformat()
    expires = (T0 + timedelta(days=30)).isoformat()
    admin = api.auth("admin")

    def post(path, body):
        response = api.client.post(f"/api{path}", headers=admin, json={**body, "at": at})
        assert response.status_code in (200, 201), response.text
        return response.json()

    assert api.client.get("/api/me", headers=admin).json()["subject"] == "admin-1"
    cases = [
        (vip("member", "override", "M1", "--kind", "pin", "--tier", "platinum", "--reason", "key account",
             "--expires", expires, "--at", at),
         post("/members/M1/override", {"kind": "pin", "tier": "platinum", "reason": "key account",
                                       "expires": expires})),
        (vip("contract", "draft", "K1", "--kind", "cooperation", "--terms", json.dumps(TERMS), "--at", at),
         post("/contracts", {"contract_id": "K1", "kind": "cooperation", "terms": TERMS})),
        (vip("contract", "sign", "K1", "--party", "provider", "--at", at),
         post("/contracts/K1/sign", {"party_id": "provider"})),
        (vip("contract", "sign", "K1", "--party", "platform", "--at", at),
         post("/contracts/K1/sign", {"party_id": "platform"})),
        (vip("complaint", "file", "C1", "--member", "M1", "--channel", "web", "--category", "billing",
             "--description", "charged twice", "--at", at),
         post("/complaints", {"complaint_id": "C1", "member_id": "M1", "channel": "web",
                              "category": "billing", "description": "charged twice"})),
    ]
    for cli, http in cases:
        if cli.get("override"):  # stored sealed, shown opened to the reader on both edges
            assert cli["override"]["reason"] == http["override"]["reason"] == "key account"
        assert cli == http
    signed = cases[3][0]
    assert signed["status"] == "effective" and signed["valid_until"] and signed["terms"] == TERMS
    assert cases[0][0]["override"]["expires_at"] and cases[0][0]["effective_tier"] == "platinum"
