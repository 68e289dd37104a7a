"""Tablets in Chromium: a single-use set-up link (a second browser is refused), the manager's list and revoking,
"Switch person" signing the previous person out at once, a wrong PIN's tries left and the lock's end in local time."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from compliance.demo import DEMO_PASSWORD
from compliance.sites.models import User

from .conftest import EMMA, EMMA_PIN, LONDON, pin_sign_in

pytestmark = pytest.mark.browser

TOM, TOM_PIN = "Tom Hughes", "4567"  # London


def test_a_set_up_link_enrols_one_tablet_a_second_use_is_refused_and_revoking_sends_it_away(
        new_page, live, shot, assert_accessible):
    link = live.enrolment_link(LONDON, "Treatment room 2")
    tablet = new_page()
    tablet.goto(link)
    expect(tablet.locator("main")).to_contain_text("Treatment room 2")
    tablet.locator("main button[type=submit]").click()
    tablet.wait_for_url("**/tablet")
    expect(tablet.get_by_role("link", name=EMMA)).to_be_visible()

    second = new_page()
    response = second.goto(link)
    assert response.status == 409
    expect(second.locator("h1")).to_have_text("This set-up link was already used")
    expect(second.locator("main")).to_contain_text("Treatment room 2")
    assert_accessible(second, "link-spent")
    shot(second, "link-spent")
    assert not [c for c in second.context.cookies() if c["name"] == "tablet"]

    laptop = new_page()
    laptop.goto("/login?next=/tablets")
    laptop.fill("#email", "manager.london@demo.clinic")
    laptop.fill("#password", DEMO_PASSWORD)
    laptop.locator("main button[type=submit]").click()
    laptop.wait_for_url("**/tablets")
    row = laptop.locator("table.tablets tbody tr", has_text="Treatment room 2")
    expect(row).to_contain_text("by a link made")
    assert_accessible(laptop, "tablets")
    shot(laptop, "tablets")
    laptop.once("dialog", lambda dialog: dialog.accept())  # "Revoke the tablet …?"
    row.get_by_role("button", name="Revoke").click()
    expect(laptop.locator("table.tablets tbody tr", has_text="Treatment room 2")).to_contain_text("revoked")

    tablet.goto("/tablet")
    tablet.wait_for_url("**/tablet/revoked")
    expect(tablet.locator("h1")).to_have_text("This tablet was revoked")
    assert_accessible(tablet, "revoked")


def test_switch_person_signs_the_previous_person_out_at_once(tablet, live):
    page = tablet(LONDON, EMMA, EMMA_PIN)
    expect(page.locator(".tabletbar .who")).to_have_text(EMMA)
    page.get_by_role("button", name="Switch person").click()
    page.wait_for_url("**/tablet")
    expect(page.locator(".tabletbar .who")).to_have_count(0)
    page.goto("/tablet/home")  # Emma's screen is gone: nobody is signed in
    assert "/login" in page.url
    pin_sign_in(page, TOM, TOM_PIN)
    expect(page.locator(".tabletbar .who")).to_have_text(TOM)


@pytest.fixture
def tom_unlocked(live):
    yield
    with live.session() as s:
        tom = s.scalar(select(User).where(User.name == TOM))
        tom.pin_failed_count, tom.pin_locked_until = 0, None
        s.commit()


def test_a_wrong_pin_says_the_tries_left_and_the_lock_when_it_ends(new_page, live, tom_unlocked, shot,
                                                                    assert_accessible):
    page = new_page()
    page.goto(live.enrolment_link(LONDON, "Reception"))
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/tablet")
    page.get_by_role("link", name=TOM).click()
    page.wait_for_url("**/tablet/pin/*")
    for left in (4, 3, 2, 1):
        page.fill("#pin", "0000")
        page.locator(".keypad button[type=submit]").click()
        noun = "try" if left == 1 else "tries"
        expect(page.locator("#pin-error")).to_have_text(f"Wrong PIN. {left} {noun} left before the lock.")
        if left == 4:
            assert_accessible(page, "pin-tries-left")
    page.fill("#pin", "0000")
    page.locator(".keypad button[type=submit]").click()
    expect(page.locator("#pin-error")).to_contain_text("Locked after too many wrong PINs until")
    with live.session() as s:
        locked_until = s.scalar(select(User.pin_locked_until).where(User.name == TOM))
    local = locked_until.astimezone(ZoneInfo("Europe/London"))
    message = page.locator("#pin-error").inner_text()
    assert local.strftime("%H:%M") in message or f"{local.strftime('%I').lstrip('0')}:{local:%M}" in message, message
    assert "Europe/London" in message
    shot(page, "pin-locked")
