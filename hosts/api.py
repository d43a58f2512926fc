"""``vip api`` (serve the API and console) and ``vip api-key`` (make, list, revoke keys)."""
from __future__ import annotations

import json
import logging
import threading

import click
import uvicorn

from domain.limits import unsafe_character

from infra.api.app import create_app
from infra.api.keys import ROLES, ApiKeyStore, ApiKeyError
from infra.api.observability import JsonFormatter
from infra.bootstrap import build, open_api_keys
from infra.logs import setup_logging
from infra.settings import Settings

log = logging.getLogger("vip.api")


def _keys() -> ApiKeyStore:
    keys = open_api_keys(Settings.from_env())
    for old, new in keys.migrated:
        click.echo(f"key {old} is now {new}: key ids no longer show part of the secret "
                   "(its token still works)", err=True)
    return keys


@click.group("api-key")
def api_key() -> None:
    """API keys for `vip api`: each has a role and a subject (the actor on its events)."""


@api_key.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--subject", required=True, help="Who the key belongs to; recorded as the actor.")
def create_key(role: str, subject: str) -> None:
    """Make a key and print its token (shown this once; only its hash is kept)."""
    keys = _keys()
    try:
        key_id, token = keys.create(role, subject)
    except ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        keys.close()
    click.echo(f"key {key_id} ({role}, {subject}); token, shown once:", err=True)
    click.echo(token)


@api_key.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_keys(as_json: bool) -> None:
    """Every key: id, role, subject, created, revoked (never the token)."""
    keys = _keys()
    rows = keys.list()
    keys.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        # A subject stored before subjects were checked may hold a newline or U+202E: escaped.
        click.echo("  ".join(_cell(row[c]) for c in ("key_id", "role", "subject", "created_at",
                                                     "revoked_at")))
    if not rows:
        click.echo("(no keys)")


def _cell(value) -> str:
    text = str(value or "-")
    return ascii(text) if unsafe_character(text) else text


@api_key.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key: its token is refused from now on."""
    keys = _keys()
    try:
        keys.revoke(key_id)
    except ApiKeyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        keys.close()
    click.echo(f"revoked {key_id}")


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--tick-seconds", default=5.0, show_default=True,
              help="How often the scheduler fires due work (SLA breaches, due dates); 0: never.")
@click.option("--demo-key", is_flag=True,
              help="Make an admin key for this run (revoked when it stops) and print it with the address.")
def api(host: str, port: int, tick_seconds: float, demo_key: bool) -> None:
    """Serve the HTTP API (/api, /openapi.json), the web console (/console), /metrics, /healthz.

    Ctrl-C stops it. Logs are JSON lines on stderr, each with its request's correlation id.
    """
    system = build(Settings.from_env())
    app = create_app(system)
    setup_logging(formatter=JsonFormatter())
    stop = threading.Event()
    if tick_seconds > 0:
        threading.Thread(target=_scheduler, args=(app, tick_seconds, stop), daemon=True).start()
    url = f"http://{host}:{port}"
    demo_id = None
    if demo_key:
        demo_id, token = app.state.keys.create("admin", "demo")
        click.echo(f"console: {url}/console/   API: {url}/openapi.json   sign-in key (admin): {token}")
        click.echo("Ctrl-C stops it.")
    else:
        click.echo(f"console: {url}/console/   API: {url}/openapi.json   (`vip api-key create` makes keys)")
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    finally:
        stop.set()
        with app.state.lock:
            if demo_id:  # the printed key lives only as long as this run
                app.state.keys.revoke(demo_id)
            app.state.idempotency.close()
            app.state.keys.close()
            system.close()


def _scheduler(app, every: float, stop: threading.Event) -> None:
    """Fire due work on the wall clock, as `vip serve` does, under the API's lock."""
    while not stop.wait(every):
        try:
            with app.state.lock:
                fired = app.state.system.engine.tick()
            if fired:
                log.info("scheduler fired %d due items", fired)
        except Exception:  # keep serving; the next tick tries again
            log.exception("scheduler tick failed")


def register(main: click.Group) -> None:
    main.add_command(api)
    main.add_command(api_key)

