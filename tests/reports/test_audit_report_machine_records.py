"""The audit report's findings from the steriliser's own records: loads whose typed figures disagree with the
machine's, and machine cycle numbers the clinic never recorded — on the page, in the zip and in the PDF."""
from __future__ import annotations

import io
from datetime import date, timedelta

from pypdf import PdfReader

from compliance.auth.actor import actor_for_user
from compliance.reports import services
from compliance.sterilisation import curve_services
from compliance.sterilisation import services as sterilisation
from compliance.sterilisation.curve_physics import curve_csv, make_curve
from tests.reports.test_audit_report import _csvs
from tests.sterilisation.conftest import (NOW, actor, add_test, good_cycle, make_device, make_steriliser,  # noqa: F401
                                          packed, ready_steriliser)

HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"
ARGS = {"from": "2026-11-20", "to": "2026-11-26"}


def _records(numbers, serial="SC-0200") -> bytes:
    body = HEADER
    for n in numbers:
        started = (NOW - timedelta(hours=30 - n % 20)).isoformat()
        body += curve_csv(serial, n, "134 °C", started, make_curve(step=2))
    return body.encode()


def _setup(db, manager, ready_steriliser, packed):
    actor = actor_for_user(manager)
    ready_steriliser.serial = "SC-0200"
    db.session.commit()
    # load 31 typed with a holding time of 200 s; the machine held it ≥ 240 s (tolerance 5 s): a finding
    load = sterilisation.record_cycle(actor, good_cycle(ready_steriliser, [packed()], cycle_number="31"), NOW)
    # load 34 typed, never exported: not missing
    sterilisation.record_cycle(actor, good_cycle(ready_steriliser, [packed()], cycle_number="34"), NOW)
    db.session.commit()
    # the machine's records of 30, 31, 35, 38: 32–33 and 36–37 were never recorded
    curve_services.import_curves(actor, _records([30, 31, 35, 38]), NOW)
    db.session.commit()
    return actor, load


def test_the_report_counts_disagreements_and_missing_cycle_numbers(db, site, manager, ready_steriliser, packed):
    actor, load = _setup(db, manager, ready_steriliser, packed)
    report = services.audit_report(actor, site.id, date(2026, 11, 20), date(2026, 11, 26), NOW)
    [row] = report.disagreements
    assert (row.cycle_id, row.cycle_number, row.steriliser) == (load.id, 31, ready_steriliser.name)
    assert [(f["figure"], f["typed"]) for f in row.figures] == [("holding_seconds", 200)]
    assert [(g.first, g.last, g.count) for g in report.cycle_gaps] == [(32, 33, 2), (36, 37, 2)]
    assert report.summary["typed_figures_disagreeing"] == 1 and report.summary["cycle_numbers_missing"] == 4
    # another period holds none of them
    earlier = services.audit_report(actor, site.id, date(2026, 10, 1), date(2026, 10, 7), NOW)
    assert earlier.disagreements == () and earlier.cycle_gaps == ()


def test_the_page_zip_and_pdf_show_them(db, site, manager, ready_steriliser, packed, login_as):
    _setup(db, manager, ready_steriliser, packed)
    client = login_as(manager)
    html = client.get("/reports/audit", query_string={**ARGS, "site": site.id}).get_data(as_text=True)
    assert "Typed figures that disagree with the steriliser&#39;s record" in html or \
        "Typed figures that disagree with the steriliser's record" in html
    assert "Holding time typed 200 s, steriliser" in html
    assert "Steriliser cycles never recorded" in html
    tables = _csvs(client.get("/reports/audit.zip", query_string={**ARGS, "site": site.id}).data)
    assert [(r["First missing"], r["Last missing"], r["Cycles"]) for r in tables["cycle_gaps"]] == [
        ("32", "33", "2"), ("36", "37", "2")]
    [d] = tables["disagreements"]
    assert d["Load"] == "31" and d["Figures"].startswith("Holding time typed 200 s, steriliser")
    summary = {r["Key"]: r["Value"] for r in tables["summary"]}
    assert (summary["typed_figures_disagreeing"], summary["cycle_numbers_missing"]) == ("1", "4")
    pdf = client.get("/reports/audit.pdf", query_string={**ARGS, "site": site.id})
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Steriliser cycles never recorded" in text and "Holding time typed 200 s" in text


def test_empty_sections_say_so(db, site, manager, login_as):
    html = login_as(manager).get("/reports/audit", query_string={**ARGS, "site": site.id}).get_data(as_text=True)
    assert "No cycle number is missing between the records imported from the sterilisers." in html
    assert "No figure typed in this period disagrees with a record imported from the steriliser." in html
