"""axe-core (vendored, tests/browser/vendor) finds no violation on the sign-in page and the tablet's screens."""
import pytest

from .conftest import JAKARTA, SARI, SARI_PIN, enrol

pytestmark = pytest.mark.browser


def test_sign_in_page(page, assert_accessible):
    page.goto("/login")
    assert_accessible(page, "sign-in")


def test_sign_in_page_with_an_error(page, assert_accessible):
    page.goto("/login")
    page.fill("#email", "nobody@example.test")
    page.fill("#password", "not-the-password")
    page.locator("main button[type=submit]").click()
    page.wait_for_selector(".error")
    assert_accessible(page, "sign-in-error")


def test_tablet_picker_pin_and_now(page, live, shot, assert_accessible):
    enrol(page, live, JAKARTA)
    assert_accessible(page, "picker")
    shot(page, "picker")

    page.get_by_role("link", name=SARI).click()
    page.wait_for_url("**/tablet/pin/*")
    for digit in SARI_PIN[:2]:
        page.locator(f".keypad [data-key='{digit}']").click()
    assert_accessible(page, "pin")
    shot(page, "pin")

    page.locator(".keypad [data-key='clear']").click()
    page.locator(".keypad button[type=submit]").click()  # one digit: refused, the error shown (no attempt counted)
    page.wait_for_selector("#pin-error")
    assert_accessible(page, "pin-error")
    shot(page, "pin-error")

    for digit in SARI_PIN:
        page.locator(f".keypad [data-key='{digit}']").click()
    page.locator(".keypad button[type=submit]").click()
    page.wait_for_url("**/tablet/home")
    assert_accessible(page, "now")


def test_now_screen_in_english(tablet, assert_accessible):
    page = tablet("London Shoreditch", "Emma Clarke", "3456")
    assert page.locator("html").get_attribute("lang") == "en"
    assert_accessible(page, "now-en")


def test_manager_screens_of_obligations_dashboard_reports_and_audit_log(page, shot, assert_accessible):
    """Signed in with a password, in Chromium: the new manager screens have no axe violation (CSP kept on)."""
    page.goto("/login")
    page.fill("#email", "admin@demo.clinic")
    page.fill("#password", "demo-password-2026")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/overview")
    for path, name in (("/obligations", "obligations"), ("/emails", "emails"), ("/dashboard", "dashboard"),
                       ("/reports/audit", "audit-report"), ("/audit", "audit-log")):
        page.goto(path)
        page.wait_for_selector("main h1")
        assert_accessible(page, name)
        shot(page, name)
    page.goto("/obligations?status=overdue")
    page.locator("main table tbody a").first.click()
    page.wait_for_selector("main h1")
    assert_accessible(page, "obligation")
