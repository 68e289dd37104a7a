"""The trace as a PDF: the page's table on paper, with who exported it, when, the SHA-256 of its CSV, and an
entry in the audit log; clients by code only."""
from __future__ import annotations

import hashlib
import io
import re

import pytest
import time_machine
from pypdf import PdfReader
from sqlalchemy import select

from compliance.audit.models import AuditEntry
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
    packed,
    ready_steriliser,
    start,
    sterile_pack,
    trained_nurse,
)

CLIENT_NAME, CLIENT_PHONE = "Siti Rahmawati", "+62 812 5550 1234"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def traced(db, actor, client_row, start, sterile_pack, make_lot):  # noqa: F811
    """Two treatments of client C-TEST22 (who has a name and a phone): a pack from a released load, two units."""
    from compliance.treatments import services

    client_row.name, client_row.phone = CLIENT_NAME, CLIENT_PHONE
    make_lot()
    first, second = start(), start()
    pack = sterile_pack()
    services.add_pack(actor, first.id, pack.label_code, NOW)
    services.add_unit(actor, first.id, barcode("T1"), NOW)
    services.add_unit(actor, second.id, barcode("T2"), NOW)
    db.session.commit()
    return pack


def _text(body: bytes) -> str:
    return re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages))


def _exports(db) -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.seq)))


def test_a_client_trace_pdf_holds_the_table_the_exporter_and_the_csv_sha256(db, site, manager, login_as, traced):
    browser = login_as(manager)
    response = browser.get("/trace?client=C-TEST22&format=pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    body = response.data
    assert response.headers["X-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    csv_sha256 = hashlib.sha256(browser.get("/trace?client=C-TEST22&format=csv").data).hexdigest()
    assert response.headers["X-Report-Content-SHA256"] == csv_sha256
    text = _text(body)
    for expected in ("Trace of client C-TEST22", "Client code: C-TEST22", traced.label_code, "LOT42",
                     "Exported by Mira Manager on 25 Nov 2026, 10:00:00 (Asia/Jakarta)",
                     f"Content SHA-256: {csv_sha256}"):
        assert expected in text, expected
    assert CLIENT_NAME not in text and CLIENT_PHONE not in text  # by code only, even for a manager
    entry, csv_entry = _exports(db)  # the CSV fetched after it is an export too, with its SHA-256
    assert (csv_entry.after["format"], csv_entry.after["sha256"]) == ("csv", csv_sha256)
    assert (entry.entity_type, entry.entity_id, entry.site_id, entry.actor_user_id) == (
        "report", "trace", site.id, manager.id)
    assert entry.after == {"format": "pdf", "mode": "client", "query": {"client": "C-TEST22"}, "rows": 3,
                           "sha256": hashlib.sha256(body).hexdigest(), "content_sha256": csv_sha256}


def test_a_look_back_pdf_names_the_steriliser_it_started_from(db, manager, login_as, traced, ready_steriliser):
    response = login_as(manager).get(f"/trace?mode=lookback&steriliser={ready_steriliser.id}&format=pdf")
    assert response.status_code == 200
    text = _text(response.data)
    assert "Look-back: treatments exposed" in text and f"Steriliser: {ready_steriliser.name}" in text
    assert "C-TEST22" in text and traced.label_code in text
    assert [e.after["mode"] for e in _exports(db)] == ["lookback"]


def test_an_auditor_gets_the_pdf_without_a_client_name_or_phone(db, auditor, login_as, traced):
    response = login_as(auditor).get("/trace?client=C-TEST22&format=pdf")
    assert response.status_code == 200
    text = _text(response.data)
    assert "C-TEST22" in text and "Audra Auditor" in text
    assert CLIENT_NAME not in text and "Siti" not in text and "5550" not in text


def test_the_trace_page_offers_the_pdf_next_to_the_csv(db, manager, login_as, traced):
    html = login_as(manager).get("/trace?client=C-TEST22").get_data(as_text=True)
    assert "/trace?client=C-TEST22&amp;format=csv" in html and "/trace?client=C-TEST22&amp;format=pdf" in html
    assert _exports(db) == []


def test_a_pdf_of_nothing_traced_is_the_page_and_nothing_is_logged(db, manager, login_as):
    browser = login_as(manager)
    assert browser.get("/trace?format=pdf").mimetype == "text/html"
    missing = browser.get("/trace?client=C-NOPE99&format=pdf")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert _exports(db) == []


def test_staff_may_not_export_a_trace(db, nurse, login_as):
    assert login_as(nurse).get("/trace?client=C-TEST22&format=pdf").status_code == 403
