"""The data dir is 0700 and its files 0600; a wider file is named in one warning (issue 16, item 4)."""
from __future__ import annotations

import json
import logging
import stat

from infra.api.idempotency import IdempotencyStore
from infra.api.keys import ApiKeyStore
from infra.bootstrap import build
from infra.service_layer.ingest import ingest_file
from tests.test_ingest import _order, _write


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_dir_and_every_store_file_are_owner_only(make_system, tmp_path):
    s = make_system()
    report = ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", [_order(1), "{bad"]), progress=False)
    s.engine.flush()
    data = s.settings.data_dir
    ApiKeyStore(data / "api_keys.db")
    IdempotencyStore(data / "idempotency.db")
    assert _mode(data) == 0o700
    files = {p.name: _mode(p) for p in data.iterdir() if p.is_file()}
    for name in ("events.db", "events.db-wal", "events.db-shm", "read.db", "keys.db", "api_keys.db",
                 "idempotency.db"):
        assert files.get(name) == 0o600, (name, files)
    assert all(mode == 0o600 for name, mode in files.items() if not name.endswith(".lock")), files
    assert _mode(tmp_path / "o.jsonl.rejects") == 0o600 and report.rejects_file


def test_a_store_file_opened_wider_than_owner_only_is_named_in_one_warning(make_system, caplog):
    s = make_system()
    settings = s.settings
    s.close()
    keys = settings.data_dir / "keys.db"
    keys.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="vip.files"):
        for _ in range(2):
            build(settings).close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "vip.files"]
    assert len([w for w in warnings if str(keys) in w]) == 1, warnings
    assert "chmod 600" in warnings[0]
    assert _mode(keys) == 0o644  # the operator's choice is reported, not silently changed


def test_a_rewritten_rejects_file_is_made_owner_only(make_system, tmp_path):
    s = make_system()
    rejects = tmp_path / "r.txt"
    rejects.write_text("old\n")
    rejects.chmod(0o644)
    ingest_file(s.engine, "orders", _write(tmp_path / "o.jsonl", ["{bad"]), rejects=rejects, progress=False)
    assert _mode(rejects) == 0o600 and json.loads(rejects.read_text())["line"] == 1
