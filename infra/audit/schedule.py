"""The scheduler's part of the audit: sign the checkpoint ranges that fell due.

Called after each scheduler turn (`vip tick`, `vip serve`), so a running
cluster keeps signed checkpoints without anyone asking.
"""
from __future__ import annotations

import logging
from pathlib import Path

from infra.audit.checkpoints import AuditError, checkpoint_every, key_path, make_checkpoints, signing_key
from infra.audit.sql import AuditSql

log = logging.getLogger("vip.audit")


def checkpoint_due(recorder, data_dir: Path) -> int:
    """Sign the full ranges the log holds past the last checkpoint; returns how many.

    A store that cannot be checkpointed (the in-memory one) signs nothing; a
    failure is logged, never fatal to the scheduler that called it.
    """
    try:
        sql = AuditSql(recorder)
    except TypeError:
        return 0  # the in-memory store
    try:
        made = make_checkpoints(sql, signing_key(sql, key_path(data_dir)), checkpoint_every())
    except (AuditError, OSError) as exc:
        log.warning("no checkpoint signed: %s", exc)
        return 0
    if made:
        log.info("signed %d checkpoints up to notification %d", len(made), made[-1].to_id)
    return len(made)
