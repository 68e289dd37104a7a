"""A typed figure that fails a load is confirmed before it is stored; a manager corrects a load's figures with a
reason while none of its packs was used: appended, judged again in the load's own context, packs and devices follow."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from compliance.audit.models import AuditEntry
from compliance.audit.services import verify
from compliance.auth.actor import actor_for_user
from compliance.auth.services import actor_for_api_key, create_api_key
from compliance.devices.models import DeviceEvent
from compliance.errors import Conflict, Forbidden, Invalid, NotFound
from compliance.sterilisation import services
from compliance.sterilisation.models import Cycle, CycleCorrection, Pack
from compliance.treatments import services as care
from compliance.treatments.models import TreatmentPack
from tests.sterilisation.conftest import NOW, good_cycle, race
from tests.treatments.conftest import client_row, start, trained_nurse  # noqa: F401  (fixtures)

TYPO = "143.6"  # typed for 134.6: over the 137.0 °C limit of a 134 °C programme


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _figures(**changes):
    data = {"temperature_c": "134.6", "holding_seconds": "200", "indicator_result": "pass", "indicator_class": "5",
            "printout_ref": "PR-1", "reason": "143.6 typed for 134.6; printout checked"}
    data.update(changes)
    return data


@pytest.fixture
def failed_load(db, actor, ready_steriliser, packed):
    """A load failed for good by a typo, confirmed (as load 17 was)."""
    def make(**changes):
        cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()], temperature_c=TYPO, **changes),
                                      NOW, confirm_failure=True)
        db.session.commit()
        return cycle

    return make


@pytest.fixture
def passed_load(db, actor, ready_steriliser, packed):
    def make(release=False):
        cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
        if release:
            services.release_cycle(actor, cycle.id, NOW)
        db.session.commit()
        return cycle

    return make


def _last_event(db, device_id):
    return db.session.scalar(select(DeviceEvent).where(DeviceEvent.device_id == device_id)
                             .order_by(DeviceEvent.at.desc(), DeviceEvent.id.desc()).limit(1))


# --- the confirmation before a failing verdict is stored ----------------------------------------------

def test_a_failing_verdict_from_typed_figures_stores_nothing_until_confirmed(db, actor, ready_steriliser, packed):
    pack = packed()
    data = good_cycle(ready_steriliser, [pack], temperature_c=TYPO, holding_seconds="100")
    with pytest.raises(services.UnconfirmedFailure) as exc:
        services.record_cycle(actor, data, NOW)
    assert [r.code for r in exc.value.verdict.reasons] == ["temperature_high", "holding_short"]
    assert exc.value.status == 409 and exc.value.field == "confirm_failure"
    assert "Temperature reached 143.6 °C, above the limit of 137.0 °C." in exc.value.message
    assert [r["message"] for r in exc.value.details()["reasons"]][1] == \
        "Holding time was 100 s; the programme needs at least 180 s."
    db.session.rollback()
    assert _count(db, Cycle) == 0 and db.session.get(Pack, pack.id).status == "packed"
    cycle = services.record_cycle(actor, data, NOW, confirm_failure=True)
    assert cycle.status == "failed" and pack.status == "failed"


def test_a_passing_verdict_needs_no_confirmation(db, actor, ready_steriliser, packed):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    assert cycle.status == "awaiting_release"


def test_a_data_loggers_failing_cycle_is_stored_at_once(db, admin, ready_steriliser, packed):
    _row, key = create_api_key(actor_for_user(admin), ready_steriliser.site_id, "logger", NOW)
    logger = actor_for_api_key(key, NOW)
    cycle = services.record_cycle(logger, good_cycle(ready_steriliser, [packed()], temperature_c=TYPO), NOW)
    assert cycle.status == "failed" and cycle.api_key_id == _row.id


# --- corrections: each transition -------------------------------------------------------------------

def test_correcting_a_typo_makes_a_failed_load_await_release_again(db, actor, manager, failed_load):
    cycle = failed_load()
    pack = cycle.packs[0]
    device = pack.items[0].device
    original_reasons = list(cycle.reasons)
    correction = services.correct_cycle(actor, cycle.id, _figures(), NOW + timedelta(minutes=5))
    db.session.commit()
    db.session.expire_all()
    cycle = db.session.get(Cycle, cycle.id)
    assert (cycle.status, cycle.is_verdict_pass, cycle.reasons) == ("awaiting_release", True, [])
    assert str(cycle.temperature_c) == "134.6" and cycle.decided_at is None and cycle.decided_by_id is None
    assert db.session.get(Pack, pack.id).status == "loaded"
    assert device.status == "in_reprocessing"
    event = _last_event(db, device.id)
    assert (event.kind, event.cycle_id, event.from_status, event.to_status) == ("loaded", cycle.id, "dirty",
                                                                                 "in_reprocessing")
    row = db.session.get(CycleCorrection, correction.id)
    assert (str(row.temperature_c_before), str(row.temperature_c_after)) == (TYPO, "134.6")
    assert (row.status_before, row.status_after) == ("failed", "awaiting_release")
    assert (row.is_verdict_pass_before, row.is_verdict_pass_after) == (False, True)
    assert row.reasons_before == original_reasons and row.reasons_after == []
    assert row.corrected_by_id == manager.id and row.reason.startswith("143.6 typed")
    assert row.guideline_version == cycle.guideline_version != ""
    # A named person still releases it, as usual; then its pack is sterile.
    services.release_cycle(actor, cycle.id, NOW + timedelta(minutes=10))
    assert db.session.get(Pack, pack.id).status == "sterile" and device.status == "in_service"


@pytest.mark.parametrize("released", [False, True])
def test_correcting_a_passing_load_to_failing_figures_fails_it_and_its_packs(db, actor, passed_load, released):
    cycle = passed_load(release=released)
    pack = cycle.packs[0]
    device = pack.items[0].device
    status_before = cycle.status
    with pytest.raises(services.UnconfirmedFailure):
        services.correct_cycle(actor, cycle.id, _figures(holding_seconds="100"), NOW)
    db.session.rollback()
    assert _count(db, CycleCorrection) == 0 and db.session.get(Cycle, cycle.id).status == status_before
    correction = services.correct_cycle(actor, cycle.id, _figures(holding_seconds="100"), NOW, confirm_failure=True)
    db.session.commit()
    db.session.expire_all()
    cycle = db.session.get(Cycle, cycle.id)
    assert (cycle.status, cycle.is_verdict_pass) == ("failed", False)
    assert [r["code"] for r in cycle.reasons] == ["holding_short"] and cycle.decided_by_id is None
    assert db.session.get(Pack, pack.id).status == "failed"
    assert device.status == "dirty" and _last_event(db, device.id).kind == "load_failed"
    assert (correction.status_before, correction.status_after) == (status_before, "failed")


def test_same_verdict_changes_only_the_figures(db, actor, failed_load, passed_load):
    failed = failed_load()
    pack = failed.packs[0]
    correction = services.correct_cycle(actor, failed.id, _figures(temperature_c="144.0"), NOW, confirm_failure=True)
    assert (correction.status_before, correction.status_after) == ("failed", "failed")
    assert failed.status == "failed" and str(failed.temperature_c) == "144.0"
    assert failed.reasons[0]["values"]["reached"] == "144.0" and pack.status == "failed"

    passed = passed_load(release=True)
    correction = services.correct_cycle(actor, passed.id, _figures(printout_ref="PR-2"), NOW)
    assert (correction.status_before, correction.status_after) == ("released", "released")
    assert passed.printout_ref == "PR-2" and passed.packs[0].status == "sterile"
    assert _count(db, CycleCorrection) == 2


def test_the_verdict_is_judged_in_the_context_of_the_loads_start(db, actor, ready_steriliser, add_test, failed_load):
    cycle = failed_load()
    # A failing air-removal test after the load (which takes the steriliser out of service) changes nothing.
    services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "air_removal", "result": "fail",
                                 "performed_at": (NOW + timedelta(minutes=1)).isoformat()}, NOW + timedelta(minutes=2))
    assert not ready_steriliser.is_in_service
    services.correct_cycle(actor, cycle.id, _figures(), NOW + timedelta(minutes=3))
    assert cycle.status == "awaiting_release" and cycle.reasons == []


def test_a_failed_load_without_todays_air_removal_test_keeps_that_reason(db, actor, make_steriliser, add_test, site,
                                                                          packed):
    steriliser = make_steriliser(site)
    add_test(steriliser, "spore", at=NOW - timedelta(days=2))
    cycle = services.record_cycle(actor, good_cycle(steriliser, [packed()], temperature_c=TYPO), NOW,
                                  confirm_failure=True)
    add_test(steriliser, "air_removal", at=NOW + timedelta(minutes=1))  # done after the load: it does not count
    with pytest.raises(services.UnconfirmedFailure) as exc:
        services.correct_cycle(actor, cycle.id, _figures(), NOW + timedelta(minutes=2))
    assert [r.code for r in exc.value.verdict.reasons] == ["no_air_removal_today"]


# --- corrections: refusals ----------------------------------------------------------------------------

def test_only_a_manager_or_admin_of_the_site_corrects(db, actor, nurse, auditor, admin, outsider, failed_load):
    cycle = failed_load()
    for person in (nurse, auditor):
        with pytest.raises(Forbidden):
            services.correct_cycle(actor_for_user(person), cycle.id, _figures(), NOW)
    with pytest.raises(NotFound):
        services.correct_cycle(actor_for_user(outsider), cycle.id, _figures(), NOW)
    _row, key = create_api_key(actor_for_user(admin), cycle.site_id, "logger", NOW)
    with pytest.raises(Forbidden):
        services.correct_cycle(actor_for_api_key(key, NOW), cycle.id, _figures(), NOW)
    assert _count(db, CycleCorrection) == 0
    services.correct_cycle(actor_for_user(admin), cycle.id, _figures(), NOW)


def test_a_data_loggers_record_is_not_corrected_by_hand(db, actor, admin, ready_steriliser, packed):
    _row, key = create_api_key(actor_for_user(admin), ready_steriliser.site_id, "logger", NOW)
    cycle = services.record_cycle(actor_for_api_key(key, NOW),
                                  good_cycle(ready_steriliser, [packed()], temperature_c=TYPO), NOW)
    with pytest.raises(Conflict, match="a data logger's record is not corrected by hand"):
        services.correct_cycle(actor, cycle.id, _figures(), NOW)


@pytest.mark.parametrize("reason,field", [("", "reason"), ("   ", "reason"), ("x" * 2001, "reason")])
def test_a_correction_needs_a_reason(db, actor, failed_load, reason, field):
    cycle = failed_load()
    with pytest.raises(Invalid) as exc:
        services.correct_cycle(actor, cycle.id, _figures(reason=reason), NOW)
    assert exc.value.field == field


@pytest.mark.parametrize("name,value", [("temperature_c", "500"), ("temperature_c", "134.65"),
                                        ("holding_seconds", "-1"), ("indicator_result", "maybe"),
                                        ("indicator_class", "7"), ("pressure_kpa", "abc")])
def test_impossible_figures_are_refused_as_when_recording(db, actor, failed_load, name, value):
    cycle = failed_load()
    with pytest.raises(Invalid) as exc:
        services.correct_cycle(actor, cycle.id, _figures(**{name: value}), NOW)
    assert exc.value.field == name
    assert str(db.session.get(Cycle, cycle.id).temperature_c) == TYPO


def test_the_same_figures_are_not_a_correction(db, actor, failed_load):
    cycle = failed_load()
    with pytest.raises(Invalid):
        services.correct_cycle(actor, cycle.id, _figures(temperature_c=TYPO), NOW, confirm_failure=True)


def test_a_load_in_a_recall_is_not_corrected(db, actor, ready_steriliser, passed_load):
    cycle = passed_load(release=True)
    services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "fail",
                                 "indicator_lot": "BI-9", "control_result": "grew"}, NOW + timedelta(minutes=5))
    assert cycle.status == "recalled"
    with pytest.raises(Conflict, match="recall"):
        services.correct_cycle(actor, cycle.id, _figures(printout_ref="PR-9"), NOW)


def test_a_failed_load_does_not_pass_again_once_its_devices_were_reprocessed(db, actor, failed_load):
    cycle = failed_load()
    device = cycle.packs[0].items[0].device
    services.record_cleaning(actor, {"device_ids": [device.id], "method": "manual"}, NOW + timedelta(minutes=1))
    with pytest.raises(Conflict, match=device.serial):
        services.correct_cycle(actor, cycle.id, _figures(), NOW + timedelta(minutes=2))
    db.session.rollback()
    assert db.session.get(Cycle, cycle.id).status == "failed" and _count(db, CycleCorrection) == 0


def test_a_load_whose_pack_was_used_is_not_corrected(db, actor, passed_load, start):
    cycle = passed_load(release=True)
    result = care.add_pack(actor, start().id, cycle.packs[0].label_code, NOW)
    db.session.commit()
    assert result.accepted
    with pytest.raises(Conflict, match="used"):
        services.correct_cycle(actor, cycle.id, _figures(holding_seconds="100"), NOW, confirm_failure=True)
    # The treatment's row alone refuses too (whatever the pack's status says).
    db.session.rollback()
    db.session.execute(update(Pack).where(Pack.id == cycle.packs[0].id).values(status="sterile"))
    assert _count(db, TreatmentPack) == 1
    with pytest.raises(Conflict, match="used"):
        services.correct_cycle(actor, cycle.id, _figures(printout_ref="PR-3"), NOW)


# --- the race with a treatment claiming a pack --------------------------------------------------------------

def test_a_pack_used_after_the_check_makes_the_conditional_update_refuse(db, actor, passed_load, monkeypatch):
    """The check reads the database before the pack is claimed by a treatment; the claim by conditional UPDATE
    (WHERE status = 'sterile') then changes no row, and the correction is refused whole."""
    cycle = passed_load(release=True)
    pack = cycle.packs[0]
    original = services.correction_refusal

    def check_then_the_pack_is_used(row):
        answer = original(row)
        db.session.execute(update(Pack).where(Pack.id == pack.id).values(status="used"))  # a tablet's add_pack
        return answer

    monkeypatch.setattr(services, "correction_refusal", check_then_the_pack_is_used)
    with pytest.raises(Conflict, match=pack.label_code):
        services.correct_cycle(actor, cycle.id, _figures(holding_seconds="100"), NOW, confirm_failure=True)


def test_a_correction_and_a_pack_use_at_the_same_moment_exactly_one_wins(app, db, actor, manager, passed_load, start):
    cycle = passed_load(release=True)
    treatment_id, cycle_id, code, manager_id = start().id, cycle.id, cycle.packs[0].label_code, manager.id
    db.session.commit()  # the test's own session holds no lock while the two race
    outcome, errors = race(app, manager_id, {
        "use": lambda me: care.add_pack(me, treatment_id, code, NOW).accepted,
        "correct": lambda me: services.correct_cycle(me, cycle_id, _figures(holding_seconds="100"), NOW,
                                                     confirm_failure=True).id})
    assert errors == []
    used, corrected = outcome["use"] is True, isinstance(outcome["correct"], int)
    assert used != corrected, outcome
    db.session.expire_all()
    pack = db.session.scalar(select(Pack).where(Pack.label_code == code))
    assert pack.status == ("used" if used else "failed")
    assert _count(db, TreatmentPack) == (1 if used else 0)
    assert _count(db, CycleCorrection) == (0 if used else 1)


# --- the audit trail ------------------------------------------------------------------------------------

def test_the_correction_and_the_loads_change_are_in_the_audit_trail(db, client, login_as, manager, failed_load):
    cycle = failed_load()
    pack_id = cycle.packs[0].id
    r = login_as(manager).api("POST", f"/api/v1/cycles/{cycle.id}/corrections",
                              _figures(holding_seconds=200, indicator_class=5))
    assert r.status_code == 201, r.get_json()
    entries = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    [created] = [e for e in entries if e.entity_type == "cycle_corrections" and e.action == "create"]
    assert created.actor_user_id == manager.id and created.site_id == cycle.site_id
    assert (created.after["temperature_c_before"], created.after["temperature_c_after"]) == (TYPO, "134.6")
    [changed] = [e for e in entries if e.entity_type == "cycles" and e.entity_id == str(cycle.id)
                 and e.action == "update" and (e.after or {}).get("status") == "awaiting_release"]
    assert changed.before["temperature_c"] == TYPO and changed.after["temperature_c"] == "134.6"
    assert changed.actor_user_id == manager.id
    [claimed] = [e for e in entries if e.entity_type == "packs" and e.entity_id == str(pack_id)
                 and (e.after or {}).get("status") == "loaded" and e.action == "update"]
    assert claimed.before == {"status": "failed"} and claimed.actor_user_id == manager.id
    assert verify() == []
