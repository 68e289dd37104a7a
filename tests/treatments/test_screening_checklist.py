"""The treatment's screening is the before-client checklist run for that client, answered once (issue 15, item 3).

Tried from every door: the tablet's start and screening pages, the checklist's answer and correction, the
Checklists page's start of a before-client run, the API's screening, finishing and the gate; and a finished
treatment whose run is corrected later."""
from __future__ import annotations

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.checklists import services as checklists
from compliance.checklists.models import ChecklistRun, ChecklistTemplate
from compliance.errors import Conflict
from compliance.treatments import rules, screening, services
from compliance.treatments.models import Treatment, TreatmentPack
from tests.conftest import PIN
from tests.treatments.conftest import NOW

HTMX = {"HX-Request": "true"}
SCREENING_ANSWERS = {"active_infection": "yes", "herpes_history": "yes", "skin_type": "IV", "age_ok": "yes"}
OTHER_ANSWERS = {"hands_gloves": "yes", "skin_prep": "yes", "pack_checked": "yes"}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def templates(db, site):
    checklists.load_default_templates(site.organisation_id, NOW)
    db.session.commit()


@pytest.fixture
def on_tablet(client, enrol_tablet, site, trained_nurse):
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{trained_nurse.id}", {"pin": PIN}).status_code == 302
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def runs(db, **where) -> int:
    return db.session.scalar(select(func.count()).select_from(ChecklistRun).filter_by(**where))


def start_on_tablet(client, site, nurse) -> tuple[Treatment, ChecklistRun]:
    response = client.form_post("/tablet/treatments/new", {
        "client_choice": "existing", "client_code": "C-TEST22", "room_id": str(site.rooms[0].id),
        "procedure": "acne_scars", "method": "roller", "practitioner_id": str(nurse.id)})
    assert response.status_code == 302, text(response)
    from compliance.extensions import db

    treatment = db.session.scalar(select(Treatment).order_by(Treatment.id.desc()))
    run = screening.run_for(treatment.id)
    assert run is not None and run.treatment_id == treatment.id and run.room_id == site.rooms[0].id
    assert response.headers["Location"].endswith(f"/tablet/runs/{run.id}")
    return treatment, run


def tap(client, run: ChecklistRun, key: str, value: str, note: str = ""):
    item = next(i for i in run.version.items if i.key == key)
    return client.form_post(f"/tablet/runs/{run.id}/answers", {
        "item_id": str(item.id), "value": value, "note": note, "idempotency_key": f"key-{run.id}-{key}-{value}"},
        headers=HTMX)


def scan(client, treatment_id: int, code: str):
    return client.form_post(f"/tablet/treatments/{treatment_id}/scan", {"code": code})


# --- the pure rule ------------------------------------------------------------------------------------

ITEMS = [rules.ScreeningItem("active_infection", "client-screening", True),
         rules.ScreeningItem("allergies", "client-screening", False),
         rules.ScreeningItem("skin_type", "client-screening", True),
         rules.ScreeningItem("hands_gloves", "hand-hygiene-gloves", True)]
WHEN = {"active_infection": "no"}


def test_the_screening_waits_for_every_required_question_but_not_for_the_other_items():
    assert rules.screening_from_checklist(ITEMS, {"active_infection": "yes"}, False, WHEN, 7) is None
    done = rules.screening_from_checklist(ITEMS, {"active_infection": "yes", "skin_type": "II"}, False, WHEN, 7)
    assert done == {"active_skin_infection": False, "checklist_run_id": 7,
                    "answers": {"active_infection": "yes", "skin_type": "II"}}
    assert rules.check_screening(done) == []


def test_a_contraindicating_answer_counts_at_once_even_with_questions_left():
    found = rules.screening_from_checklist(ITEMS, {"active_infection": "no"}, False, WHEN, 7)
    assert found["active_skin_infection"] is True
    assert [r.code for r in rules.check_screening(found)] == ["active_infection"]


def test_a_checklist_with_no_screening_question_screens_once_complete():
    items = [rules.ScreeningItem("hands_gloves", "hand-hygiene-gloves", True)]
    assert rules.screening_from_checklist(items, {"hands_gloves": "yes"}, False, WHEN, 7) is None
    assert rules.screening_from_checklist(items, {"hands_gloves": "yes"}, True, WHEN, 7)["answers"] == {}


# --- the tablet ---------------------------------------------------------------------------------------

def test_starting_a_treatment_opens_its_before_client_checklist_and_its_answers_are_the_screening(
        db, templates, on_tablet, site, trained_nurse, client_row, sterile_pack, container):
    pack = sterile_pack()
    treatment, run = start_on_tablet(on_tablet, site, trained_nurse)
    page = on_tablet.get(f"/tablet/runs/{run.id}")
    assert page.status_code == 200 and "This is the screening of client C-TEST22" in text(page)
    assert f'href="/tablet/treatments/{treatment.id}"' in text(page)  # back goes to the treatment

    refused = scan(on_tablet, treatment.id, pack.label_code)
    assert refused.status_code == 409 and "screening is not recorded" in text(refused)

    for key, value in SCREENING_ANSWERS.items():
        answered = tap(on_tablet, run, key, value)
        assert answered.status_code == 200, text(answered)
    assert "Screening answered for client C-TEST22" in text(answered)  # said out of band on the last tap
    db.session.expire_all()
    treatment = db.session.get(Treatment, treatment.id)
    assert treatment.screening == {"active_skin_infection": False, "checklist_run_id": run.id,
                                   "answers": SCREENING_ANSWERS}
    assert treatment.screening_at == NOW

    accepted = scan(on_tablet, treatment.id, pack.label_code)
    assert accepted.status_code == 200 and "Accepted: use it" in text(accepted)
    gate = on_tablet.get(f"/tablet/treatments/{treatment.id}")
    assert "Screening recorded" in text(gate) and "in the before-client checklist" in text(gate)
    assert "4 of 7 done" in text(gate)  # allergies is not required: 7 required items

    # Not finished while the before-client checklist has items left (hands, skin preparation, the pack).
    finish = on_tablet.get(f"/tablet/treatments/{treatment.id}/finish")
    assert "The before-client checklist is not complete (4 of 7 done)" in text(finish)
    with pytest.raises(Conflict, match="before-client checklist is not complete"):
        services.finish_treatment(_actor(trained_nurse), treatment.id, {"passes": 8, "needle_depth_mm": "0.5"}, NOW)
    db.session.rollback()
    for key, value in OTHER_ANSWERS.items():
        last = tap(on_tablet, run, key, value)
    assert "Continue to the treatment" in text(last)  # the Complete banner leads back to the treatment
    finished = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/finish",
                                   {"passes": "8", "needle_depth_mm": "0.5", "ended_at": "2026-11-25T10:00"})
    assert finished.status_code == 302, text(finished)
    assert db.session.get(Treatment, treatment.id).status == "finished"
    assert runs(db, treatment_id=treatment.id) == 1  # asked once: one run for the client

    record = on_tablet.get(f"/tablet/treatments/{treatment.id}")
    assert "Client free of active skin infection at the site" in text(record)
    assert f"/tablet/runs/{run.id}" in text(record)


def _actor(user):
    from compliance.auth.actor import actor_for_user

    return actor_for_user(user)


def test_a_no_to_active_infection_refuses_the_gate_at_once_and_a_correction_with_a_reason_reopens_it(
        db, templates, on_tablet, site, trained_nurse, client_row, sterile_pack):
    pack = sterile_pack()
    treatment, run = start_on_tablet(on_tablet, site, trained_nurse)
    needs_note = tap(on_tablet, run, "active_infection", "no")
    assert needs_note.status_code == 422 and db.session.get(Treatment, treatment.id).screening is None
    answered = tap(on_tablet, run, "active_infection", "no", note="Pustules on the cheek")
    assert "Active skin infection: do not treat today" in text(answered)
    db.session.expire_all()
    assert db.session.get(Treatment, treatment.id).screening["active_skin_infection"] is True
    refused = scan(on_tablet, treatment.id, pack.label_code)
    assert refused.status_code == 409 and "active skin infection" in text(refused).lower()
    gate = on_tablet.get(f"/tablet/treatments/{treatment.id}")
    assert f'href="/tablet/runs/{run.id}"' in text(gate) and "Correct the screening" in text(gate)

    answer = db.session.scalar(select(checklists.Answer).where(checklists.Answer.run_id == run.id))
    corrected = on_tablet.form_post(f"/tablet/answers/{answer.id}/amend", {
        "value": "yes", "reason": "It was a healed scar, checked again with the lamp",
        "idempotency_key": "amend-active-infection"}, headers=HTMX)
    assert corrected.status_code == 200, text(corrected)
    db.session.expire_all()
    # Not contraindicated any more, and not screened yet either: skin type and the rest are still to answer.
    assert db.session.get(Treatment, treatment.id).screening is None
    assert "screening is not recorded" in text(scan(on_tablet, treatment.id, pack.label_code))
    for key, value in SCREENING_ANSWERS.items():
        if key != "active_infection":
            tap(on_tablet, run, key, value)
    db.session.expire_all()
    assert db.session.get(Treatment, treatment.id).screening["answers"] == SCREENING_ANSWERS
    assert "Accepted: use it" in text(scan(on_tablet, treatment.id, pack.label_code))


def test_the_api_screening_is_refused_once_the_treatment_has_its_checklist_and_a_second_run_is_the_first(
        db, templates, on_tablet, site, trained_nurse, client_row, login_as):
    treatment, run = start_on_tablet(on_tablet, site, trained_nurse)
    actor = _actor(trained_nurse)
    with pytest.raises(Conflict, match=f"before-client checklist \\(run {run.id}\\)"):
        services.record_screening(actor, treatment.id, {"active_skin_infection": False, "herpes_history": False,
                                                        "metal_allergy": False, "skin_type": "IV",
                                                        "age_confirmed": True}, NOW)
    db.session.rollback()
    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.key == "before_client"))
    again = checklists.start_run(actor, {"site_id": site.id, "template_id": template.id,
                                         "treatment_id": treatment.id}, NOW)
    assert again.id == run.id and runs(db, treatment_id=treatment.id) == 1
    # From the Checklists page the same: the one run opens.
    response = on_tablet.form_post("/tablet/checklists/start", {"template_id": str(template.id),
                                                                "treatment_id": str(treatment.id),
                                                                "idempotency_key": "start-before-again"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tablet/runs/{run.id}")
    assert runs(db, treatment_id=treatment.id) == 1
    # The tablet's screening page of the treatment is its run.
    page = on_tablet.get(f"/tablet/treatments/{treatment.id}/screening")
    assert page.status_code == 302 and page.headers["Location"].endswith(f"/tablet/runs/{run.id}")


def test_a_treatment_started_by_the_api_gets_its_checklist_from_the_tablet_screening_page(
        db, templates, on_tablet, site, trained_nurse, client_row):
    treatment = services.start_treatment(_actor(trained_nurse), {
        "room_id": site.rooms[0].id, "client_id": client_row.id, "procedure": "acne_scars", "method": "roller"}, NOW)
    db.session.commit()
    gate = on_tablet.get(f"/tablet/treatments/{treatment.id}")
    assert f"/tablet/treatments/{treatment.id}/screening" in text(gate)
    page = on_tablet.get(f"/tablet/treatments/{treatment.id}/screening")
    assert page.status_code == 200 and "Start the before-client checklist" in text(page)
    assert runs(db, treatment_id=treatment.id) == 0  # a look stores nothing
    started = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/screening", {})
    run = screening.run_for(treatment.id)
    assert started.status_code == 302 and started.headers["Location"].endswith(f"/tablet/runs/{run.id}")


def test_without_a_before_client_checklist_the_screening_is_asked_on_its_own(
        db, on_tablet, site, trained_nurse, client_row):
    """An organisation that has none (or deactivated it): the screening form, as before."""
    treatment = services.start_treatment(_actor(trained_nurse), {
        "room_id": site.rooms[0].id, "client_id": client_row.id, "procedure": "acne_scars", "method": "roller"}, NOW)
    db.session.commit()
    page = on_tablet.get(f"/tablet/treatments/{treatment.id}/screening")
    assert page.status_code == 200 and "Record the screening" in text(page)


def test_correcting_the_run_of_a_finished_treatment_leaves_its_screening_as_it_was(
        db, templates, site, trained_nurse, client_row, sterile_pack, container):
    actor = _actor(trained_nurse)
    pack = sterile_pack()
    treatment = services.start_treatment(actor, {"room_id": site.rooms[0].id, "client_id": client_row.id,
                                                 "procedure": "acne_scars", "method": "roller"}, NOW)
    run = screening.start_for(actor, treatment, NOW)
    by_key = {i.key: i for i in run.version.items}
    for key, value in {**SCREENING_ANSWERS, **OTHER_ANSWERS}.items():
        checklists.answer(actor, run.id, {"item_id": by_key[key].id, "value": value,
                                          "idempotency_key": f"finished-{key}"}, NOW)
    assert services.add_pack(actor, treatment.id, pack.label_code, NOW).accepted
    services.finish_treatment(actor, treatment.id, {"passes": 8, "needle_depth_mm": "0.5"}, NOW)
    db.session.commit()
    before = dict(db.session.get(Treatment, treatment.id).screening)
    first = next(a for a in run.answers if a.item_id == by_key["active_infection"].id)
    checklists.amend(actor, first.id, {"value": "no", "note": "found on the photo afterwards",
                                       "reason": "seen on the photo", "idempotency_key": "late-correction"}, NOW)
    db.session.commit()
    assert db.session.get(Treatment, treatment.id).screening == before
    assert db.session.scalar(select(func.count()).select_from(TreatmentPack)) == 1
    with pytest.raises(Conflict):  # and no new before-client run for a closed treatment
        template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.key == "before_client"))
        other = services.start_treatment(actor, {"room_id": site.rooms[0].id, "client_id": client_row.id,
                                                 "procedure": "acne_scars", "method": "roller"}, NOW)
        services.abandon_treatment(actor, other.id, {"reason": "client left"}, NOW)
        checklists.start_run(actor, {"site_id": site.id, "template_id": template.id, "treatment_id": other.id}, NOW)
