"""The last line of defence of the ``vip`` command: one clear line instead of a traceback.

Refusals (domain errors, bad settings) are reported by the commands
themselves as ``click.ClickException``; this prints them, and what nobody
refused on purpose (a full disk, a data dir the process may not write), as
one ``Error:`` line on stderr with exit status 1 (a usage error: 2).
Under ``--json`` the same error is one JSON object on stderr,
``{"error": "...", "exit": 1}``, with the same exit status. ``--debug`` (or
``VIP_DEBUG=1``) lets the traceback through.

This module is imported by ``vip --help``: it imports nothing heavy. The
error classes of the stores are recognised through ``sys.modules``: an
exception of such a class means its module is loaded already.
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys

import click


def _is(exc: BaseException, module: str, name: str) -> bool:
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def explain(exc: BaseException) -> str:
    """One line for a failure nobody refused on purpose: what happened and what to do."""
    text = str(exc)
    # The event store wraps the driver's errors in the library's own classes.
    if isinstance(exc, sqlite3.Error) or _is(exc, "eventsourcing.persistence", "PersistenceError"):
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
    if _is(exc, "infra.stores.readstore", "StaleStoreError") or _is(exc, "infra.stores.leases", "LeaseHeldError"):
        return str(exc)
    return f"{type(exc).__name__}: {text}"


def _debugging(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("VIP_DEBUG", "") not in ("", "0")


def report(message: str, code: int, as_json: bool) -> None:
    """Print an error the way the command's output is read, and exit with ``code``."""
    if as_json:
        click.echo(json.dumps({"error": message, "exit": code}, ensure_ascii=False), err=True)
    else:
        click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class VipGroup(click.Group):
    """The top-level command: no Python traceback reaches a user (only with ``--debug``)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(args) if args is not None else sys.argv[1:]
        as_json = "--json" in argv
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:  # the usage line and hint, as click shows them, or JSON
            if as_json:
                hint = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
                report(exc.format_message() + hint, exc.exit_code, True)
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            report(exc.format_message(), exc.exit_code, as_json)
        except click.Abort:
            report("aborted", 1, as_json)
        except Exception as exc:  # the last line of defence: one clear line, non-zero exit
            if _debugging(argv):
                raise
            report(explain(exc) + ("" if as_json else " (--debug shows the traceback)"), 1, as_json)
        if not standalone_mode:
            return result
        # Without standalone mode click returns an ``Exit``'s status (``--help``, ``ctx.exit(1)``).
        sys.exit(result if isinstance(result, int) else 0)
