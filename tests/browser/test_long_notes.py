"""A note longer than its limit is refused with a message at the field, never cut by the browser without a word:
the treatment's notes (4,000) and a checklist answer's note (2,000, said in Indonesian on the Jakarta tablet)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import EMMA, EMMA_PIN, LONDON
from .test_checklists import item, start_run, stored, tap
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


def test_a_checklist_note_over_its_limit_says_the_limit_and_its_length_in_indonesian(tablet, live, shot,
                                                                                      assert_accessible):
    """Sari (Jakarta, Indonesian) answers "no" to a before-client question, whose note is limited to 2,000
    characters: a longer note is refused whole at the field with the limit and its length, nothing stored."""
    page = tablet()  # Jakarta, Sari
    run_id = start_run(page, live, "before_client")
    assert tap(page, "pack_checked", "no").status == 422  # a "no" needs a note: the field is shown
    note = item(page, "pack_checked").locator("textarea[name=note]")
    expect(note).to_be_visible()
    long_note = ("Kemasan robek di sudut kiri; diganti dengan kemasan baru. " * 40)[:1990].rstrip()
    long_note += "." * (2001 - len(long_note))  # 2,001 characters once trimmed, as the server counts them
    note.fill(long_note)
    assert tap(page, "pack_checked", "no").status == 422  # the answer is sent again, with its note
    expect(page.locator("#note-error-pack_checked")).to_have_text(
        "Paling banyak 2000 karakter: teks ini 2001 karakter. Persingkat; tidak ada yang disimpan.")
    assert len(note.input_value()) == 2001  # given back whole, to shorten
    assert "pack_checked" not in stored(live, run_id)["current"]
    assert_accessible(page, "checklist-note-too-long")
    shot(page, "checklist-note-too-long")
