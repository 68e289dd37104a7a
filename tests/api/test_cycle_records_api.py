"""POST /api/v1/cycle-records: a site's data logger (or a person) posts curves; the same body again changes
nothing; what can't be read answers 422."""
import hashlib
import json
from decimal import Decimal

from sqlalchemy import func, select

from compliance.devices.models import Programme, Steriliser
from compliance.sterilisation.curve_physics import make_curve
from compliance.sterilisation.models import CurveFile, CycleCurve
from tests.conftest import LONG_AGO

V1 = "/api/v1"


def _autoclave(db, site, serial="SC-9"):
    steriliser = Steriliser(site_id=site.id, name="Autoclave", name_key="autoclave", type="B", serial=serial,
                            created_at=LONG_AGO, is_in_service=True)
    db.session.add(steriliser)
    db.session.flush()
    db.session.add(Programme(steriliser_id=steriliser.id, name="134 °C", name_key="134 °c",
                             temperature_c=Decimal("134.0"), min_holding_seconds=180))
    db.session.commit()
    return steriliser


def body(numbers=(501, 502), air=0.0, serial="SC-9"):
    return {"format": "clinic-curve/1", "cycles": [
        {"steriliser_serial": serial, "cycle_number": n, "programme": "134 °C",
         "started_at": "2026-11-25T08:00:00+07:00",
         "samples": [list(s) for s in zip(*make_curve(step=2, air_fraction=air))]} for n in numbers]}


def test_a_data_logger_posts_curves_and_a_retry_changes_nothing(client, db, site, admin, make_key):
    _autoclave(db, site)
    key = make_key(site, by=admin)
    first = client.api("POST", f"{V1}/cycle-records", body(air=0.08), key=key)
    assert first.status_code == 200, first.get_json()
    answer = first.get_json()
    assert answer["imported"] == 2 and answer["unchanged"] == 0
    assert answer["cycles"][0]["outcome"] == "imported" and answer["cycles"][0]["verdict"] == "fail"
    assert answer["cycles"][0]["reasons"][0]["code"] == "steam_not_saturated"
    assert "Not saturated steam" in answer["cycles"][0]["reasons"][0]["message"]
    again = client.api("POST", f"{V1}/cycle-records", body(air=0.08), key=key).get_json()
    assert again["imported"] == 0 and again["unchanged"] == 2
    assert db.session.scalar(select(func.count()).select_from(CycleCurve)) == 2
    kept = db.session.scalar(select(CurveFile))
    assert kept.sha256 == answer["sha256"] == hashlib.sha256(kept.content).hexdigest()
    assert json.loads(kept.content) == body(air=0.08)


def test_a_manager_may_post_an_auditor_may_not(client, db, site, manager, auditor, login_as):
    _autoclave(db, site)
    login_as(auditor)
    assert client.api("POST", f"{V1}/cycle-records", body()).status_code == 403
    login_as(manager)
    answer = client.api("POST", f"{V1}/cycle-records", body()).get_json()
    assert [c["verdict"] for c in answer["cycles"]] == ["pass", "pass"]


def test_unreadable_curves_answer_422(client, db, site, admin, make_key):
    _autoclave(db, site)
    key = make_key(site, by=admin)
    bad = body(numbers=(9,))
    bad["cycles"][0]["samples"][3][0] = 0  # time going back
    r = client.api("POST", f"{V1}/cycle-records", bad, key=key)
    assert r.status_code == 422 and "cycles" in r.get_json()["errors"]
    r = client.api("POST", f"{V1}/cycle-records", {"cycles": [], "extra": 1}, key=key)
    assert r.status_code == 422
    other = client.api("POST", f"{V1}/cycle-records", body(serial="ELSEWHERE"), key=key).get_json()
    assert {c["outcome"] for c in other["cycles"]} == {"unknown_steriliser"}
