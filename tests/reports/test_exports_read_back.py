"""Every export, downloaded whole as a server sends it (Client.download), parsed and compared with the database:
the logbook's CSV (loads and steriliser tests), the trace and look-back CSV and PDF, the audit report's zip and PDF,
and the organisation's zip."""
import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
import time_machine
from pypdf import PdfReader
from sqlalchemy import select

from compliance.extensions import db as _db
from compliance.sterilisation.models import Cycle, Pack, SteriliserTest
from compliance.stock.models import Lot, Unit
from compliance.timeutil import to_local
from compliance.treatments.models import Client, LookBack, Treatment, TreatmentPack, TreatmentUnit
from tests.sterilisation.test_views import thirty_loads  # noqa: F401  (fixture)
from tests.treatments.conftest import (  # noqa: F401  (fixtures)
    NOW,
    actor,
    add_test,
    barcode,
    client_row,
    item_type,
    make_device,
    make_lot,
    make_steriliser,
    now,
    packed,
    ready_steriliser,
    start,
    sterile_pack,
    trained_nurse,
)

JAKARTA = "Asia/Jakarta"


def csv_table(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv", response.status
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_logbook_csv_of_loads_downloads_whole_and_matches_the_database(db, client, login_as, manager,
                                                                           thirty_loads):
    login_as(manager)
    table = csv_table(client.download("/logbook?format=csv&sort=date"))
    header, body = table[0], table[1:]
    assert header[:4] == ["Started", "Time zone", "Steriliser", "Cycle number"]
    cycles = _db.session.query(Cycle).order_by(Cycle.started_at, Cycle.id).all()
    assert len(body) == len(cycles) == 30
    for row, cycle in zip(body, cycles):
        assert int(row[3]) == cycle.cycle_number
        assert row[2] == cycle.steriliser.name and row[4] == cycle.programme.name
        assert row[5] == str(cycle.temperature_c) and int(row[6]) == cycle.holding_seconds
        assert row[11] == ("pass" if cycle.is_verdict_pass else "fail") and row[13] == cycle.status
        assert row[14] == manager.name


def test_the_logbook_csv_of_steriliser_tests_downloads_whole_and_matches_the_database(db, client, login_as, manager,
                                                                                      ready_steriliser, add_test):
    add_test(ready_steriliser, "spore", result="fail", at=NOW - timedelta(days=1), control="grew")
    login_as(manager)
    table = csv_table(client.download("/logbook?tab=tests&format=csv&sort=date"))
    header, body = table[0], table[1:]
    assert header[:5] == ["Done at", "Time zone", "Steriliser", "Test", "Result"]
    tests = _db.session.query(SteriliserTest).order_by(SteriliserTest.performed_at, SteriliserTest.id).all()
    assert len(body) == len(tests) == 3
    for row, test in zip(body, tests):
        assert row[0] == to_local(test.performed_at, JAKARTA).strftime("%Y-%m-%d %H:%M") and row[1] == JAKARTA
        assert (row[2], row[3], row[4], row[5]) == (test.steriliser.name, test.kind, test.result, test.indicator_lot)
        assert row[6] == (test.control_result or "")
    assert [r[4] for r in body].count("fail") == 1


# --- trace and look-back -------------------------------------------------------------------------

@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def treated(db, actor, client_row, start, sterile_pack, make_lot):
    """Three treatments of client C-TEST22: two with a pack each from released loads, all three with a unit of
    lot LOT42."""
    from compliance.treatments import services

    make_lot()
    treatments = [start(), start(), start()]
    for n, treatment in enumerate(treatments):
        if n < 2:
            services.add_pack(actor, treatment.id, sterile_pack().label_code, NOW)
        services.add_unit(actor, treatment.id, barcode(f"T{n}"), NOW)
    db.session.commit()
    return treatments


def _items_in_db(client_code: str) -> set[tuple[int, str, str]]:
    """(treatment, item kind, code) of every pack and unit used on the client's treatments, from the database."""
    rows = _db.session.execute(
        select(Treatment.id, Pack.label_code).join(TreatmentPack, TreatmentPack.treatment_id == Treatment.id)
        .join(Pack, Pack.id == TreatmentPack.pack_id).join(Client, Client.id == Treatment.client_id)
        .where(Client.code == client_code)).all()
    units = _db.session.execute(
        select(Treatment.id, Unit.serial).join(TreatmentUnit, TreatmentUnit.treatment_id == Treatment.id)
        .join(Unit, Unit.id == TreatmentUnit.unit_id).join(Client, Client.id == Treatment.client_id)
        .where(Client.code == client_code)).all()
    return {(t, "Pack", code) for t, code in rows} | {(t, "Single-use unit", serial) for t, serial in units}


def test_the_trace_csv_of_a_client_downloads_whole_and_matches_the_database(db, client, login_as, manager,
                                                                            treated, frozen):
    login_as(manager)
    table = csv_table(client.download("/trace?client=C-TEST22&format=csv"))
    header, body = table[0], table[1:]
    assert header[:8] == ["Treatment", "Started", "Time zone", "Site", "Client", "Practitioner", "Procedure", "Item"]
    assert {(int(r[0]), r[7], r[8]) for r in body} == _items_in_db("C-TEST22") and len(body) == 5
    for row in body:
        treatment = _db.session.get(Treatment, int(row[0]))
        assert row[1] == to_local(treatment.started_at, JAKARTA).strftime("%Y-%m-%d %H:%M")
        assert (row[3], row[4], row[5]) == (treatment.site.name, treatment.client.code, treatment.practitioner.name)
    for row in (r for r in body if r[7] == "Pack"):
        pack = _db.session.scalar(select(Pack).where(Pack.label_code == row[8]))
        assert row[10].endswith(f"#{pack.cycle.cycle_number}") and row[11] == "Released"
        assert row[12] == to_local(pack.cycle.decided_at, JAKARTA).strftime("%Y-%m-%d %H:%M")


def test_the_look_back_csv_by_lot_downloads_whole_and_matches_the_database(db, client, login_as, manager,
                                                                           treated, frozen):
    login_as(manager)
    table = csv_table(client.download("/trace?mode=lookback&lot=LOT42&format=csv"))
    exposed = _db.session.scalars(
        select(TreatmentUnit.treatment_id).join(Unit, Unit.id == TreatmentUnit.unit_id)
        .join(Lot, Lot.id == Unit.lot_id).where(Lot.lot_number == "LOT42")).all()
    assert sorted(int(r[0]) for r in table[1:]) == sorted(exposed) == [t.id for t in treated]
    assert all(r[4] == "C-TEST22" for r in table[1:])


def test_the_look_back_after_an_infection_downloads_whole_and_matches_the_database(db, client, login_as, manager,
                                                                                    actor, treated, frozen):
    from compliance.treatments import services

    infected = treated[0]
    services.record_adverse_event(actor, infected.id, {"kind": "infection", "severity": "moderate"}, NOW)
    db.session.commit()
    look = _db.session.scalar(select(LookBack))
    login_as(manager)
    table = csv_table(client.download(f"/look-backs/{look.id}?format=csv"))
    header, body = table[0], table[1:]
    assert header[-1] == "Shared with the infected client's treatment"
    # In the database: the others that share the infected treatment's load, device or lot.
    index_pack = infected.packs[0].pack
    same_load = set(_db.session.scalars(
        select(TreatmentPack.treatment_id).join(Pack, Pack.id == TreatmentPack.pack_id)
        .where(Pack.cycle_id == index_pack.cycle_id, TreatmentPack.treatment_id != infected.id)))
    lot_id = infected.units[0].unit.lot_id
    same_lot = set(_db.session.scalars(
        select(TreatmentUnit.treatment_id).join(Unit, Unit.id == TreatmentUnit.unit_id)
        .where(Unit.lot_id == lot_id, TreatmentUnit.treatment_id != infected.id)))
    assert {int(r[0]) for r in body} == same_load | same_lot == {treated[1].id, treated[2].id}
    shared = {int(r[0]): r[-1] for r in body}
    assert shared[treated[2].id] == "lot LOT42"


def _pdf_text(body: bytes) -> str:
    assert body.startswith(b"%PDF-")
    return re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages))


def test_the_trace_pdf_downloads_whole_and_holds_the_database_rows(db, client, login_as, manager, treated, frozen):
    login_as(manager)
    response = client.download("/trace?client=C-TEST22&format=pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    body = response.get_data()
    assert hashlib.sha256(body).hexdigest() == response.headers["X-Content-SHA256"]
    text = _pdf_text(body)
    for treatment_id, kind, code in _items_in_db("C-TEST22"):
        assert code in text, code
    for treatment in treated:
        assert str(treatment.id) in text
    assert "C-TEST22" in text and manager.name in text
    # The PDF names the SHA-256 of the CSV of the same rows.
    csv_body = client.download("/trace?client=C-TEST22&format=csv").get_data()
    assert response.headers["X-Report-Content-SHA256"] == hashlib.sha256(csv_body).hexdigest()


# --- the audit report ----------------------------------------------------------------------------

REPORT = {"from": "2026-11-24", "to": "2026-11-25"}


def _failed_loads_in_db(site) -> list[Cycle]:
    return [c for c in _db.session.scalars(select(Cycle).where(Cycle.site_id == site.id).order_by(Cycle.started_at))
            if not c.is_verdict_pass]


def test_the_audit_report_zip_downloads_whole_and_matches_the_database(db, client, login_as, manager, site,
                                                                       thirty_loads, frozen):
    login_as(manager)
    response = client.download("/reports/audit.zip", query_string={**REPORT, "site": site.id})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    body = response.get_data()
    assert hashlib.sha256(body).hexdigest() == response.headers["X-Content-SHA256"]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        tables = {name.removesuffix(".csv"): list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
                  for name in archive.namelist()}
    failed = _failed_loads_in_db(site)
    assert len(failed) == 1
    assert [(int(r["Load"]), r["Started"]) for r in tables["failed_loads"]] == [
        (c.cycle_number, to_local(c.started_at, JAKARTA).strftime("%Y-%m-%d %H:%M")) for c in failed]
    summary = {r["Key"]: r["Value"] for r in tables["summary"]}
    assert summary["failed_loads"] == str(len(failed))
    assert summary["content_sha256"] == response.headers["X-Report-Content-SHA256"]


def test_the_audit_report_pdf_downloads_whole_and_holds_the_database_values(db, client, login_as, manager, site,
                                                                            thirty_loads, frozen):
    login_as(manager)
    response = client.download("/reports/audit.pdf", query_string={**REPORT, "site": site.id})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    body = response.get_data()
    assert hashlib.sha256(body).hexdigest() == response.headers["X-Content-SHA256"]
    text = _pdf_text(body)
    (failed,) = _failed_loads_in_db(site)
    assert f"Holding time was {failed.holding_seconds} s" in text
    assert to_local(failed.started_at, JAKARTA).strftime("%H:%M") in text
    assert site.name in text and failed.steriliser.name in text
    assert f"Content SHA-256: {response.headers['X-Report-Content-SHA256']}" in text
    assert f"Exported by {manager.name}" in text


# --- the organisation's zip ----------------------------------------------------------------------

def test_the_organisation_zip_downloads_whole_and_every_table_matches_the_database(db, client, login_as, admin,
                                                                                   thirty_loads):
    from compliance.audit.export import SECRETS, cell, scopes

    login_as(admin)
    response = client.download("/admin/export.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        files = {}
        for name, info in manifest["tables"].items():
            raw = archive.read(info["file"])
            assert hashlib.sha256(raw).hexdigest() == info["sha256"], name
            files[name] = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    where, _unreached = scopes(admin.organisation_id)
    assert set(files) == set(where)
    _db.session.expire_all()
    for name, (header, *rows) in files.items():
        table = _db.metadata.tables[name]
        kept = [c for c in table.columns if c.name not in SECRETS]
        assert header == [c.name for c in kept], name
        expected = [[cell(v) for v in row] for row in _db.session.execute(
            select(*kept).where(where[name]).order_by(*table.primary_key.columns)).all()]
        if name == "audit_entries":  # the export's own entry came after it
            expected = expected[:-1]
        if name == "audit_heads":    # … and moved the head on
            continue
        assert rows == expected, name
    assert len(files["cycles"]) == 31
