"""People in Chromium, with the emails caught by a real SMTP server on loopback (aiosmtpd): an admin invites a
manager, who opens the emailed link and chooses a password; a manager who forgot the password asks for a link
and chooses a new one, and the session open elsewhere is signed out; a nurse changes her own PIN on the tablet.
axe finds nothing on each new page."""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from compliance.schedule.models import OutboxMessage
from compliance.schedule.services import send_one
from compliance.timeutil import utcnow
from tests.schedule.conftest import Inbox, free_port, wait_until

from .conftest import JAKARTA, SARI, SARI_PIN, pin_sign_in

pytestmark = pytest.mark.browser

ADMIN, DEMO_PASSWORD = "admin@demo.clinic", "demo-password-2026"


@contextmanager
def smtp_for(live):
    """A real SMTP server on a free loopback port, which the served app sends to while the block runs."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    saved = {k: live.app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USER")}
    live.app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none", SMTP_USER="")
    try:
        yield inbox
    finally:
        live.app.config.update(saved)
        controller.stop()


def deliver(live, inbox, kind: str, recipient: str) -> str:
    """Send the outbox's queued `kind` email to `recipient` (as the scheduler's send job does) and return the
    path of the link in the message the SMTP server received."""
    with live.app.app_context():
        from compliance.extensions import db
        message_id = db.session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.kind == kind, OutboxMessage.recipient == recipient, OutboxMessage.state == "queued")
            .order_by(OutboxMessage.id.desc()))
        assert message_id is not None, f"no {kind} email queued for {recipient}"
        assert send_one(message_id, utcnow()) == "sent"
        db.session.remove()
    assert wait_until(lambda: any(m["To"] == recipient for m in inbox.messages))
    received = [m for m in inbox.messages if m["To"] == recipient][-1]
    body = received.get_body(("plain",)).get_content()
    return re.search(r"https?://[^/\s]+(/(?:invitation|password/reset)/\S+)", body).group(1)


def sign_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("main button[type=submit]").click()


def test_an_admin_invites_a_manager_who_accepts_by_email(new_page, live, shot, assert_accessible):
    email = "dewi.manager@klinik.test"
    admin = new_page(locale="en-GB")
    sign_in(admin, ADMIN, DEMO_PASSWORD)
    admin.wait_for_url("**/overview")
    admin.goto(f"/people/new?site={live.site_id(JAKARTA)}")
    admin.fill("#name", "Dewi Manager")
    admin.fill("#email", email)
    admin.select_option("#role", "manager")
    admin.locator("main form button[type=submit]").click()
    admin.wait_for_url(re.compile(r"/people/\d+$"))
    assert "An invitation to choose a password was sent to" in admin.locator("main").inner_text()
    assert "Invited: the link to choose a password works until" in admin.locator("main").inner_text()
    assert_accessible(admin, "person-invited")
    shot(admin, "person-invited")

    with smtp_for(live) as inbox:
        path = deliver(live, inbox, "invitation", email)
    newcomer = new_page(locale="en-GB")
    newcomer.goto(path)
    assert "Welcome, Dewi Manager" in newcomer.locator("main h1").inner_text()
    assert_accessible(newcomer, "invitation")
    newcomer.fill("#password", "kopi susu di pagi hari")
    newcomer.fill("#password_again", "kopi susu di pagi hari")
    newcomer.locator("main button[type=submit]").click()
    newcomer.wait_for_url("**/overview")
    assert "Dewi Manager" in newcomer.locator("header").inner_text()
    shot(newcomer, "accepted")

    spent = new_page()
    assert spent.goto(path).status == 409
    assert "already used" in spent.locator("main").inner_text()
    assert_accessible(spent, "link-spent")

    # A PIN made for Budi (no other test signs in as him), shown once.
    with live.session() as s:
        from compliance.sites.models import User
        budi = s.scalar(select(User.id).where(User.email == "budi@demo.clinic"))
    admin.goto(f"/people/{budi}/pin")
    admin.locator("main form button[type=submit]").click()
    admin.wait_for_selector(".pin-shown")
    assert re.fullmatch(r"\d{6}", admin.locator(".pin-shown").inner_text().strip())
    assert_accessible(admin, "pin-shown")
    shot(admin, "pin-shown")


def test_a_manager_resets_a_forgotten_password_and_the_other_session_ends(new_page, live, shot, assert_accessible,
                                                                          demo_password_back):
    email = "manager.london@demo.clinic"
    elsewhere = new_page()
    sign_in(elsewhere, email, DEMO_PASSWORD)
    elsewhere.wait_for_url("**/overview")

    page = new_page(locale="en-GB")
    page.goto("/login")
    page.get_by_role("link", name="Forgotten your password?").click()
    page.wait_for_url("**/password/forgot")
    assert_accessible(page, "forgot")
    page.fill("#email", email)
    page.locator("main button[type=submit]").click()
    page.wait_for_selector("text=Check your email")
    assert_accessible(page, "reset-asked")
    shot(page, "reset-asked")

    with smtp_for(live) as inbox:
        path = deliver(live, inbox, "password_reset", email)
    page.goto(path)
    assert_accessible(page, "choose-new-password")
    page.fill("#password", "a new and longer password")
    page.fill("#password_again", "a new and longer password")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/login")
    assert "every session of your account was signed out" in page.locator("main").inner_text()

    elsewhere.goto("/overview")
    elsewhere.wait_for_url("**/login*")  # the session on the other browser ended
    sign_in(page, email, DEMO_PASSWORD)
    page.wait_for_selector("text=Wrong email or password")
    sign_in(page, email, "a new and longer password")
    page.wait_for_url("**/overview")


@pytest.fixture
def demo_password_back(live):
    """The reset test changes a demo manager's password: the other tests (one served database) sign in with it."""
    yield
    from werkzeug.security import generate_password_hash

    from compliance.sites.models import User
    with live.session() as s:
        s.execute(update(User).where(User.email == "manager.london@demo.clinic").values(
            password_hash=generate_password_hash(DEMO_PASSWORD)))
        s.commit()


def test_sari_changes_her_own_pin_on_the_tablet(tablet, live, shot, assert_accessible):
    page = tablet(JAKARTA, SARI, SARI_PIN)
    page.locator("a[href$='/tablet/my-pin']").click()
    page.wait_for_url("**/tablet/my-pin")
    assert_accessible(page, "change-pin")
    page.fill("#old_pin", "9999")
    page.fill("#new_pin", "8024")
    page.fill("#new_pin_again", "8024")
    page.locator("main button[type=submit]").click()
    page.wait_for_selector("#old_pin-error")
    assert_accessible(page, "change-pin-wrong")
    shot(page, "change-pin-wrong")
    page.fill("#old_pin", SARI_PIN)
    page.fill("#new_pin", "8024")
    page.fill("#new_pin_again", "8024")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/tablet/home")
    page.locator("form[action$='/tablet/switch'] button").click()
    page.wait_for_url("**/tablet")
    pin_sign_in(page, SARI, "8024")
    # Put the demo's PIN back for the other tests (they share the served database).
    page.goto("/tablet/my-pin")
    page.fill("#old_pin", "8024")
    page.fill("#new_pin", SARI_PIN)
    page.fill("#new_pin_again", SARI_PIN)
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/tablet/home")
