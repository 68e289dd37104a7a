"""Devices and sterilisation over the JSON API: a data logger posting cycles and tests with a site API key, people
releasing loads, refusals that name the field and store nothing, site reach, read-only callers, the document."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.devices.models import Device, DeviceEvent, DeviceType, Programme, Steriliser
from compliance.sterilisation import services
from compliance.sterilisation.models import Cycle, Pack, Recall, SteriliserTest
from tests.conftest import LONG_AGO

V1 = "/api/v1"
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # 10:00 in Jakarta
JAKARTA = timezone(timedelta(hours=7))


@pytest.fixture(autouse=True)
def frozen():
    """The clock stands at NOW: the services' `now` is the request's utcnow()."""
    with time_machine.travel(NOW, tick=False):
        yield


# --- factories (small copies of tests/sterilisation/conftest.py's) -------------------------------

@pytest.fixture
def make_steriliser(db):
    def make(site, type="B", name=None, temperature="134.0", holding=180):
        steriliser = Steriliser(site_id=site.id, name=name or f"Autoclave {Steriliser.query.count() + 1}", type=type,
                                created_at=LONG_AGO,
                                is_in_service=True)
        db.session.add(steriliser)
        db.session.flush()
        db.session.add(Programme(steriliser_id=steriliser.id, name="134 °C", temperature_c=Decimal(temperature),
                                 min_holding_seconds=holding))
        db.session.commit()
        return steriliser

    return make


@pytest.fixture
def make_device(db):
    def make(site, serial=None, type_name="Roller handle"):
        dtype = DeviceType.query.filter_by(organisation_id=site.organisation_id, name=type_name).first()
        if dtype is None:
            dtype = DeviceType(organisation_id=site.organisation_id, name=type_name, spaulding_class="critical")
            db.session.add(dtype)
            db.session.flush()
        device = Device(organisation_id=site.organisation_id, site_id=site.id, device_type_id=dtype.id,
                        serial=serial or f"SN-{Device.query.count() + 1:04d}", status="dirty")
        db.session.add(device)
        db.session.flush()
        db.session.add(DeviceEvent(device_id=device.id, kind="registered", to_status="dirty",
                                   at=NOW - timedelta(days=30)))
        db.session.commit()
        return device

    return make


@pytest.fixture
def add_test(db):
    def add(steriliser, kind, result="pass", at=NOW - timedelta(hours=1)):
        test = SteriliserTest(site_id=steriliser.site_id, steriliser_id=steriliser.id, kind=kind, performed_at=at,
                              result=result, indicator_lot="LOT-1" if kind == "spore" else "",
                              control_result="grew" if kind == "spore" else None)
        db.session.add(test)
        db.session.commit()
        return test

    return add


@pytest.fixture
def ready_steriliser(make_steriliser, add_test, site):
    """Type B, with today's passing air-removal test and a passing spore test 3 days old."""
    steriliser = make_steriliser(site)
    add_test(steriliser, "spore", at=NOW - timedelta(days=3))
    add_test(steriliser, "air_removal", at=NOW - timedelta(hours=2))
    return steriliser


@pytest.fixture
def step(db, admin):
    """Reprocessing steps as a person would do them (an admin reaches every site of the organisation)."""
    def run(devices, until="packed", at=NOW - timedelta(hours=1), packaging="pouch"):
        actor = actor_for_user(admin)  # here: sites made after the fixture are in reach too
        ids = [d.id for d in devices]
        services.record_cleaning(actor, {"device_ids": ids, "method": "ultrasonic"}, at)
        if until != "cleaned":
            services.record_inspection(actor, {"device_ids": ids, "passed": True}, at)
        pack = None
        if until == "packed":
            pack = services.create_pack(actor, {"device_ids": ids, "packaging": packaging}, at)
        db.session.commit()
        return pack

    return run


@pytest.fixture
def packed(step, make_device, site):
    def pack(site_=None, **kw):
        return step([make_device(site_ or site)], **kw)

    return pack


def cycle_body(steriliser, packs=(), **changes):
    body = {"steriliser_id": steriliser.id, "started_at": (NOW - timedelta(minutes=30)).astimezone(JAKARTA).isoformat(),
            "temperature_c": "134.5", "holding_seconds": 200, "pressure_kpa": 210.4, "indicator_result": "pass",
            "indicator_class": 5, "printout_ref": "LOG-0001", "pack_codes": [p.label_code for p in packs]}
    body.update(changes)
    return body


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def _utc(value: str) -> datetime:
    assert value.endswith("+00:00"), value
    return datetime.fromisoformat(value)


# --- the data logger -----------------------------------------------------------------------------

def test_data_logger_posts_a_passing_cycle_for_a_packed_pouch_and_it_awaits_release(
        client, admin, site, make_key, ready_steriliser, packed, db):
    key = make_key(site, by=admin)
    pack = packed()
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready_steriliser, [pack]), key=key)
    assert r.status_code == 201, r.get_json()
    cycle = r.get_json()
    assert r.headers["Location"].endswith(f"{V1}/cycles/{cycle['id']}")
    assert (cycle["status"], cycle["is_verdict_pass"], cycle["reasons"]) == ("awaiting_release", True, [])
    assert cycle["cycle_number"] == 1 and cycle["loaded_by_id"] is None
    assert _utc(cycle["started_at"]) == NOW - timedelta(minutes=30)
    assert cycle["started_at"] == "2026-11-25T02:30:00+00:00"  # posted as 09:30+07:00
    # Decimals are strings, as stored; a JSON number in the input is read the same way.
    assert (cycle["temperature_c"], cycle["pressure_kpa"], cycle["indicator_result"]) == ("134.5", "210.4", "pass")
    assert [(p["label_code"], p["status"]) for p in cycle["packs"]] == [(pack.label_code, "loaded")]
    assert client.api("GET", r.headers["Location"], key=key).get_json() == cycle
    assert db.session.get(Pack, pack.id).status == "loaded"


def test_data_logger_posts_a_failing_cycle_and_gets_every_reason_with_rule_code_and_message(
        client, admin, site, make_key, make_steriliser, add_test, packed, db):
    steriliser = make_steriliser(site)
    add_test(steriliser, "spore", at=NOW - timedelta(days=2))
    add_test(steriliser, "air_removal", at=NOW - timedelta(days=1))  # yesterday's does not count
    pack = packed()
    body = cycle_body(steriliser, [pack], temperature_c=120, holding_seconds=100, indicator_result="fail",
                      indicator_class=4, printout_ref="")
    r = client.api("POST", f"{V1}/cycles", body, key=make_key(site, by=admin))
    assert r.status_code == 201, r.get_json()
    cycle = r.get_json()
    assert (cycle["status"], cycle["is_verdict_pass"]) == ("failed", False)
    assert cycle["reasons"] == [
        {"rule": "cycle-parameters-met", "code": "temperature_low", "values": {"reached": "120.0", "required": "134.0"},
         "message": "Temperature reached 120.0 °C; the programme needs at least 134.0 °C."},
        {"rule": "cycle-parameters-met", "code": "holding_short", "values": {"reached": 100, "required": 180},
         "message": "Holding time was 100 s; the programme needs at least 180 s."},
        {"rule": "per-load-indicators", "code": "indicator_failed", "values": {},
         "message": "The chemical indicator did not pass."},
        {"rule": "per-load-indicators", "code": "no_printout_low_class", "values": {"required": 5, "given": 4},
         "message": "Without a printout or data-logger record, a class 5 or 6 indicator is needed."},
        {"rule": "air-removal-test-daily", "code": "no_air_removal_today", "values": {},
         "message": "No passing air-removal (Bowie-Dick/Helix) test today before this cycle."},
    ]
    assert cycle["packs"][0]["status"] == "failed"
    assert db.session.get(Pack, pack.id).items[0].device.status == "dirty"


def test_a_persons_failing_cycle_answers_409_with_the_reasons_until_confirmed(client, login_as, manager,
                                                                              ready_steriliser, packed, db):
    pack = packed()
    body = cycle_body(ready_steriliser, [pack], temperature_c="143.6")
    client = login_as(manager)
    r = client.api("POST", f"{V1}/cycles", body)
    assert r.status_code == 409, r.get_json()
    answer = r.get_json()
    assert answer["reasons"] == [{"rule": "cycle-parameters-met", "code": "temperature_high",
                                  "values": {"reached": "143.6", "limit": "137.0"},
                                  "message": "Temperature reached 143.6 °C, above the limit of 137.0 °C."}]
    assert "Temperature reached 143.6 °C" in answer["message"] and "confirm_failure" in answer["message"]
    assert answer["errors"] == {"confirm_failure": [answer["message"]]}
    assert _count(db, Cycle) == 0 and db.session.get(Pack, pack.id).status == "packed"
    r = client.api("POST", f"{V1}/cycles", {**body, "confirm_failure": False})
    assert r.status_code == 409 and _count(db, Cycle) == 0
    r = client.api("POST", f"{V1}/cycles", {**body, "confirm_failure": True})
    assert r.status_code == 201 and r.get_json()["status"] == "failed"
    assert r.get_json()["corrections"] == []


def correction_body(**changes):
    body = {"temperature_c": "134.6", "holding_seconds": 200, "pressure_kpa": "210.4", "indicator_result": "pass",
            "indicator_class": 5, "printout_ref": "LOG-0001", "reason": "143.6 typed for 134.6"}
    body.update(changes)
    return body


def test_manager_corrects_a_typo_and_the_load_shows_its_correction(client, login_as, manager, ready_steriliser,
                                                                   packed, db):
    client = login_as(manager)
    pack = packed()
    r = client.api("POST", f"{V1}/cycles", {**cycle_body(ready_steriliser, [pack], temperature_c="143.6"),
                                            "confirm_failure": True})
    cycle_id = r.get_json()["id"]
    r = client.api("POST", f"{V1}/cycles/{cycle_id}/corrections", correction_body())
    assert r.status_code == 201, r.get_json()
    assert r.headers["Location"].endswith(f"{V1}/cycles/{cycle_id}")
    cycle = r.get_json()
    assert (cycle["status"], cycle["is_verdict_pass"], cycle["temperature_c"]) == ("awaiting_release", True, "134.6")
    assert cycle["packs"][0]["status"] == "loaded"
    [correction] = cycle["corrections"]
    assert (correction["temperature_c_before"], correction["temperature_c_after"]) == ("143.6", "134.6")
    assert (correction["status_before"], correction["status_after"]) == ("failed", "awaiting_release")
    assert correction["reasons_before"][0]["code"] == "temperature_high" and correction["reasons_after"] == []
    assert correction["corrected_by_id"] == manager.id and correction["reason"] == "143.6 typed for 134.6"
    assert correction["indicator_result_before"] == correction["indicator_result_after"] == "pass"
    assert client.api("GET", f"{V1}/cycles/{cycle_id}").get_json() == cycle


def test_a_failing_correction_answers_409_until_confirmed_and_refusals_name_why(client, login_as, manager, nurse,
                                                                                admin, site, make_key,
                                                                                ready_steriliser, packed, db):
    client = login_as(manager)
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready_steriliser, [packed()]))
    cycle_id = r.get_json()["id"]
    r = client.api("POST", f"{V1}/cycles/{cycle_id}/corrections", correction_body(holding_seconds=100))
    assert r.status_code == 409 and [x["code"] for x in r.get_json()["reasons"]] == ["holding_short"]
    assert db.session.get(Cycle, cycle_id).status == "awaiting_release"
    r = client.api("POST", f"{V1}/cycles/{cycle_id}/corrections", correction_body(reason=""))
    assert r.status_code == 422 and "reason" in r.get_json()["errors"]["json"]
    r = client.api("POST", f"{V1}/cycles/{cycle_id}/corrections", correction_body(temperature_c="500"))
    assert r.status_code == 422
    r = client.api("POST", f"{V1}/cycles/{cycle_id}/corrections",
                   correction_body(holding_seconds=100, confirm_failure=True))
    assert r.status_code == 201 and r.get_json()["status"] == "failed"
    # Staff and a site's API key may not correct; nor is a data logger's record corrected by hand.
    r = login_as(nurse).api("POST", f"{V1}/cycles/{cycle_id}/corrections", correction_body(temperature_c="134.7"))
    assert r.status_code == 403
    key = make_key(site, by=admin)
    r = client.api("POST", f"{V1}/cycles/{cycle_id}/corrections", correction_body(temperature_c="134.7"), key=key)
    assert r.status_code == 403 and "cycles.correct" in r.get_json()["message"]
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready_steriliser, [packed()], temperature_c="143.6"), key=key)
    assert r.status_code == 201 and r.get_json()["status"] == "failed"  # a data logger needs no confirmation
    r = login_as(manager).api("POST", f"{V1}/cycles/{r.get_json()['id']}/corrections", correction_body())
    assert r.status_code == 409 and r.get_json()["message"] == "a data logger's record is not corrected by hand"
    assert len(client.api("GET", f"{V1}/cycles/{cycle_id}").get_json()["corrections"]) == 1


def test_reason_messages_follow_the_readers_language(client, login_as, manager, make_steriliser, site, db):
    steriliser = make_steriliser(site)  # no tests at all
    r = login_as(manager).api("POST", f"{V1}/cycles", {**cycle_body(steriliser), "confirm_failure": True})
    assert r.status_code == 201
    english = {x["code"]: x["message"] for x in r.get_json()["reasons"]}
    manager.language = "id"
    db.session.commit()
    r = client.api("GET", f"{V1}/cycles/{r.get_json()['id']}")
    indonesian = {x["code"]: x["message"] for x in r.get_json()["reasons"]}
    assert set(indonesian) == set(english) == {"no_air_removal_today", "spore_missing"}
    assert indonesian["spore_missing"] != english["spore_missing"]


def test_site_api_key_may_record_but_not_release_or_fail_a_load(client, admin, site, make_key, ready_steriliser,
                                                                packed, snapshot):
    key = make_key(site, by=admin)
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready_steriliser, [packed()]), key=key)
    cycle_id = r.get_json()["id"]
    before = snapshot()
    for action, body in (("release", {}), ("fail", {"note": "wet packs"})):
        r = client.api("POST", f"{V1}/cycles/{cycle_id}/{action}", body, key=key)
        assert r.status_code == 403, r.get_json()
        assert r.get_json()["code"] == 403 and "cycles.decide" in r.get_json()["message"]
    assert snapshot() == before


def test_manager_session_releases_a_load_and_its_pack_becomes_sterile_with_an_expiry(
        client, login_as, admin, manager, site, make_key, ready_steriliser, packed, snapshot):
    pack = packed()
    key = make_key(site, by=admin)
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready_steriliser, [pack]), key=key)
    cycle_id = r.get_json()["id"]
    c = login_as(manager)
    before = snapshot()
    assert c.api("POST", f"{V1}/cycles/{cycle_id}/release", {}, csrf=False).status_code == 400  # no X-CSRFToken
    assert snapshot() == before

    r = c.api("POST", f"{V1}/cycles/{cycle_id}/release", {"note": "printout checked"})
    assert r.status_code == 200, r.get_json()
    cycle = r.get_json()
    assert (cycle["status"], cycle["decided_by_id"], cycle["decision_note"]) == ("released", manager.id,
                                                                                  "printout checked")
    assert _utc(cycle["decided_at"]) == NOW

    r = c.api("GET", f"{V1}/packs/{pack.label_code.lower()}")  # typed in lower case
    assert r.status_code == 200
    got = r.get_json()
    assert (got["label_code"], got["status"], got["state"]) == (pack.label_code, "sterile", "sterile")
    assert _utc(got["expires_at"]) == NOW - timedelta(minutes=30) + timedelta(days=60)
    assert got["label_url"] == f"http://localhost/p/{pack.label_code}"
    assert got["cycle"]["id"] == cycle_id and got["cycle"]["status"] == "released"
    assert [(d["serial"], d["status"]) for d in got["devices"]] == [("SN-0001", "in_service")]
    assert [e["kind"] for e in got["history"]] == ["packed", "loaded", "sterilised"]
    # The same pack read after its expiry is expired, though still stored as sterile.
    with time_machine.travel(NOW + timedelta(days=61), tick=False):
        later = c.api("GET", f"{V1}/packs/{pack.label_code}", key=key).get_json()
    assert (later["status"], later["state"]) == ("sterile", "expired")
    assert c.api("POST", f"{V1}/cycles/{cycle_id}/release", {}).status_code == 409  # decided once


# --- refusals name the field, store nothing ------------------------------------------------------

@pytest.fixture
def logger_scene(client, admin, site, make_key, ready_steriliser, packed, db):
    """A key, a ready steriliser with cycle 41 already recorded for a first pack, and a second, packed pouch."""
    key = make_key(site, by=admin)
    first, second = packed(), packed()
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready_steriliser, [first], cycle_number=41), key=key)
    assert r.status_code == 201
    return SimpleNamespace(key=key, steriliser=ready_steriliser, first=first, second=second)


CYCLE_REFUSALS = {
    # case: (changes to a good body, status, where the field is named, field)
    "500 °C": (lambda s: {"temperature_c": "500"}, 422, "json", "temperature_c"),
    "-5 °C": (lambda s: {"temperature_c": -5}, 422, "json", "temperature_c"),
    "temperature not a number": (lambda s: {"temperature_c": "hot"}, 422, "json", "temperature_c"),
    "negative holding time": (lambda s: {"holding_seconds": -1}, 422, "json", "holding_seconds"),
    "holding time as text": (lambda s: {"holding_seconds": "200"}, 422, "json", "holding_seconds"),
    "indicator maybe": (lambda s: {"indicator_result": "maybe"}, 422, "json", "indicator_result"),
    "start without offset": (lambda s: {"started_at": "2026-11-25T09:30:00"}, 422, "json", "started_at"),
    "start missing": (lambda s: {"started_at": None}, 422, "json", "started_at"),
    "an unknown field": (lambda s: {"verdict": "pass"}, 422, "json", "verdict"),
    "start in the future": (lambda s: {"started_at": (NOW + timedelta(hours=1)).isoformat()}, 422, None, "started_at"),
    "unknown steriliser": (lambda s: {"steriliser_id": 987654}, 404, None, "steriliser_id"),
    "unknown programme": (lambda s: {"programme_id": 987654}, 404, None, "programme_id"),
    "repeated cycle number": (lambda s: {"cycle_number": 41}, 409, None, "cycle_number"),
    "pack already in another load": (lambda s: {"pack_codes": [s.first.label_code]}, 409, None, "pack_codes"),
    "unknown label": (lambda s: {"pack_codes": ["PK-NOPE2345"]}, 404, None, "pack_codes"),
}


@pytest.mark.parametrize("case", CYCLE_REFUSALS)
def test_cycle_refusals_name_the_field_and_store_nothing(client, logger_scene, snapshot, case):
    changes, status, location, field = CYCLE_REFUSALS[case]
    s = logger_scene
    body = cycle_body(s.steriliser, [s.second], **changes(s))
    body = {k: v for k, v in body.items() if v is not None}
    before = snapshot()
    r = client.api("POST", f"{V1}/cycles", body, key=s.key)
    assert r.status_code == status, r.get_json()
    answer = r.get_json()
    assert answer["code"] == status and answer["message"]
    errors = answer["errors"][location] if location else answer["errors"]
    assert list(errors) == [field]
    assert snapshot() == before


RULE_REFUSALS = {
    # A refusal by a guideline rule names the field and the rule.
    "spore pass without a grown control": (
        "key", "/steriliser-tests", lambda w: {"steriliser_id": w.steriliser.id, "kind": "spore", "result": "pass",
                                               "indicator_lot": "BI-7", "control_result": "no_growth"},
        422, "control_result", "spore-test"),
    "air-removal test on a type N": (
        "key", "/steriliser-tests", lambda w: {"steriliser_id": w.type_n.id, "kind": "air_removal",
                                               "result": "pass"},
        422, "kind", "air-removal-test-daily"),
    "pack a device that was not cleaned": (
        "manager", "/packs", lambda w: {"device_ids": [w.dirty.id], "packaging": "pouch"},
        409, "device_ids", "clean-before-sterilise"),
    "inspect a device that was not cleaned": (
        "manager", "/reprocessing/inspect", lambda w: {"device_ids": [w.dirty.id], "passed": True},
        409, "device_ids", "clean-before-sterilise"),
}


@pytest.mark.parametrize("case", RULE_REFUSALS)
def test_refusals_by_a_guideline_rule_name_the_field_and_the_rule(client, login_as, admin, manager, site, make_key,
                                                                  ready_steriliser, make_steriliser, make_device,
                                                                  snapshot, case):
    who, path, body, status, field, rule = RULE_REFUSALS[case]
    w = SimpleNamespace(steriliser=ready_steriliser, type_n=make_steriliser(site, type="N"),
                        dirty=make_device(site))
    key = make_key(site, by=admin) if who == "key" else None
    c = login_as(manager) if who == "manager" else client
    before = snapshot()
    r = c.api("POST", V1 + path, body(w), key=key)
    assert r.status_code == status, r.get_json()
    assert list(r.get_json()["errors"]) == [field]
    assert r.get_json()["rule"] == rule
    assert snapshot() == before


# --- a failed spore test -------------------------------------------------------------------------

def _released_load(db, admin, steriliser, pack, started_at):
    """A load that passed its checks and was released, at `started_at`."""
    actor = actor_for_user(admin)
    cycle = services.record_cycle(actor, cycle_body(steriliser, [pack], started_at=started_at.isoformat()),
                                  started_at + timedelta(minutes=40))
    services.release_cycle(actor, cycle.id, started_at + timedelta(minutes=45))
    db.session.commit()
    assert cycle.status == "released", cycle.reasons
    return cycle


def test_failed_spore_test_posted_by_the_key_takes_the_steriliser_out_and_recalls_the_loads_since_the_last_pass(
        client, login_as, admin, manager, site, make_key, make_steriliser, add_test, packed, db):
    steriliser = make_steriliser(site)
    add_test(steriliser, "spore", at=NOW - timedelta(days=10))
    for days in (4, 2, 0):
        add_test(steriliser, "air_removal", at=NOW - timedelta(days=days, hours=2))
    add_test(steriliser, "spore", at=NOW - timedelta(days=3))  # the last passing one
    before_pass = _released_load(db, admin, steriliser, packed(), NOW - timedelta(days=4))
    after_pass = _released_load(db, admin, steriliser, packed(), NOW - timedelta(days=2))
    key = make_key(site, by=admin)
    waiting_pack = packed()
    r = client.api("POST", f"{V1}/cycles", cycle_body(steriliser, [waiting_pack]), key=key)
    assert r.get_json()["status"] == "awaiting_release"
    waiting = r.get_json()["id"]

    r = client.api("POST", f"{V1}/steriliser-tests", {
        "steriliser_id": steriliser.id, "kind": "spore", "result": "fail", "indicator_lot": "BI-9",
        "control_result": "grew", "performed_at": "2026-11-25T09:55:00+07:00"}, key=key)
    assert r.status_code == 201, r.get_json()
    test = r.get_json()
    assert r.headers["Location"].endswith(f"{V1}/steriliser-tests/{test['id']}")
    assert (test["kind"], test["result"], test["performed_at"], test["performed_by_id"]) == (
        "spore", "fail", "2026-11-25T02:55:00+00:00", None)

    got = client.api("GET", f"{V1}/sterilisers/{steriliser.id}", key=key).get_json()
    assert (got["is_in_service"], got["out_of_service_reason"]) == (False, "failed spore test")

    # The recall is for people to work through (a data logger's key reads no recalls).
    assert client.api("GET", f"{V1}/recalls?open_only=true", key=key).status_code == 403
    person = login_as(manager)
    recalls = person.api("GET", f"{V1}/recalls?open_only=true").get_json()
    assert len(recalls) == 1
    recall = person.api("GET", f"{V1}/recalls/{recalls[0]['id']}").get_json()
    assert (recall["steriliser_id"], recall["trigger_test_id"], recall["is_open"]) == (steriliser.id, test["id"], True)
    assert _utc(recall["since"]) == NOW - timedelta(days=3)
    assert [(x["cycle_id"], x["previous_status"]) for x in recall["loads"]] == [
        (after_pass.id, "released"), (waiting, "awaiting_release")]
    assert recall["loads"][1]["pack_codes"] == [waiting_pack.label_code]
    assert recall["checklist"] == {"retest": None, "consecutive_passes": 0, "required_passes": 3,
                                   "passes_done": False, "in_service": False, "clients_contacted": False}
    assert db.session.get(Cycle, before_pass.id).status == "released"
    pack = client.api("GET", f"{V1}/packs/{after_pass.packs[0].label_code}", key=key).get_json()
    assert pack["state"] == "recalled" and pack["devices"][0]["status"] == "dirty"

    # The next load of that steriliser fails by the rules, whoever posts it.
    r = client.api("POST", f"{V1}/cycles", cycle_body(steriliser, [packed()]), key=key)
    assert r.status_code == 201
    assert ("failed-test-recall", "steriliser_out_of_service") in {(x["rule"], x["code"])
                                                                   for x in r.get_json()["reasons"]}


def test_manager_works_a_recall_through_its_checklist_to_closing(client, login_as, admin, manager, site, make_key,
                                                                  ready_steriliser, db):
    key = make_key(site, by=admin)
    body = {"steriliser_id": ready_steriliser.id, "kind": "spore", "indicator_lot": "BI-1"}
    client.api("POST", f"{V1}/steriliser-tests", {**body, "result": "fail", "control_result": "grew"}, key=key)
    recall_id = db.session.scalar(select(Recall.id))
    c = login_as(manager)
    r = c.api("POST", f"{V1}/recalls/{recall_id}/close", {"note": "too soon"})
    assert r.status_code == 409 and r.get_json()["rule"] == "failed-test-recall"
    assert list(r.get_json()["errors"]) == ["recall_id"]
    # A spore test is posted pending by the logger, read later.
    for n in range(3):
        with time_machine.travel(NOW + timedelta(hours=n + 1), tick=False):
            r = client.api("POST", f"{V1}/steriliser-tests", {**body, "result": "pending"}, key=key)
            assert r.status_code == 201 and r.get_json()["result"] == "pending"
            r = client.api("POST", f"{V1}/steriliser-tests/{r.get_json()['id']}/result",
                           {"result": "pass", "control_result": "grew"}, key=key)
            assert r.status_code == 200 and r.get_json()["result"] == "pass"
            assert r.get_json()["result_at"] == (NOW + timedelta(hours=n + 1)).isoformat()
    r = client.api("POST", f"{V1}/steriliser-tests/{r.get_json()['id']}/result", {"result": "fail"}, key=key)
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["result"]
    with time_machine.travel(NOW + timedelta(hours=5), tick=False):
        checklist = c.api("GET", f"{V1}/recalls/{recall_id}").get_json()["checklist"]
        assert (checklist["consecutive_passes"], checklist["passes_done"], checklist["in_service"]) == (3, True, True)
        assert checklist["retest"]["result"] == "pass"
        r = c.api("POST", f"{V1}/recalls/{recall_id}/clients-contacted", {"note": "no loads reached clients"})
        assert r.status_code == 200 and r.get_json()["clients_contacted_by_id"] == manager.id
        r = c.api("POST", f"{V1}/recalls/{recall_id}/close", {"note": "retested, three passes"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["is_open"] is False and _utc(r.get_json()["closed_at"]) == NOW + timedelta(hours=5)
    assert c.api("GET", f"{V1}/recalls?open_only=1").get_json() == []
    assert len(c.api("GET", f"{V1}/recalls").get_json()) == 1


# --- people's flows: devices, sterilisers, reprocessing, packs -----------------------------------

def test_manager_registers_kinds_devices_sterilisers_and_programmes(login_as, manager, site, db):
    c = login_as(manager)
    r = c.api("POST", f"{V1}/device-kinds", {"name": "Micro-needling pen", "spaulding_class": "critical",
                                             "is_hollow": True, "default_max_cycles": 200})
    assert r.status_code == 201, r.get_json()
    kind = r.get_json()
    assert c.api("GET", r.headers["Location"]).get_json() == kind
    assert c.api("POST", f"{V1}/device-kinds", {"name": "micro-needling PEN", "spaulding_class": "critical"}
                 ).status_code == 409

    r = c.api("POST", f"{V1}/devices", {"site_id": site.id, "device_type_id": kind["id"], "serial": "PEN-1"})
    assert r.status_code == 201, r.get_json()
    device = r.get_json()
    assert (device["status"], device["max_cycles"], device["device_type_name"]) == ("dirty", 200,
                                                                                    "Micro-needling pen")
    r = c.api("POST", f"{V1}/devices/{device['id']}/status", {"status": "quarantined", "reason": "bent tip"})
    assert r.status_code == 200 and r.get_json()["status"] == "quarantined"
    detail = c.api("GET", f"{V1}/devices/{device['id']}").get_json()
    assert [(e["kind"], e["to_status"], e["note"]) for e in detail["history"]] == [
        ("status", "quarantined", "bent tip"), ("registered", "dirty", "")]
    assert [d["serial"] for d in c.api("GET", f"{V1}/devices?status=quarantined&q=pen").get_json()] == ["PEN-1"]
    assert c.api("GET", f"{V1}/devices?status=dirty").get_json() == []
    r = c.api("POST", f"{V1}/devices/{device['id']}/status", {"status": "in_service", "reason": "fine"})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["status"]

    steriliser = {"site_id": site.id, "name": "Autoclave 1", "type": "S", "is_validated_for_wrapped": True,
                  "make": "Acme", "validation_due_on": "2027-06-01"}
    r = c.api("POST", f"{V1}/sterilisers", steriliser)
    assert r.status_code == 201, r.get_json()
    sid = r.get_json()["id"]
    assert r.headers["Location"].endswith(f"{V1}/sterilisers/{sid}")
    assert (r.get_json()["is_in_service"], r.get_json()["programmes"]) == (True, [])
    r = c.api("PUT", f"{V1}/sterilisers/{sid}", {**steriliser, "name": "Autoclave A", "type": "B"})
    assert r.status_code == 200 and (r.get_json()["name"], r.get_json()["type"]) == ("Autoclave A", "B")
    r = c.api("POST", f"{V1}/sterilisers/{sid}/programmes", {"name": "134 °C", "temperature_c": "134",
                                                             "min_holding_seconds": 210, "min_pressure_kpa": 206})
    assert r.status_code == 201, r.get_json()
    assert r.headers["Location"].endswith(f"{V1}/sterilisers/{sid}")
    assert (r.get_json()["temperature_c"], r.get_json()["min_pressure_kpa"]) == ("134.0", "206.0")
    r = c.api("POST", f"{V1}/sterilisers/{sid}/programmes", {"name": "Hot", "temperature_c": "180",
                                                             "min_holding_seconds": 210})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["temperature_c"]
    r = c.api("POST", f"{V1}/sterilisers/{sid}/out-of-service", {"reason": "door seal leaks"})
    assert r.status_code == 200
    listed = c.api("GET", f"{V1}/sterilisers?site_id={site.id}").get_json()
    assert [(s["name"], s["is_in_service"], s["out_of_service_reason"], len(s["programmes"])) for s in listed] == [
        ("Autoclave A", False, "door seal leaks", 1)]


def test_staff_clean_inspect_pack_and_compromise_through_the_api(login_as, nurse, manager, site, make_device, db):
    devices = [make_device(site), make_device(site)]
    ids = [d.id for d in devices]
    c = login_as(nurse)
    r = c.api("POST", f"{V1}/reprocessing/clean", {"device_ids": ids, "method": "washer_disinfector"})
    assert r.status_code == 200, r.get_json()
    assert [d["status"] for d in r.get_json()] == ["in_reprocessing"] * 2
    r = c.api("POST", f"{V1}/reprocessing/inspect", {"device_ids": ids[:1], "passed": False})
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["note"]
    r = c.api("POST", f"{V1}/reprocessing/inspect", {"device_ids": ids, "passed": True})
    assert r.status_code == 200
    r = c.api("POST", f"{V1}/packs", {"device_ids": ids, "packaging": "wrap"})
    assert r.status_code == 201, r.get_json()
    pack = r.get_json()
    assert pack["label_code"].startswith("PK-") and pack["label_url"].endswith(f"/p/{pack['label_code']}")
    assert r.headers["Location"].endswith(f"{V1}/packs/{pack['label_code']}")
    assert (pack["status"], pack["state"], pack["packed_by_id"]) == ("packed", "packed", nurse.id)
    assert sorted(d["id"] for d in pack["devices"]) == sorted(ids)
    assert [p["label_code"] for p in c.api("GET", f"{V1}/packs?status=packed").get_json()] == [pack["label_code"]]

    r = c.api("POST", f"{V1}/packs/{pack['label_code']}/compromise", {"reason": "other"})
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["note"]
    r = c.api("POST", f"{V1}/packs/{pack['label_code']}/compromise", {"reason": "torn"})
    assert r.status_code == 200 and (r.get_json()["status"], r.get_json()["compromised_reason"]) == (
        "compromised", "torn")
    assert [d["status"] for d in r.get_json()["devices"]] == ["dirty", "dirty"]
    assert c.api("POST", f"{V1}/packs/{pack['label_code']}/compromise", {"reason": "wet"}).status_code == 409
    r = c.api("GET", f"{V1}/packs/PK-NOPE2345")
    assert r.status_code == 404 and list(r.get_json()["errors"]) == ["code"]
    # Staff may not decide what devices exist.
    assert c.api("POST", f"{V1}/device-kinds", {"name": "Forceps", "spaulding_class": "critical"}).status_code == 403


def test_lists_filter_by_steriliser_kind_result_verdict_and_time(client, admin, site, make_key, make_steriliser,
                                                                 ready_steriliser, packed, db):
    other = make_steriliser(site, name="Other")
    key = make_key(site, by=admin)
    passed = client.api("POST", f"{V1}/cycles", cycle_body(ready_steriliser, [packed()]), key=key).get_json()
    failed = client.api("POST", f"{V1}/cycles", cycle_body(other, [packed()]), key=key).get_json()

    def ids(url):
        r = client.api("GET", V1 + url, key=key)
        assert r.status_code == 200, r.get_json()
        return [x["id"] for x in r.get_json()]

    assert ids("/cycles") == [failed["id"], passed["id"]]  # newest first (same start: highest id first)
    assert ids("/cycles?verdict=pass") == [passed["id"]]
    assert ids("/cycles?verdict=fail&status=failed") == [failed["id"]]
    assert ids(f"/cycles?steriliser_id={other.id}") == [failed["id"]]
    assert ids("/cycles?from=2026-11-25T02:30:00Z&to=2026-11-25T09:31:00%2B07:00") == [failed["id"], passed["id"]]
    assert ids("/cycles?from=2026-11-25T02:31:00Z") == []
    assert ids(f"/packs?cycle_id={passed['id']}") == [passed["packs"][0]["id"]]

    tests = ids(f"/steriliser-tests?steriliser_id={ready_steriliser.id}")
    assert len(tests) == 2
    assert len(ids("/steriliser-tests?kind=spore&result=pass")) == 1
    assert ids("/steriliser-tests?to=2026-11-22T03:00:00Z") == []
    assert len(ids("/steriliser-tests?from=2026-11-22T03:00:00Z")) == 2
    r = client.api("GET", f"{V1}/cycles?from=2026-11-25T02:30:00", key=key)
    assert r.status_code == 422 and list(r.get_json()["errors"]["query"]) == ["from"]
    r = client.api("GET", f"{V1}/cycles?verdict=maybe", key=key)
    assert r.status_code == 422 and list(r.get_json()["errors"]["query"]) == ["verdict"]
    r = client.api("GET", f"{V1}/cycles?page_size=1&page=2", key=key)
    assert [x["id"] for x in r.get_json()] == [passed["id"]]
    assert json.loads(r.headers["X-Pagination"])["total"] == 2


# --- reach ---------------------------------------------------------------------------------------

@pytest.fixture
def site_b(db, site, make_site, admin, make_steriliser, add_test, packed):
    """Site B of the same organisation: a ready steriliser, a pack, a load and a test."""
    b = make_site(org=site.organisation, name="Bandung")
    steriliser = make_steriliser(b, name="Bandung autoclave")
    add_test(steriliser, "spore", at=NOW - timedelta(days=3))
    test = add_test(steriliser, "air_removal", at=NOW - timedelta(hours=2))
    pack, loaded = packed(b), packed(b)
    cycle = services.record_cycle(actor_for_user(admin), cycle_body(steriliser, [loaded]), NOW)
    db.session.commit()
    return SimpleNamespace(site=b, steriliser=steriliser, pack=pack, cycle=cycle, test=test,
                           device=pack.items[0].device)


def test_site_a_key_gets_404_for_site_b_sterilisers_packs_and_loads(client, admin, site, make_key,
                                                                     ready_steriliser, packed, site_b, snapshot):
    key = make_key(site, by=admin)
    before = snapshot()
    for url in (f"/sterilisers/{site_b.steriliser.id}", f"/packs/{site_b.pack.label_code}",
                f"/cycles/{site_b.cycle.id}", f"/steriliser-tests/{site_b.test.id}"):
        theirs = client.api("GET", V1 + url, key=key)
        missing = client.api("GET", V1 + url.rsplit("/", 1)[0] + "/987654", key=key)
        assert theirs.status_code == missing.status_code == 404, url
        assert theirs.get_json()["errors"].keys() == missing.get_json()["errors"].keys(), url
    refusals = [
        ("/cycles", cycle_body(site_b.steriliser, [site_b.pack]), "steriliser_id"),
        ("/cycles", cycle_body(ready_steriliser, [site_b.pack]), "pack_codes"),
        ("/steriliser-tests", {"steriliser_id": site_b.steriliser.id, "kind": "air_removal", "result": "fail"},
         "steriliser_id"),
    ]
    for path, body, field in refusals:
        r = client.api("POST", V1 + path, body, key=key)
        assert r.status_code == 404 and list(r.get_json()["errors"]) == [field], (path, r.get_json())
    for path in ("/sterilisers", "/packs", "/cycles", "/steriliser-tests"):
        assert client.api("GET", f"{V1}{path}?site_id={site_b.site.id}&steriliser_id={site_b.steriliser.id}",
                          key=key).get_json() == [], path
    assert snapshot() == before


def test_an_out_of_reach_steriliser_answers_exactly_like_a_missing_one(client, admin, site, make_key, site_b):
    key = make_key(site, by=admin)
    theirs = client.api("GET", f"{V1}/sterilisers/{site_b.steriliser.id}", key=key)
    missing = client.api("GET", f"{V1}/sterilisers/987654", key=key)
    assert (theirs.status_code, theirs.get_json()) == (missing.status_code, missing.get_json())
    theirs = client.api("GET", f"{V1}/packs/{site_b.pack.label_code}", key=key)
    missing = client.api("GET", f"{V1}/packs/PK-NOPE2345", key=key)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_json()["errors"].keys() == missing.get_json()["errors"].keys() == {"code"}


# --- read-only callers ---------------------------------------------------------------------------

@pytest.fixture
def scene(db, admin, site, make_steriliser, ready_steriliser, make_device, step):
    """One of everything a write may act on, at site A."""
    actor = actor_for_user(admin)
    dirty, cleaned, inspected = make_device(site), make_device(site), make_device(site)
    step([cleaned], until="cleaned")
    step([inspected], until="inspected")
    loaded, spare = step([make_device(site)]), step([make_device(site)])
    cycle = services.record_cycle(actor, cycle_body(ready_steriliser, [loaded]), NOW)
    pending = services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "pending",
                                           "indicator_lot": "BI-3"}, NOW - timedelta(minutes=20))
    recalled = make_steriliser(site, name="Recalled")
    services.record_test(actor, {"steriliser_id": recalled.id, "kind": "spore", "result": "fail",
                                 "indicator_lot": "BI-4", "control_result": "grew"}, NOW - timedelta(minutes=10))
    db.session.commit()
    assert cycle.status == "awaiting_release"
    return SimpleNamespace(site=site.id, steriliser=ready_steriliser.id, kind=dirty.device_type_id, dirty=dirty.id,
                           cleaned=cleaned.id, inspected=inspected.id, pack=spare.label_code, cycle=cycle.id,
                           test=pending.id, recall=db.session.scalar(select(Recall.id)))


# case: (method, path, body, answer to an admin) — the admin's answer is the control for the 403s.
WRITES = {
    "add device kind": ("POST", "/device-kinds", lambda s: {"name": "Forceps", "spaulding_class": "critical"}, 201),
    "add device": ("POST", "/devices", lambda s: {"site_id": s.site, "device_type_id": s.kind, "serial": "NEW-1"},
                   201),
    "change device status": ("POST", "/devices/{dirty}/status", lambda s: {"status": "retired", "reason": "worn"},
                             200),
    "add steriliser": ("POST", "/sterilisers", lambda s: {"site_id": s.site, "name": "New", "type": "B"}, 201),
    "update steriliser": ("PUT", "/sterilisers/{steriliser}", lambda s: {"site_id": s.site, "name": "Renamed",
                                                                          "type": "B"}, 200),
    "add programme": ("POST", "/sterilisers/{steriliser}/programmes",
                      lambda s: {"name": "121 °C", "temperature_c": "121.0", "min_holding_seconds": 900}, 201),
    "take out of service": ("POST", "/sterilisers/{steriliser}/out-of-service", lambda s: {"reason": "repair"}, 200),
    "record test": ("POST", "/steriliser-tests", lambda s: {"steriliser_id": s.steriliser, "kind": "air_removal",
                                                            "result": "pass"}, 201),
    "read spore test": ("POST", "/steriliser-tests/{test}/result", lambda s: {"result": "pass",
                                                                              "control_result": "grew"}, 200),
    "record cycle": ("POST", "/cycles", lambda s: {"steriliser_id": s.steriliser, "started_at": NOW.isoformat(),
                                                   "temperature_c": "134.2", "holding_seconds": 200,
                                                   "indicator_result": "pass", "printout_ref": "LOG-7"}, 201),
    "release cycle": ("POST", "/cycles/{cycle}/release", lambda s: None, 200),  # no body: the note is optional
    "fail cycle": ("POST", "/cycles/{cycle}/fail", lambda s: {"note": "wet packs"}, 200),
    "correct cycle": ("POST", "/cycles/{cycle}/corrections", lambda s: {
        "temperature_c": "134.6", "holding_seconds": 200, "indicator_result": "pass", "indicator_class": 5,
        "printout_ref": "LOG-0001", "reason": "134.5 typed for 134.6"}, 201),
    "clean": ("POST", "/reprocessing/clean", lambda s: {"device_ids": [s.dirty], "method": "manual"}, 200),
    "inspect": ("POST", "/reprocessing/inspect", lambda s: {"device_ids": [s.cleaned], "passed": True}, 200),
    "pack": ("POST", "/packs", lambda s: {"device_ids": [s.inspected], "packaging": "pouch"}, 201),
    "compromise pack": ("POST", "/packs/{pack}/compromise", lambda s: {"reason": "dropped"}, 200),
    "clients contacted": ("POST", "/recalls/{recall}/clients-contacted", lambda s: {"note": "none reached"}, 200),
    # Refused for the admin too until the checklist is done: by the rule, not by the role.
    "close recall": ("POST", "/recalls/{recall}/close", lambda s: {"note": "done"}, 409),
}
MACHINE_WRITES = {"record test", "read spore test", "record cycle"}
READS = ["/device-kinds", "/device-kinds/{kind}", "/devices", "/devices/{dirty}", "/sterilisers",
         "/sterilisers/{steriliser}", "/steriliser-tests", "/steriliser-tests/{test}", "/cycles", "/cycles/{cycle}",
         "/packs", "/packs/{pack}", "/recalls", "/recalls/{recall}"]


def _call(client, s, method, path, body, key=None):
    return client.api(method, V1 + path.format(**vars(s)), body(s), key=key)


@pytest.mark.parametrize("case", WRITES)
def test_auditor_gets_403_on_every_write_and_nothing_is_stored(login_as, auditor, scene, snapshot, case):
    method, path, body, _ = WRITES[case]
    before = snapshot()
    r = _call(login_as(auditor), scene, method, path, body)
    assert r.status_code == 403, r.get_json()
    assert r.get_json()["code"] == 403 and r.get_json()["message"]
    assert snapshot() == before


@pytest.mark.parametrize("case", sorted(set(WRITES) - MACHINE_WRITES))
def test_site_api_key_gets_403_on_every_write_but_tests_and_cycles(client, admin, site, make_key, scene, snapshot,
                                                                    case):
    method, path, body, _ = WRITES[case]
    key = make_key(site, by=admin)
    before = snapshot()
    r = _call(client, scene, method, path, body, key=key)
    assert r.status_code == 403, r.get_json()
    assert snapshot() == before


@pytest.mark.parametrize("case", WRITES)
def test_admin_may_do_every_write_of_the_table(login_as, admin, scene, snapshot, case):
    """The control for the 403s above: the same requests pass the role check for an admin."""
    method, path, body, status = WRITES[case]
    before = snapshot()
    r = _call(login_as(admin), scene, method, path, body)
    assert r.status_code == status, r.get_json()
    assert (snapshot() != before) == (status < 400)


@pytest.mark.parametrize("case", sorted(MACHINE_WRITES))
def test_site_api_key_may_post_tests_and_cycles(client, admin, site, make_key, scene, snapshot, case):
    method, path, body, status = WRITES[case]
    before = snapshot()
    r = _call(client, scene, method, path, body, key=make_key(site, by=admin))
    assert r.status_code == status, r.get_json()
    assert snapshot() != before


# A data logger reads sterilisers, tests, loads and packs; devices, their kinds and recalls are for people.
NOT_FOR_KEYS = {"/device-kinds", "/device-kinds/{kind}", "/devices", "/devices/{dirty}", "/recalls",
                "/recalls/{recall}"}


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("caller", ["auditor", "site API key", "staff"])
def test_read_only_callers_and_staff_may_read_everything_of_their_site(login_as, client, admin, auditor, nurse, site,
                                                                        make_key, scene, caller, path):
    key = make_key(site, by=admin) if caller == "site API key" else None
    if caller != "site API key":
        client = login_as(auditor if caller == "auditor" else nurse)
    r = client.api("GET", V1 + path.format(**vars(scene)), key=key)
    if key and path in NOT_FOR_KEYS:
        assert r.status_code == 403, r.get_json()
        return
    assert r.status_code == 200, r.get_json()
    if "{" not in path:
        assert r.get_json(), f"{path} lists nothing"


# --- the OpenAPI document ------------------------------------------------------------------------

ENDPOINTS = {
    "/api/v1/device-kinds": {"get", "post"},
    "/api/v1/device-kinds/{type_id}": {"get"},
    "/api/v1/devices": {"get", "post"},
    "/api/v1/devices/{device_id}": {"get"},
    "/api/v1/devices/{device_id}/status": {"post"},
    "/api/v1/sterilisers": {"get", "post"},
    "/api/v1/sterilisers/{steriliser_id}": {"get", "put"},
    "/api/v1/sterilisers/{steriliser_id}/programmes": {"post"},
    "/api/v1/sterilisers/{steriliser_id}/out-of-service": {"post"},
    "/api/v1/steriliser-tests": {"get", "post"},
    "/api/v1/steriliser-tests/{test_id}": {"get"},
    "/api/v1/steriliser-tests/{test_id}/result": {"post"},
    "/api/v1/cycles": {"get", "post"},
    "/api/v1/cycles/{cycle_id}": {"get"},
    "/api/v1/cycles/{cycle_id}/release": {"post"},
    "/api/v1/cycles/{cycle_id}/fail": {"post"},
    "/api/v1/cycles/{cycle_id}/corrections": {"post"},
    "/api/v1/cycle-records": {"get", "post"},
    "/api/v1/cycle-records/{curve_id}": {"get"},
    "/api/v1/cycle-records/{curve_id}/file": {"get"},
    "/api/v1/cycle-records/files": {"post"},
    "/api/v1/reprocessing/clean": {"post"},
    "/api/v1/reprocessing/inspect": {"post"},
    "/api/v1/packs": {"get", "post"},
    "/api/v1/packs/{code}": {"get"},
    "/api/v1/packs/{code}/compromise": {"post"},
    "/api/v1/recalls": {"get"},
    "/api/v1/recalls/{recall_id}": {"get"},
    "/api/v1/recalls/{recall_id}/clients-contacted": {"post"},
    "/api/v1/recalls/{recall_id}/close": {"post"},
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def test_openapi_lists_every_devices_and_sterilisation_path(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    for path, methods in ENDPOINTS.items():
        assert set(spec["paths"].get(path, {})) & HTTP_METHODS == methods, path
        for method in methods:
            operation = spec["paths"][path][method]
            assert operation["tags"] and "401" in operation["responses"], (path, method)
    tags = {t["name"] for t in spec["tags"]}
    assert {"device kinds", "devices", "sterilisers", "steriliser tests", "cycles", "reprocessing", "packs",
            "recalls"} <= tags


def test_openapi_documents_filters_decimals_as_strings_and_the_verdict(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    schemas = spec["components"]["schemas"]

    def names(path):
        return {p["name"] for p in spec["paths"][f"{V1}{path}"]["get"]["parameters"]}

    assert {"site_id", "status", "q", "page", "page_size"} <= names("/devices")
    assert {"steriliser_id", "kind", "result", "from", "to"} <= names("/steriliser-tests")
    assert {"steriliser_id", "status", "verdict", "from", "to"} <= names("/cycles")
    assert {"status", "cycle_id"} <= names("/packs")
    assert {"open_only"} <= names("/recalls")
    for name, field in (("Cycle", "temperature_c"), ("Cycle", "pressure_kpa"), ("Programme", "temperature_c"),
                        ("SteriliserTest", "measured_value"), ("CycleInput", "temperature_c")):
        assert schemas[name]["properties"][field]["type"] == "string", (name, field)
        assert schemas[name]["properties"][field]["format"] == "decimal", (name, field)
    assert set(schemas["Reason"]["properties"]) == {"rule", "code", "values", "message"}
    assert {"status", "is_verdict_pass", "reasons", "packs"} <= set(schemas["Cycle"]["properties"])
    assert {"state", "label_code", "label_url", "devices", "cycle", "history"} <= set(
        schemas["PackDetail"]["properties"])
    assert {"loads", "checklist"} <= set(schemas["RecallDetail"]["properties"])
    assert set(schemas["CycleInput"]["required"]) == {"steriliser_id", "started_at", "temperature_c",
                                                       "holding_seconds", "indicator_result"}
    for name, schema in schemas.items():
        if name.endswith("Input"):
            assert schema["additionalProperties"] is False, name
