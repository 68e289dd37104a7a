"""The point-of-use gate against a real database: every refusal, overrides, the two-tablet race, look-back."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.errors import Conflict, Forbidden, Invalid, NotFound
from compliance.extensions import db as _db
from compliance.sterilisation import services as steri
from compliance.sites.models import User
from compliance.stock.models import Unit
from compliance.treatments import services
from compliance.treatments.models import GateAttempt, LookBack, TreatmentPack, TreatmentUnit
from tests.conftest import PASSWORD
from tests.treatments.conftest import NOW, barcode, good_cycle


def _count(db, model):
    return _db.session.scalar(select(func.count()).select_from(model))


def reason_codes(result):
    return [r["code"] for r in result.reasons]


def test_a_sterile_pack_and_a_new_unit_pass_the_gate(db, actor, start, sterile_pack, make_lot, container):
    treatment = start()
    make_lot()
    pack = sterile_pack()
    assert services.add_pack(actor, treatment.id, pack.label_code, NOW).accepted
    assert services.add_unit(actor, treatment.id, barcode("S1"), NOW).accepted
    services.finish_treatment(actor, treatment.id, {"passes": 8, "needle_depth_mm": "0.5",
                                                    "sharps_container_id": container.id}, NOW + timedelta(hours=1))
    db.session.commit()
    assert treatment.status == "finished" and pack.status == "used"
    assert pack.items[0].device.status == "dirty"
    assert treatment.units[0].sharps_container_id == container.id


def test_pack_from_a_load_awaiting_release_is_refused_and_the_attempt_stored(db, actor, start, ready_steriliser,
                                                                               packed):
    treatment = start()
    pack = packed()
    steri.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    result = services.add_pack(actor, treatment.id, pack.label_code, NOW)
    assert not result.accepted and reason_codes(result) == ["load_not_released"]
    assert result.attempt.reasons[0]["rule"] == "spaulding-critical"
    assert _count(db, TreatmentPack) == 0 and _count(db, GateAttempt) == 1


@pytest.mark.parametrize("change,code", [
    (lambda p: setattr(p, "expires_at", NOW - timedelta(seconds=1)), "pack_expired"),
    (lambda p: setattr(p, "status", "compromised"), "pack_compromised"),
    (lambda p: setattr(p, "status", "recalled"), "pack_recalled"),
])
def test_expired_compromised_or_recalled_pack_is_refused(db, actor, start, sterile_pack, change, code):
    treatment = start()
    pack = sterile_pack()
    change(pack)
    db.session.commit()
    result = services.add_pack(actor, treatment.id, pack.label_code, NOW)
    assert code in reason_codes(result)


def test_a_pack_is_used_once(db, actor, start, sterile_pack):
    first, second = start(), start()
    pack = sterile_pack()
    assert services.add_pack(actor, first.id, pack.label_code, NOW).accepted
    result = services.add_pack(actor, second.id, pack.label_code, NOW)
    assert reason_codes(result) == ["pack_used"]


def test_device_over_its_makers_limit_is_refused(db, actor, start, sterile_pack):
    treatment = start()
    pack = sterile_pack()
    device = pack.items[0].device
    device.max_cycles, device.reprocessing_count = 5, 6
    db.session.commit()
    assert "device_over_limit" in reason_codes(services.add_pack(actor, treatment.id, pack.label_code, NOW))


def test_unit_used_before_anywhere_in_the_organisation_is_refused(db, actor, start, make_lot):
    make_lot()
    first, second = start(), start()
    assert services.add_unit(actor, first.id, barcode("S9"), NOW).accepted
    assert reason_codes(services.add_unit(actor, second.id, barcode("S9"), NOW)) == ["unit_used"]


@pytest.mark.parametrize("lot_kwargs,code", [
    ({"expires_on": NOW.date() - timedelta(days=1)}, "lot_expired"),
    ({"status": "recalled"}, "lot_recalled"),
    ({"status": "quarantined"}, "lot_quarantined"),
])
def test_unit_from_an_expired_recalled_or_quarantined_lot_is_refused(db, actor, start, make_lot, lot_kwargs, code):
    make_lot(**lot_kwargs)
    treatment = start()
    assert code in reason_codes(services.add_unit(actor, treatment.id, barcode("S2"), NOW))
    assert _count(db, TreatmentUnit) == 0


def test_untrained_practitioner_is_refused(db, actor, start, make_user, site, make_lot):
    make_lot()
    untrained = make_user("staff", [site], name="New Starter")
    treatment = start(practitioner=untrained)
    result = services.add_unit(actor, treatment.id, barcode("S3"), NOW)
    assert {r["code"] for r in result.reasons} == {"training_missing"}
    assert {r["values"]["course"] for r in result.reasons} == {"infection_control", "microneedling"}


def test_client_screening_must_be_recorded(db, actor, start, make_lot):
    make_lot()
    treatment = start(screened=False)
    assert reason_codes(services.add_unit(actor, treatment.id, barcode("S4"), NOW)) == ["screening_missing"]


@pytest.mark.parametrize("raw", ["garbage", f"(01)09506000134352(17)271231(10)LOT42"])
def test_malformed_or_serial_less_barcode_is_refused_naming_the_field(db, actor, start, make_lot, raw):
    make_lot()
    treatment = start()
    with pytest.raises(Invalid) as exc:
        services.add_unit(actor, treatment.id, raw, NOW)
    assert exc.value.field == "code"


def test_unit_of_another_organisation_is_unknown(db, outsider, other_site, start, make_lot, item_type):
    make_lot()
    treatment = start()
    with pytest.raises(NotFound):
        services.add_unit(actor_for_user(outsider), treatment.id, barcode("S5"), NOW)


def test_manager_overrides_a_refusal_with_a_reason_and_it_is_recorded(db, actor, manager, start, make_lot,
                                                                      untrained_nurse):
    make_lot()
    treatment = start(practitioner=untrained_nurse)
    refused = services.add_unit(actor, treatment.id, barcode("S6"), NOW)
    assert set(reason_codes(refused)) == {"training_missing"}
    with pytest.raises(Forbidden):
        services.override_attempt(actor, refused.attempt.id, {"manager_email": manager.email, "secret": "wrong",
                                                               "reason": "x"}, NOW)
    result = services.override_attempt(actor, refused.attempt.id, {
        "manager_email": manager.email, "secret": PASSWORD, "reason": "course booked; I supervise"}, NOW)
    assert result.accepted and result.usage.override_id is not None
    assert treatment.supervised_by_id == manager.id  # the manager is recorded as supervising
    with pytest.raises(Conflict):
        services.override_attempt(actor, refused.attempt.id, {"manager_email": manager.email, "secret": PASSWORD,
                                                               "reason": "again"}, NOW)


def test_a_used_unit_can_never_be_overridden(db, actor, manager, start, make_lot):
    make_lot()
    first, second = start(), start()
    services.add_unit(actor, first.id, barcode("S7"), NOW)
    refused = services.add_unit(actor, second.id, barcode("S7"), NOW)
    with pytest.raises(Conflict):
        services.override_attempt(actor, refused.attempt.id, {"manager_email": manager.email, "secret": PASSWORD,
                                                               "reason": "please"}, NOW)


def test_two_tablets_scanning_one_unit_at_once_exactly_one_succeeds(app, db, actor, manager, start, make_lot):
    make_lot()
    treatment_ids = [start().id, start().id]
    manager_id = manager.id
    db.session.commit()  # the test's own session holds no lock while the tablets race
    barrier = threading.Barrier(2)
    results, errors = [], []

    def tablet(treatment_id):
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                me = actor_for_user(_db.session.get(User, manager_id))
                result = services.add_unit(me, treatment_id, barcode("RACE1"), NOW)
                _db.session.commit()
                results.append(result.accepted)
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
    assert errors == []
    assert sorted(results) == [False, True]
    assert _count(db, TreatmentUnit) == 1 and _count(db, Unit) == 1


def test_finish_refuses_bad_settings_and_stores_nothing(db, actor, start, container, sterile_pack):
    treatment = start()
    services.add_pack(actor, treatment.id, sterile_pack().label_code, NOW)
    db.session.commit()
    for data, field in (({"passes": -1, "needle_depth_mm": "0.5"}, "passes"),
                        ({"passes": 1000, "needle_depth_mm": "0.5"}, "passes"),
                        ({"passes": 8, "needle_depth_mm": "40"}, "needle_depth_mm"),
                        ({"passes": 12, "needle_depth_mm": "0.5"}, "passes_confirmed"),
                        ({"passes": 8, "needle_depth_mm": "0.5", "ended_at": (NOW - timedelta(hours=1)).isoformat()},
                         "ended_at")):
        with pytest.raises(Invalid) as exc:
            services.finish_treatment(actor, treatment.id, data, NOW)
        assert exc.value.field == field
        db.session.rollback()
    assert db.session.get(type(treatment), treatment.id).status == "open"
    services.finish_treatment(actor, treatment.id, {"passes": 12, "passes_confirmed": "yes",
                                                    "needle_depth_mm": "0.5"}, NOW)
    assert treatment.passes == 12 and treatment.passes_confirmed


def test_infection_opens_a_look_back_listing_exactly_the_exposed_treatments(db, actor, start, sterile_pack,
                                                                          make_lot):
    make_lot()
    make_lot(lot_number="OTHER")
    shared_pack_load = sterile_pack()
    index = start()
    services.add_pack(actor, index.id, shared_pack_load.label_code, NOW)
    services.add_unit(actor, index.id, barcode("L1"), NOW)
    same_lot = start()
    services.add_unit(actor, same_lot.id, barcode("L2"), NOW)
    other_lot = start()
    services.add_unit(actor, other_lot.id, barcode("L3", lot="OTHER"), NOW)
    db.session.commit()
    event = services.record_adverse_event(actor, index.id, {"kind": "infection", "severity": "moderate"},
                                          NOW + timedelta(days=3))
    db.session.commit()
    assert _count(db, LookBack) == 1 and event.is_reportable
    assert [t.id for t in services.look_back(actor, index.id)] == [same_lot.id]


def test_look_back_from_a_load_lists_every_treatment_it_reached(db, actor, start, sterile_pack):
    packs = [sterile_pack(), sterile_pack()]
    reached = []
    for pack in packs:
        treatment = start()
        services.add_pack(actor, treatment.id, pack.label_code, NOW)
        reached.append(treatment.id)
    untouched = start()
    db.session.commit()
    cycle_id = packs[0].cycle_id
    found = [t.id for t in db.session.scalars(services.exposed_treatments(actor, cycle_id=cycle_id))]
    assert found == [reached[0]]
    assert untouched.id not in found


def test_guessing_a_managers_pin_through_overrides_locks_the_manager(db, actor, manager, start, make_lot,
                                                                     untrained_nurse):
    from compliance.auth.services import PinPolicy
    from compliance.treatments.services import WrongSecret

    make_lot()
    treatment = start(practitioner=untrained_nurse)
    refused = services.add_unit(actor, treatment.id, barcode("G1"), NOW)
    policy = PinPolicy(max_attempts=3, lock_minutes=15)
    for guess in ("0000", "1111"):
        with pytest.raises(WrongSecret):
            services.override_attempt(actor, refused.attempt.id, {"manager_email": manager.email, "secret": guess,
                                                                   "reason": "x"}, NOW, policy)
    with pytest.raises(WrongSecret):
        services.override_attempt(actor, refused.attempt.id, {"manager_email": manager.email, "secret": "2222",
                                                               "reason": "x"}, NOW, policy)
    assert manager.pin_locked_until == NOW + timedelta(minutes=15)
    with pytest.raises(Forbidden):  # locked: even the right password waits
        services.override_attempt(actor, refused.attempt.id, {"manager_email": manager.email, "secret": PASSWORD,
                                                               "reason": "x"}, NOW, policy)


def test_a_wrong_override_secret_is_counted_even_though_the_request_fails(client, login_as, manager, start,
                                                                         make_lot, db, untrained_nurse):
    make_lot()
    treatment = start(practitioner=untrained_nurse)
    refused = services.add_unit(actor_for_user(manager), treatment.id, barcode("G2"), NOW)
    db.session.commit()
    login_as(manager)
    response = client.api("POST", f"/api/v1/gate-attempts/{refused.attempt.id}/override",
                          json={"manager_email": manager.email, "secret": "0000", "reason": "try"})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(type(manager), manager.id).pin_failed_count == 1


def test_a_recall_lists_exactly_the_treatments_its_loads_reached(db, actor, start, sterile_pack, ready_steriliser,
                                                                 add_test, packed):
    """Loads after the last passing spore test reach two treatments; a load before it reaches a third."""
    before = packed()
    early = steri.record_cycle(actor, good_cycle(ready_steriliser, [before],
                                                 started_at=(NOW - timedelta(minutes=100)).isoformat()), NOW)
    steri.release_cycle(actor, early.id, NOW)
    old = start()
    services.add_pack(actor, old.id, before.label_code, NOW)
    add_test(ready_steriliser, "spore", at=NOW - timedelta(minutes=45))  # the last passing spore test
    reached = []
    for _ in range(2):
        pack = sterile_pack()
        treatment = start()
        services.add_pack(actor, treatment.id, pack.label_code, NOW)
        reached.append(treatment.id)
    db.session.commit()
    steri.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "fail",
                              "indicator_lot": "BI-X", "control_result": "grew"}, NOW + timedelta(days=1))
    db.session.commit()
    from compliance.sterilisation.models import Recall

    recall = db.session.scalar(select(Recall))
    assert [t.id for t in services.recall_treatments(actor, recall.id)] == reached
