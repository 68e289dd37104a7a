"""A note longer than its limit is refused with a message at the field, never cut by the browser without a word."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import EMMA, EMMA_PIN, LONDON
from .test_treatments import _open_treatment

pytestmark = pytest.mark.browser


def test_a_4001_character_note_is_refused_whole_with_the_limit_said(tablet, live, shot, assert_accessible):
    treatment_id = _open_treatment(live, screened=True)
    page = tablet(LONDON, EMMA, EMMA_PIN)
    page.goto(f"/tablet/treatments/{treatment_id}/finish")
    notes = page.locator("textarea#notes")
    assert notes.get_attribute("maxlength") is None  # the browser would cut a paste at the limit silently
    expect(page.locator("#notes ~ .text-limit")).to_have_text("Up to 4\u202f000 characters.")

    long_note = ("Client asked about aftercare twice. " * 120)[:4001]
    notes.fill(long_note)
    assert len(notes.input_value()) == 4001
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_selector("#notes-error")
    expect(page.locator("#notes-error")).to_have_text(
        "At most 4000 characters: this text has 4001. Shorten it; nothing was saved.")
    assert len(page.locator("textarea#notes").input_value()) == 4001  # given back whole, to shorten
    assert_accessible(page, "note-too-long")
    shot(page, "note-too-long")
