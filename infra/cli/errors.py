"""The last line of defence of the ``vip`` command: one clear line instead of a traceback.

Refusals (domain errors, bad settings) are reported by the commands
themselves; this catches what nobody refused on purpose (a full disk, a data
dir the process may not write) and prints one ``Error:`` line on stderr with
exit status 1. ``--debug`` (or ``VIP_DEBUG=1``) lets the traceback through.
"""
from __future__ import annotations

import os
import sqlite3
import sys

import click
from eventsourcing.persistence import PersistenceError

from infra.stores.leases import LeaseHeldError
from infra.stores.readstore import StaleStoreError


def explain(exc: BaseException) -> str:
    """One line for a failure nobody refused on purpose: what happened and what to do."""
    text = str(exc)
    # The event store wraps the driver's errors in the library's own classes.
    if isinstance(exc, (sqlite3.Error, PersistenceError)):
        if "disk is full" in text or "disk I/O" in text:
            return (f"the disk is full or failing ({text}); nothing of the failed step was saved: "
                    "free space and run the command again")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return (f"cannot write the data dir ({text}): check VIP_DATA_DIR and its permissions; "
                    "queries work on a read-only data dir, changes need write access")
        if "locked" in text:
            return f"the database stayed locked by another process ({text}): run the command again"
        return f"database error: {text}"
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or text}:{where}" if exc.strerror else text
    if isinstance(exc, (StaleStoreError, LeaseHeldError)):
        return str(exc)
    return f"{type(exc).__name__}: {text}"


def _debugging(args) -> bool:
    argv = list(args) if args is not None else sys.argv[1:]
    return "--debug" in argv or os.environ.get("VIP_DEBUG", "") not in ("", "0")


class VipGroup(click.Group):
    """The top-level command: no Python traceback reaches a user (only with ``--debug``)."""

    def main(self, args=None, *rest, **kwargs):
        try:
            return super().main(args, *rest, **kwargs)
        except Exception as exc:  # the last line of defence: one clear line, non-zero exit
            if _debugging(args):
                raise
            click.echo(f"Error: {explain(exc)} (--debug shows the traceback)", err=True)
            sys.exit(1)
