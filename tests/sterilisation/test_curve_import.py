"""Importing cycle records: a multi-cycle CSV uploaded on the screen, the same file again changing nothing, a
conflicting record refused, the file kept with its SHA-256 and downloadable, a missing cycle number flagged."""
import hashlib
import io
import json

import pytest
from decimal import Decimal
from sqlalchemy import func, select

from compliance.sterilisation import curve_services
from compliance.sterilisation.curve_physics import curve_csv, make_curve
from compliance.sterilisation.models import CurveFile, CycleCurve

HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"
START = "2026-11-25T08:00:00+07:00"


@pytest.fixture
def autoclave(make_steriliser, site, db):
    steriliser = make_steriliser(site)
    steriliser.serial = "SC-0001"
    db.session.commit()
    return steriliser


def two_cycles(serial="SC-0001", first=1042, air=0.0) -> bytes:
    return (HEADER + curve_csv(serial, first, "134 °C", START, make_curve(air_fraction=air, step=2))
            + curve_csv(serial, first + 1, "134 °C", "2026-11-25T09:00:00+07:00", make_curve(holding_seconds=150,
                                                                                             step=2))).encode()


def count(model) -> int:
    from compliance.extensions import db
    return db.session.scalar(select(func.count()).select_from(model))


def test_import_judges_each_cycle_and_keeps_the_file(actor, autoclave, now, db):
    data = two_cycles()
    result = curve_services.import_curves(actor, data, now, filename="usb.csv", media_type="text/csv")
    db.session.commit()
    assert [(o.cycle_number, o.outcome) for o in result.outcomes] == [(1042, "imported"), (1043, "imported")]
    passed, short = (o.curve for o in result.outcomes)
    assert passed.is_judged and passed.is_verdict_pass and passed.reasons == []
    assert passed.holding_seconds >= 240 and passed.max_temperature_c == Decimal("134.6")
    assert abs(passed.steam_deviation_k) < 0.05 and passed.source_format == "generic-csv"
    assert not short.is_verdict_pass and [r["code"] for r in short.reasons] == ["curve_holding_short"]
    assert count(CurveFile) == 1
    kept = db.session.get(CurveFile, passed.curve_file_id)
    assert kept.content == data and kept.sha256 == hashlib.sha256(data).hexdigest() == result.sha256
    assert curve_services.samples_of(passed)[0][:3] == [0.0, 2.0, 4.0]


def test_the_same_file_again_changes_nothing_and_says_so(actor, autoclave, now, db):
    data = two_cycles()
    curve_services.import_curves(actor, data, now)
    db.session.commit()
    again = curve_services.import_curves(actor, data, now)
    db.session.commit()
    assert [o.outcome for o in again.outcomes] == ["unchanged", "unchanged"]
    assert count(CycleCurve) == 2 and count(CurveFile) == 1


def test_another_curve_under_a_number_on_record_is_refused_for_that_cycle(actor, autoclave, now, db):
    curve_services.import_curves(actor, two_cycles(), now)
    db.session.commit()
    other = curve_services.import_curves(actor, two_cycles(first=1043, air=0.08), now)
    db.session.commit()
    assert [(o.cycle_number, o.outcome) for o in other.outcomes] == [(1043, "conflict"), (1044, "imported")]
    assert count(CycleCurve) == 3 and count(CurveFile) == 2


def test_unknown_serial_and_unreadable_file(actor, autoclave, now, db):
    result = curve_services.import_curves(actor, two_cycles(serial="NOT-OURS"), now)
    assert {o.outcome for o in result.outcomes} == {"unknown_steriliser"} and count(CurveFile) == 0
    from compliance.errors import Invalid
    with pytest.raises(Invalid) as caught:
        curve_services.import_curves(actor, b"steriliser_serial,cycle_number\n1,2\n", now)
    assert caught.value.field == "file" and "lacks the columns" in str(caught.value.message)


def test_a_sparse_curve_is_kept_but_not_judged(actor, autoclave, now, db):
    data = (HEADER + curve_csv("SC-0001", 7, "134 °C", START, make_curve(step=8))).encode()
    [outcome] = curve_services.import_curves(actor, data, now).outcomes
    assert not outcome.curve.is_judged and not outcome.curve.is_verdict_pass
    assert outcome.curve.refusal["code"] == "curve_too_sparse"


def test_a_gap_in_machine_cycle_numbers_is_a_finding(actor, autoclave, now, db):
    csv = HEADER + "".join(curve_csv("SC-0001", n, "134 °C", START, make_curve(step=5)) for n in (10, 11, 14, 16))
    curve_services.import_curves(actor, csv.encode(), now)
    db.session.commit()
    assert curve_services.cycle_number_gaps(actor, [autoclave.id]) == {autoclave.id: [(12, 13), (15, 15)]}
    assert curve_services.missing_numbers([3, 1, 2]) == []


def test_upload_a_multi_cycle_csv_on_the_screen_then_again(client, login_as, manager, autoclave, db):
    login_as(manager)
    page = client.get("/decontamination/curves/import")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.get_data(as_text=True)
    data = two_cycles()
    response = client.form_post("/decontamination/curves/import",
                                {"file": (io.BytesIO(data), "usb-export.csv"), "steriliser_id": ""},
                                content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "2 imported, 0 already on record (nothing changed), 0 not imported." in html
    again = client.form_post("/decontamination/curves/import", {"file": (io.BytesIO(data), "usb-export.csv")},
                             content_type="multipart/form-data").get_data(as_text=True)
    assert "0 imported, 2 already on record (nothing changed), 0 not imported." in again
    curve = db.session.scalar(select(CycleCurve).where(CycleCurve.cycle_number == 1042))
    shown = client.get(f"/curves/{curve.id}")
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "The curve passes the checks." in text and "<svg" in text
    assert hashlib.sha256(data).hexdigest() in text
    download = client.download(f"/curves/files/{curve.curve_file_id}")
    assert download.status_code == 200 and download.data == data
    assert download.headers["X-Content-SHA256"] == hashlib.sha256(data).hexdigest()
    logbook = client.get("/logbook").get_data(as_text=True)
    assert f"/curves/{curve.id}" in logbook


def test_an_unreadable_upload_says_why(client, login_as, manager, autoclave):
    login_as(manager)
    response = client.form_post("/decontamination/curves/import", {"file": (io.BytesIO(b"{"), "x.json")},
                                content_type="multipart/form-data")
    assert response.status_code == 422 and "The file is not valid JSON." in response.get_data(as_text=True)
    missing = client.form_post("/decontamination/curves/import", {})
    assert missing.status_code == 422 and "Choose a file." in missing.get_data(as_text=True)


def test_a_g4_file_for_the_chosen_steriliser(client, login_as, manager, autoclave, db):
    seconds, temps, pressures = make_curve(step=2)
    g4 = {"succeeded": True, "date": "2026-11-25", "number": 152, "status": "134°C/4min", "log": "OK",
          "temp": " ".join(f"{t:.2f}" for t in temps), "pressure": " ".join(f"{p / 100:.4f}" for p in pressures),
          "started_at": START, "sample_interval_seconds": 2, "pressure_unit": "bar"}
    login_as(manager)
    response = client.form_post("/decontamination/curves/import",
                                {"file": (io.BytesIO(json.dumps(g4).encode()), "cycle.json"),
                                 "steriliser_id": str(autoclave.id)}, content_type="multipart/form-data")
    assert "1 imported" in response.get_data(as_text=True)
    curve = db.session.scalar(select(CycleCurve).where(CycleCurve.cycle_number == 152))
    assert curve.source_format == "statclave-g4" and curve.machine_passed is True and curve.is_verdict_pass


def test_the_load_typed_with_the_same_number_links_to_the_machine_record(client, login_as, manager, actor,
                                                                         ready_steriliser, now, db):
    from compliance.sterilisation import services
    from tests.sterilisation.conftest import good_cycle
    ready_steriliser.serial = "SC-0002"
    load = services.record_cycle(actor, good_cycle(ready_steriliser, cycle_number="77"), now)
    db.session.commit()
    csv = HEADER + curve_csv("SC-0002", 77, "whatever the machine calls it", START, make_curve(step=2))
    [outcome] = curve_services.import_curves(actor, csv.encode(), now).outcomes
    db.session.commit()
    assert outcome.curve.programme_id == load.programme_id  # the typed load's programme
    login_as(manager)
    html = client.get(f"/loads/{load.id}").get_data(as_text=True)
    assert "As the steriliser recorded it" in html and f"/curves/{outcome.curve.id}" in html
    page = client.get(f"/curves/{outcome.curve.id}").get_data(as_text=True)
    assert "The load recorded by hand with this cycle number" in page and "134.5 °C" in page


def test_the_logbook_names_the_missing_cycle_numbers(client, login_as, manager, actor, autoclave, now, db):
    csv = HEADER + "".join(curve_csv("SC-0001", n, "134 °C", START, make_curve(step=5)) for n in (10, 11, 14))
    curve_services.import_curves(actor, csv.encode(), now)
    db.session.commit()
    login_as(manager)
    html = client.get("/logbook").get_data(as_text=True)
    assert f"{autoclave.name}: no record of cycle numbers 12–13 (a cycle the clinic never recorded)." in html


def test_a_load_whose_machine_record_fails_is_not_released(client, login_as, manager, actor, ready_steriliser,
                                                          now, db):
    from compliance.errors import Conflict
    from compliance.sterilisation import services
    from tests.sterilisation.conftest import good_cycle
    ready_steriliser.serial = "SC-0003"
    load = services.record_cycle(actor, good_cycle(ready_steriliser, cycle_number="88", temperature_c="136.5",
                                                   holding_seconds="300"), now)
    db.session.commit()
    assert load.status == "awaiting_release"
    csv = HEADER + curve_csv("SC-0003", 88, "134 °C", START, make_curve(step=2, air_fraction=0.08))
    [outcome] = curve_services.import_curves(actor, csv.encode(), now).outcomes
    db.session.commit()
    assert not outcome.curve.is_verdict_pass
    assert [(c.figure, c.disagrees) for c in curve_services.reconciliation(outcome.curve, load)] == [
        ("temperature_c", True), ("holding_seconds", True)]
    # the steriliser's figures win: the load failed on its curve as the record arrived
    assert load.status == "failed" and [r["code"] for r in load.reasons] == ["steam_not_saturated"]
    with pytest.raises(Conflict):
        services.release_cycle(actor, load.id, now)
    db.session.rollback()
    login_as(manager)
    html = client.get(f"/loads/{load.id}").get_data(as_text=True)
    assert "The typed figures disagree with the steriliser's: Temperature, Holding time." in html
    assert "this load cannot be released" in html
    page = client.get(f"/curves/{outcome.curve.id}").get_data(as_text=True)
    assert page.count("disagrees</span>") == 2


def test_a_file_with_any_name_downloads(client, login_as, manager, autoclave, db):
    login_as(manager)
    data = two_cycles()
    client.form_post("/decontamination/curves/import", {"file": (io.BytesIO(data), "Siklus 1042 – ékspor.csv")},
                     content_type="multipart/form-data")
    curve = db.session.scalar(select(CycleCurve).where(CycleCurve.cycle_number == 1042))
    download = client.download(f"/curves/files/{curve.curve_file_id}")
    assert download.status_code == 200 and download.data == data
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''Siklus%201042%20%E2%80%93%20" in disposition


def test_a_record_keeps_the_numbers_it_was_judged_by(client, login_as, manager, actor, autoclave, now, db):
    from compliance.sterilisation.curve_chart import chart_for
    [outcome] = curve_services.import_curves(actor, two_cycles()[:two_cycles().index(b"\nSC-0001,1043")] + b"\n",
                                             now).outcomes
    db.session.commit()
    curve = outcome.curve
    assert curve.limits == {"set_temperature_c": 134.0, "min_holding_seconds": 180, "band_over_set_c": 3.0,
                            "steam_tolerance_k": 2.0, "min_samples_per_minute": 12.0, "max_gap_seconds": 10.0,
                            "min_pressure_kpa": None}
    login_as(manager)
    page = client.get(f"/curves/{curve.id}").get_data(as_text=True)
    assert ("band 134–137 °C, at least 180 s in it; steam within 2 K of saturation; at least 12 samples a minute, "
            "no gap over 10 s") in page
    # the chart draws the band it was judged by, whatever the numbers are today
    curve.limits = {**curve.limits, "band_over_set_c": 2.0}
    assert "the band 134–136 °C is shaded" in str(chart_for(curve))
