"""Treatments on the tablet, in Chromium: the screening as the before-client checklist; abandoning: the form asks for confirmation before it posts, a missing
reason is shown at the field, and the summary then says why; axe on the screens with the form open."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from compliance.checklists.models import ChecklistRun

from compliance.auth.actor import actor_for_user
from compliance.sites.models import Site, User
from compliance.timeutil import utcnow
from compliance.treatments import services
from compliance.treatments.models import Treatment

from .conftest import EMMA, EMMA_PIN, LONDON

pytestmark = pytest.mark.browser


def _open_treatment(live, screened: bool = False) -> int:
    """A new client's treatment in progress at London, started by Emma (a pen: a sterile pack and a cartridge)."""
    with live.session() as s:
        emma = s.scalar(select(User).where(User.email == "emma@demo.clinic"))
        site = s.scalar(select(Site).where(Site.name == LONDON))
        actor, now = actor_for_user(emma), utcnow()
        client = services.create_client(actor, {"site_id": site.id}, now)
        room = next(r for r in site.rooms if r.kind == "treatment")
        treatment = services.start_treatment(actor, {"room_id": room.id, "client_id": client.id,
                                                     "procedure": "face", "method": "pen"}, now)
        if screened:
            services.record_screening(actor, treatment.id, {
                "active_skin_infection": "no", "herpes_history": "no", "metal_allergy": "no", "skin_type": "II",
                "age_confirmed": "yes"}, now)
        s.commit()
        return treatment.id


def _status(live, treatment_id: int) -> tuple[str, str]:
    with live.session() as s:
        t = s.get(Treatment, treatment_id)
        return t.status, t.abandoned_reason


def test_abandon_asks_for_the_reason_before_any_confirmation_then_records_it(tablet, live, shot,
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
    asked_without_reason = []
    on_dialog = lambda d: (asked_without_reason.append(d.message), d.dismiss())  # noqa: E731
    page.on("dialog", on_dialog)
    button.click()  # no reason: nobody is asked anything; the page says the reason is missing
    page.wait_for_selector("#abandon_reason-error")
    page.remove_listener("dialog", on_dialog)
    assert asked_without_reason == []
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


def test_a_recalled_pack_is_refused_with_no_override_offered_and_what_to_do_instead(tablet, live, shot,
                                                                                     assert_accessible):
    from compliance.sterilisation.models import Pack
    from compliance.treatments.models import GateAttempt, TreatmentPack

    treatment_id = _open_treatment(live, screened=True)
    with live.session() as s:
        site = s.scalar(select(Site).where(Site.name == LONDON))
        code = s.scalar(select(Pack.label_code).where(Pack.site_id == site.id, Pack.status == "recalled").limit(1))
    assert code, "the demo's London recall has recalled packs"
    page = tablet(LONDON, EMMA, EMMA_PIN)
    page.goto(f"/tablet/treatments/{treatment_id}")
    page.fill("#code", code)
    page.locator(".scan-box button[type=submit]").click()
    expect(page.locator("#gate-answer.gate-bad")).to_be_visible()
    expect(page.locator("#gate-answer")).to_contain_text("was recalled")
    expect(page.locator(".gate-never")).to_contain_text("No override is possible")
    expect(page.locator(".override-box")).to_have_count(0)
    with live.session() as s:
        assert s.scalar(select(TreatmentPack.id).where(TreatmentPack.treatment_id == treatment_id)) is None
        assert s.scalar(select(GateAttempt.id).where(GateAttempt.treatment_id == treatment_id)) is not None
    assert_accessible(page, "refused-never")
    shot(page, "refused-never")


def test_finishing_with_no_needle_checked_is_refused_naming_what_is_missing(tablet, live, shot, assert_accessible):
    treatment_id = _open_treatment(live, screened=True)
    page = tablet(LONDON, EMMA, EMMA_PIN)
    page.goto(f"/tablet/treatments/{treatment_id}")
    expect(page.locator("#needles")).to_contain_text("scan it before finishing")
    page.goto(f"/tablet/treatments/{treatment_id}/finish")
    blocked = page.locator(".finish-blocked")
    expect(blocked).to_contain_text("a sterile pack (pen-tip holder or reusable device)")
    expect(blocked).to_contain_text("a single-use needle cartridge")
    page.fill("#passes", "8")
    page.fill("#needle_depth_mm", "0.5")
    page.locator("button.big.ok").click()
    expect(page.locator(".form-error")).to_contain_text("Not finished: the gate has not accepted")
    assert _status(live, treatment_id)[0] == "open"
    assert_accessible(page, "finish-refused")
    shot(page, "finish-refused")


def test_a_treatment_started_on_the_tablet_is_screened_by_its_before_client_checklist_once(
        tablet, live, shot, assert_accessible):
    """Start → the before-client checklist for this client (its screening) → every item tapped once → the
    treatment's scan screen says the screening is recorded; the client is never asked the same questions twice."""
    from .test_checklists import item, tap

    page = tablet(LONDON, EMMA, EMMA_PIN)
    page.goto("/tablet/treatments/new")
    page.locator("label:has(input[name=client_choice][value=new])").click()
    page.locator("label:has(input[name=procedure][value=face])").click()
    page.locator("label:has(input[name=method][value=pen])").click()
    page.locator("main form button[type=submit].big").click()
    page.wait_for_url("**/tablet/runs/*")
    run_id = int(page.url.rsplit("/", 1)[1].split("#")[0])
    expect(page.locator("#run-treatment")).to_contain_text("This is the screening of client")
    assert_accessible(page, "screening-checklist")
    for key, value in (("active_infection", "yes"), ("herpes_history", "yes"), ("skin_type", "III"),
                       ("age_ok", "yes")):
        assert tap(page, key, value).status == 200
    expect(page.locator("#run-treatment")).to_contain_text("Screening answered for client")
    for key in ("hands_gloves", "skin_prep", "pack_checked"):
        assert tap(page, key, "yes").status == 200
    expect(page.locator("#run-progress-text")).to_have_text("7 of 7 done")
    expect(item(page, "allergies")).to_be_visible()  # the one optional question, still offered
    shot(page, "screening-checklist-complete")
    page.locator("#run-complete a", has_text="Continue to the treatment").click()
    page.wait_for_url(re.compile(r"/tablet/treatments/\d+$"))
    expect(page.locator(".screening-state")).to_contain_text("in the before-client checklist")
    assert_accessible(page, "screened-by-checklist")
    shot(page, "screened-by-checklist")
    with live.session() as s:
        treatment = s.scalar(select(Treatment).order_by(Treatment.id.desc()))
        assert treatment.screening["checklist_run_id"] == run_id
        assert treatment.screening["active_skin_infection"] is False
        assert s.scalar(select(func.count()).select_from(ChecklistRun)
                        .where(ChecklistRun.treatment_id == treatment.id)) == 1
