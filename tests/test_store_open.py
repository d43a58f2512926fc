"""Opening the SQLite event store beside processes that write it: a process (re)started next to a
busy relay or consumer opens the store."""
from __future__ import annotations

import sqlite3
import threading

from infra.bootstrap import open_app
from infra.settings import Settings


def _writer(path, stop: threading.Event, wrote: list) -> None:
    """Another process's steady writes (as a relay's or consumer's), one commit after another."""
    db = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO input_receipts VALUES (?, 'digest', 'M1')", (f"in-{len(wrote)}",))
            db.execute("COMMIT")
            wrote.append(1)
    finally:
        db.close()


def test_a_process_opening_the_store_beside_a_busy_writer_is_not_refused(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path / "d", event_store="sqlite")
    app, keys = open_app(settings)   # the store as the first process made it
    app.close()
    keys.close()
    stop, wrote, refused = threading.Event(), [], []
    writer = threading.Thread(target=_writer, args=(str(tmp_path / "d" / "events.db"), stop, wrote))
    writer.start()
    try:
        for _ in range(40):          # restarts, each while the writer commits
            try:
                app, keys = open_app(settings)
            except Exception as exc:  # noqa: BLE001 - what refused the open is the finding
                refused.append(f"{type(exc).__name__}: {exc}")
                continue
            app.close()
            keys.close()
    finally:
        stop.set()
        writer.join()
    assert wrote and refused == []
    db = sqlite3.connect(tmp_path / "d" / "events.db")
    try:
        assert db.execute("SELECT count(*) FROM event_chain_start").fetchone()[0] == 1
    finally:
        db.close()

