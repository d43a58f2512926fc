"""The web console's page protections in headless Chromium: no rendering in a foreign frame, no
injected inline script. Each role's everyday work in the console: tests/test_console_roles.py.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from infra.api.app import create_app
from tests.api_support import T0, TERMS, seed_member

CHROMIUM = os.environ.get("VIP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def console(make_system):
    """The API and console served by uvicorn on a free port, over a system on a test clock."""
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(message)
        pytest.skip(message)
    system = make_system("sqlite", name="console")
    system.clock.at = T0
    seed_member(system, "M1")
    app_ = system.app
    # A cooperation contract with a service-fee invoice that falls overdue.
    system.engine.run(T0, lambda u, c: u.draft_contract(c, "K1", "cooperation", TERMS), actor="legal")
    for party in ("platform", "provider"):
        system.engine.run(T0, lambda u, c, p=party: u.sign_contract(c, "K1", p), actor="legal")
    system.engine.run(T0, lambda u, c: u.issue_invoice(c, "K1", "I1", "provider", 1_234_500, "CNY",
                                                       "service_fee", T0 + timedelta(days=1)),
                      actor="finance")
    system.engine.flush()
    app = create_app(system)
    tokens = {role: app.state.keys.create(role, f"{role}-web")[1] for role in ("agent", "finance")}
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens, "clock": system.clock}
    server.should_exit = True
    thread.join(timeout=10)


def _serve_page(html: str):
    """A page on another local port (another origin), as a foreign site would serve it."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def test_the_console_refuses_to_render_in_a_foreign_frame(console):
    url = console["url"] + "/console/"
    foreign = _serve_page(f'<html><body><h1>win a prize</h1><iframe id="victim" src="{url}" '
                          'width="800" height="600"></iframe></body></html>')
    try:
        with sync_api.sync_playwright() as pw:
            browser = _browser(pw)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{foreign.server_address[1]}/")
            page.wait_for_selector("#victim")
            page.wait_for_timeout(1500)
            framed = [f for f in page.frames if f != page.main_frame]
            assert framed, "the iframe element should exist"
            # Blocked by frame-ancestors 'none' / X-Frame-Options: an error page, no console.
            assert all(f.query_selector("#token") is None for f in framed)
            # The same console opened directly does render (the check above is not vacuous).
            direct = browser.new_page()
            direct.goto(url)
            assert direct.query_selector("#token") is not None
            browser.close()
    finally:
        foreign.shutdown()


def test_the_console_csp_blocks_an_injected_inline_script(console):
    with sync_api.sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page()
        violations = []
        page.on("console", lambda m: violations.append(m.text))
        page.goto(console["url"] + "/console/")
        page.wait_for_selector("#token")
        ran = page.evaluate("""() => new Promise((done) => {
            document.addEventListener('securitypolicyviolation', (e) => done(['blocked', e.violatedDirective]));
            const s = document.createElement('script');
            s.textContent = 'window.__injected = 1';
            document.body.appendChild(s);
            setTimeout(() => done([window.__injected === 1 ? 'ran' : 'silent', '']), 1000);
        })""")
        assert ran[0] == "blocked" and ran[1].startswith("script-src"), (ran, violations)
        browser.close()
