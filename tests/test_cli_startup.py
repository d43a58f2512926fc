"""`vip --help` starts without the web stack, Kafka or the event store (issue 21): the
commands are listed from a table and imported only when one runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hosts.main import COMMANDS, load, main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("fastapi", "uvicorn", "kafka", "faust", "eventsourcing", "pyarrow")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}"
             " or m.startswith(('infra.service_layer', 'infra.bootstrap', 'infra.api.app'))))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])  # a printed list of names


def test_importing_the_cli_group_loads_no_web_stack_bus_or_event_store():
    assert _loaded_after("import hosts.main") == []


def test_vip_help_lists_every_command_without_importing_them():
    code = ("from click.testing import CliRunner\nfrom hosts.main import main\n"
            "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0 and 'complaints' in r.output")
    assert _loaded_after(code) == []
    listed = CliRunner().invoke(main, ["--help"]).output
    assert all(f"  {name} " in listed for name in COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_help_is_the_commands_own_first_docstring_line(name):
    command = load(name)
    assert isinstance(command, click.Command) and command.name == name
    assert (command.help or "").strip().splitlines()[0] == COMMANDS[name][1]


def test_a_command_runs_through_the_table_and_an_unknown_one_is_refused():
    runner = CliRunner()
    assert "MEMBER_ID" in runner.invoke(main, ["tier", "--help"]).output
    unknown = runner.invoke(main, ["tiers-of-everyone"])
    assert unknown.exit_code == 2 and "No such command" in unknown.output

