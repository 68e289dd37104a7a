"""Sterilisation operations against a real database: the whole flow, refusals that store nothing, recall."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.devices.models import Device, Steriliser
from compliance.errors import Conflict, Forbidden, Invalid, NotFound
from compliance.guidelines.services import set_site_number
from compliance.sterilisation import services
from compliance.sterilisation.models import Cycle, Pack, Recall, SteriliserTest
from tests.sterilisation.conftest import NOW, good_cycle


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_full_flow_from_dirty_device_to_sterile_pack(db, actor, ready_steriliser, packed):
    pack = packed()
    assert pack.status == "packed" and pack.label_code.startswith("PK-")
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    assert cycle.status == "awaiting_release" and cycle.reasons == []
    assert pack.status == "loaded"
    services.release_cycle(actor, cycle.id, NOW)
    db.session.commit()
    assert cycle.status == "released" and cycle.decided_by_id == actor.user_id
    assert pack.status == "sterile"
    assert pack.expires_at == cycle.started_at + timedelta(days=60)
    device = pack.items[0].device
    assert device.status == "in_service" and device.reprocessing_count == 1


def test_cycle_without_todays_air_removal_test_fails_with_its_reason(db, actor, make_steriliser, add_test, site,
                                                                    packed):
    steriliser = make_steriliser(site)
    add_test(steriliser, "spore", at=NOW - timedelta(days=2))
    add_test(steriliser, "air_removal", at=NOW - timedelta(days=1))  # yesterday's
    pack = packed()
    cycle = services.record_cycle(actor, good_cycle(steriliser, [pack]), NOW, confirm_failure=True)
    assert cycle.status == "failed"
    assert [r["rule"] for r in cycle.reasons] == ["air-removal-test-daily"]
    assert pack.status == "failed" and pack.items[0].device.status == "dirty"
    with pytest.raises(Conflict):
        services.release_cycle(actor, cycle.id, NOW)


def test_shelf_life_follows_the_sites_override(db, actor, manager, ready_steriliser, packed, site):
    set_site_number(actor, site.id, "sterile-storage", "shelf_life_days", 30, "local code: 30 days", NOW)
    pack = packed()
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    services.release_cycle(actor, cycle.id, NOW)
    assert pack.expires_at == cycle.started_at + timedelta(days=30)


@pytest.mark.parametrize("field,value", [
    ("temperature_c", "500"), ("temperature_c", "-5"), ("temperature_c", "hot"),
    ("holding_seconds", "-1"), ("indicator_result", "maybe"), ("indicator_class", "9"),
])
def test_impossible_figures_are_refused_naming_the_field(db, actor, ready_steriliser, packed, field, value):
    pack = packed()
    with pytest.raises(Invalid) as exc:
        services.record_cycle(actor, good_cycle(ready_steriliser, [pack], **{field: value}), NOW)
    assert exc.value.field == field
    db.session.rollback()
    assert _count(db, Cycle) == 0
    assert db.session.get(Pack, pack.id).status == "packed"


def test_repeated_cycle_counter_is_refused(db, actor, ready_steriliser, packed):
    services.record_cycle(actor, good_cycle(ready_steriliser, [packed()], cycle_number="41"), NOW)
    db.session.commit()
    with pytest.raises(Conflict) as exc:
        services.record_cycle(actor, good_cycle(ready_steriliser, [packed()], cycle_number="41"), NOW)
    assert exc.value.field == "cycle_number"


def test_pack_already_in_another_load_is_refused(db, actor, ready_steriliser, packed):
    pack = packed()
    services.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    db.session.commit()
    with pytest.raises(Conflict) as exc:
        services.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    assert exc.value.field == "pack_codes"


def test_unknown_steriliser_programme_and_label_are_refused(db, actor, ready_steriliser, outsider):
    with pytest.raises(NotFound):
        services.record_cycle(actor, good_cycle(ready_steriliser, steriliser_id=99999), NOW)
    with pytest.raises(NotFound) as exc:
        services.record_cycle(actor, good_cycle(ready_steriliser, programme_id=99999), NOW)
    assert exc.value.field == "programme_id"
    with pytest.raises(NotFound) as exc:
        services.record_cycle(actor, good_cycle(ready_steriliser, pack_codes=["PK-NOPE2345"]), NOW)
    assert exc.value.field == "pack_codes"
    with pytest.raises(NotFound):
        services.find_pack(actor, "PK-NOPE2345")
    with pytest.raises(NotFound):  # another organisation's steriliser
        services.record_cycle(actor_for_user(outsider), good_cycle(ready_steriliser), NOW)


def test_staff_without_decontamination_training_cannot_release(db, nurse, actor, ready_steriliser, packed,
                                                                make_training):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    db.session.commit()
    with pytest.raises(Forbidden):
        services.release_cycle(actor_for_user(nurse), cycle.id, NOW)
    make_training(nurse, course="sterilisation", completed_on=NOW.date() - timedelta(days=10))
    services.release_cycle(actor_for_user(nurse), cycle.id, NOW)
    assert cycle.status == "released" and cycle.decided_by_id == nurse.id


def test_devices_must_be_cleaned_and_inspected_before_packing(db, actor, make_device, site):
    device = make_device(site)
    with pytest.raises(Conflict) as exc:
        services.create_pack(actor, {"device_ids": [device.id], "packaging": "pouch"}, NOW)
    assert exc.value.rule == "clean-before-sterilise"
    services.record_cleaning(actor, {"device_ids": [device.id], "method": "manual"}, NOW)
    with pytest.raises(Conflict):
        services.create_pack(actor, {"device_ids": [device.id], "packaging": "pouch"}, NOW)


def test_device_over_its_makers_limit_is_not_packed(db, actor, make_device, site):
    device = make_device(site, max_cycles=3)
    device.reprocessing_count = 3
    db.session.commit()
    services.record_cleaning(actor, {"device_ids": [device.id], "method": "manual"}, NOW)
    services.record_inspection(actor, {"device_ids": [device.id], "passed": True}, NOW)
    with pytest.raises(Conflict, match="limit"):
        services.create_pack(actor, {"device_ids": [device.id], "packaging": "pouch"}, NOW)


def test_failed_inspection_quarantines_and_needs_a_note(db, actor, make_device, site):
    device = make_device(site)
    services.record_cleaning(actor, {"device_ids": [device.id], "method": "manual"}, NOW)
    with pytest.raises(Invalid):
        services.record_inspection(actor, {"device_ids": [device.id], "passed": False}, NOW)
    services.record_inspection(actor, {"device_ids": [device.id], "passed": False, "note": "bent needle"}, NOW)
    assert device.status == "quarantined"


def test_type_n_steriliser_fails_a_wrapped_load(db, actor, make_steriliser, add_test, site, packed):
    steriliser = make_steriliser(site, type="N")
    add_test(steriliser, "spore", at=NOW - timedelta(days=1))
    cycle = services.record_cycle(actor, good_cycle(steriliser, [packed(packaging="wrap")]), NOW,
                                  confirm_failure=True)
    assert [r["code"] for r in cycle.reasons] == ["type_unfit"]
    ok = services.record_cycle(actor, good_cycle(steriliser, [packed(packaging="unwrapped")]), NOW)
    assert ok.status == "awaiting_release"


def test_failed_air_removal_test_takes_the_steriliser_out_until_a_pass(db, actor, make_steriliser, site):
    steriliser = make_steriliser(site)
    services.record_test(actor, {"steriliser_id": steriliser.id, "kind": "air_removal", "result": "fail"}, NOW)
    assert not steriliser.is_in_service
    services.record_test(actor, {"steriliser_id": steriliser.id, "kind": "leak", "result": "pass",
                                 "measured_value": "0.5"}, NOW)
    assert not steriliser.is_in_service  # another kind of test does not return it
    services.record_test(actor, {"steriliser_id": steriliser.id, "kind": "air_removal", "result": "pass"}, NOW)
    assert steriliser.is_in_service


def test_leak_rate_over_the_limit_cannot_be_recorded_as_a_pass(db, actor, make_steriliser, site):
    steriliser = make_steriliser(site)
    with pytest.raises(Invalid) as exc:
        services.record_test(actor, {"steriliser_id": steriliser.id, "kind": "leak", "result": "pass",
                                     "measured_value": "1.4"}, NOW)
    assert exc.value.rule == "weekly-leak-test"
    assert _count(db, SteriliserTest) == 0


def test_spore_test_passes_only_with_a_grown_control(db, actor, make_steriliser, site):
    steriliser = make_steriliser(site)
    test = services.record_test(actor, {"steriliser_id": steriliser.id, "kind": "spore", "result": "pending",
                                        "indicator_lot": "BI-77"}, NOW)
    with pytest.raises(Invalid) as exc:
        services.record_test_result(actor, test.id, {"result": "pass", "control_result": "no_growth"}, NOW)
    assert exc.value.field == "control_result"
    services.record_test_result(actor, test.id, {"result": "pass", "control_result": "grew"}, NOW)
    assert test.result == "pass"
    with pytest.raises(Conflict):  # read twice: the second is refused
        services.record_test_result(actor, test.id, {"result": "fail"}, NOW)


def test_compromised_pack_sends_its_devices_back_to_dirty(db, actor, ready_steriliser, packed):
    pack = packed()
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    services.release_cycle(actor, cycle.id, NOW)
    services.compromise_pack(actor, f"http://clinic.example/p/{pack.label_code}", {"reason": "wet"}, NOW)
    assert pack.status == "compromised" and pack.items[0].device.status == "dirty"
    assert [e.kind for e in services.pack_history(pack)][-1] == "pack_compromised"


def test_first_in_first_out_suggests_the_pack_expiring_first(db, actor, ready_steriliser, packed, site):
    older, newer = packed(), packed()
    c1 = services.record_cycle(actor, good_cycle(ready_steriliser, [newer]), NOW)
    c2 = services.record_cycle(actor, good_cycle(ready_steriliser, [older],
                                                 started_at=(NOW - timedelta(minutes=50)).isoformat()), NOW)
    services.release_cycle(actor, c1.id, NOW)
    services.release_cycle(actor, c2.id, NOW)
    dtype = older.items[0].device.device_type_id
    assert services.oldest_usable_pack(actor, site.id, dtype, NOW).id == older.id


# --- recall ------------------------------------------------------------------------------------

def _released_load(actor, steriliser, packed, at):
    pack = packed(at=at - timedelta(minutes=30))
    cycle = services.record_cycle(actor, good_cycle(steriliser, [pack], started_at=at.isoformat()), at)
    if cycle.status == "awaiting_release":
        services.release_cycle(actor, cycle.id, at)
    return cycle


def test_failed_spore_test_recalls_exactly_the_loads_since_the_last_passing_one(
        db, actor, make_steriliser, add_test, site, packed):
    """Two sterilisers over three weeks; only steriliser A's loads after its last good spore test are recalled."""
    a, b = make_steriliser(site, name="A"), make_steriliser(site, name="B")
    start = NOW - timedelta(days=21)
    loads = {"A": [], "B": []}
    for day in range(21):
        moment = start + timedelta(days=day)
        for steriliser in (a, b):
            add_test(steriliser, "air_removal", at=moment - timedelta(hours=1))
            if day % 7 == 0:
                add_test(steriliser, "spore", at=moment - timedelta(minutes=50))
            loads[steriliser.name].append(_released_load(actor, steriliser, packed, moment))
    db.session.commit()
    last_pass = db.session.scalar(select(func.max(SteriliserTest.performed_at)).where(
        SteriliserTest.steriliser_id == a.id, SteriliserTest.kind == "spore"))
    services.record_test(actor, {"steriliser_id": a.id, "kind": "spore", "result": "fail", "indicator_lot": "BI-9",
                                 "control_result": "grew", "performed_at": NOW.isoformat()}, NOW)
    db.session.commit()
    recall = db.session.scalar(select(Recall))
    expected = sorted(c.id for c in loads["A"] if c.started_at > last_pass and c.status == "recalled")
    assert sorted(l.cycle_id for l in recall.loads) == expected
    assert len(expected) == 7  # days 14..20 of steriliser A
    assert all(c.status == "released" for c in loads["B"])
    assert all(c.status == "released" for c in loads["A"] if c.id not in expected)
    assert not db.session.get(Steriliser, a.id).is_in_service
    for cycle_id in expected:
        for pack in db.session.get(Cycle, cycle_id).packs:
            assert pack.status == "recalled" and pack.items[0].device.status == "dirty"


def test_recall_closes_only_after_retest_three_passes_and_clients_contacted(db, actor, ready_steriliser, packed):
    _released_load(actor, ready_steriliser, packed, NOW - timedelta(hours=1))
    services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "fail",
                                 "indicator_lot": "BI-1", "control_result": "grew"}, NOW)
    recall = db.session.scalar(select(Recall))
    with pytest.raises(Conflict, match="retest"):
        services.close_recall(actor, recall.id, "done", NOW)
    for hours in (1, 2):
        services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "pass",
                                     "indicator_lot": "BI-2", "control_result": "grew"}, NOW + timedelta(hours=hours))
    assert not ready_steriliser.is_in_service  # two passes are not enough
    services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "pass",
                                 "indicator_lot": "BI-2", "control_result": "grew"}, NOW + timedelta(hours=3))
    assert ready_steriliser.is_in_service
    with pytest.raises(Conflict, match="clients"):
        services.close_recall(actor, recall.id, "done", NOW + timedelta(hours=4))
    services.mark_clients_contacted(actor, recall.id, "phoned all 1", NOW + timedelta(hours=4))
    services.close_recall(actor, recall.id, "retested, contacted", NOW + timedelta(hours=5))
    assert recall.closed_at is not None


def test_staff_cannot_close_a_recall(db, actor, nurse, ready_steriliser):
    services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "fail",
                                 "indicator_lot": "BI-1", "control_result": "grew"}, NOW)
    recall = db.session.scalar(select(Recall))
    with pytest.raises(Forbidden):
        services.close_recall(actor_for_user(nurse), recall.id, "x", NOW)


def test_label_code_is_read_from_a_scanned_url_or_typed_lowercase():
    assert services.label_code_from_scan("https://c.example/p/PK-ABCD2345") == "PK-ABCD2345"
    assert services.label_code_from_scan("  pk-abcd2345 ") == "PK-ABCD2345"


def test_devices_only_of_the_actors_sites(db, actor, make_device, other_site):
    device = make_device(other_site)
    with pytest.raises(NotFound):
        services.record_cleaning(actor, {"device_ids": [device.id], "method": "manual"}, NOW)
    assert db.session.get(Device, device.id).status == "dirty"


def test_a_data_loggers_cycle_records_its_api_key(db, admin, ready_steriliser, packed):
    from compliance.auth.services import actor_for_api_key, create_api_key

    _row, key = create_api_key(actor_for_user(admin), ready_steriliser.site_id, "logger", NOW)
    logger = actor_for_api_key(key, NOW)
    cycle = services.record_cycle(logger, good_cycle(ready_steriliser, [packed()]), NOW)
    test = services.record_test(logger, {"steriliser_id": ready_steriliser.id, "kind": "air_removal",
                                         "result": "pass"}, NOW)
    assert cycle.api_key_id == _row.id and cycle.loaded_by_id is None
    assert test.api_key_id == _row.id
    with pytest.raises(Forbidden):  # a machine records; a person decides
        services.release_cycle(logger, cycle.id, NOW)
