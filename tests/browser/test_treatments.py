"""Abandoning a treatment on the tablet, in Chromium: the form asks for confirmation before it posts, a missing
reason is shown at the field, and the summary then says why; axe on the screens with the form open."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from compliance.auth.actor import actor_for_user
from compliance.sites.models import Site, User
from compliance.timeutil import utcnow
from compliance.treatments import services
from compliance.treatments.models import Treatment

from .conftest import EMMA, EMMA_PIN, LONDON

pytestmark = pytest.mark.browser


def _open_treatment(live) -> int:
    """A new client's treatment in progress at London, started by Emma."""
    with live.session() as s:
        emma = s.scalar(select(User).where(User.email == "emma@demo.clinic"))
        site = s.scalar(select(Site).where(Site.name == LONDON))
        actor, now = actor_for_user(emma), utcnow()
        client = services.create_client(actor, {"site_id": site.id}, now)
        room = next(r for r in site.rooms if r.kind == "treatment")
        treatment = services.start_treatment(actor, {"room_id": room.id, "client_id": client.id,
                                                     "procedure": "face"}, now)
        s.commit()
        return treatment.id


def _status(live, treatment_id: int) -> tuple[str, str]:
    with live.session() as s:
        t = s.get(Treatment, treatment_id)
        return t.status, t.abandoned_reason


def test_abandon_asks_first_shows_a_missing_reason_at_the_field_then_records_it(tablet, live, shot,
                                                                                 assert_accessible):
    treatment_id = _open_treatment(live)
    page = tablet(LONDON, EMMA, EMMA_PIN)
    page.goto(f"/tablet/treatments/{treatment_id}")
    page.locator("#abandon > summary").click()
    button = page.locator("#abandon button[type=submit]")

    questions = []
    page.once("dialog", lambda d: (questions.append(d.message), d.dismiss()))
    page.fill("#abandon_reason", "Client left")
    button.click()
    expect(page.locator("#abandon")).to_have_attribute("open", "")
    assert questions and "Abandon this treatment?" in questions[0]
    assert _status(live, treatment_id) == ("open", "")  # "Cancel": nothing posted

    page.fill("#abandon_reason", "")
    page.once("dialog", lambda d: d.accept())
    button.click()
    page.wait_for_selector("#abandon_reason-error")
    expect(page.locator("#abandon_reason")).to_be_focused()
    assert _status(live, treatment_id) == ("open", "")
    assert_accessible(page, "abandon-error")
    shot(page, "abandon-error")

    page.fill("#abandon_reason", "Contraindication found at screening")
    page.once("dialog", lambda d: d.accept())
    button.click()
    page.wait_for_url(f"**/tablet/treatments/{treatment_id}")
    expect(page.locator(".verdict-title")).to_have_text("Treatment abandoned")
    expect(page.locator(".verdict-why")).to_have_text("Contraindication found at screening")
    assert _status(live, treatment_id) == ("abandoned", "Contraindication found at screening")
    assert_accessible(page, "abandoned")
    shot(page, "abandoned")
