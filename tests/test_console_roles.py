"""Each role's everyday tasks in the web console, in headless Chromium, by clicks and typing only,
at 1280 px and at 390 px: no screen scrolls sideways, axe-core finds nothing serious or critical.

agent:      find a member by name, file a complaint (the server makes its id), work it to closed
            from the queue;
supervisor: the complaint closest to breach is first in the queue; escalate it; override a
            member's tier with an expiry;
finance:    overdue invoices by age, settle one with a payment reference, revenue per partner
            and month as CSV;
auditor:    a member's tier and why on a past date.

Screenshots are kept in tests/artifacts/ (ignored by git).
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from infra.api.app import create_app
from infra.bootstrap import build
from infra.service_layer.upstream import apply_input, parse
from infra.settings import Settings
from tests.api_support import TERMS
from tests.conftest import FakeClock

CHROMIUM = os.environ.get("VIP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "console"
sync_api = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
pytestmark = pytest.mark.browser

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=SH)          # a Monday
NOW = T0 + timedelta(hours=7, minutes=58)              # 17:58: two minutes before C-NEAR breaches
WIDTHS = (1280, 390)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _order(system, member_id, order_id, fen, at, kind="OrderPaid"):
    apply_input(system.engine, parse("orders", {
        "event_id": f"{kind}-{order_id}", "type": kind, "member_id": member_id, "order_id": order_id,
        "occurred_at": at.isoformat(), "amount_fen": fen, "currency": "CNY"}))


def _seed(system) -> None:
    app, run = system.app, system.engine.run
    for member_id, profile, at in (("M1", {"name": "李雷", "phone": "13700001111"}, T0),
                                   ("M2", {"name": "Wang Fang", "phone": "13900002222"}, T0 - timedelta(days=200))):
        run(at, lambda u, c, m=member_id, p=profile: u.register_member(c, f"reg-{m}", m, p), actor="crm")
    _order(system, "M1", "M1-o1", 2_500_000, T0)                        # gold
    _order(system, "M2", "M2-o1", 5_200_000, T0 - timedelta(days=200))  # platinum ...
    _order(system, "M2", "M2-o1", 300_000, T0 - timedelta(days=10), "OrderRefunded")  # ... held at 49,000
    # Open complaints: C-NEAR (filed 10:00, 8 business hours) is due at 18:00, the others later.
    for cid, member, at, severity in (("C-1", "M2", T0 + timedelta(hours=1), "high"),
                                      ("C-NEAR", "M1", T0, "low"),
                                      ("C-3", "M2", T0 + timedelta(hours=2), "high")):
        run(at, lambda u, c, k=cid, m=member, s=severity: u.file_complaint(c, k, m, "phone", "delivery", s,
                                                                          "the parcel is late"), actor="agent")
    _order(system, "M1", "M1-o2", 3_000_000, T0 + timedelta(hours=1))   # platinum from 11:00
    # A cooperation contract with two overdue invoices: 31-60 and 90+ days.
    start = T0 - timedelta(days=150)
    run(start, lambda u, c: u.draft_contract(c, "K1", "cooperation", TERMS), actor="legal")
    for party in ("platform", "provider"):
        run(start, lambda u, c, p=party: u.sign_contract(c, "K1", p), actor="legal")
    for inv, fen, issued, due in (("I2", 500_000, T0 - timedelta(days=130), T0 - timedelta(days=100)),
                                  ("I1", 1_234_500, T0 - timedelta(days=70), T0 - timedelta(days=45))):
        run(issued, lambda u, c, i=inv, f=fen, d=due: u.issue_invoice(c, "K1", i, "provider", f, "CNY",
                                                                     "service_fee", d), actor="finance")
    system.engine.flush()


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{CHROMIUM} missing")
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def console(tmp_path):
    """The API and console on a free port over seeded data, the clock standing at ``NOW``."""
    clock = FakeClock(NOW)
    settings = Settings.from_env({}, data_dir=tmp_path / "vip", event_store="sqlite",
                                 future_tolerance_seconds=20 * 366 * 86400)
    system = build(settings, clock=clock)
    _seed(system)
    app = create_app(system)
    tokens = {role: app.state.keys.create(role, f"{role}-web")[1]
              for role in ("agent", "supervisor", "finance", "auditor")}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield {"url": f"http://127.0.0.1:{server.config.port}", "tokens": tokens, "system": system}
    server.should_exit = True
    thread.join(timeout=10)
    system.close()


class Screen:
    """A signed-in page at one width that checks every screen it shows."""

    def __init__(self, browser, console, role: str, width: int) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.role, self.width, self.shots = role, width, 0
        self.axe = axe_module.Axe()
        self.page.goto(console["url"] + "/console/")
        self.page.fill("#token", console["tokens"][role])
        self.page.click("button:has-text('Sign in')")
        self.page.wait_for_selector(f"#who:has-text('{role}-web')")

    def check(self, name: str) -> None:
        """No sideways scroll, no serious or critical axe finding; a screenshot kept."""
        page = self.page
        page.wait_for_selector("#view p.hint:has-text('Loading')", state="detached")
        wide = page.evaluate("() => [document.scrollingElement.scrollWidth, innerWidth]")
        self.shots += 1
        page.screenshot(path=str(ARTIFACTS / f"{self.role}-{self.width}-{self.shots}-{name}.png"), full_page=True)
        assert wide[0] <= wide[1], f"{name} at {self.width} px scrolls sideways: {wide}"
        found = self.axe.run(page).response["violations"]
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
               if v["impact"] in ("serious", "critical")]
        assert bad == [], f"{name} at {self.width} px: {bad}"

    def tab(self, label: str) -> None:
        self.page.click(f"nav a:has-text('{label}')")
        # The console marks the tab when it renders, on the hashchange after the click.
        self.page.wait_for_selector(f"nav a[aria-current=page]:has-text('{label}')")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def screen(browser, console, request):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened = []

    def open_(role: str, width: int) -> Screen:
        opened.append(Screen(browser, console, role, width))
        return opened[-1]
    yield open_
    for s in opened:
        s.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_agent_finds_a_member_by_name_files_a_complaint_and_works_it_to_closed(screen, width):
    s = screen("agent", width)
    page = s.page
    assert page.locator("nav a").all_inner_texts() == ["Complaints queue", "Members", "Tiers"]
    s.check("queue")
    s.tab("Members")
    page.fill("#m-q", " 李雷 ")
    page.click("button:has-text('Find member')")
    page.wait_for_selector("#why")
    assert page.url.endswith("#/member/M1")
    assert "李雷" in page.inner_text("#m-page") and "13700001111" in page.inner_text("#m-page")
    s.check("member")
    page.select_option("select[name=severity]", "high")
    page.fill("textarea[name=description]", "the courier left the parcel outside")
    page.click("button:has-text('File complaint for M1')")
    page.wait_for_selector("h2:has-text('Complaint C-')")
    complaint = page.inner_text("h2").split()[1]
    assert page.url.endswith(f"#/complaint/{complaint}")
    assert "the courier left the parcel outside" in page.inner_text("#view")
    s.check("complaint-filed")
    # From the queue: the new complaint is there; open it and work it through.
    s.tab("Complaints queue")
    page.click(f"a[aria-label='Open complaint {complaint}']")
    page.wait_for_selector("#actions form")
    assert page.locator("button:has-text('Escalate')").count() == 0   # a supervisor's action
    steps = (("Acknowledge", None, "acknowledged"), ("Assign", None, "assigned"),
             ("Resolve", ("textarea[name=resolution]", "courier brought it back"), "resolved"),
             ("Record the rating", ("select[name=score]", "4"), "resolved"), ("Close", None, "closed"))
    for action, field, status in steps:
        if field and field[0].startswith("select"):
            page.select_option(field[0], field[1])
        elif field:
            page.fill(*field)
        page.click(f"#actions button:has-text('{action} {complaint}')")
        page.wait_for_selector(f"#c-msg.ok:has-text('now {status}')")
    assert page.inner_text("#resolution") == "courier brought it back"
    assert "4 of 5" in page.inner_text("#view")
    assert page.locator("#actions form").count() == 1   # only Reopen is left
    s.check("complaint-closed")
    s.tab("Complaints queue")
    page.wait_for_selector("#queue-table")
    assert page.locator(f"tr[data-complaint='{complaint}']").count() == 0


@pytest.mark.parametrize("width", WIDTHS)
def test_supervisor_sees_the_nearest_breach_first_escalates_and_overrides_with_expiry(screen, width):
    s = screen("supervisor", width)
    page = s.page
    page.wait_for_selector("#queue-table tbody tr")
    first = page.locator("#queue-table tbody tr").first
    assert first.get_attribute("data-complaint") == "C-NEAR"
    assert "2 min left" in first.inner_text()
    assert page.locator("#queue-table tbody tr").count() == 3
    s.check("queue")
    # Keyboard focus survives the 5-second refresh.
    page.focus("button:has-text('Acknowledge C-1')")
    before = page.inner_text("#q-updated")
    page.wait_for_function("(t) => document.querySelector('#q-updated').textContent !== t", arg=before,
                           timeout=8000)
    assert page.evaluate("() => document.activeElement.textContent") == "Acknowledge C-1"
    page.click("a[aria-label='Open complaint C-NEAR']")
    page.fill("input[name=reason]", "platinum member, parcel lost twice")
    page.click("button:has-text('Escalate C-NEAR')")
    page.wait_for_selector("#c-msg.ok:has-text('now escalated')")
    assert "Escalation level" in page.inner_text("#view") and "escalated" in page.inner_text("h2")
    s.check("escalated")
    page.click("a[aria-label='Open member M1']")
    page.wait_for_selector("#ovr-form")
    page.select_option("select[name=kind]", "floor")
    page.select_option("select[name=tier]", "diamond")
    page.fill("#ovr-form input[name=reason]", "service recovery")
    page.fill("input[name=expires]", "2025-06-30T23:59:59")
    page.click("button:has-text('Set override for M1')")
    page.wait_for_selector("#why:has-text('Override: floor at diamond until 2025-06-30 23:59:59')")
    s.check("override")


@pytest.mark.parametrize("width", WIDTHS)
def test_finance_ages_overdue_invoices_settles_one_and_downloads_revenue(screen, width):
    s = screen("finance", width)
    page = s.page
    assert page.locator("nav a").all_inner_texts() == ["Members", "Overdue invoices", "Revenue", "Contracts", "Tiers"]
    s.tab("Overdue invoices")
    page.wait_for_selector("#aging tr[data-invoice='I1']")
    totals = page.inner_text("#aging-totals-table")
    assert "12,345.00 CNY" in totals and "5,000.00 CNY" in totals and "17,345.00 CNY" in totals
    assert "31-60" in page.inner_text("#aging tr[data-invoice='I1']")
    assert "90+" in page.inner_text("#aging tr[data-invoice='I2']")
    with page.expect_download() as got:
        page.click("#aging-csv")
    text = Path(got.value.path()).read_text()
    assert text.startswith("Contract,Invoice,Payer,Due,Days overdue,Bucket,Outstanding,Currency")
    assert "K1,I1,provider,2025-01-17,45,31-60,12345.00,CNY" in text
    s.check("aging")
    page.click("button:has-text('Settle invoice I1')")
    page.wait_for_selector("#settle[open]")
    assert page.input_value("input[name=amount]") == "12345.00"
    page.fill("input[name=reference]", "BANK-2025-0042")
    page.click("#settle-ok")                               # not confirmed yet: nothing happens
    assert page.locator("#settle[open]").count() == 1
    page.check("input[name=confirm]")
    s.check("settle-dialog")
    page.click("#settle-ok")
    page.wait_for_selector("#a-msg.ok:has-text('Payment BANK-2025-0042 of 12,345.00 CNY recorded on invoice I1')")
    assert page.locator("#aging tr[data-invoice='I1']").count() == 0
    s.tab("Revenue")
    page.wait_for_selector("#revenue-table")
    with page.expect_download() as got:
        page.click("#revenue-csv")
    text = Path(got.value.path()).read_text()
    assert text.splitlines()[0] == "Month,platform,provider,Total"
    assert "2024-10,3500.00,1500.00,5000.00" in text and "2024-12,8641.50,3703.50,12345.00" in text
    # The partner's payable (1,500.00 + 3,703.50) is what the platform owes: a positive amount.
    assert "5,203.50 CNY" in page.inner_text("#balances") and "-5,203.50" not in page.inner_text("#balances")
    s.check("revenue")
    s.tab("Contracts")
    page.wait_for_selector("#contract-list")
    assert "Showing 1-1 of 1" in page.inner_text("#k-count")
    s.check("contracts")


@pytest.mark.parametrize("width", WIDTHS)
def test_auditor_reads_a_members_tier_and_why_on_a_past_date(screen, width):
    s = screen("auditor", width)
    page = s.page
    s.tab("Members")
    page.fill("#m-q", "m1")
    page.click("button:has-text('Find member')")
    page.wait_for_selector("#why")
    assert page.inner_text("#tier-now") == "platinum"
    assert page.locator("#file-form").count() == 0 and page.locator("#ovr-form").count() == 0
    page.fill("#asof", "2025-03-03T10:30:00")
    page.click("button:has-text('Show as of this time')")
    page.wait_for_selector("#asof-banner:has-text('as of 2025-03-03 10:30:00')")
    page.wait_for_selector("#tier-now:has-text('gold')")
    why = page.inner_text("#why")
    assert "net spend 25,000.00 CNY" in why and "Set by tier upgraded on 2025-03-03 10:00:00" in why
    assert "as_of=" in page.url and "#/member/M1" in page.url
    history = page.inner_text("#tier-history")
    assert "member → gold" in history and "platinum" not in history
    s.check("member-as-of")
    # A reload keeps the page, the member and the instant.
    page.reload()
    page.wait_for_selector("#tier-now:has-text('gold')")
    # M2 is platinum below the platinum rule: held until the annual review.
    page.fill("#m-q", "M2")
    page.click("button:has-text('Find member')")
    page.wait_for_selector("#why:has-text('held until the review on')")
    assert "net spend 49,000.00 CNY" in page.inner_text("#why")
    s.check("member-held")
    s.tab("Complaints queue")
    page.wait_for_selector("#q-table")
    s.check("queue-as-of")


def test_an_action_sent_replaces_the_last_actions_message_and_holds_the_others_until_answered(screen):
    """A message that still said the last action's outcome let the next step (a click on Close
    while the rating was on its way) go out against a version the rating was about to replace."""
    s = screen("agent", 1280)
    page = s.page
    page.click("a[aria-label='Open complaint C-1']")
    page.click("#actions button:has-text('Acknowledge C-1')")
    page.wait_for_selector("#c-msg.ok:has-text('now acknowledged')")
    # The click and a look at the page in one script: the handler has run up to its request.
    seen = page.evaluate("""() => {
        document.querySelector("#actions form[data-action=assign] button").click();
        const msg = document.querySelector("#c-msg");
        return {ok: msg.classList.contains("ok"), text: msg.textContent,
                enabled: [...document.querySelectorAll("#actions button")].filter((b) => !b.disabled).length};
    }""")
    assert seen == {"ok": False, "text": "Assign: sending...", "enabled": 0}
    page.wait_for_selector("#c-msg.ok:has-text('now assigned')")
    assert page.locator("#actions button:disabled").count() == 0
