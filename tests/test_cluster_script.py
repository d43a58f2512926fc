"""The README's several-processes recipe, run as written: `vip postgres` and `scripts/cluster.sh`."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
VIP = os.path.join(os.path.dirname(sys.executable), "vip")


def test_vip_postgres_serves_a_database_until_sigterm_and_removes_it():
    process = subprocess.Popen([VIP, "postgres"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while not any(line.startswith("export VIP_EVENT_STORE=") for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(process.stdout.readline())
        url = re.search(r"VIP_EVENT_STORE=(\S+)", lines[-1]).group(1)
        with psycopg.connect(url) as db:
            assert db.execute("SELECT 1").fetchone() == (1,)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert "postgres: stopped" in process.stdout.read()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=3)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.kafka
def test_the_readme_cluster_script_gives_the_same_answer_from_both_stores():
    env = {**os.environ, "VIP_SKIP_INSTALL": "1"}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"gives the same \d+ members from the embedded views and from the workers' store",
                     result.stdout), result.stdout[-2000:]
