"""A load's PDF: its figures, verdict, decision and packs; with the steriliser's own record imported, the file's
SHA-256, the comparison and the curve as SVG; for whoever may read the load, and nobody of another site."""
import hashlib
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from compliance.audit.models import AuditEntry
from compliance.sterilisation import curve_services, services
from compliance.sterilisation.curve_physics import curve_csv, make_curve
from tests.sterilisation.conftest import good_cycle

HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"
START = "2026-11-25T09:30:00+07:00"


def _text(body: bytes) -> str:
    return re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages))


@pytest.fixture
def load(db, actor, ready_steriliser, packed, now):
    """Load 77 of serial SC-0077 with one pack, released by the manager."""
    ready_steriliser.serial = "SC-0077"
    pack = packed()
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, packs=[pack], cycle_number="77"), now)
    services.release_cycle(actor, cycle.id, now)
    db.session.commit()
    return cycle


def _import(actor, now, db, number=77, air=0.0) -> bytes:
    data = (HEADER + curve_csv("SC-0077", number, "134 °C", START, make_curve(step=2, air_fraction=air))).encode()
    curve_services.import_curves(actor, data, now, filename="usb-77.csv", media_type="text/csv")
    db.session.commit()
    return data


def test_the_load_pdf_holds_the_record_the_verdict_and_the_packs(client, login_as, manager, load, db):
    login_as(manager)
    response = client.get(f"/loads/{load.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert response.headers["X-Content-SHA256"] == hashlib.sha256(response.data).hexdigest()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = _text(response.data)
    pack = load.packs[0]
    for expected in ("Load 77", "SC-0077", "Released — the packs are sterile", "checks passed", "Released",
                     "Mira Manager", pack.label_code, pack.items[0].device.serial, "134.5 °C",
                     "Asia/Jakarta", "No record of this cycle was imported from the steriliser."):
        assert expected in text, expected
    exported = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "export")
                                 .order_by(AuditEntry.seq.desc()).limit(1))
    assert exported.entity_id == "load" and exported.after["cycle_id"] == load.id
    assert exported.after["sha256"] == hashlib.sha256(response.data).hexdigest()


def test_with_the_machine_record_the_pdf_holds_its_file_sha256_the_comparison_and_the_chart(
        client, login_as, manager, actor, load, now, db):
    data = _import(actor, now, db)
    login_as(manager)
    response = client.get(f"/loads/{load.id}.pdf")
    assert response.status_code == 200
    text = _text(response.data)
    for expected in ("As the steriliser recorded it", "The curve of cycle 77: passed", "usb-77.csv",
                     hashlib.sha256(data).hexdigest(), "imported file (CSV)", "Holding time in the band",
                     "From the steriliser", "agrees",
                     "minutes from the start", "°C (left)", "kPa absolute (right)", "holding time"):
        assert expected in text, expected


def test_a_failing_load_says_why_in_the_readers_language(client, login_as, manager, actor, ready_steriliser,
                                                         now, db):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, holding_seconds="100", cycle_number="5"),
                                  now, confirm_failure=True)
    db.session.commit()
    login_as(manager)
    text = _text(client.get(f"/loads/{cycle.id}.pdf").data)
    assert "Failed — do not use these packs" in text and "checks failed" in text
    assert "Holding time was 100 s; the programme needs at least 180 s." in text
    manager.language = "id"
    db.session.commit()
    text = _text(client.get(f"/loads/{cycle.id}.pdf").data)
    assert "Waktu tahan hanya 100 detik" in text and "Holding time was" not in text


def test_another_sites_person_gets_404_and_an_auditor_may_read(client, login_as, make_site, make_user, site,
                                                              outsider, auditor, load):
    neighbour = make_user("manager", [make_site(org=site.organisation, name="Bandung")], name="Nina Neighbour")
    for person in (neighbour, outsider):  # another site of the same organisation, and another organisation's
        login_as(person)
        assert client.get(f"/loads/{load.id}.pdf").status_code == 404
    login_as(auditor)
    response = client.get(f"/loads/{load.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
