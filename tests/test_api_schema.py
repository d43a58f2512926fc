"""Schemathesis against the published OpenAPI document: no 500s, every response as documented.

Examples per operation are few (``VIP_SCHEMATHESIS_EXAMPLES``, default 40) so the
run takes well under a minute on two cores; raise it for a deeper local run.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

from infra.api.app import create_app
from infra.bootstrap import build
from infra.settings import Settings
from tests.api_support import seed_member

EXAMPLES = int(os.environ.get("VIP_SCHEMATHESIS_EXAMPLES", "40"))


class _Clock:
    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at


def _app():
    """An app over a throwaway SQLite store with one member, on a fixed test clock."""
    clock = _Clock(datetime(2025, 3, 3, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    data_dir = Path(tempfile.mkdtemp(prefix="vip-schema-"))
    atexit.register(shutil.rmtree, data_dir, True)  # also when no test of this module runs
    system = build(Settings.from_env({}, data_dir=data_dir, event_store="sqlite"), clock=clock)
    seed_member(system, "M1")
    app = create_app(system)
    _, token = app.state.keys.create("admin", "schemathesis")
    return app, token


APP, TOKEN = _app()
OPERATIONS = [op.ok() for op in schemathesis.openapi.from_asgi("/openapi.json", APP).get_all_operations()]


@pytest.fixture(scope="module", autouse=True)
def _close_system():
    yield
    APP.state.system.close()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_conforms_to_its_openapi_document(operation):
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                               checks=[not_a_server_error, status_code_conformance,
                                       content_type_conformance, response_schema_conformance])
    check()
