"""A mistyped figure on the tablet's cycle form, in Chromium: the failing verdict is shown and asked about before
anything is stored, "go back" keeps what was typed, and a manager then corrects the load's figures; axe on each."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from compliance.sterilisation.models import Cycle, CycleCorrection

from .conftest import JAKARTA, SARI, SARI_PIN

pytestmark = pytest.mark.browser


def _count(live, model) -> int:
    with live.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def _type_the_cycle(page, temperature: str) -> None:
    page.fill("#temperature_c", temperature)
    page.fill("#holding_seconds", "215")
    page.locator("label.choice-pass").first.click()
    page.fill("#printout_ref", "PR-BROWSER-1")
    page.locator("form.big-form button[type=submit]").click()


def test_a_typo_is_asked_about_then_recorded_as_failed_and_a_manager_corrects_it(tablet, new_page, live, shot,
                                                                                 assert_accessible):
    cycles = _count(live, Cycle)
    page = tablet(JAKARTA, SARI, SARI_PIN)
    page.goto("/decontamination/cycles/new")
    _type_the_cycle(page, "143,6")
    page.wait_for_selector("button[name=step]")
    # An Indonesian screen writes decimal commas.
    expect(page.locator(".verdict-reasons li").first).to_contain_text("143,6 °C")
    assert _count(live, Cycle) == cycles  # nothing stored yet
    assert_accessible(page, "confirm-figures")
    shot(page, "confirm-figures")

    page.locator("button[name=step]").click()  # no: back to the form, as typed
    expect(page.locator("#temperature_c")).to_have_value("143,6")
    assert _count(live, Cycle) == cycles

    page.locator("form.big-form button[type=submit]").click()
    page.locator("button[name=confirm_failure]").click()  # yes: these are the printout's figures
    page.wait_for_url("**/decontamination/loads/*")
    expect(page.locator(".verdict-bad")).to_be_visible()
    assert _count(live, Cycle) == cycles + 1
    cycle_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    desk = new_page()
    desk.goto("/login")
    desk.fill("#email", "manager@demo.clinic")
    desk.fill("#password", "demo-password-2026")
    desk.locator("main button[type=submit]").click()
    desk.wait_for_url("**/overview")
    desk.goto(f"/loads/{cycle_id}")
    desk.locator(f"a[href='/loads/{cycle_id}/correct']").click()
    expect(desk.locator("#temperature_c")).to_have_value("143,6")  # as the screen shows it; it reads back
    assert_accessible(desk, "correct-figures")
    desk.fill("#temperature_c", "134,6")
    desk.fill("#reason", "143,6 typed for 134,6; printout checked")
    desk.locator("form.big-form button[type=submit]").click()
    desk.wait_for_load_state()
    if desk.locator("button[name=confirm_failure]").count():  # the demo's day may fail the load for another reason
        desk.locator("button[name=confirm_failure]").click()
    desk.wait_for_url(f"**/loads/{cycle_id}")
    expect(desk.locator("#corrections")).to_contain_text("143,6 typed for 134,6")
    assert _count(live, CycleCorrection) >= 1
    assert_accessible(desk, "corrected-load")
    shot(desk, "corrected-load")
