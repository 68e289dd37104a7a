"""POST /api/v1/cycle-records/files: a data logger forwards the steriliser's own file as it is (our CSV, a
STATCLAVE G4 cycleData JSON); the file is kept byte for byte, the same file again changes nothing, the load typed
for a cycle takes the machine's figures and the answer says so; what can't be read answers 422 at `file`."""
import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.devices.models import Programme, Steriliser
from compliance.sterilisation import services
from compliance.sterilisation.curve_physics import curve_csv, make_curve
from compliance.sterilisation.models import CurveFile, CycleCurve, SteriliserTest
from tests.conftest import LONG_AGO

V1 = "/api/v1"
HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"
STARTED = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def _autoclave(db, site, serial="G4-0001"):
    steriliser = Steriliser(site_id=site.id, name="Statclave", name_key="statclave", type="B", serial=serial,
                            created_at=LONG_AGO, is_in_service=True)
    db.session.add(steriliser)
    db.session.flush()
    db.session.add(Programme(steriliser_id=steriliser.id, name="134 °C", name_key="134 °c",
                             temperature_c=Decimal("134.0"), min_holding_seconds=180))
    for kind, ago in (("spore", timedelta(days=2)), ("air_removal", timedelta(hours=3))):
        db.session.add(SteriliserTest(site_id=site.id, steriliser_id=steriliser.id, kind=kind, result="pass",
                                      performed_at=STARTED - ago, control_result="grew" if kind == "spore" else None))
    db.session.commit()
    return steriliser


def g4_file(number, air=0.0) -> bytes:
    seconds, temps, pressures = make_curve(step=2, air_fraction=air)
    return json.dumps({
        "succeeded": True, "date": STARTED.date().isoformat(), "number": number, "runmode": 1,
        "display_units": "metric", "status": "Solid/Wrapped / 134°C/3min", "x_axis_points": len(temps),
        "temp": " ".join(f"{t:.2f}" for t in temps), "pressure": " ".join(f"{p / 100:.4f}" for p in pressures),
        "log": f"CYCLE {number:05d} COMPLETE", "started_at": STARTED.isoformat(), "sample_interval_seconds": 2,
        "pressure_unit": "bar"}).encode()


def post_file(client, data, key, media="application/json", **query):
    return client.open(f"{V1}/cycle-records/files", method="POST", data=data, query_string=query,
                       headers={"Authorization": f"Bearer {key}", "Content-Type": media})


def test_a_g4_file_is_forwarded_as_it_is_and_its_load_takes_its_figures(client, db, site, admin, manager, make_key):
    steriliser = _autoclave(db, site)
    load = services.record_cycle(actor_for_user(manager), {
        "steriliser_id": steriliser.id, "cycle_number": "152", "temperature_c": "134.5", "holding_seconds": "200",
        "indicator_result": "pass", "indicator_class": "5", "printout_ref": "PR-152",
        "started_at": STARTED.isoformat()}, STARTED + timedelta(minutes=30))
    db.session.commit()
    assert load.status == "awaiting_release"
    key = make_key(site, by=admin)
    data = g4_file(152, air=0.08)
    response = post_file(client, data, key, steriliser_id=steriliser.id, filename="cycle00152.json")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    [cycle] = answer["cycles"]
    assert (cycle["outcome"], cycle["verdict"]) == ("imported", "fail")
    assert cycle["reasons"][0]["code"] == "steam_not_saturated"
    assert cycle["load"]["cycle_id"] == load.id
    assert (cycle["load"]["status_before"], cycle["load"]["status_after"]) == ("awaiting_release", "failed")
    assert [d["figure"] for d in cycle["load"]["disagreements"]] == ["holding_seconds"]
    kept = db.session.scalar(select(CurveFile))
    assert kept.content == data and kept.filename == "cycle00152.json" and kept.sha256 == answer["sha256"]
    assert db.session.scalar(select(CycleCurve.source_format)) == "statclave-g4"
    back = client.open(f"{V1}/cycle-records/{cycle['curve_id']}/file",
                       headers={"Authorization": f"Bearer {key}"})
    assert back.data == data and back.headers["X-Content-SHA256"] == hashlib.sha256(data).hexdigest()
    db.session.expire_all()
    assert db.session.get(type(load), load.id).status == "failed"


def test_a_csv_of_many_cycles_then_the_same_file_again(client, db, site, admin, make_key):
    _autoclave(db, site)
    key = make_key(site, by=admin)
    data = (HEADER + "".join(curve_csv("G4-0001", n, "134 °C", STARTED.isoformat(), make_curve(step=2))
                             for n in (7, 8, 10))).encode()
    first = post_file(client, data, key, media="text/csv", filename="usb.csv").get_json()
    assert first["imported"] == 3 and [c["load"] for c in first["cycles"]] == [None, None, None]
    again = post_file(client, data, key, media="text/csv", filename="usb.csv").get_json()
    assert again["imported"] == 0 and again["unchanged"] == 3
    assert db.session.scalar(select(func.count()).select_from(CurveFile)) == 1
    assert db.session.scalar(select(func.count()).select_from(CycleCurve)) == 3


def test_what_cant_be_read_answers_422_at_file_and_stores_nothing(client, db, site, admin, make_key):
    steriliser = _autoclave(db, site)
    key = make_key(site, by=admin)
    response = post_file(client, b"steriliser_serial,cycle_number\n1,2\n", key, media="text/csv")
    assert response.status_code == 422
    assert "lacks the columns" in json.dumps(response.get_json())
    assert "file" in json.dumps(response.get_json())
    # a G4 file names no serial: without the steriliser it can't be placed
    response = post_file(client, g4_file(3), key)
    assert response.status_code == 422, response.get_json()
    assert db.session.scalar(select(func.count()).select_from(CurveFile)) == 0
    assert post_file(client, g4_file(3), key, steriliser_id=steriliser.id).status_code == 200


def test_another_sites_steriliser_is_not_found(client, db, site, other_site, admin, make_key):
    mine = _autoclave(db, site)
    theirs = _autoclave(db, other_site, serial="G4-0002")
    key = make_key(site, by=admin)
    assert post_file(client, g4_file(4), key, steriliser_id=theirs.id).status_code == 404
    assert post_file(client, g4_file(4), key, steriliser_id=mine.id).status_code == 200
