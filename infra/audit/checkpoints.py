"""Signed checkpoints of the notification log.

A checkpoint covers the notification ids ``from_id..to_id`` (ranges follow
one another from 1, ``every`` ids each, the last one possibly shorter when
asked for). Its ``root`` folds, in log order, each event's notification id,
originator id, version and hash into the previous checkpoint's root (the
first starts from a seed that names where chaining began), so checkpoints
chain too. The signature is HMAC-SHA256 over the range, root and time, with
a key kept outside the event store: ``VIP_AUDIT_KEY_FILE`` or
``<data dir>/audit.key`` (0600). Someone who can rewrite the database but
not read that file cannot make a changed log verify. The key is made only
for a log with no checkpoint yet (:func:`signing_key`): once checkpoints
exist, a signer without the key (a process with a data dir of its own, on
another machine) fails and says so, instead of making a key of its own, and
a signer whose key did not sign the last checkpoint signs nothing.

An event stored before chaining began is folded with its stand-alone hash
(its own bytes after 32 zero bytes), so adopting those events later changes
no checkpoint.
"""
from __future__ import annotations

import hmac
import os
import secrets
import struct
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path

from infra.audit.chain import ZERO, event_hash
from infra.audit.sql import AuditSql, Checkpoint

KEY_ENV = "VIP_AUDIT_KEY_FILE"
EVERY_ENV = "VIP_CHECKPOINT_EVERY"
DEFAULT_EVERY = 10_000
PAGE = 5_000
_LEAF = struct.Struct(">QQH")  # notification id, version, len(originator id)
_RANGE = struct.Struct(">QQ")


class AuditError(RuntimeError):
    """Checkpoints cannot be made or checked (no key, a log that does not verify)."""


def key_path(data_dir: Path, env: dict | None = None) -> Path:
    """Where the checkpoint key lives: ``VIP_AUDIT_KEY_FILE``, else ``<data dir>/audit.key``."""
    env = os.environ if env is None else env
    return Path(env.get(KEY_ENV) or Path(data_dir) / "audit.key")


def checkpoint_every(env: dict | None = None) -> int:
    """``VIP_CHECKPOINT_EVERY`` (default 10,000): notification ids per checkpoint."""
    env = os.environ if env is None else env
    raw = env.get(EVERY_ENV) or str(DEFAULT_EVERY)
    try:
        every = int(raw)
    except ValueError:
        every = 0
    if every < 1:
        raise AuditError(f"{EVERY_ENV}={raw!r}: give a whole number of events, at least 1")
    return every


def load_key(path: Path, create: bool) -> bytes:
    """The checkpoint key; made (0600, 32 random bytes as hex) when ``create`` and missing."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        if not create:
            raise AuditError(f"no audit key at {path}: checkpoints are signed with it (set {KEY_ENV} "
                             f"to where it is kept)") from None
    except ValueError:
        raise AuditError(f"the audit key {path} is not hex: restore it from where it is kept") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return load_key(path, create=False)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
    return load_key(path, create=False)


def signing_key(sql: AuditSql, path: Path) -> bytes:
    """The key to sign new checkpoints with: ``path``'s, made (0600) only while the log holds no
    checkpoint; with checkpoints and no key file, :class:`AuditError` naming what to do."""
    done = sql.checkpoints()
    if done and not path.exists():
        raise AuditError(f"no audit key at {path}, but the log holds {len(done)} signed checkpoints: every "
                         f"process that signs checkpoints needs the key that signed them (copy that file "
                         f"here, or set {KEY_ENV} to where it is kept); no new key is made")
    return load_key(path, create=not done)


def seed(chain_start: int) -> bytes:
    """The root before the first checkpoint: names where chaining began."""
    return sha256(b"vip-log-checkpoints-v1" + _RANGE.pack(chain_start, 0)).digest()


def fold(root: bytes, position: int, oid: str, version: int, h: bytes) -> bytes:
    o = oid.encode("utf-8")
    return sha256(b"".join((root, _LEAF.pack(position, version, len(o)), o, h))).digest()


def leaf(position: int, chain_start: int, chained: bytes | None, topic: str, oid: str, version: int,
         state: bytes) -> bytes:
    """What a checkpoint folds for one event: its chain hash, or before chaining its own."""
    if position <= chain_start:
        return event_hash(ZERO, topic, oid, version, state)
    return chained


def sign(key: bytes, from_id: int, to_id: int, root: bytes, made_at: str) -> bytes:
    message = b"vip-checkpoint-v1" + _RANGE.pack(from_id, to_id) + root + made_at.encode("utf-8")
    return hmac.new(key, message, sha256).digest()


def signed(key: bytes, cp: Checkpoint) -> bool:
    return hmac.compare_digest(sign(key, cp.from_id, cp.to_id, cp.root, cp.made_at), cp.signature)


def make_checkpoints(sql: AuditSql, key: bytes, every: int, force: bool = False) -> list[Checkpoint]:
    """Sign every full range of ``every`` ids the log holds past the last checkpoint (and with
    ``force``, the partial range up to the log's end); returns the new checkpoints.

    The roots fold the stored chain hashes: an event after chaining began without one
    (inserted outside the application, or its row deleted) stops this with
    :class:`AuditError`, so no checkpoint ever vouches for it.
    """
    start, _ = sql.chain_start()
    done = sql.checkpoints()
    if done and not signed(key, done[-1]):
        # Another key (a process that made its own, or a key file from elsewhere): its checkpoints
        # would never verify beside the others', so none is made.
        raise AuditError(f"this audit key did not sign the log's last checkpoint ({done[-1].from_id}.."
                         f"{done[-1].to_id}): every process that signs checkpoints needs the same key file "
                         f"({KEY_ENV}); no checkpoint is made")
    last_to, root = (done[-1].to_id, done[-1].root) if done else (0, seed(start))
    end = sql.max_id()
    made: list[Checkpoint] = []
    while end - last_to >= every or (force and end > last_to):
        to_id = min(last_to + every, end)
        after = last_to
        while after < to_id:
            rows = sql.page(after, PAGE, until=to_id)
            if not rows:
                break
            for position, oid, version, topic, state, h in rows:
                if h is None and position > start:
                    raise AuditError(f"event at notification {position} ({oid} v{version}) has no chain "
                                     f"row: run `vip verify`; no checkpoint is made over it")
                root = fold(root, position, oid, version, leaf(position, start, h, topic, oid, version, state))
            after = rows[-1][0]
        made_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        made.append(Checkpoint(last_to + 1, to_id, root, sign(key, last_to + 1, to_id, root, made_at), made_at))
        last_to = to_id
    if made:
        sql.add_checkpoints(made)
    return made
