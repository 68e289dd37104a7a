"""Reading cycle records back: GET /api/v1/cycle-records (the caller's sites, newest first, by steriliser),
GET /api/v1/cycle-records/{id} (the figures, verdict, file and typed load; the samples on request) and its file
byte for byte; another site's key or person gets 404."""
import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal

from compliance.auth.actor import actor_for_user
from compliance.devices.models import Programme, Steriliser
from compliance.sterilisation import services
from compliance.sterilisation.curve_physics import make_curve
from compliance.sterilisation.models import SteriliserTest
from tests.api.test_cycle_records_api import body
from tests.conftest import LONG_AGO

V1 = "/api/v1"


def _autoclave(db, site, serial="SC-9"):
    steriliser = Steriliser(site_id=site.id, name=f"Autoclave {serial}", name_key=f"autoclave {serial}".lower(),
                            type="B", serial=serial, created_at=LONG_AGO, is_in_service=True)
    db.session.add(steriliser)
    db.session.flush()
    db.session.add(Programme(steriliser_id=steriliser.id, name="134 °C", name_key="134 °c",
                             temperature_c=Decimal("134.0"), min_holding_seconds=180))
    db.session.commit()
    return steriliser


def _post(client, key, numbers=(501, 502), air=0.0, serial="SC-9", start="2026-11-25T08:00:00+07:00",
          step=2):
    payload = body(numbers=numbers, air=air, serial=serial)
    for c in payload["cycles"]:
        c["started_at"] = start
        c["samples"] = [list(s) for s in zip(*make_curve(step=step, air_fraction=air))]
    answer = client.api("POST", f"{V1}/cycle-records", payload, key=key)
    assert answer.status_code == 200, answer.get_json()
    return payload, answer.get_json()


def test_the_list_is_the_callers_newest_first_and_filters_by_steriliser(client, db, site, admin, make_key,
                                                                         make_site):
    first = _autoclave(db, site)
    second = _autoclave(db, site, serial="SC-10")
    key = make_key(site, by=admin)
    _post(client, key, numbers=(501,), start="2026-11-25T08:00:00+07:00")
    _post(client, key, numbers=(502,), start="2026-11-25T09:00:00+07:00")
    _post(client, key, numbers=(7,), serial="SC-10", start="2026-11-25T10:00:00+07:00")
    response = client.api("GET", f"{V1}/cycle-records", key=key)
    assert response.status_code == 200
    rows = response.get_json()
    assert [(r["steriliser_serial"], r["cycle_number"]) for r in rows] == [("SC-10", 7), ("SC-9", 502),
                                                                           ("SC-9", 501)]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    assert all("samples" not in r for r in rows)
    only = client.api("GET", f"{V1}/cycle-records?steriliser_id={first.id}&page_size=1", key=key)
    assert [r["cycle_number"] for r in only.get_json()] == [502]
    assert json.loads(only.headers["X-Pagination"])["total"] == 2
    assert client.api("GET", f"{V1}/cycle-records?steriliser_id={second.id}", key=key).get_json()[0][
        "cycle_number"] == 7
    # another site of the same organisation sees none of them, even asking for the steriliser
    site_b = make_site(org=site.organisation, name="Bandung")
    other_key = make_key(site_b, by=admin)
    assert client.api("GET", f"{V1}/cycle-records", key=other_key).get_json() == []
    assert client.api("GET", f"{V1}/cycle-records?steriliser_id={first.id}", key=other_key).get_json() == []


def test_one_record_has_its_figures_verdict_file_and_the_typed_load(client, db, site, admin, manager, make_key):
    steriliser = _autoclave(db, site)
    # The typed load with the same number (tests in order, so that the rules pass it).
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    for kind in ("spore", "air_removal"):
        db.session.add(SteriliserTest(site_id=site.id, steriliser_id=steriliser.id, kind=kind, performed_at=now,
                                      result="pass", indicator_lot="L" if kind == "spore" else "",
                                      control_result="grew" if kind == "spore" else None))
    db.session.commit()
    load = services.record_cycle(actor_for_user(manager), {
        "steriliser_id": steriliser.id, "cycle_number": "501", "temperature_c": "134.5", "holding_seconds": "200",
        "indicator_result": "pass", "indicator_class": "5", "printout_ref": "PR-1", "pack_codes": [],
        "started_at": now.isoformat()}, now)
    db.session.commit()
    key = make_key(site, by=admin)
    payload, answer = _post(client, key, numbers=(501, 502), air=0.08)
    curve_id = answer["cycles"][0]["curve_id"]
    record = client.api("GET", f"{V1}/cycle-records/{curve_id}", key=key).get_json()
    assert record["id"] == curve_id and record["steriliser_serial"] == "SC-9" and record["cycle_number"] == 501
    assert record["programme"] == "134 °C" and record["programme_text"] == "134 °C"
    assert record["started_at"].startswith("2026-11-25T01:00:00")
    assert record["source_format"] == "generic-json" and record["sample_count"] == len(payload["cycles"][0]["samples"])
    assert record["verdict"] == "fail" and record["refusal"] is None
    assert [r["code"] for r in record["reasons"]] == ["steam_not_saturated"]
    assert record["reasons"][0]["message"].startswith("Not saturated steam")
    for name in ("holding_seconds", "holding_start_s", "holding_end_s", "equilibration_seconds",
                 "max_temperature_c", "steam_deviation_k", "min_holding_pressure_kpa"):
        assert isinstance(record[name], str), name  # decimals as strings, as everywhere in the API
    assert float(record["holding_end_s"]) - float(record["holding_start_s"]) == float(record["holding_seconds"])
    assert record["file"]["sha256"] == answer["sha256"] and record["file"]["filename"] == "api.json"
    assert record["load_id"] == load.id and record["samples"] is None
    other = client.api("GET", f"{V1}/cycle-records/{answer['cycles'][1]['curve_id']}", key=key).get_json()
    assert other["load_id"] is None
    with_samples = client.api("GET", f"{V1}/cycle-records/{curve_id}?samples=true", key=key).get_json()
    assert with_samples["samples"] == payload["cycles"][0]["samples"]
    # The file: the body as posted, byte for byte, with its SHA-256 in a header
    download = client.api("GET", f"{V1}/cycle-records/{curve_id}/file", key=key)
    assert download.status_code == 200 and download.mimetype == "application/octet-stream"
    assert hashlib.sha256(download.data).hexdigest() == download.headers["X-Content-SHA256"] == answer["sha256"]
    assert json.loads(download.data) == payload


def test_a_sparse_record_is_not_judged_and_says_why(client, db, site, admin, make_key):
    _autoclave(db, site)
    key = make_key(site, by=admin)
    _, answer = _post(client, key, numbers=(9,), step=8)
    record = client.api("GET", f"{V1}/cycle-records/{answer['cycles'][0]['curve_id']}", key=key).get_json()
    assert record["verdict"] == "not_judged" and record["refusal"]["code"] == "curve_too_sparse"
    assert record["refusal"]["message"].startswith("The curve has") and record["reasons"] == []


def test_another_sites_key_or_person_gets_404_an_auditor_reads(client, db, site, admin, auditor, outsider,
                                                                 make_key, make_site, login_as):
    _autoclave(db, site)
    key = make_key(site, by=admin)
    _, answer = _post(client, key, numbers=(501,))
    curve_id = answer["cycles"][0]["curve_id"]
    site_b = make_site(org=site.organisation, name="Bandung")
    for other in (make_key(site_b, by=admin),):
        assert client.api("GET", f"{V1}/cycle-records/{curve_id}", key=other).status_code == 404
        assert client.api("GET", f"{V1}/cycle-records/{curve_id}/file", key=other).status_code == 404
    assert client.api("GET", f"{V1}/cycle-records/999999", key=key).status_code == 404
    login_as(outsider)
    assert client.api("GET", f"{V1}/cycle-records/{curve_id}").status_code == 404
    assert client.api("GET", f"{V1}/cycle-records").get_json() == []
    login_as(auditor)
    assert client.api("GET", f"{V1}/cycle-records/{curve_id}").get_json()["cycle_number"] == 501
    assert client.api("GET", f"{V1}/cycle-records/{curve_id}/file").status_code == 200


def test_the_document_describes_the_reads(client, site):
    spec = client.get(f"{V1}/openapi.json").get_json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths[f"{V1}/cycle-records"])
    listing = paths[f"{V1}/cycle-records"]["get"]
    assert {"page", "page_size", "steriliser_id"} <= {p["name"] for p in listing["parameters"]}
    item = paths[f"{V1}/cycle-records/{{curve_id}}"]["get"]
    assert "samples" in {p["name"] for p in item["parameters"]} and "404" in item["responses"]
    download = paths[f"{V1}/cycle-records/{{curve_id}}/file"]["get"]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    assert "X-Content-SHA256" in download["responses"]["200"]["headers"]
    props = spec["components"]["schemas"]["CycleRecordDetail"]["properties"]
    assert {"verdict", "reasons", "refusal", "file", "load_id", "samples", "steam_deviation_k"} <= set(props)
