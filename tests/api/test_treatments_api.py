"""Single-use stock and treatments over the JSON API: a nurse's session treating a client through the point-of-use
gate, refusals answered 409 with their reasons while the attempt is kept, a manager's override, a data logger's key
that may not treat, look-back, stock receiving by GS1 scan, and the document."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.stock.models import ItemType, Lot, Unit
from compliance.treatments.models import (
    AdverseEvent,
    GateAttempt,
    GateOverride,
    LookBack,
    SharpsContainer,
    TreatmentPack,
    TreatmentUnit,
)
from compliance.treatments.messages import reason_text
from tests.conftest import PASSWORD, PIN
from tests.treatments.conftest import (  # noqa: F401  (fixtures)
    GTIN,
    NOW,
    actor,
    add_test,
    barcode,
    client_row,
    container,
    item_type,
    make_device,
    make_lot,
    make_steriliser,
    packed,
    ready_steriliser,
    start,
    sterile_pack,
    trained_nurse,
    untrained_nurse,
)

V1 = "/api/v1"
UNKNOWN_GTIN = "04006381333931"


@pytest.fixture
def words(app):
    """A reason as compliance/treatments/messages.py words it in English (the API answers with the same)."""

    def say(reason_code, rule, **values):
        with app.test_request_context():
            return reason_text({"rule": rule, "code": reason_code, "values": values})

    return say


@pytest.fixture(autouse=True)
def frozen():
    """The clock stands at NOW (10:00 in Jakarta): the services' `now` is the request's utcnow()."""
    with time_machine.travel(NOW, tick=False):
        yield


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def sister_site(make_site, site):
    return make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")


# --- a nurse's session, start to finish ----------------------------------------------------------

def test_a_nurse_session_registers_a_client_treats_through_the_gate_and_finishes(
        client, login_as, trained_nurse, manager, site, make_lot, sterile_pack, container, db):
    make_lot()
    pack = sterile_pack()
    c = login_as(trained_nurse)
    r = c.api("POST", f"{V1}/clients", {"site_id": site.id, "name": "Siti Rahma", "phone": "+62 811 000",
                                         "consent": True})
    assert r.status_code == 201, r.get_json()
    code = r.get_json()["code"]
    assert code.startswith("C-") and r.headers["Location"].endswith(f"{V1}/clients/{code}")
    assert not {"name", "phone", "consent_note"} & set(r.get_json())  # a nurse records them, never reads them
    assert r.get_json()["consent_at"] == "2026-11-25T03:00:00+00:00"

    r = c.api("POST", f"{V1}/treatments", {"room_id": site.rooms[0].id, "client_code": code.lower(),
                                            "procedure": "acne_scars", "method": "pen"})
    assert r.status_code == 201, r.get_json()
    treatment = r.get_json()
    assert (treatment["method"], treatment["needles_checked"]) == ("pen", False)
    assert (treatment["client_code"], treatment["practitioner_id"], treatment["status"]) == (
        code, trained_nurse.id, "open")
    url = r.headers["Location"]
    assert url.endswith(f"{V1}/treatments/{treatment['id']}")

    r = c.api("POST", f"{url}/screening", {"active_skin_infection": False, "herpes_history": False,
                                           "metal_allergy": False, "skin_type": "IV", "age_confirmed": True})
    assert r.status_code == 200 and r.get_json()["screening"]["skin_type"] == "IV"

    r = c.api("POST", f"{url}/packs", {"code": pack.label_code})
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["label_code"], r.get_json()["cycle_id"]) == (pack.label_code, pack.cycle_id)
    r = c.api("POST", f"{url}/units", {"code": barcode("S100")})
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["serial"], r.get_json()["lot_number"], r.get_json()["item_type_name"]) == (
        "S100", "LOT42", "Cartridge 12-pin")

    r = c.api("POST", f"{url}/finish", {"passes": 8, "needle_depth_mm": "0.5", "sharps_container_id": container.id,
                                        "products": [{"name": "Lidocaine 5 %", "lot": "AN-7"}]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["needles_checked"] is True
    assert (r.get_json()["status"], r.get_json()["needle_depth_mm"], r.get_json()["sharps_container_id"]) == (
        "finished", "0.50", container.id)

    detail = c.api("GET", url).get_json()
    assert [p["label_code"] for p in detail["packs"]] == [pack.label_code]
    assert [(u["serial"], u["sharps_container_id"]) for u in detail["units"]] == [("S100", container.id)]
    assert detail["attempts"] == [] and detail["overrides"] == [] and detail["adverse_events"] == []
    assert detail["products"] == [{"name": "Lidocaine 5 %", "lot": "AN-7"}]

    managers_view = login_as(manager).api("GET", f"{V1}/clients/{code}").get_json()
    assert (managers_view["name"], managers_view["phone"]) == ("Siti Rahma", "+62 811 000")
    nurses_view = login_as(trained_nurse).api("GET", f"{V1}/clients/{code}").get_json()
    assert "name" not in nurses_view and "phone" not in nurses_view and nurses_view["code"] == code


# --- refusals, the kept attempt, overrides -------------------------------------------------------

def test_a_refused_unit_answers_409_with_reasons_and_the_attempt_is_stored_and_nothing_used(
        client, login_as, trained_nurse, start, make_lot, words, db):
    make_lot(status="quarantined")
    treatment = start()
    c = login_as(trained_nurse)
    r = c.api("POST", f"{V1}/treatments/{treatment.id}/units", {"code": barcode("Q1")})
    assert r.status_code == 409, r.get_json()
    body = r.get_json()
    attempt = db.session.scalars(select(GateAttempt)).one()
    said = words("lot_quarantined", "single-use-never-reused", lot="LOT42")
    assert "LOT42" in said
    assert body == {
        "code": 409, "rule": "single-use-never-reused", "attempt_id": attempt.id,
        "message": f"Refused at the point of use: {said}",
        "reasons": [{"rule": "single-use-never-reused", "code": "lot_quarantined", "values": {"lot": "LOT42"},
                     "override": "never", "message": said}],
        "overridable": False,
        "instead": "No override is possible: no manager's word makes this item sterile or unused. Put it aside and "
                   "take another one; if there is none, abandon the treatment.",
    }
    # The refusal was committed even though the answer is an error; nothing was used.
    assert (_count(db, GateAttempt), _count(db, TreatmentUnit)) == (1, 0)
    assert (attempt.subject, attempt.scanned, attempt.by_id) == ("unit", barcode("Q1"), trained_nurse.id)
    detail = c.api("GET", f"{V1}/treatments/{treatment.id}").get_json()
    assert [(a["id"], a["override_id"], a["reasons"][0]["code"]) for a in detail["attempts"]] == [
        (attempt.id, None, "lot_quarantined")]
    assert detail["units"] == []


def test_every_reason_is_answered_and_an_untrained_unscreened_attempt_names_the_first_rule(
        client, login_as, trained_nurse, start, make_user, site, make_lot, words, db):
    make_lot(expires_on=NOW.date() - timedelta(days=1))
    new_starter = make_user("staff", [site], name="New Starter")
    treatment = start(screened=False, practitioner=new_starter)
    r = login_as(trained_nurse).api("POST", f"{V1}/treatments/{treatment.id}/units", {"code": barcode("E1")})
    assert r.status_code == 409
    body = r.get_json()
    assert body["rule"] == "trained-practitioner"
    assert [(x["code"], x["message"]) for x in body["reasons"]] == [
        ("training_missing", words("training_missing", "trained-practitioner", course="infection_control")),
        ("training_missing", words("training_missing", "trained-practitioner", course="microneedling")),
        ("screening_missing", words("screening_missing", "client-screening")),
        ("lot_expired", words("lot_expired", "single-use-never-reused", lot="LOT42", expired_on="2026-11-24")),
    ]
    assert "Infection prevention and control" in body["reasons"][0]["message"]  # the course's name, not its code


def test_a_manager_overrides_a_refusal_with_the_right_password_and_the_unit_is_used(
        client, login_as, trained_nurse, manager, start, make_lot, snapshot, words, db, untrained_nurse):
    make_lot()
    treatment = start(practitioner=untrained_nurse)
    c = login_as(trained_nurse)
    refused = c.api("POST", f"{V1}/treatments/{treatment.id}/units", {"code": barcode("Q2")}).get_json()
    assert refused["overridable"] is True and {r["override"] for r in refused["reasons"]} == {"manager"}
    attempt_id = refused["attempt_id"]
    url = f"{V1}/gate-attempts/{attempt_id}/override"
    before = snapshot()
    for body, field in (({"manager_email": manager.email, "secret": "wrong", "reason": "x"}, "secret"),
                        ({"manager_email": trained_nurse.email, "secret": PIN, "reason": "x"}, "manager_email")):
        r = c.api("POST", url, body)
        assert r.status_code == 403 and list(r.get_json()["errors"]) == [field]
    r = c.api("POST", url, {"manager_email": manager.email, "secret": PASSWORD, "reason": "x", "extra": 1})
    assert r.status_code == 422 and "extra" in r.get_json()["errors"]["json"]
    after = snapshot()
    # Only the wrong secret is kept: it counts towards the manager's lock (and is logged); nothing else changed.
    assert {k: v for k, v in after.items() if k != "users"} == {k: v for k, v in before.items() if k != "users"}
    db.session.expire_all()
    assert db.session.get(type(manager), manager.id).pin_failed_count == 1

    r = c.api("POST", url, {"manager_email": manager.email.upper(), "secret": PASSWORD,
                            "reason": "course booked; I supervise this treatment"})
    assert r.status_code == 201, r.get_json()
    got = r.get_json()
    assert r.headers["Location"].endswith(f"{V1}/treatments/{treatment.id}")
    assert got["pack"] is None and got["unit"]["serial"] == "Q2"
    assert got["unit"]["override_id"] == got["override"]["id"]
    assert (got["override"]["manager_id"], got["override"]["manager_name"], got["override"]["subject"]) == (
        manager.id, "Mira Manager", "unit")
    assert got["override"]["reasons"][0]["message"] == words("training_missing", "trained-practitioner",
                                                             course="infection_control")
    assert "secret" not in str(got)
    assert (_count(db, GateOverride), _count(db, TreatmentUnit)) == (1, 1)
    detail = c.api("GET", f"{V1}/treatments/{treatment.id}").get_json()
    assert detail["attempts"][0]["override_id"] == got["override"]["id"]
    assert [o["reason"] for o in detail["overrides"]] == ["course booked; I supervise this treatment"]
    assert detail["supervised_by_id"] == manager.id

    r = c.api("POST", url, {"manager_email": manager.email, "secret": PASSWORD, "reason": "again"})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["attempt_id"]


def test_a_used_unit_is_refused_and_can_never_be_overridden(client, login_as, trained_nurse, manager, start,
                                                            make_lot, db):
    make_lot()
    first, second = start(), start()
    c = login_as(trained_nurse)
    assert c.api("POST", f"{V1}/treatments/{first.id}/units", {"code": barcode("U1")}).status_code == 201
    r = c.api("POST", f"{V1}/treatments/{second.id}/units", {"code": barcode("U1")})
    assert r.status_code == 409 and [x["code"] for x in r.get_json()["reasons"]] == ["unit_used"]
    r = c.api("POST", f"{V1}/gate-attempts/{r.get_json()['attempt_id']}/override",
              {"manager_email": manager.email, "secret": PASSWORD, "reason": "please"})
    assert r.status_code == 409 and r.get_json()["rule"] == "single-use-never-reused"
    assert (_count(db, TreatmentUnit), _count(db, GateOverride), _count(db, GateAttempt)) == (1, 0, 1)


def test_a_pack_from_a_load_awaiting_release_is_refused_with_its_rule(client, login_as, trained_nurse, start,
                                                                      packed, ready_steriliser, actor, words, db):
    from compliance.sterilisation import services as steri
    from tests.treatments.conftest import good_cycle

    pack = packed()
    steri.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    db.session.commit()
    treatment = start()
    r = login_as(trained_nurse).api("POST", f"{V1}/treatments/{treatment.id}/packs", {"code": pack.label_code})
    assert r.status_code == 409
    assert r.get_json()["reasons"] == [{
        "rule": "spaulding-critical", "code": "load_not_released",
        "values": {"code": pack.label_code, "status": "awaiting_release"}, "override": "never",
        "message": words("load_not_released", "spaulding-critical", code=pack.label_code, status="awaiting_release")}]
    assert "awaiting release" in r.get_json()["reasons"][0]["message"]  # the status in words, not its code
    assert (_count(db, GateAttempt), _count(db, TreatmentPack)) == (1, 0)


def test_an_unreadable_scan_is_422_at_the_field_and_stores_nothing(client, login_as, trained_nurse, start, make_lot,
                                                                   snapshot):
    make_lot()
    treatment = start()
    before = snapshot()
    r = login_as(trained_nurse).api("POST", f"{V1}/treatments/{treatment.id}/units", {"code": "garbage"})
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["code"]
    assert snapshot() == before


# --- keys, roles and reach -----------------------------------------------------------------------

def test_a_data_loggers_key_reads_no_treatments_and_cannot_start_them_or_receive_stock(
        client, admin, site, make_key, client_row, start, item_type, snapshot):
    treatment = start()
    key = make_key(site, by=admin)
    for path in ("/treatments", f"/treatments/{treatment.id}", "/lots", "/item-types", "/sharps-containers"):
        assert client.api("GET", V1 + path, key=key).status_code == 403, path
    before = snapshot()
    for path, body in (
            ("/treatments", {"room_id": site.rooms[0].id, "client_id": client_row.id, "procedure": "face",
                             "method": "pen"}),
            (f"/treatments/{treatment.id}/units", {"code": barcode("K1")}),
            ("/lots", {"site_id": site.id, "barcode": barcode("K2"), "quantity": 5}),
            ("/clients", {"site_id": site.id}),
            ("/sharps-containers", {"site_id": site.id, "label": "K"})):
        r = client.api("POST", V1 + path, body, key=key)
        assert r.status_code == 403, (path, r.get_json())
    assert snapshot() == before


def test_auditor_reads_but_may_not_treat_or_receive(client, login_as, auditor, site, start, item_type, snapshot):
    treatment = start()
    c = login_as(auditor)
    assert c.api("GET", f"{V1}/treatments/{treatment.id}").status_code == 200
    before = snapshot()
    assert c.api("POST", f"{V1}/lots", {"site_id": site.id, "barcode": barcode("A1"), "quantity": 5}).status_code \
        == 403
    assert c.api("POST", f"{V1}/treatments/{treatment.id}/finish",
                 {"passes": 8, "needle_depth_mm": "0.5"}).status_code == 403
    assert snapshot() == before


def test_another_sites_lot_treatment_and_client_are_404(client, login_as, manager, admin, sister_site, make_lot,
                                                        make_user, db):
    from compliance.auth.actor import actor_for_user
    from compliance.treatments import services

    lot = make_lot(lot_site=sister_site)
    b_admin = actor_for_user(admin)  # an admin reaches every site of the organisation
    b_client = services.create_client(b_admin, {"site_id": sister_site.id}, NOW)
    b_nurse = make_user("staff", [sister_site])
    treatment = services.start_treatment(b_admin, {"room_id": sister_site.rooms[0].id, "client_id": b_client.id,
                                                   "procedure": "face", "method": "pen",
                                                   "practitioner_id": b_nurse.id}, NOW)
    db.session.commit()
    c = login_as(manager)
    for path in (f"/lots/{lot.id}", f"/treatments/{treatment.id}", f"/clients/{b_client.code}"):
        assert c.api("GET", V1 + path).status_code == 404, path
    assert c.api("POST", f"{V1}/lots/{lot.id}/status", {"status": "recalled", "reason": "x"}).status_code == 404
    assert c.api("GET", f"{V1}/lots").get_json() == []
    assert c.api("GET", f"{V1}/treatments").get_json() == []


# --- look-back and adverse events ----------------------------------------------------------------

def test_look_back_from_a_load_lists_exactly_the_exposed_treatments(client, login_as, manager, trained_nurse, start,
                                                                    sterile_pack, client_row, db):
    from compliance.treatments import services

    first, second = sterile_pack(), sterile_pack()
    assert first.cycle_id != second.cycle_id
    exposed, other, untouched = start(), start(), start()
    nurse = login_as(trained_nurse)
    assert nurse.api("POST", f"{V1}/treatments/{exposed.id}/packs", {"code": first.label_code}).status_code == 201
    assert nurse.api("POST", f"{V1}/treatments/{other.id}/packs", {"code": second.label_code}).status_code == 201
    assert nurse.api("GET", f"{V1}/look-back?cycle_id={first.cycle_id}").status_code == 403  # trace.read

    c = login_as(manager)
    r = c.api("GET", f"{V1}/look-back?cycle_id={first.cycle_id}")
    assert r.status_code == 200, r.get_json()
    assert [(t["id"], t["client_code"]) for t in r.get_json()] == [(exposed.id, client_row.code)]
    assert '"total": 1' in r.headers["X-Pagination"]
    device_id = first.items[0].device_id
    assert [t["id"] for t in c.api("GET", f"{V1}/look-back?device_id={device_id}").get_json()] == [exposed.id]
    r = c.api("GET", f"{V1}/look-back?practitioner_id={trained_nurse.id}")
    assert [t["id"] for t in r.get_json()] == sorted([exposed.id, other.id, untouched.id])
    r = c.api("GET", f"{V1}/look-back")
    assert r.status_code == 422 and "cycle_id" in r.get_json()["errors"]["query"]
    assert untouched.id not in [t.id for t in services.look_back(services_actor(manager), exposed.id)]


def services_actor(user):
    from compliance.auth.actor import actor_for_user

    return actor_for_user(user)


def test_an_infection_opens_a_look_back_and_the_treatment_look_back_lists_the_same_lot(
        client, login_as, trained_nurse, manager, start, make_lot, db):
    make_lot()
    index, same_lot = start(), start()
    nurse = login_as(trained_nurse)
    nurse.api("POST", f"{V1}/treatments/{index.id}/units", {"code": barcode("I1")})
    nurse.api("POST", f"{V1}/treatments/{same_lot.id}/units", {"code": barcode("I2")})
    with time_machine.travel(NOW + timedelta(days=4), tick=False):  # the client calls back days later
        r = nurse.api("POST", f"{V1}/treatments/{index.id}/adverse-events",
                      {"kind": "infection", "severity": "moderate", "description": "pustules day 3",
                       "onset_at": "2026-11-28T09:00:00+07:00"})
    assert r.status_code == 201, r.get_json()
    event = r.get_json()
    assert event["is_reportable"] and event["look_back_id"] == db.session.scalar(select(LookBack.id))
    assert event["onset_at"] == "2026-11-28T02:00:00+00:00"
    r = nurse.api("POST", f"{V1}/treatments/{index.id}/adverse-events",
                  {"kind": "redness", "severity": "mild", "onset_at": "2026-11-24T09:00:00+07:00"})
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["onset_at"]  # before the treatment
    assert _count(db, AdverseEvent) == 1

    r = login_as(manager).api("GET", f"{V1}/treatments/{index.id}/look-back")
    assert r.status_code == 200 and [t["id"] for t in r.get_json()] == [same_lot.id]
    detail = client.api("GET", f"{V1}/treatments/{index.id}").get_json()
    assert [(e["kind"], e["look_back_id"] is not None) for e in detail["adverse_events"]] == [("infection", True)]


# --- stock ---------------------------------------------------------------------------------------

def test_receiving_a_lot_by_gs1_scan_fills_item_type_lot_and_expiry(client, login_as, trained_nurse, site,
                                                                    item_type, db):
    r = login_as(trained_nurse).api("POST", f"{V1}/lots", {"site_id": site.id, "quantity": 40,
                                                            "barcode": f"(01){GTIN}(17)280131(10)API-1"})
    assert r.status_code == 201, r.get_json()
    lot = r.get_json()
    assert (lot["item_type_id"], lot["lot_number"], lot["expires_on"], lot["status"]) == (
        item_type.id, "API-1", "2028-01-31", "available")
    assert (lot["units_known"], lot["is_expired"], lot["item_type"]["gtin"]) == (0, False, GTIN)
    assert r.headers["Location"].endswith(f"{V1}/lots/{lot['id']}")
    r = client.api("POST", f"{V1}/lots", {"site_id": site.id, "quantity": 5, "item_type_id": item_type.id,
                                          "lot_number": "TYPED", "expires_on": "2027-03-31"})
    assert r.status_code == 201 and r.get_json()["lot_number"] == "TYPED"


LOT_REFUSALS = {
    "malformed barcode": ({"barcode": "(01)123"}, 422, None, "barcode"),
    "unknown GTIN": ({"barcode": f"(01){UNKNOWN_GTIN}(17)271231(10)X"}, 404, None, "barcode"),
    "duplicate lot": ({"barcode": f"(01){GTIN}(17)271231(10)LOT42"}, 409, None, "lot_number"),
    "no barcode, no item type": ({"lot_number": "X", "expires_on": "2027-01-01"}, 422, "json", "barcode"),
    "quantity zero": ({"barcode": barcode("Z"), "quantity": 0}, 422, "json", "quantity"),
    "an unknown field": ({"barcode": barcode("Z"), "colour": "red"}, 422, "json", "colour"),
    "another site": ({"barcode": barcode("Z"), "site_id": "B"}, 404, None, "site_id"),
}


@pytest.mark.parametrize("case", LOT_REFUSALS)
def test_lot_refusals_name_the_field_and_store_nothing(client, login_as, trained_nurse, site, sister_site, make_lot,
                                                       snapshot, case):
    make_lot()
    changes, status, location, field = LOT_REFUSALS[case]
    body = {"site_id": site.id, "quantity": 10, **changes}
    if body["site_id"] == "B":
        body["site_id"] = sister_site.id
    before = snapshot()
    r = login_as(trained_nurse).api("POST", f"{V1}/lots", body)
    assert r.status_code == status, r.get_json()
    errors = r.get_json()["errors"][location] if location else r.get_json()["errors"]
    assert list(errors) == [field]
    assert snapshot() == before


def test_quarantine_recall_and_unit_labels_over_the_api(client, login_as, manager, make_lot, db):
    lot = make_lot()
    c = login_as(manager)
    url = f"{V1}/lots/{lot.id}"
    r = c.api("POST", f"{url}/status", {"status": "quarantined", "reason": "box wet"})
    assert r.status_code == 200 and (r.get_json()["status"], r.get_json()["status_reason"]) == ("quarantined",
                                                                                              "box wet")
    assert c.api("POST", f"{url}/status", {"status": "recalled", "reason": "FSN-12"}).status_code == 200
    r = c.api("POST", f"{url}/status", {"status": "available", "reason": "mistake"})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["status"]
    assert db.session.get(Lot, lot.id).status == "recalled"
    r = c.api("POST", f"{url}/unit-labels", {"count": 3})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["lot_id"]  # a recalled lot gets no labels

    lot = make_lot(lot_number="LOT43")
    url = f"{V1}/lots/{lot.id}"
    r = c.api("POST", f"{url}/unit-labels", {"count": 3})
    assert r.status_code == 201, r.get_json()
    codes = r.get_json()["codes"]
    assert len(codes) == 3 and all(code.startswith("SU-") for code in codes) and r.get_json()["lot_id"] == lot.id
    assert r.headers["Location"].endswith(url)
    assert c.api("GET", url).get_json()["units_known"] == 3
    assert set(db.session.scalars(select(Unit.serial))) == set(codes)
    assert c.api("POST", f"{url}/unit-labels", {"count": 1001}).status_code == 422


def test_item_types_are_created_listed_and_a_duplicate_gtin_is_409(client, login_as, manager, trained_nurse,
                                                                   item_type, db):
    c = login_as(manager)
    body = {"name": "Roller 0.5 mm", "kind": "single_use_roller", "gtin": UNKNOWN_GTIN[1:],
            "needle_length_mm": "0.5"}
    r = c.api("POST", f"{V1}/item-types", body)
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["gtin"], r.get_json()["needle_length_mm"]) == (UNKNOWN_GTIN, "0.50")
    assert c.api("GET", r.headers["Location"]).get_json()["name"] == "Roller 0.5 mm"
    r = c.api("POST", f"{V1}/item-types", {**body, "name": "Another"})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["gtin"]
    assert [t["name"] for t in c.api("GET", f"{V1}/item-types?q=roller").get_json()] == ["Roller 0.5 mm"]
    assert login_as(trained_nurse).api("POST", f"{V1}/item-types", {**body, "name": "X", "gtin": None}) \
        .status_code == 403
    assert _count(db, ItemType) == 2


def test_a_sharps_container_opens_and_closes_once(client, login_as, trained_nurse, site, db):
    c = login_as(trained_nurse)
    r = c.api("POST", f"{V1}/sharps-containers", {"site_id": site.id, "label": "SC-7", "room_id": site.rooms[0].id})
    assert r.status_code == 201, r.get_json()
    box = r.get_json()
    assert box["is_open"] and c.api("GET", r.headers["Location"]).get_json() == box
    r = c.api("POST", f"{V1}/sharps-containers/{box['id']}/close", {"disposal_ref": "WC-42"})
    assert r.status_code == 200 and (r.get_json()["is_open"], r.get_json()["disposal_ref"]) == (False, "WC-42")
    assert c.api("POST", f"{V1}/sharps-containers/{box['id']}/close", {}).status_code == 409
    assert c.api("GET", f"{V1}/sharps-containers?state=open").get_json() == []
    assert [b["label"] for b in c.api("GET", f"{V1}/sharps-containers?state=closed").get_json()] == ["SC-7"]
    assert db.session.get(SharpsContainer, box["id"]).closed_by_id == trained_nurse.id


def test_treatment_list_filters(client, login_as, manager, start, trained_nurse):
    first, second = start(), start()
    c = login_as(manager)
    got = c.api("GET", f"{V1}/treatments?practitioner_id={trained_nurse.id}&status=open").get_json()
    assert sorted(t["id"] for t in got) == sorted([first.id, second.id])
    assert c.api("GET", f"{V1}/treatments?status=finished").get_json() == []
    assert c.api("GET", f"{V1}/treatments?from=2026-11-25T04:00:00Z").get_json() == []
    assert c.api("GET", f"{V1}/treatments?status=maybe").status_code == 422


# --- the document --------------------------------------------------------------------------------

ENDPOINTS = {
    "/api/v1/item-types": {"get", "post"},
    "/api/v1/item-types/{type_id}": {"get"},
    "/api/v1/lots": {"get", "post"},
    "/api/v1/lots/{lot_id}": {"get"},
    "/api/v1/lots/{lot_id}/status": {"post"},
    "/api/v1/lots/{lot_id}/unit-labels": {"post"},
    "/api/v1/sharps-containers": {"get", "post"},
    "/api/v1/sharps-containers/{container_id}": {"get"},
    "/api/v1/sharps-containers/{container_id}/close": {"post"},
    "/api/v1/clients": {"post"},
    "/api/v1/clients/{code}": {"get"},
    "/api/v1/treatments": {"get", "post"},
    "/api/v1/treatments/{treatment_id}": {"get"},
    "/api/v1/treatments/{treatment_id}/screening": {"post"},
    "/api/v1/treatments/{treatment_id}/packs": {"post"},
    "/api/v1/treatments/{treatment_id}/units": {"post"},
    "/api/v1/gate-attempts/{attempt_id}/override": {"post"},
    "/api/v1/treatments/{treatment_id}/finish": {"post"},
    "/api/v1/treatments/{treatment_id}/abandon": {"post"},
    "/api/v1/treatments/{treatment_id}/adverse-events": {"post"},
    "/api/v1/look-back": {"get"},
    "/api/v1/treatments/{treatment_id}/look-back": {"get"},
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def test_openapi_lists_every_stock_and_treatment_path_and_the_gates_409(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    for path, methods in ENDPOINTS.items():
        assert set(spec["paths"].get(path, {})) & HTTP_METHODS == methods, path
        for method in methods:
            operation = spec["paths"][path][method]
            assert operation["tags"] and "401" in operation["responses"], (path, method)
    assert {"item types", "lots", "sharps containers", "clients", "treatments", "point-of-use gate",
            "look-back"} <= {t["name"] for t in spec["tags"]}
    schemas = spec["components"]["schemas"]
    for path in ("/treatments/{treatment_id}/units", "/treatments/{treatment_id}/packs",
                 "/gate-attempts/{attempt_id}/override"):
        refusal = spec["paths"][V1 + path]["post"]["responses"]["409"]["content"]["application/json"]["schema"]
        assert refusal == {"$ref": "#/components/schemas/GateRefusal"}, path
    assert {"code", "message", "rule", "reasons", "attempt_id"} <= set(schemas["GateRefusal"]["properties"])
    assert schemas["OverrideInput"]["properties"]["secret"]["writeOnly"] is True
    assert not {"name", "phone"} - set(schemas["Client"]["properties"])
    assert schemas["Lot"]["properties"]["expires_on"]["format"] == "date"
    assert schemas["Treatment"]["properties"]["needle_depth_mm"]["type"] == "string"
    for name in ("LotInput", "ItemTypeInput", "TreatmentInput", "ScanInput", "OverrideInput", "FinishInput",
                 "AbandonInput"):
        assert schemas[name]["additionalProperties"] is False, name
    params = {p["name"] for p in spec["paths"][f"{V1}/look-back"]["get"]["parameters"]}
    assert {"cycle_id", "device_id", "lot_id", "steriliser_id", "practitioner_id", "from", "to"} <= params
    params = {p["name"] for p in spec["paths"][f"{V1}/treatments"]["get"]["parameters"]}
    assert {"site_id", "client_id", "practitioner_id", "status", "from", "to", "page"} <= params
