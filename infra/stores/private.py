"""Owner-only files: the data dir and every file that holds keys, events or personal data.

The per-member keys (``keys.db``) are what makes erasure work: a copy any
local user can read undoes crypto-shredding. So the data dir is made 0700
and each store file 0600 *before* a library opens it (SQLite gives a
database's ``-wal``, ``-shm`` and ``-journal`` files the mode of the database
file, so they follow). A file found wider when it is opened is left as the
operator made it, with one warning naming it and the fix.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# The files SQLite keeps beside a database: they hold its pages too.
SIBLINGS = ("-wal", "-shm", "-journal")

log = logging.getLogger("vip.files")
_warned: set[str] = set()


def check_private(path: str | os.PathLike) -> bool:
    """True if ``path`` (a file or directory, when it exists) is not open to group or others;
    else a warning naming it, logged once per process and path."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True
    if not mode & 0o077:
        return True
    key = os.path.abspath(path)
    if key not in _warned:
        _warned.add(key)
        want = DIR_MODE if stat.S_ISDIR(mode) else FILE_MODE
        log.warning("%s is open to other local users (mode %03o): it holds keys, events or personal "
                    "data; restrict it with `chmod %03o %s`", path, stat.S_IMODE(mode), want, path)
    return False


def private_dir(path: str | os.PathLike) -> Path:
    """The directory, made 0700 (with any missing parents) if it does not exist; checked if it does."""
    path = Path(path)
    if path.is_dir():
        check_private(path)
        return path
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode is cut by the umask, never widened: set it exactly
    return path


def private_file(path: str | os.PathLike, truncate: bool = False, parents: bool = True) -> Path:
    """The file, created empty with mode 0600 if it does not exist, so whatever opens it next
    (SQLite, ``open``) writes into an owner-only file; an existing one (and its SQLite
    companions) is checked. ``truncate``: the caller rewrites the file whole, so an existing
    one is made 0600 as if new. ``parents``: a missing directory is made (0700); without it
    a missing directory is the caller's ``FileNotFoundError`` (a path a user named, mistyped
    or not, is not made up)."""
    path = Path(path)
    if parents and not path.parent.exists():
        private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        if truncate:
            try:
                os.chmod(path, FILE_MODE)
            except OSError:
                pass  # not ours to change: the check below says so
        for name in (str(path), *(f"{path}{suffix}" for suffix in SIBLINGS)):
            check_private(name)
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path
