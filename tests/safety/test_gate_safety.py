"""Safety: every way a non-sterile, expired or used item could reach a client, tried; none succeeds.

The doors tried: the service, the tablet (form posts, signed in by PIN on an enrolled tablet), the JSON API (a
nurse's session, a manager's session, the site's data logger key, another site's key), a manager's override with
the right password, two tablets at once (two threads), finishing without scanning, another site's pack or unit,
and old records (a refusal stored before, a treatment from the past without a method).

Which test covers which promise of README.md, "Treatments and the point-of-use gate":

2. A treatment: the gate answers at once, refuses with every reason and its guideline, stores the refusal, and
   nothing is used —
   test_an_item_not_sterile_new_or_in_date_is_refused_at_the_gate_its_refusal_stored_and_nothing_used,
   test_an_item_not_sterile_new_or_in_date_never_reaches_a_client_through_the_api_from_a_nurse_or_a_managers_session,
   test_the_tablet_answers_red_and_offers_no_override_for_an_item_not_sterile_new_or_in_date,
   test_a_client_not_screened_or_with_an_active_skin_infection_gets_no_item_at_the_gate,
   test_a_unit_used_at_one_site_is_refused_at_another_site_of_the_organisation,
   test_another_sites_or_another_organisations_pack_or_unit_is_not_found_and_nothing_stored,
   test_a_machine_key_of_this_site_or_another_site_can_use_no_item,
   test_a_load_read_at_133_95_degrees_for_a_134_degree_programme_is_refused_not_rounded_to_a_pass.
3. Override: a manager of the site with their password; never for what may not be sterile, was used, or must
   not be used on this client —
   test_a_pack_or_unit_not_sterile_new_or_in_date_never_reaches_a_client_even_with_a_managers_password,
   test_a_managers_override_with_the_right_password_through_the_api_is_refused_409_and_changes_nothing_but_the_attempt,
   test_a_managers_override_with_the_right_password_on_the_tablet_is_refused_and_uses_nothing,
   test_a_client_not_screened_or_with_an_active_skin_infection_is_never_overridden,
   test_a_site_that_makes_missing_training_never_overridable_refuses_the_managers_override,
   test_a_site_cannot_make_a_never_reason_overridable_by_a_manager,
   test_a_site_cannot_make_a_failed_load_overridable_by_a_manager,
   test_a_guideline_pack_marking_a_never_reason_overridable_is_refused_by_the_loader,
   test_a_guideline_pack_marking_an_expired_lot_overridable_is_refused_by_the_loader,
   test_what_was_opened_for_an_abandoned_treatment_stays_used_and_reaches_no_other_client (never overridden),
   test_an_old_refusal_of_an_item_never_overridden_is_not_overridden_now,
   test_an_old_training_refusal_is_not_overridden_once_the_item_became_unsafe.
4. Single use is enforced by the database —
   test_of_two_tablets_scanning_one_item_for_two_clients_at_once_exactly_one_succeeds,
   test_a_double_scan_for_the_same_client_stores_no_refusal_and_never_a_second_usage,
   test_a_double_scan_through_the_api_and_the_tablet_is_answered_neutrally.
5. Finishing: only once every needle item of the method was accepted by the gate, and the client screened —
   test_a_treatment_is_never_finished_without_every_needle_item_accepted_by_the_gate,
   test_finishing_without_every_needle_item_is_refused_through_the_api_naming_what_is_missing,
   test_finishing_without_every_needle_item_is_refused_on_the_tablet_naming_what_is_missing,
   test_a_treatment_from_before_methods_is_not_finished_without_a_gate_checked_needle_item,
   test_a_client_not_screened_or_with_an_active_skin_infection_is_never_finished_but_can_be_abandoned.
6. Abandoning, with what was opened staying used —
   test_a_client_not_screened_or_with_an_active_skin_infection_is_never_finished_but_can_be_abandoned,
   test_what_was_opened_for_an_abandoned_treatment_stays_used_and_reaches_no_other_client.
"""
from __future__ import annotations

import threading
from copy import deepcopy
from datetime import timedelta

import pytest
import yaml
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.errors import Conflict, Invalid, NotFound
from compliance.extensions import db as _db
from compliance.guidelines import DEFAULT_PACK, PackError, load_pack, parse_pack
from compliance.guidelines.models import SiteRuleOverride
from compliance.guidelines.services import set_site_number
from compliance.sites.models import User
from compliance.sterilisation import services as steri
from compliance.sterilisation.models import Cycle, Pack
from compliance.stock.models import Unit
from compliance.treatments import services
from compliance.treatments.models import (GateAttempt, GateOverride, Treatment, TreatmentPack, TreatmentUnit)
from tests.conftest import PASSWORD
from tests.safety.conftest import ITEM_STATES
from tests.treatments.conftest import NOW, barcode, good_cycle

V1 = "/api/v1"
STATES = list(ITEM_STATES)
PACK_STATES = [s for s in STATES if ITEM_STATES[s][0] == "pack"]
UNIT_STATES = [s for s in STATES if ITEM_STATES[s][0] == "unit"]
NEVER_CODES = [code for code, reason in load_pack().gate.items() if reason.override == "never"]
SCREENINGS = {"not screened": None, "an active skin infection": "yes"}
SCREENING_CODES = {"not screened": "screening_missing", "an active skin infection": "active_infection"}
PEN_PACK = "a sterile pack (pen-tip holder or reusable device)"
PEN_CARTRIDGE = "a single-use needle cartridge"
ROLLER_ITEM = "a sterile roller pack or a single-use roller"


def count(model, *where) -> int:
    return _db.session.scalar(select(func.count()).select_from(model).where(*where))


def usages() -> int:
    return count(TreatmentPack) + count(TreatmentUnit)


def codes(reasons) -> list[str]:
    return [r["code"] for r in reasons]


def text(response) -> str:
    return response.get_data(as_text=True)


def override_body(manager, reason="I have looked at it and it is fine") -> dict:
    return {"manager_email": manager.email, "secret": PASSWORD, "reason": reason}


def add(subject):
    return services.add_pack if subject == "pack" else services.add_unit


def scan_url(treatment_id: int, subject: str) -> str:
    return f"{V1}/treatments/{treatment_id}/{subject}s"


def changed_tables(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def begin(db, actor, site, client_row, practitioner, method="roller", screening="no"):
    """Open a treatment; screening "no"/"yes" for an active skin infection, or None for no screening."""
    treatment = services.start_treatment(actor, {
        "room_id": site.rooms[0].id, "client_id": client_row.id, "procedure": "acne_scars", "method": method,
        "practitioner_id": practitioner.id}, NOW)
    if screening is not None:
        services.record_screening(actor, treatment.id, {
            "active_skin_infection": screening, "herpes_history": "no", "metal_allergy": "no", "skin_type": "III",
            "age_confirmed": "yes"}, NOW)
    db.session.commit()
    return treatment


@pytest.fixture
def treat(db, actor, site, client_row, trained_nurse):
    def make(method="roller", screening="no", practitioner=None):
        return begin(db, actor, site, client_row, practitioner or trained_nurse, method, screening)

    return make


# --- promise 2 and 3: every item state, every door ------------------------------------------------------------

@pytest.mark.parametrize("state", STATES)
def test_an_item_not_sterile_new_or_in_date_is_refused_at_the_gate_its_refusal_stored_and_nothing_used(
        db, actor, treat, item_in_state, state):
    subject, code, reason, rule = item_in_state(state)
    treatment = treat()
    before_usages = usages()
    result = add(subject)(actor, treatment.id, code, NOW)
    db.session.commit()
    assert not result.accepted and result.usage is None
    assert reason in codes(result.reasons)
    assert {r["rule"] for r in result.reasons if r["code"] == reason} == {rule}
    assert all(r["override"] == "never" for r in result.reasons)
    assert usages() == before_usages
    assert count(TreatmentPack, TreatmentPack.treatment_id == treatment.id) == 0
    assert count(TreatmentUnit, TreatmentUnit.treatment_id == treatment.id) == 0
    stored = db.session.scalars(select(GateAttempt).where(GateAttempt.treatment_id == treatment.id)).one()
    assert (stored.subject, stored.scanned, reason in codes(stored.reasons)) == (subject, code, True)


@pytest.mark.parametrize("state", STATES)
def test_a_pack_or_unit_not_sterile_new_or_in_date_never_reaches_a_client_even_with_a_managers_password(
        db, actor, manager, treat, item_in_state, state):
    subject, code, reason, rule = item_in_state(state)
    treatment = treat()
    refused = add(subject)(actor, treatment.id, code, NOW)
    db.session.commit()
    before_usages = usages()
    with pytest.raises(Conflict) as exc:
        services.override_attempt(actor, refused.attempt.id, override_body(manager), NOW)
    assert exc.value.rule == refused.reasons[0]["rule"]
    db.session.rollback()
    # Asked before the manager's secret: a wrong one is not even counted, the right one opens nothing.
    with pytest.raises(Conflict):
        services.override_attempt(actor, refused.attempt.id, {**override_body(manager), "secret": "wrong"}, NOW)
    db.session.rollback()
    db.session.refresh(manager)
    assert manager.pin_failed_count == 0
    assert usages() == before_usages and count(GateOverride) == 0
    assert db.session.get(Treatment, treatment.id).supervised_by_id is None


@pytest.mark.parametrize("who", ["nurse", "manager"])
@pytest.mark.parametrize("state", STATES)
def test_an_item_not_sterile_new_or_in_date_never_reaches_a_client_through_the_api_from_a_nurse_or_a_managers_session(
        db, login_as, trained_nurse, manager, treat, item_in_state, snapshot, state, who):
    subject, code, reason, rule = item_in_state(state)
    treatment = treat()
    before = snapshot()
    c = login_as(trained_nurse if who == "nurse" else manager)
    r = c.api("POST", scan_url(treatment.id, subject), {"code": code})
    assert r.status_code == 409, r.get_json()
    body = r.get_json()
    assert reason in codes(body["reasons"]) and body["overridable"] is False
    assert body["rule"] == body["reasons"][0]["rule"] and rule in {x["rule"] for x in body["reasons"]}
    assert "No override is possible" in body["instead"]
    after = snapshot()
    assert changed_tables(before, after) == {"gate_attempts"}
    assert len(after["gate_attempts"]) == len(before["gate_attempts"]) + 1
    assert count(TreatmentPack, TreatmentPack.treatment_id == treatment.id) == 0
    assert count(TreatmentUnit, TreatmentUnit.treatment_id == treatment.id) == 0


@pytest.mark.parametrize("state", STATES)
def test_a_managers_override_with_the_right_password_through_the_api_is_refused_409_and_changes_nothing_but_the_attempt(
        db, login_as, trained_nurse, manager, treat, item_in_state, snapshot, state):
    subject, code, reason, rule = item_in_state(state)
    treatment = treat()
    before = snapshot()
    refused = login_as(trained_nurse).api("POST", scan_url(treatment.id, subject), {"code": code}).get_json()
    r = login_as(manager).api("POST", f"{V1}/gate-attempts/{refused['attempt_id']}/override",
                              override_body(manager))
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["rule"] == refused["reasons"][0]["rule"]
    assert list(r.get_json()["errors"]) == ["attempt_id"]
    after = snapshot()
    assert changed_tables(before, after) == {"gate_attempts"}
    assert [row[0] for row in after["gate_attempts"]][-1] == refused["attempt_id"]
    assert len(after["gate_attempts"]) == len(before["gate_attempts"]) + 1
    assert count(GateOverride) == 0


@pytest.mark.parametrize("state", STATES)
def test_the_tablet_answers_red_and_offers_no_override_for_an_item_not_sterile_new_or_in_date(
        db, on_tablet, treat, item_in_state, snapshot, state):
    subject, code, reason, rule = item_in_state(state)
    treatment = treat()
    before = snapshot()
    response = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/scan", {"code": code})
    page = text(response)
    assert response.status_code == 409
    assert "gate-bad" in page and "Refused: do not use" in page and "Accepted: use it" not in page
    assert "Manager override" not in page and "Override and use it" not in page and "/override" not in page
    assert "No override is possible" in page
    assert changed_tables(before, snapshot()) == {"gate_attempts"}


@pytest.mark.parametrize("state", STATES)
def test_a_managers_override_with_the_right_password_on_the_tablet_is_refused_and_uses_nothing(
        db, on_tablet, manager, treat, item_in_state, snapshot, state):
    subject, code, reason, rule = item_in_state(state)
    treatment = treat()
    before = snapshot()
    on_tablet.form_post(f"/tablet/treatments/{treatment.id}/scan", {"code": code})
    attempt_id = db.session.scalar(select(GateAttempt.id).where(GateAttempt.treatment_id == treatment.id))
    response = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/refusals/{attempt_id}/override", {
        "manager_pick": manager.email, "secret": PASSWORD, "reason": "Looks fine to me"})
    page = text(response)
    assert response.status_code == 409
    assert "Accepted: use it" not in page and "gate-ok" not in page
    assert "Override and use it" not in page  # not even offered again after the refusal
    assert changed_tables(before, snapshot()) == {"gate_attempts"}
    assert count(GateOverride) == 0 and db.session.get(Treatment, treatment.id).supervised_by_id is None


def test_a_machine_key_of_this_site_or_another_site_can_use_no_item(
        db, client, admin, site, make_site, treat, sterile_pack, make_lot, make_key, snapshot, make_user):
    make_lot()
    pack = sterile_pack()
    treatment = treat()
    sister = make_site(org=site.organisation, name="Bandung")
    keys = {"this site's data logger": make_key(site, by=admin), "another site's key": make_key(sister, by=admin)}
    before = snapshot()
    for name, key in keys.items():
        for subject, code in (("pack", pack.label_code), ("unit", barcode("KEY-1"))):
            r = client.api("POST", scan_url(treatment.id, subject), {"code": code}, key=key)
            assert r.status_code in (403, 404), (name, subject, r.get_json())
        r = client.api("POST", f"{V1}/treatments/{treatment.id}/finish", {"passes": 8, "needle_depth_mm": "0.5"},
                       key=key)
        assert r.status_code in (403, 404), name
    assert snapshot() == before


# --- the client: screening --------------------------------------------------------------------------------

@pytest.mark.parametrize("screening", SCREENINGS)
def test_a_client_not_screened_or_with_an_active_skin_infection_gets_no_item_at_the_gate(
        db, actor, treat, sterile_pack, make_lot, screening):
    make_lot()
    treatment = treat(screening=SCREENINGS[screening])
    for subject, code in (("pack", sterile_pack().label_code), ("unit", barcode("SCR-1"))):
        result = add(subject)(actor, treatment.id, code, NOW)
        assert not result.accepted and codes(result.reasons) == [SCREENING_CODES[screening]]
        assert result.reasons[0]["rule"] == "client-screening" and result.reasons[0]["override"] == "never"
    db.session.commit()
    assert usages() == 0 and count(GateAttempt) == 2


@pytest.mark.parametrize("screening", SCREENINGS)
def test_a_client_not_screened_or_with_an_active_skin_infection_is_never_overridden(
        db, actor, manager, treat, sterile_pack, make_lot, login_as, trained_nurse, screening):
    make_lot()
    treatment = treat(screening=SCREENINGS[screening])
    refused = services.add_pack(actor, treatment.id, sterile_pack().label_code, NOW)
    db.session.commit()
    with pytest.raises(Conflict) as exc:
        services.override_attempt(actor, refused.attempt.id, override_body(manager), NOW)
    assert exc.value.rule == "client-screening"
    db.session.rollback()
    c = login_as(trained_nurse)
    body = c.api("POST", scan_url(treatment.id, "unit"), {"code": barcode("SCR-2")}).get_json()
    assert body["overridable"] is False and body["rule"] == "client-screening"
    r = login_as(manager).api("POST", f"{V1}/gate-attempts/{body['attempt_id']}/override", override_body(manager))
    assert r.status_code == 409 and r.get_json()["rule"] == "client-screening"
    assert usages() == 0 and count(GateOverride) == 0


@pytest.mark.parametrize("screening", SCREENINGS)
def test_a_client_not_screened_or_with_an_active_skin_infection_is_never_finished_but_can_be_abandoned(
        db, actor, treat, login_as, trained_nurse, on_tablet, screening):
    service_t, api_t, tablet_t = (treat(screening=SCREENINGS[screening]) for _ in range(3))
    with pytest.raises(Conflict) as exc:
        services.finish_treatment(actor, service_t.id, {"passes": 8, "needle_depth_mm": "0.5"}, NOW)
    assert (exc.value.rule, exc.value.field) == ("client-screening", "screening")
    db.session.rollback()
    response = on_tablet.form_post(f"/tablet/treatments/{tablet_t.id}/finish", {
        "passes": "8", "needle_depth_mm": "0.5", "ended_at": "2026-11-25T11:00"})
    assert response.status_code == 409 and "Not finished" in text(response)
    c = login_as(trained_nurse)
    r = c.api("POST", f"{V1}/treatments/{api_t.id}/finish", {"passes": 8, "needle_depth_mm": "0.5"})
    assert r.status_code == 409 and r.get_json()["rule"] == "client-screening"
    db.session.expire_all()
    assert {t.status for t in db.session.scalars(select(Treatment))} == {"open"}
    # Abandoning is always possible: the service, the API, the tablet.
    services.abandon_treatment(actor, service_t.id, {"reason": "Contraindication at screening"}, NOW)
    db.session.commit()
    r = c.api("POST", f"{V1}/treatments/{api_t.id}/abandon", {"reason": "Contraindication at screening"})
    assert r.status_code == 200, r.get_json()
    r = on_tablet.form_post(f"/treatments/{tablet_t.id}/abandon", {"reason": "Contraindication at screening"})
    assert r.status_code == 302, text(r)
    db.session.expire_all()
    assert {t.status for t in db.session.scalars(select(Treatment))} == {"abandoned"}


# --- the guideline data: what a manager may override ---------------------------------------------------------

def test_a_site_that_makes_missing_training_never_overridable_refuses_the_managers_override(
        db, actor, manager, site, treat, make_lot, untrained_nurse, login_as, trained_nurse):
    make_lot()
    set_site_number(actor, site.id, "gate", "training_missing", "never", "Local regulation: no supervision", NOW)
    db.session.commit()
    treatment = treat(practitioner=untrained_nurse)
    refused = services.add_unit(actor, treatment.id, barcode("TRN-1"), NOW)
    db.session.commit()
    assert set(codes(refused.reasons)) == {"training_missing"}
    assert {r["override"] for r in refused.reasons} == {"never"}
    with pytest.raises(Conflict) as exc:
        services.override_attempt(actor, refused.attempt.id, override_body(manager), NOW)
    assert exc.value.rule == "trained-practitioner"
    db.session.rollback()
    r = login_as(manager).api("POST", f"{V1}/gate-attempts/{refused.attempt.id}/override", override_body(manager))
    assert r.status_code == 409 and r.get_json()["rule"] == "trained-practitioner"
    body = login_as(trained_nurse).api("POST", scan_url(treatment.id, "unit"), {"code": barcode("TRN-2")}).get_json()
    assert body["overridable"] is False
    db.session.expire_all()
    assert usages() == 0 and count(GateOverride) == 0
    assert db.session.get(Treatment, treatment.id).supervised_by_id is None


@pytest.mark.parametrize("code", NEVER_CODES)
def test_a_site_cannot_make_a_never_reason_overridable_by_a_manager(db, actor, site, code):
    with pytest.raises(Invalid) as exc:
        set_site_number(actor, site.id, "gate", code, "manager", "We trust our staff", NOW)
    assert exc.value.field == "value"
    db.session.rollback()
    assert count(SiteRuleOverride) == 0
    assert services.pack_for_site(site.id).override_for(code) == "never"


def test_a_site_cannot_make_a_failed_load_overridable_by_a_manager(db, actor, site):
    with pytest.raises(Invalid):
        set_site_number(actor, site.id, "gate", "pack_failed", "manager", "We trust our steriliser", NOW)
    with pytest.raises(PackError):
        load_pack().with_overrides({("gate", "pack_failed"): "manager"})


@pytest.mark.parametrize("code", NEVER_CODES)
def test_a_guideline_pack_marking_a_never_reason_overridable_is_refused_by_the_loader(code):
    with open(DEFAULT_PACK, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    loosened = deepcopy(data)
    loosened["gate"]["reasons"][code]["override"] = "manager"
    with pytest.raises(PackError, match=code):
        parse_pack(loosened)
    assert parse_pack(data).override_for(code) == "never"


def test_a_guideline_pack_marking_an_expired_lot_overridable_is_refused_by_the_loader():
    with open(DEFAULT_PACK, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    data["gate"]["reasons"]["lot_expired"]["override"] = "manager"
    with pytest.raises(PackError, match="lot_expired"):
        parse_pack(data)


# --- promise 4: single use, by the database ---------------------------------------------------------------

def _race(app, manager_id, treatment_ids, subject, code):
    barrier = threading.Barrier(len(treatment_ids))
    results, errors = [], []

    def tablet(treatment_id):
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                me = actor_for_user(_db.session.get(User, manager_id))
                result = add(subject)(me, treatment_id, code, NOW)
                _db.session.commit()
                results.append((result.accepted, codes(result.reasons)))
            except Exception as exc:  # noqa: BLE001 - reported below
                _db.session.rollback()
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=tablet, args=(tid,)) for tid in treatment_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


@pytest.mark.parametrize("subject", ["pack", "unit"])
def test_of_two_tablets_scanning_one_item_for_two_clients_at_once_exactly_one_succeeds(
        app, db, manager, treat, sterile_pack, make_lot, subject):
    make_lot()
    code = sterile_pack().label_code if subject == "pack" else barcode("RACE-1")
    treatment_ids = [treat().id, treat().id]
    manager_id = manager.id
    db.session.commit()  # the test's own session holds no lock while the tablets race
    results, errors = _race(app, manager_id, treatment_ids, subject, code)
    assert errors == []
    assert sorted(accepted for accepted, _codes in results) == [False, True]
    loser = next(c for accepted, c in results if not accepted)
    assert loser == [f"{subject}_used"]
    db.session.expire_all()
    assert usages() == 1
    if subject == "pack":
        assert db.session.scalar(select(Pack.status)) == "used"
    else:
        assert count(Unit) == 1


@pytest.mark.parametrize("subject", ["pack", "unit"])
def test_a_double_scan_for_the_same_client_stores_no_refusal_and_never_a_second_usage(
        db, actor, treat, sterile_pack, make_lot, subject):
    make_lot()
    code = sterile_pack().label_code if subject == "pack" else barcode("TWICE-1")
    treatment, other = treat(), treat()
    first = add(subject)(actor, treatment.id, code, NOW)
    db.session.commit()
    again = add(subject)(actor, treatment.id, code, NOW + timedelta(seconds=2))
    db.session.commit()
    assert first.accepted and not first.already
    assert again.accepted and again.already and again.usage.id == first.usage.id and again.attempt is None
    assert usages() == 1 and count(GateAttempt) == 0
    elsewhere = add(subject)(actor, other.id, code, NOW)
    db.session.commit()
    assert not elsewhere.accepted and codes(elsewhere.reasons) == [f"{subject}_used"]
    assert usages() == 1


@pytest.mark.parametrize("subject", ["pack", "unit"])
def test_a_double_scan_through_the_api_and_the_tablet_is_answered_neutrally(
        db, login_as, trained_nurse, on_tablet, treat, sterile_pack, make_lot, snapshot, subject):
    make_lot()
    code = sterile_pack().label_code if subject == "pack" else barcode("TWICE-2")
    treatment = treat()
    assert on_tablet.form_post(f"/tablet/treatments/{treatment.id}/scan", {"code": code}).status_code == 200
    before = snapshot()
    page = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/scan", {"code": code})
    assert page.status_code == 200 and "Already added for this client" in text(page)
    assert "Refused" not in text(page) and "Override and use it" not in text(page)
    r = login_as(trained_nurse).api("POST", scan_url(treatment.id, subject), {"code": code})
    assert r.status_code == 200 and r.get_json()["already_added"] is True
    assert snapshot() == before


def test_a_unit_used_at_one_site_is_refused_at_another_site_of_the_organisation(
        db, admin, site, make_site, make_user, make_training, client_row, make_lot, item_type, login_as):
    sister = make_site(org=site.organisation, name="Bandung")
    make_lot()
    make_lot(lot_site=sister)  # the same lot number received there too
    both = make_user("staff", [site, sister], name="Roving Nurse")
    make_training(both, course="infection_control", completed_on=NOW.date() - timedelta(days=100))
    make_training(both, course="microneedling", completed_on=NOW.date() - timedelta(days=100))
    me = actor_for_user(admin)
    here = begin(db, me, site, client_row, both)
    there = services.start_treatment(me, {"room_id": sister.rooms[0].id, "client_id": client_row.id,
                                          "procedure": "face", "method": "pen", "practitioner_id": both.id}, NOW)
    services.record_screening(me, there.id, {"active_skin_infection": "no", "herpes_history": "no",
                                             "metal_allergy": "no", "skin_type": "III", "age_confirmed": "yes"}, NOW)
    db.session.commit()
    assert services.add_unit(me, here.id, barcode("ROAM-1"), NOW).accepted
    db.session.commit()
    refused = services.add_unit(me, there.id, barcode("ROAM-1"), NOW + timedelta(hours=1))
    db.session.commit()
    assert not refused.accepted and codes(refused.reasons) == ["unit_used"]
    r = login_as(both).api("POST", scan_url(there.id, "unit"), {"code": barcode("ROAM-1")})
    assert r.status_code == 409 and codes(r.get_json()["reasons"]) == ["unit_used"]
    assert count(TreatmentUnit) == 1 and count(Unit) == 1


def test_another_sites_or_another_organisations_pack_or_unit_is_not_found_and_nothing_stored(
        db, admin, actor, site, make_site, other_site, outsider, treat, packed, ready_steriliser, make_device,
        login_as, trained_nurse, snapshot, item_type):
    from compliance.stock.models import ItemType, Lot

    sister = make_site(org=site.organisation, name="Bandung")
    # A sterile pack of the sister site (its own steriliser) and one of another organisation.
    foreign_packs = []
    for where, who in ((sister, admin), (other_site, outsider)):
        who_actor = actor_for_user(who)
        device = make_device(where)
        ids = [device.id]
        steri.record_cleaning(who_actor, {"device_ids": ids, "method": "ultrasonic"}, NOW - timedelta(hours=1))
        steri.record_inspection(who_actor, {"device_ids": ids, "passed": True}, NOW - timedelta(hours=1))
        foreign_packs.append(steri.create_pack(who_actor, {"device_ids": ids, "packaging": "pouch"},
                                               NOW - timedelta(hours=1)))
    # A lot of another organisation's item type with the same GTIN.
    other_type = ItemType(organisation_id=other_site.organisation_id, name="Their cartridge",
                          kind="needle_cartridge", gtin=item_type.gtin)
    db.session.add(other_type)
    db.session.flush()
    db.session.add(Lot(site_id=other_site.id, item_type_id=other_type.id, lot_number="THEIRS",
                       expires_on=NOW.date() + timedelta(days=300), quantity=10, status="available"))
    db.session.commit()
    treatment = treat()
    before = snapshot()
    for code in [p.label_code for p in foreign_packs]:
        with pytest.raises(NotFound):
            services.add_pack(actor, treatment.id, code, NOW)
        db.session.rollback()
    with pytest.raises(NotFound):
        services.add_unit(actor, treatment.id, barcode("THEIR-1", lot="THEIRS"), NOW)
    db.session.rollback()
    c = login_as(trained_nurse)
    for p in foreign_packs:
        assert c.api("POST", scan_url(treatment.id, "pack"), {"code": p.label_code}).status_code == 404
    assert c.api("POST", scan_url(treatment.id, "unit"), {"code": barcode("THEIR-2", lot="THEIRS")}).status_code == 404
    assert snapshot() == before


# --- promise 5: finishing ---------------------------------------------------------------------------------

FINISH = {"passes": 8, "needle_depth_mm": "0.5"}


def _partial(actor, treatment, have, sterile_pack):
    if "pack" in have:
        assert services.add_pack(actor, treatment.id, sterile_pack().label_code, NOW).accepted
    if "cartridge" in have:
        assert services.add_unit(actor, treatment.id, barcode(f"PART-{treatment.id}"), NOW).accepted


# method, the items the gate accepted, the titles of what is missing
FINISH_CASES = {
    "pen, nothing scanned": ("pen", (), [PEN_PACK, PEN_CARTRIDGE]),
    "pen, the pack only": ("pen", ("pack",), [PEN_CARTRIDGE]),
    "pen, the cartridge only": ("pen", ("cartridge",), [PEN_PACK]),
    "roller, nothing scanned": ("roller", (), [ROLLER_ITEM]),
    "roller, a pen cartridge only": ("roller", ("cartridge",), [ROLLER_ITEM]),
}


@pytest.mark.parametrize("case", FINISH_CASES)
def test_a_treatment_is_never_finished_without_every_needle_item_accepted_by_the_gate(
        app, db, actor, treat, sterile_pack, make_lot, container, case):
    method, have, missing = FINISH_CASES[case]
    make_lot()
    treatment = treat(method=method)
    _partial(actor, treatment, have, sterile_pack)
    db.session.commit()
    with pytest.raises(Conflict) as exc:
        services.finish_treatment(actor, treatment.id, {**FINISH, "sharps_container_id": container.id}, NOW)
    assert (exc.value.field, exc.value.rule) == ("items", "spaulding-critical")
    with app.test_request_context():
        message = exc.value.message
    for title in missing:
        assert title in message
    for title in {PEN_PACK, PEN_CARTRIDGE, ROLLER_ITEM} - set(missing):
        assert title not in message
    db.session.rollback()
    assert db.session.get(Treatment, treatment.id).status == "open"


@pytest.mark.parametrize("case", FINISH_CASES)
def test_finishing_without_every_needle_item_is_refused_through_the_api_naming_what_is_missing(
        db, actor, login_as, trained_nurse, treat, sterile_pack, make_lot, container, snapshot, case):
    method, have, missing = FINISH_CASES[case]
    make_lot()
    treatment = treat(method=method)
    _partial(actor, treatment, have, sterile_pack)
    before = snapshot()
    r = login_as(trained_nurse).api("POST", f"{V1}/treatments/{treatment.id}/finish",
                                    {**FINISH, "sharps_container_id": container.id})
    assert r.status_code == 409, r.get_json()
    body = r.get_json()
    assert body["rule"] == "spaulding-critical" and list(body["errors"]) == ["items"]
    for title in missing:
        assert title in body["errors"]["items"][0]
    assert snapshot() == before


@pytest.mark.parametrize("case", FINISH_CASES)
def test_finishing_without_every_needle_item_is_refused_on_the_tablet_naming_what_is_missing(
        db, actor, on_tablet, treat, sterile_pack, make_lot, container, snapshot, case):
    method, have, missing = FINISH_CASES[case]
    make_lot()
    treatment = treat(method=method)
    _partial(actor, treatment, have, sterile_pack)
    before = snapshot()
    response = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/finish", {
        "passes": "8", "needle_depth_mm": "0.5", "ended_at": "2026-11-25T11:00",
        "sharps_container_id": str(container.id)})
    page = text(response)
    assert response.status_code == 409, page
    assert "Not finished" in page
    for title in missing:
        assert str(title) in page.replace("&#39;", "'")
    assert snapshot() == before


def _legacy_treatment(db, site, client_row, nurse, screened=True):
    """A treatment recorded before methods existed: no method, as the migration left it."""
    row = Treatment(site_id=site.id, room_id=site.rooms[0].id, client_id=client_row.id, practitioner_id=nurse.id,
                    procedure="face", method=None, status="open", started_at=NOW - timedelta(days=1),
                    screening={"active_skin_infection": False, "herpes_history": False, "metal_allergy": False,
                               "skin_type": "III", "age_confirmed": True} if screened else None,
                    screening_at=NOW - timedelta(days=1) if screened else None)
    db.session.add(row)
    db.session.commit()
    return row


def test_a_treatment_from_before_methods_is_not_finished_without_a_gate_checked_needle_item(
        db, actor, site, client_row, trained_nurse, login_as, item_in_state, sterile_pack):
    old = _legacy_treatment(db, site, client_row, trained_nurse)
    with pytest.raises(Conflict) as exc:
        services.finish_treatment(actor, old.id, FINISH, NOW)
    assert (exc.value.field, exc.value.rule) == ("items", "spaulding-critical")
    db.session.rollback()
    r = login_as(trained_nurse).api("POST", f"{V1}/treatments/{old.id}/finish", FINISH)
    assert r.status_code == 409 and r.get_json()["rule"] == "spaulding-critical"
    # The gate applies to it as to any other: a pack from a failed load is refused, and cannot be overridden.
    _subject, code, reason, _rule = item_in_state("failed load")
    refused = services.add_pack(actor, old.id, code, NOW)
    assert not refused.accepted and reason in codes(refused.reasons)
    db.session.commit()
    assert usages() == 0
    assert services.add_pack(actor, old.id, sterile_pack().label_code, NOW).accepted
    services.finish_treatment(actor, old.id, FINISH, NOW)
    db.session.commit()
    assert db.session.get(Treatment, old.id).status == "finished"


# --- old records ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", STATES)
def test_an_old_refusal_of_an_item_never_overridden_is_not_overridden_now(
        db, manager, login_as, treat, item_in_state, snapshot, state):
    """A refusal stored before reasons carried "override": the pack in force decides, and says never."""
    subject, code, reason, rule = item_in_state(state)
    treatment = treat()
    old = GateAttempt(treatment_id=treatment.id, site_id=treatment.site_id, subject=subject, scanned=code,
                      reasons=[{"rule": rule, "code": reason, "values": {}}], by_id=manager.id,
                      at=NOW - timedelta(minutes=10))
    db.session.add(old)
    db.session.commit()
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/gate-attempts/{old.id}/override", override_body(manager))
    assert r.status_code == 409 and r.get_json()["rule"] == rule
    assert snapshot() == before


@pytest.mark.parametrize("state", STATES)
def test_an_old_training_refusal_is_not_overridden_once_the_item_became_unsafe(
        db, actor, manager, login_as, treat, item_in_state, untrained_nurse, snapshot, state):
    """Refused for the practitioner's training only (a manager may override that); the item has since become
    unsafe: the manager's right password still uses nothing."""
    subject, code, reason, rule = item_in_state(state)
    treatment = treat(practitioner=untrained_nurse)
    old = GateAttempt(treatment_id=treatment.id, site_id=treatment.site_id, subject=subject, scanned=code,
                      reasons=[{"rule": "trained-practitioner", "code": "training_missing",
                                "values": {"course": "microneedling"}, "override": "manager"}],
                      by_id=manager.id, at=NOW - timedelta(minutes=10))
    db.session.add(old)
    db.session.commit()
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/gate-attempts/{old.id}/override", override_body(manager))
    assert r.status_code == 409, r.get_json()
    assert reason in r.get_json()["errors"]["attempt_id"][0]  # "it can no longer be used: …, <reason>"
    after = snapshot()
    assert count(GateOverride) == 0 and count(TreatmentPack, TreatmentPack.treatment_id == treatment.id) == 0
    assert count(TreatmentUnit, TreatmentUnit.treatment_id == treatment.id) == 0
    assert changed_tables(before, after) <= {"users"}  # at most the manager's reset failure count
    assert db.session.get(Treatment, treatment.id).supervised_by_id is None


# --- promise 6: abandoning ---------------------------------------------------------------------------------

def test_what_was_opened_for_an_abandoned_treatment_stays_used_and_reaches_no_other_client(
        db, actor, treat, sterile_pack, make_lot, manager):
    make_lot()
    pack = sterile_pack()
    abandoned, next_client = treat(), treat()
    assert services.add_pack(actor, abandoned.id, pack.label_code, NOW).accepted
    assert services.add_unit(actor, abandoned.id, barcode("ABN-1"), NOW).accepted
    services.abandon_treatment(actor, abandoned.id, {"reason": "The client left"}, NOW + timedelta(minutes=5))
    db.session.commit()
    assert pack.items[0].device.status == "dirty"
    for subject, code in (("pack", pack.label_code), ("unit", barcode("ABN-1"))):
        refused = add(subject)(actor, next_client.id, code, NOW + timedelta(minutes=10))
        db.session.commit()
        assert codes(refused.reasons) == [f"{subject}_used"]
        with pytest.raises(Conflict):
            services.override_attempt(actor, refused.attempt.id, override_body(manager), NOW)
        db.session.rollback()
    with pytest.raises(Conflict):  # nor into the abandoned one: it is no longer open
        services.add_pack(actor, abandoned.id, sterile_pack().label_code, NOW + timedelta(minutes=10))
    db.session.rollback()
    assert count(TreatmentPack, TreatmentPack.treatment_id == next_client.id) == 0
    assert count(TreatmentUnit, TreatmentUnit.treatment_id == next_client.id) == 0


# --- readings are never rounded ------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", ["133.95", 133.95, "133,95"])
def test_a_load_read_at_133_95_degrees_for_a_134_degree_programme_is_refused_not_rounded_to_a_pass(
        db, actor, login_as, manager, ready_steriliser, packed, treat, snapshot, temperature):
    pack = packed()
    treatment = treat()
    before = snapshot()
    body = {"steriliser_id": ready_steriliser.id, "started_at": (NOW - timedelta(minutes=30)).isoformat(),
            "temperature_c": temperature, "holding_seconds": 200, "indicator_result": "pass",
            "indicator_class": 5, "printout_ref": "LOG-1", "pack_codes": [pack.label_code]}
    r = login_as(manager).api("POST", f"{V1}/cycles", body)
    assert r.status_code == 422, r.get_json()
    assert list(r.get_json()["errors"]["json"]) == ["temperature_c"]
    assert snapshot() == before and count(Cycle) == 0
    with pytest.raises(Invalid) as exc:
        steri.record_cycle(actor, good_cycle(ready_steriliser, [pack], temperature_c=temperature), NOW)
    assert exc.value.field == "temperature_c"
    db.session.rollback()
    # The pack in that load was never sterilised: the gate refuses it.
    refused = services.add_pack(actor, treatment.id, pack.label_code, NOW)
    assert codes(refused.reasons) == ["load_not_released"]


# --- a correction after use (promise 2: what reached a client stays on its record) ----------------------------

def test_a_load_is_never_corrected_after_one_of_its_packs_reached_a_client(db, actor, start, sterile_pack):
    """Correcting the figures of a load whose pack was already opened for a client is refused and changes nothing:
    the record of what reached the client can't be rewritten (the cycle-correction tests cover the rest)."""
    from compliance.errors import Conflict
    from compliance.sterilisation.models import Cycle, CycleCorrection

    pack = sterile_pack()
    treatment = start()
    assert services.add_pack(actor, treatment.id, pack.label_code, NOW).accepted
    db.session.commit()
    cycle = db.session.get(Cycle, pack.cycle_id)
    before = (cycle.status, cycle.temperature_c, cycle.holding_seconds)
    with pytest.raises(Conflict):
        steri.correct_cycle(actor, cycle.id, {"temperature_c": "121.0", "holding_seconds": 60,
                                              "indicator_result": "fail", "reason": "typo"}, NOW,
                            confirm_failure=True)
    db.session.rollback()
    cycle = db.session.get(Cycle, pack.cycle_id)
    assert (cycle.status, cycle.temperature_c, cycle.holding_seconds) == before
    assert db.session.scalar(select(func.count()).select_from(CycleCorrection)) == 0
