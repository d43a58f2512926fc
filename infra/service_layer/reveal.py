"""Sealed free text opened for display: the one place answers (API, CLI) open read-model rows.

Read models hold what the events hold: a member's free text sealed with their
key (``pii:v1:...``). An answer opens it for the reader with the key store at
hand; once the member is erased (per the log, the authority) it shows
``[erased]``, and a value that cannot be opened shows ``[unreadable]``. Never
writes (queries are read-only).
"""
from __future__ import annotations

from typing import Any

from domain.base import ERASED, SEALED_PREFIX


def reveal(app, member_id: str | None, value: Any) -> Any:
    """``value`` (a row, a list of rows, a string) with every sealed string of ``member_id`` opened."""
    if not member_id:
        return value
    member = app.find_member(member_id)
    erased = bool(member is not None and member.erased)
    return _open(app, member_id, value, erased)


def reveal_rows(app, rows: list[dict], field: str = "member_id") -> list[dict]:
    """Each row opened with the key of the member its ``field`` names."""
    return [reveal(app, row.get(field), row) for row in rows]


def _open(app, member_id: str, value: Any, erased: bool) -> Any:
    if isinstance(value, dict):
        return {k: _open(app, member_id, v, erased) for k, v in value.items()}
    if isinstance(value, list):
        return [_open(app, member_id, v, erased) for v in value]
    if not isinstance(value, str) or not value.startswith(SEALED_PREFIX):
        return value
    return ERASED if erased else app.cipher.open(member_id, value)
