"""Real-browser fixtures: the app served on 127.0.0.1 (a thread, its own SQLite file, the demo data) and Chromium.

Chromium is Debian's (/usr/bin/chromium; `.ci/run` installs it). Without it the browser tests skip locally with
the reason, and fail when CI is set: CI must not pass by skipping them.
Every test's page is screenshotted at its end into test-artifacts/browser/ (gitignored), as are named steps.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from compliance import create_app
from compliance.extensions import db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TABLET_VIEWPORT = {"width": 768, "height": 1024}
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
AXE_JS = Path(__file__).with_name("vendor") / "axe.min.js"

JAKARTA, LONDON = "Jakarta Kemang", "London Shoreditch"
SARI, SARI_PIN = "Sari Wulandari", "1234"      # Jakarta: Indonesian
EMMA, EMMA_PIN = "Emma Clarke", "3456"         # London: English


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    """Fail loudly in CI (a skipped browser suite would pass unnoticed); skip with the reason elsewhere."""
    if in_ci():
        pytest.fail(f"CI is set but the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


# --- the app, served --------------------------------------------------------------------------

@dataclass
class LiveServer:
    app: object
    url: str

    @contextmanager
    def session(self) -> Iterator:
        """The app's database session in the test process, released at once (SQLite takes the write lock
        at BEGIN here, so a session left open would stall the server's requests)."""
        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.rollback()
                db.session.remove()

    def site_id(self, name: str) -> int:
        from compliance.sites.models import Site

        with self.session() as s:
            return s.scalar(select(Site.id).where(Site.name == name))

    def enrolment_link(self, site_name: str, tablet_name: str = "Browser test tablet") -> str:
        """A single-use set-up link, as a manager's QR code or `flask tablet-link` gives one (a name already
        taken at the site gets a number)."""
        from compliance.auth.services import create_tablet_link, free_tablet_name
        from compliance.timeutil import utcnow

        site_id = self.site_id(site_name)
        with self.session() as s:
            now = utcnow()
            _link, token = create_tablet_link(None, site_id, free_tablet_name(site_id, tablet_name, now), now)
            s.commit()
        return f"{self.url}/tablet/enrol/{token}"


class _RequestLog(WSGIRequestHandler):
    """Requests go to a logger pytest captures (shown with a failure), not to a stream of their own."""

    def log(self, type: str, message: str, *args) -> None:
        getattr(logging.getLogger("browser.server"), "error" if type == "error" else "info")(
            "%s %s", self.address_string(), message % args)


def _load_data(app) -> None:
    from compliance.checklists.models import ChecklistTemplate
    from compliance.checklists.services import load_default_templates
    from compliance.demo import ORG_NAME, load_demo
    from compliance.sites.models import Organisation
    from compliance.timeutil import utcnow

    with app.app_context():
        db.create_all()
        now = utcnow()
        load_demo(now)
        org_id = db.session.scalar(select(Organisation.id).where(Organisation.name == ORG_NAME))
        if not db.session.scalar(select(ChecklistTemplate.id).where(ChecklistTemplate.organisation_id == org_id)):
            load_default_templates(org_id, now)
        db.session.commit()
        db.session.remove()


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    """The app on 127.0.0.1 and a free port, in a thread, on a SQLite file of its own with the demo data."""
    folder = tmp_path_factory.mktemp("browser")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-test-secret",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'browser.db'}",
            "BASE_URL": "http://127.0.0.1",
            "SERVER_NAME": None,
            "INSTANCE_PATH": str(folder / "instance"),
        },
        environ={},
    )
    _load_data(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_RequestLog)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


# --- the browser --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium not found at {CHROMIUM} (scripts/setup --for-tests installs it, or says how)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # a test dependency (pyproject [test]); scripts/setup installs it
        _unavailable(f"Playwright is not installed ({exc}); run scripts/setup")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:
        playwright.stop()
        _unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")[:120]


@dataclass
class Problems:
    """What the page itself reported: uncaught script errors and Content-Security-Policy refusals."""
    items: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))
        page.on("console", lambda msg: self.items.append(f"console {msg.type}: {msg.text}")
                if "Content Security Policy" in msg.text else None)


@pytest.fixture
def new_page(browser, live, request):
    """Open pages at the tablet's 768x1024 (or viewport=...), each in a fresh context (its own cookies and empty cache).

    Each page is screenshotted when the test ends, pass or fail; script errors and CSP refusals fail the test.
    """
    opened = []
    problems = Problems()
    base = _artifact_name(request.node.nodeid)

    def open_page(**context_options):
        context = browser.new_context(**{"viewport": TABLET_VIEWPORT, "base_url": live.url, **context_options})
        context.set_default_timeout(10_000)
        page = context.new_page()
        problems.watch(page)
        opened.append((context, page))
        return page

    yield open_page
    for n, (context, page) in enumerate(opened):
        suffix = f"-{n + 1}" if len(opened) > 1 else ""
        try:
            page.screenshot(path=str(ARTIFACTS / f"{base}{suffix}.png"), full_page=True)
        finally:
            context.close()
    assert not problems.items, "the page reported problems:\n" + "\n".join(problems.items)


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def shot(request) -> Callable:
    """shot(page, "step"): a screenshot of a step, next to the test's own."""
    base = _artifact_name(request.node.nodeid)

    def take(page, step: str) -> Path:
        path = ARTIFACTS / f"{base}--{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# --- the tablet ---------------------------------------------------------------------------------

def enrol(page, live: LiveServer, site_name: str = JAKARTA) -> None:
    """Make this browser the site's tablet through a set-up link: open it, press the button."""
    page.goto(live.enrolment_link(site_name))
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/tablet")


def pin_sign_in(page, person: str, pin: str) -> None:
    """On the enrolled tablet's picker: tap the person, type the PIN on the keypad, tap ✓."""
    page.goto("/tablet")
    page.get_by_role("link", name=person).click()
    page.wait_for_url("**/tablet/pin/*")
    for digit in pin:
        page.locator(f".keypad [data-key='{digit}']").click()
    page.locator(".keypad button[type=submit]").click()
    page.wait_for_url("**/tablet/home")


@pytest.fixture
def tablet(new_page, live) -> Callable:
    """tablet(site, person, pin): a fresh browser, enrolled as the site's tablet, the person signed in."""

    def open_tablet(site_name: str = JAKARTA, person: str = SARI, pin: str = SARI_PIN, **context_options):
        page = new_page(**context_options)
        enrol(page, live, site_name)
        pin_sign_in(page, person, pin)
        return page

    return open_tablet


# --- accessibility ------------------------------------------------------------------------------

def axe_violations(page, rules: dict | None = None) -> list[dict]:
    """Run the vendored axe-core on the page as it is now and return its violations.

    axe is evaluated through the DevTools protocol, which the page's CSP does not govern (an injected
    <script> tag, as page.add_script_tag makes, is refused by `script-src 'self'`), so the CSP stays on.
    """
    page.wait_for_load_state("networkidle")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate("() => {\n" + AXE_JS.read_text(encoding="utf-8") + "\n}")
    return page.evaluate(
        """async (rules) => {
            const result = await axe.run(document, {resultTypes: ["violations"], rules: rules || {}});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
            }));
        }""",
        rules,
    )


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} [{v['impact']}] {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}: {node['html'][:200]}")
            lines.extend(f"       {line}" for line in (node["summary"] or "").splitlines())
    return "\n".join(lines)


@pytest.fixture
def assert_accessible(request) -> Callable:
    """assert_accessible(page, "screen"): axe finds nothing; otherwise each violation is listed (and saved)."""
    base = _artifact_name(request.node.nodeid)

    def check(page, screen: str) -> None:
        violations = axe_violations(page)
        if violations:
            (ARTIFACTS / f"{base}--axe-{screen}.json").write_text(json.dumps(violations, indent=2))
        assert not violations, f"axe: {len(violations)} violation(s) on {screen} ({page.url}):\n" + \
            describe_violations(violations)

    return check
