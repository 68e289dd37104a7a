"""First run in Chromium: a fresh, empty database → the set-up code from the log → the first admin and first site
→ the overview, signed in → the first member of staff → a single-use tablet set-up link → the tablet enrolled
with it → the first checklist item ticked there; axe finds nothing on the set-up pages. A server of its own (the shared one has the demo)."""
from __future__ import annotations

import logging
import re
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from compliance import create_app
from compliance.auth.models import TabletDevice
from compliance.checklists.models import Answer, ChecklistTemplate
from compliance.extensions import db
from compliance.schedule.models import Obligation
from compliance.sites.models import Organisation, Site, User
from compliance.sites.setup import setup_code

from .conftest import TABLET_VIEWPORT, Problems, _RequestLog, pin_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def empty_server(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "first-run-browser-secret",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.db'}", "BASE_URL": "http://127.0.0.1",
                      "SERVER_NAME": None, "INSTANCE_PATH": str(tmp_path / "instance")}, environ={})
    with app.app_context():
        db.create_all()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_RequestLog)
    thread = threading.Thread(target=server.serve_forever, name="first-run-server", daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


def test_fresh_database_set_up_code_first_admin_first_site_overview(browser, empty_server, shot, assert_accessible,
                                                                    caplog):
    app, url = empty_server
    caplog.set_level(logging.WARNING)
    context = browser.new_context(viewport=TABLET_VIEWPORT, base_url=url, locale="en-GB")
    context.set_default_timeout(10_000)
    problems = Problems()
    page = context.new_page()
    problems.watch(page)
    try:
        page.goto("/")  # any page leads to the set-up page
        page.wait_for_url("**/setup")
        logged = " ".join(r.getMessage() for r in caplog.records)
        code = setup_code(app.config["SECRET_KEY"])
        assert code in logged  # the one place to read it
        assert_accessible(page, "setup-code")
        shot(page, "setup-code")

        page.fill("#code", "WRNG-CODE-XXXX")
        page.locator("main button[type=submit]").click()
        page.wait_for_selector("#code-error")
        assert "Wrong set-up code" in page.locator("#code-error").inner_text()
        assert_accessible(page, "setup-code-wrong")

        page.fill("#code", code)
        page.locator("main button[type=submit]").click()
        page.wait_for_selector("#organisation")
        assert_accessible(page, "setup-details")
        page.fill("#organisation", "Klinik Sehat")
        page.fill("#admin_name", "Rina Admin")
        page.fill("#admin_email", "rina@klinik.test")
        page.fill("#admin_password", "a-long-enough-password")
        page.fill("#admin_password_repeat", "not-the-same-password")
        page.fill("#site_name", "Kemang")
        page.select_option("#timezone", "Asia/Jakarta")
        page.select_option("#language", "id")
        page.get_by_label("Sunday").check()
        page.fill("#opening_hour", "8")
        page.locator("main button[type=submit]").click()
        page.wait_for_selector("#admin_password_repeat-error")
        assert_accessible(page, "setup-details-error")
        shot(page, "setup-details-error")

        page.fill("#admin_password", "a-long-enough-password")
        page.fill("#admin_password_repeat", "a-long-enough-password")
        page.locator("main button[type=submit]").click()
        page.wait_for_url("**/overview")
        assert "Rina Admin" in page.locator("header").inner_text()
        shot(page, "overview")
        assert page.goto("/setup").status == 404

        # The first member of staff, with a PIN, then a single-use set-up link for the treatment room's tablet.
        with app.app_context():
            site_id = db.session.scalar(select(Site.id))
            db.session.remove()
        page.goto(f"/people/new?site={site_id}")
        page.fill("#name", "Siti Staf")
        page.fill("#email", "siti@klinik.test")
        page.select_option("#role", "staff")
        page.fill("#pin", "2468")
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/people/\d+$"))
        page.goto("/tablets")
        page.fill("#name", "Ruang perawatan")
        page.locator("button[formaction$='/tablets/link']").click()
        link = page.locator("code.link").inner_text()
        shot(page, "tablet-link")

        tablet = browser.new_context(viewport=TABLET_VIEWPORT, base_url=url)
        tablet.set_default_timeout(10_000)
        screen = tablet.new_page()
        problems.watch(screen)
        screen.goto(link)
        screen.locator("main button[type=submit]").click()
        screen.wait_for_url("**/tablet")
        pin_sign_in(screen, "Siti Staf", "2468")
        with app.app_context():
            opening = db.session.scalar(select(ChecklistTemplate.id).where(ChecklistTemplate.key == "opening"))
            db.session.remove()
        screen.goto("/tablet/checklists")
        screen.locator(f"form:has(input[name=template_id][value='{opening}']) button[type=submit]").first.click()
        screen.wait_for_url(re.compile(r"/tablet/runs/\d+(#.*)?$"))
        with screen.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/answers")) as answered:
            screen.locator("form.checklist-item button[name=value][value=yes]").first.click()
        assert answered.value.ok
        shot(screen, "first-tick")
        assert screen.goto(link).status == 409  # the set-up link is spent
        tablet.close()
        assert page.goto(link).status == 409
    finally:
        context.close()
    assert not problems.items, "the page reported problems:\n" + "\n".join(problems.items)
    with app.app_context():
        answer = db.session.scalar(select(Answer))
        assert answer is not None and answer.answered_by.name == "Siti Staf" and answer.value is True
        device = db.session.scalar(select(TabletDevice))
        assert (device.name, device.link_id is not None) == ("Ruang perawatan", True)
        db.session.remove()
    with app.app_context():
        site = db.session.scalar(select(Site))
        assert db.session.scalar(select(Organisation.name)) == "Klinik Sehat"
        assert (site.name, site.timezone, site.language, site.closed_weekdays) == ("Kemang", "Asia/Jakarta", "id", "sun")
        assert db.session.scalar(select(User.role)) == "admin"
        assert db.session.scalar(select(Obligation.id).where(Obligation.site_id == site.id)) is not None
        db.session.remove()
