"""The steriliser's own record of a load wins over the figures typed from its printout: whichever comes first,
the load holds the machine's figures and the verdict on its curve; the typed ones are kept in an appended
correction with those that disagree (a finding); the load's status and packs follow the new verdict, up to a
recall of a released load whose record fails, with the client its used pack reached."""
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.auth.services import actor_for_api_key, create_api_key
from compliance.devices.models import DeviceEvent
from compliance.errors import Conflict, Invalid
from compliance.sterilisation import curve_services, services
from compliance.sterilisation.curve_physics import curve_csv, make_curve
from compliance.sterilisation.models import CycleCorrection, Recall, RecallLoad
from compliance.treatments import services as care
from tests.sterilisation.conftest import NOW, good_cycle, race
from tests.treatments.conftest import client_row, start, trained_nurse  # noqa: F401  (fixtures)

HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"
SERIAL = "SC-0100"


def record_file(number: int, serial: str = SERIAL, **curve) -> bytes:
    started = (NOW - timedelta(minutes=30)).isoformat()
    return (HEADER + curve_csv(serial, number, "134 °C", started, make_curve(step=2, **curve))).encode()


@pytest.fixture
def autoclave(ready_steriliser, db):
    ready_steriliser.serial = SERIAL
    db.session.commit()
    return ready_steriliser


def machine_corrections(db, cycle_id):
    return list(db.session.scalars(select(CycleCorrection).where(CycleCorrection.cycle_id == cycle_id,
                                                                 CycleCorrection.kind == "machine_record")))


def last_event(db, device_id):
    return db.session.scalar(select(DeviceEvent).where(DeviceEvent.device_id == device_id)
                             .order_by(DeviceEvent.at.desc(), DeviceEvent.id.desc()).limit(1))


def test_a_load_awaiting_release_fails_when_its_record_shows_air(db, actor, autoclave, packed):
    pack = packed()
    load = services.record_cycle(actor, good_cycle(autoclave, [pack], cycle_number="7"), NOW)
    db.session.commit()
    assert load.status == "awaiting_release"
    [outcome] = curve_services.import_curves(actor, record_file(7, air_fraction=0.08), NOW).outcomes
    db.session.commit()
    assert load.status == "failed" and not load.is_verdict_pass
    assert [(r["rule"], r["code"]) for r in load.reasons] == [("cycle-parameters-met", "steam_not_saturated")]
    assert pack.status == "failed"
    device = pack.items[0].device
    assert device.status == "dirty" and last_event(db, device.id).kind == "load_failed"
    [c] = machine_corrections(db, load.id)
    assert (c.status_before, c.status_after, c.curve_id) == ("awaiting_release", "failed", outcome.curve.id)
    assert (c.temperature_c_before, c.holding_seconds_before) == (load.temperature_c.__class__("134.5"), 200)
    assert c.holding_seconds_after == load.holding_seconds >= 240  # the machine's stretch, whole seconds
    assert c.temperature_c_after == load.temperature_c >= 134  # its lowest temperature in the band
    assert [d["figure"] for d in c.disagreements] == ["holding_seconds"]  # typed 200 s, the machine held ≥ 240 s
    assert c.corrected_by_id == actor.user_id and c.api_key_id is None
    with pytest.raises(Conflict):
        services.release_cycle(actor, load.id, NOW)


def test_a_released_load_whose_record_fails_is_recalled_with_the_client_it_reached(db, actor, autoclave, packed,
                                                                                     start):
    used, kept = packed(), packed()
    load = services.record_cycle(actor, good_cycle(autoclave, [used, kept], cycle_number="8"), NOW)
    services.release_cycle(actor, load.id, NOW)
    db.session.commit()
    treatment = start()
    assert care.add_pack(actor, treatment.id, used.label_code, NOW).accepted
    db.session.commit()
    [outcome] = curve_services.import_curves(actor, record_file(8, holding_seconds=150), NOW).outcomes
    db.session.commit()
    assert load.status == "recalled"
    assert [r["code"] for r in load.reasons] == ["curve_holding_short"]
    recall = db.session.scalar(select(Recall).where(Recall.steriliser_id == autoclave.id))
    assert services.recall_trigger_curve(recall).id == outcome.curve.id
    assert recall.trigger_test_id is None and recall.closed_at is None
    [row] = db.session.scalars(select(RecallLoad).where(RecallLoad.recall_id == recall.id))
    assert (row.cycle_id, row.previous_status) == (load.id, "released")
    assert used.status == "used" and kept.status == "recalled"
    assert kept.items[0].device.status == "dirty" and last_event(db, kept.items[0].device_id).kind == "recalled"
    exposed = db.session.scalars(care.exposed_treatments(actor, cycle_id=load.id)).all()
    assert [t.id for t in exposed] == [treatment.id]
    # the recalled pack is refused at the gate from now on
    assert not care.add_pack(actor, start().id, kept.label_code, NOW).accepted


def test_a_second_failing_record_joins_the_open_recall(db, actor, autoclave, packed):
    loads = []
    for number in (21, 22):
        load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number=str(number)), NOW)
        services.release_cycle(actor, load.id, NOW)
        loads.append(load)
    db.session.commit()
    curve_services.import_curves(actor, record_file(21, air_fraction=0.08) + record_file(22, air_fraction=0.08)
                                 .split(b"\n", 1)[1], NOW)
    db.session.commit()
    assert [load.status for load in loads] == ["recalled", "recalled"]
    assert db.session.scalar(select(func.count()).select_from(Recall)) == 1
    assert db.session.scalar(select(func.count()).select_from(RecallLoad)) == 2


def test_a_load_failed_on_a_typo_passes_on_its_record_and_awaits_release(db, actor, autoclave, packed):
    pack = packed()
    load = services.record_cycle(actor, good_cycle(autoclave, [pack], cycle_number="9", holding_seconds="18"), NOW,
                                 confirm_failure=True)
    db.session.commit()
    assert load.status == "failed" and pack.status == "failed"
    curve_services.import_curves(actor, record_file(9), NOW)
    db.session.commit()
    assert load.status == "awaiting_release" and load.is_verdict_pass and load.reasons == []
    assert load.holding_seconds >= 240 and pack.status == "loaded"
    assert pack.items[0].device.status == "in_reprocessing"
    [c] = machine_corrections(db, load.id)
    assert (c.is_verdict_pass_before, c.is_verdict_pass_after) == (False, True)
    assert [d["figure"] for d in c.disagreements] == ["holding_seconds"] and c.disagreements[0]["typed"] == 18
    services.release_cycle(actor, load.id, NOW)
    db.session.commit()
    assert pack.status == "sterile"


def test_a_load_a_person_failed_stays_failed(db, actor, autoclave, packed):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="10"), NOW)
    services.fail_cycle(actor, load.id, "wet packs", NOW)
    db.session.commit()
    curve_services.import_curves(actor, record_file(10), NOW)
    db.session.commit()
    assert load.status == "failed" and load.decision_note == "wet packs"
    [c] = machine_corrections(db, load.id)
    assert c.status_before == c.status_after == "failed"


def test_a_record_imported_first_gives_the_typed_load_its_figures(db, actor, autoclave, packed):
    curve_services.import_curves(actor, record_file(11), NOW)
    db.session.commit()
    # a typo that alone would fail the load: the machine's record of the cycle is what counts
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="11", holding_seconds="18"),
                                 NOW)
    db.session.commit()
    assert load.status == "awaiting_release" and load.holding_seconds >= 240
    [c] = machine_corrections(db, load.id)
    assert c.holding_seconds_before == 18 and not c.is_verdict_pass_before and c.is_verdict_pass_after
    assert c.status_before == c.status_after == "awaiting_release"
    assert [d["figure"] for d in c.disagreements] == ["holding_seconds"]


def test_a_failing_record_imported_first_is_confirmed_by_the_person_typing_the_load(db, actor, autoclave, packed):
    curve_services.import_curves(actor, record_file(12, air_fraction=0.08), NOW)
    db.session.commit()
    data = good_cycle(autoclave, [packed()], cycle_number="12", holding_seconds="245")
    with pytest.raises(services.UnconfirmedFailure) as caught:
        services.record_cycle(actor, data, NOW)
    assert "Not saturated steam" in str(caught.value.message)
    db.session.rollback()
    load = services.record_cycle(actor, data, NOW, confirm_failure=True)
    db.session.commit()
    assert load.status == "failed" and [r["code"] for r in load.reasons] == ["steam_not_saturated"]


def test_the_machines_figures_are_not_corrected_by_hand_but_the_indicator_is(db, actor, autoclave, packed):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="13"), NOW)
    db.session.commit()
    curve_services.import_curves(actor, record_file(13), NOW)
    db.session.commit()
    figures = {"temperature_c": str(load.temperature_c), "holding_seconds": str(load.holding_seconds),
               "pressure_kpa": str(load.pressure_kpa), "indicator_result": "pass", "indicator_class": "5",
               "printout_ref": "PR-1", "reason": "checked the printout"}
    with pytest.raises(Invalid) as caught:
        services.correct_cycle(actor, load.id, {**figures, "holding_seconds": "300"}, NOW)
    assert caught.value.field == "holding_seconds" and "steriliser's own record" in str(caught.value.message)
    db.session.rollback()
    correction = services.correct_cycle(actor, load.id, {**figures, "indicator_result": "fail"}, NOW,
                                        confirm_failure=True)
    db.session.commit()
    assert correction.kind == "person" and load.status == "failed"
    assert [r["code"] for r in load.reasons] == ["indicator_failed"]  # the curve still passes; the indicator didn't


def test_the_same_file_again_appends_nothing(db, actor, autoclave, packed):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="14"), NOW)
    db.session.commit()
    for _ in range(2):
        curve_services.import_curves(actor, record_file(14), NOW)
        db.session.commit()
    assert len(machine_corrections(db, load.id)) == 1


def test_a_record_too_sparse_to_judge_leaves_the_typed_figures(db, actor, autoclave, packed):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="15"), NOW)
    db.session.commit()
    started = (NOW - timedelta(minutes=30)).isoformat()
    sparse = (HEADER + curve_csv(SERIAL, 15, "134 °C", started, make_curve(step=30))).encode()
    [outcome] = curve_services.import_curves(actor, sparse, NOW).outcomes
    db.session.commit()
    assert not outcome.curve.is_judged
    assert load.status == "awaiting_release" and load.holding_seconds == 200 and machine_corrections(db, load.id) == []


def test_a_data_loggers_import_is_appended_with_its_key(db, admin, autoclave, packed, actor):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="16"), NOW)
    db.session.commit()
    row, key = create_api_key(actor_for_user(admin), autoclave.site_id, "logger", NOW)
    curve_services.import_curves(actor_for_api_key(key, NOW), record_file(16, air_fraction=0.08), NOW)
    db.session.commit()
    [c] = machine_corrections(db, load.id)
    assert c.corrected_by_id is None and c.api_key_id == row.id and load.status == "failed"


def test_the_load_page_and_api_show_the_machines_figures_and_the_typed_ones(client, login_as, manager, actor,
                                                                          autoclave, packed, db):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="17"), NOW)
    db.session.commit()
    curve_services.import_curves(actor, record_file(17), NOW)
    db.session.commit()
    login_as(manager)
    html = client.get(f"/loads/{load.id}").get_data(as_text=True)
    assert "The steriliser's own record of the cycle, imported" in html
    assert "the figures typed from the printout are kept under Corrections" in html
    assert "Typed figures that disagree with the steriliser's (a finding): Holding time." in html
    assert "<s>200 s</s>" in html
    body = client.get(f"/api/v1/cycles/{load.id}").get_json()
    [c] = body["corrections"]
    assert c["kind"] == "machine_record" and c["holding_seconds_before"] == 200
    assert [d["figure"] for d in c["disagreements"]] == ["holding_seconds"]


def test_the_recall_page_names_the_record_that_triggered_it(client, login_as, manager, actor, autoclave, packed, db):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="18"), NOW)
    services.release_cycle(actor, load.id, NOW)
    db.session.commit()
    [outcome] = curve_services.import_curves(actor, record_file(18, air_fraction=0.08), NOW).outcomes
    db.session.commit()
    recall = db.session.scalar(select(Recall))
    login_as(manager)
    html = client.get(f"/recalls/{recall.id}").get_data(as_text=True)
    assert (f'<a href="/curves/{outcome.curve.id}">The steriliser\'s own record of cycle 18, imported after the '
            "load was released: it fails its checks</a>") in html
    assert client.get(f"/api/v1/recalls/{recall.id}").get_json()["trigger_curve_id"] == outcome.curve.id


def test_the_logbook_lists_each_loads_source(client, login_as, manager, admin, actor, autoclave, packed, db):
    import csv
    import io
    typed = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="40"), NOW)
    imported = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="41"), NOW)
    _row, key = create_api_key(actor_for_user(admin), autoclave.site_id, "logger", NOW)
    logged = services.record_cycle(actor_for_api_key(key, NOW), good_cycle(autoclave, [packed()], cycle_number="42"),
                                   NOW)
    db.session.commit()
    curve_services.import_curves(actor, record_file(41), NOW)
    db.session.commit()
    login_as(manager)
    html = client.get("/logbook").get_data(as_text=True)
    for load, source in ((typed, "typed from the printout"), (imported, "imported file (CSV)"),
                         (logged, "data logger")):
        row = html[html.index(f'id="load-{load.id}"'):]
        row = row[:row.index("</tr>")]
        assert f"<td><small>{source}</small></td>" in row
    body = client.get("/logbook", query_string={"format": "csv"}).get_data(as_text=True)
    rows = {r["Cycle number"]: r["Source of the figures"] for r in csv.DictReader(io.StringIO(body.lstrip("\ufeff")))}
    assert rows == {"40": "typed from the printout", "41": "imported file (CSV)", "42": "data logger"}


# --- the race with a treatment claiming a pack of the load ---------------------------------------------

def test_a_pack_used_while_the_record_is_applied_stays_used(db, actor, autoclave, packed, monkeypatch):
    """The packs are read, then a tablet claims one (conditional UPDATE there), then the record recalls the load:
    the claimed pack is not moved back to recalled, nor its device to dirty."""
    from sqlalchemy import update

    from compliance.sterilisation.models import Pack
    pack = packed()
    load = services.record_cycle(actor, good_cycle(autoclave, [pack], cycle_number="50"), NOW)
    services.release_cycle(actor, load.id, NOW)
    db.session.commit()
    original = services._recall_load

    def recall_then_the_pack_is_used(*args, **kwargs):
        db.session.execute(update(Pack).where(Pack.id == pack.id).values(status="used"))  # a tablet's add_pack
        return original(*args, **kwargs)

    monkeypatch.setattr(services, "_recall_load", recall_then_the_pack_is_used)
    curve_services.import_curves(actor, record_file(50, air_fraction=0.08), NOW)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Pack, pack.id).status == "used" and load.status == "recalled"
    # its device went with the pack to the client: not marked dirty in the pack it left
    assert pack.items[0].device.status == "in_service" and last_event(db, pack.items[0].device_id).kind == "sterilised"


def test_an_import_and_a_pack_use_at_the_same_moment_leave_no_recalled_pack_in_use(app, db, actor, manager, autoclave,
                                                                                   packed, start):
    from compliance.sterilisation.models import Pack
    from compliance.treatments.models import TreatmentPack
    pack = packed()
    load = services.record_cycle(actor, good_cycle(autoclave, [pack], cycle_number="51"), NOW)
    services.release_cycle(actor, load.id, NOW)
    treatment_id, code, manager_id, load_id = start().id, pack.label_code, manager.id, load.id
    db.session.commit()
    data = record_file(51, air_fraction=0.08)
    outcome, errors = race(app, manager_id, {
        "use": lambda me: care.add_pack(me, treatment_id, code, NOW).accepted,
        "import": lambda me: curve_services.import_curves(me, data, NOW).count("imported")})
    assert errors == [] and outcome["import"] == 1
    db.session.expire_all()
    stored = db.session.scalar(select(Pack).where(Pack.label_code == code))
    taken = db.session.scalar(select(func.count()).select_from(TreatmentPack).where(TreatmentPack.pack_id == stored.id))
    exposed = [t.id for t in db.session.scalars(care.exposed_treatments(actor, cycle_id=load_id))]
    if outcome["use"]:
        assert stored.status == "used" and taken == 1 and exposed == [treatment_id]
    else:
        assert stored.status == "recalled" and taken == 0 and exposed == []
    assert db.session.get(type(load), load_id).status == "recalled"


def test_the_import_screen_says_what_each_record_did_to_its_load(client, login_as, manager, actor, autoclave, packed,
                                                                db):
    load = services.record_cycle(actor, good_cycle(autoclave, [packed()], cycle_number="60"), NOW)
    services.release_cycle(actor, load.id, NOW)
    db.session.commit()
    login_as(manager)
    body = record_file(60, air_fraction=0.08) + record_file(61).split(b"\n", 1)[1]
    page = client.form_post("/decontamination/curves/import", {"file": (io.BytesIO(body), "usb.csv")},
                            content_type="multipart/form-data")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    row = html[html.index('<tr class="outcome-imported">'):]
    row = row[:row.index("</tr>")]
    assert f'<a href="/loads/{load.id}">takes the steriliser\'s figures</a>' in row
    assert "a recall is open: contact the clients its packs reached" in row
    assert "typed figures disagree: Holding time" in row
    assert "none typed yet" in html  # cycle 61 has no load


def test_a_release_and_a_failing_record_at_the_same_moment_leave_no_sterile_pack(app, db, actor, manager, autoclave,
                                                                                 packed):
    from compliance.sterilisation.models import Cycle, Pack
    pack = packed()
    load = services.record_cycle(actor, good_cycle(autoclave, [pack], cycle_number="70"), NOW)
    load_id, pack_id, manager_id = load.id, pack.id, manager.id
    db.session.commit()  # the test's own session holds no lock while the two race
    data = record_file(70, air_fraction=0.08)
    outcome, errors = race(app, manager_id, {
        "release": lambda me: services.release_cycle(me, load_id, NOW).status,
        "import": lambda me: curve_services.import_curves(me, data, NOW).count("imported")})
    assert errors == [] and outcome["import"] == 1
    db.session.expire_all()
    status = db.session.get(Cycle, load_id).status
    pack_status = db.session.get(Pack, pack_id).status
    if outcome["release"] == "released":  # released first, then recalled by the record
        assert (status, pack_status) == ("recalled", "recalled")
    else:  # the record failed it first: the release is refused
        assert isinstance(outcome["release"], Conflict) and (status, pack_status) == ("failed", "failed")
