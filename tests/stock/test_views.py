"""The single-use stock screens: receiving lots (by GS1 scan or by hand), quarantine and recall, unit labels,
item types and sharps containers; reach and roles."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import segno
import time_machine
from sqlalchemy import func, select

from compliance.stock.models import ItemType, Lot, Unit
from compliance.stock.views import expiry_standing
from compliance.treatments.models import SharpsContainer
from tests.treatments.conftest import (  # noqa: F401  (fixtures)
    GTIN,
    NOW,
    actor,
    barcode,
    container,
    item_type,
    make_lot,
)

UNKNOWN_GTIN = "04006381333931"  # a valid GTIN-13 (check digit right) that no item type has


@pytest.fixture(autouse=True)
def frozen():
    """The clock stands at NOW (10:00 in Jakarta, 25 November 2026)."""
    with time_machine.travel(NOW, tick=False):
        yield


def rows(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def fresh(db, model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def text(response) -> str:
    return response.get_data(as_text=True)


def field_error(page: str, field: str) -> str:
    """The error text shown under a form field (the field macro's <small class="error" id="…-error">)."""
    match = re.search(rf'<small class="error" id="{field}-error">([^<]*)</small>', page)
    return match.group(1) if match else ""


@pytest.fixture
def sister_site(make_site, site):
    """A second site of the same organisation, which the manager and the nurse do not belong to."""
    return make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")


def receive(client, site, **data):
    body = {"site_id": site.id, "barcode": "", "item_type_id": "", "lot_number": "", "expires_on": "",
            "quantity": "50", "supplier_ref": ""}
    body.update(data)
    return client.form_post("/lots/receive", body)


# --- pure ----------------------------------------------------------------------------------------

def test_expiry_standing_is_judged_by_the_local_date_with_a_30_day_warning():
    today = date(2026, 11, 25)
    assert expiry_standing(today - timedelta(days=1), today) == "expired"
    assert expiry_standing(today, today) == "expiring"  # usable until the end of its date, as the gate judges
    assert expiry_standing(today + timedelta(days=30), today) == "expiring"
    assert expiry_standing(today + timedelta(days=31), today) == "ok"


# --- receiving -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scan", [
    f"(01){GTIN}(17)271231(10)LOT77",                      # human-readable, as typed or as some scanners send
    f"]d201{GTIN}17271231" + "10LOT77",                    # raw, with the symbology prefix
    f"01{GTIN}10LOT77<GS>17271231",                        # raw, FNC1 shown as <GS> by a keyboard wedge
])
def test_receiving_a_lot_by_gs1_scan_fills_item_type_lot_and_expiry(db, client, login_as, nurse, site, item_type,
                                                                    scan):
    r = receive(login_as(nurse), site, barcode=scan, quantity="40", supplier_ref="DN-1001")
    assert r.status_code == 302, field_error(text(r), "barcode")
    lot = db.session.scalars(select(Lot)).one()
    assert r.headers["Location"].endswith(f"/lots/{lot.id}")
    assert (lot.item_type_id, lot.lot_number, lot.expires_on) == (item_type.id, "LOT77", date(2027, 12, 31))
    assert (lot.quantity, lot.supplier_ref, lot.status, lot.received_by_id) == (40, "DN-1001", "available", nurse.id)
    page = text(client.get(r.headers["Location"]))
    assert "LOT77" in page and "Cartridge 12-pin" in page and "received" in text(client.get("/lots")).lower()


def test_receiving_a_lot_by_typing_item_type_lot_and_expiry(db, client, login_as, manager, site, item_type):
    r = receive(login_as(manager), site, item_type_id=item_type.id, lot_number="HAND-1", expires_on="2027-06-30")
    assert r.status_code == 302
    lot = db.session.scalars(select(Lot)).one()
    assert (lot.lot_number, lot.expires_on, lot.quantity) == ("HAND-1", date(2027, 6, 30), 50)


@pytest.mark.parametrize("data,status,field,words", [
    ({"barcode": "not a barcode"}, 422, "barcode", "could not be read"),
    ({"barcode": f"(01){GTIN[:-1]}5(17)271231(10)L1"}, 422, "barcode", "could not be read"),  # check digit wrong
    ({"barcode": f"(01){UNKNOWN_GTIN}(17)271231(10)L1"}, 404, "barcode", UNKNOWN_GTIN),
    ({"barcode": f"(01){GTIN}(17)271231(10)LOT42"}, 409, "lot_number", "already received"),
    ({"barcode": f"(01){GTIN}(10)NOEXP"}, 422, "expires_on", "required"),
    ({"item_type_id": "", "lot_number": "X", "expires_on": "2027-01-01"}, 404, "item_type_id", "no such item type"),
    ({"barcode": f"(01){GTIN}(17)271231(10)L2", "quantity": "0"}, 422, "quantity", "between"),
    ({"barcode": f"(01){GTIN}(17)271231(10)L3", "quantity": "many"}, 422, "quantity", "whole number"),
])
def test_a_bad_scan_unknown_gtin_or_duplicate_lot_is_refused_at_the_field_and_nothing_stored(
        db, client, login_as, nurse, site, item_type, make_lot, data, status, field, words):
    make_lot(lot_number="LOT42")
    r = receive(login_as(nurse), site, **data)
    assert r.status_code == status
    assert words in field_error(text(r), field)
    assert rows(db, Lot) == 1 and rows(db, ItemType) == 1


def test_a_lot_cannot_be_received_at_a_site_out_of_reach(db, client, login_as, nurse, sister_site, item_type):
    r = receive(login_as(nurse), sister_site, barcode=barcode("S1"))
    assert r.status_code == 404 and "no such site" in field_error(text(r), "site_id")
    assert rows(db, Lot) == 0


# --- the list ------------------------------------------------------------------------------------

def test_lot_list_highlights_expired_and_expiring_lots_and_filters(db, client, login_as, nurse, site, make_lot):
    make_lot(lot_number="OLD", expires_on=date(2026, 11, 24))      # yesterday in Jakarta
    make_lot(lot_number="SOON", expires_on=date(2026, 12, 20))
    make_lot(lot_number="FINE", expires_on=date(2027, 12, 31), status="quarantined")
    page = text(login_as(nurse).get("/lots"))

    def row(lot_number):
        return next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if f">{lot_number}</a>" in r)

    assert "pill-bad" in row("OLD") and "expired" in row("OLD")
    assert "pill-warn" in row("SOON") and "expires within 30 days" in row("SOON")
    assert "Quarantined" in row("FINE") and "expired" not in row("FINE")
    assert page.index(">OLD<") < page.index(">SOON<") < page.index(">FINE<")  # soonest expiry first
    filtered = text(client.get("/lots?status=quarantined"))
    assert ">FINE<" in filtered and ">OLD<" not in filtered
    assert ">SOON<" in text(client.get("/lots?q=soo")) and ">OLD<" not in text(client.get("/lots?q=soo"))
    assert "No lot matches this search." in text(client.get("/lots?q=nothing-like-this"))
    assert ">FINE<" in text(client.get("/lots?sort=-expiry")).split(">OLD<")[0]


def test_empty_lot_list_says_what_to_do_first(db, client, login_as, manager, site):
    page = text(login_as(manager).get("/lots"))
    assert "No item types yet" in page and "/item-types/new" in page


# --- quarantine and recall -----------------------------------------------------------------------

def test_quarantine_release_and_recall_need_a_reason_and_a_recalled_lot_stays_recalled(
        db, client, login_as, manager, site, make_lot):
    lot = make_lot()
    login_as(manager)
    url = f"/lots/{lot.id}/status"
    r = client.form_post(url, {"status": "quarantined", "reason": ""})
    assert r.status_code == 422 and "required" in field_error(text(r), "reason")
    assert fresh(db, Lot, lot.id).status == "available"

    assert client.form_post(url, {"status": "quarantined", "reason": "box arrived wet"}).status_code == 302
    row = fresh(db, Lot, lot.id)
    assert (row.status, row.status_reason, row.status_changed_at) == ("quarantined", "box arrived wet", NOW)
    assert "box arrived wet" in text(client.get(f"/lots/{lot.id}"))

    assert client.form_post(url, {"status": "available", "reason": "inner pouches dry"}).status_code == 302
    assert fresh(db, Lot, lot.id).status == "available"

    r = client.form_post(url, {"status": "recalled", "reason": "maker's field safety notice FSN-12"})
    assert r.status_code == 302
    page = text(client.get(r.headers["Location"]))
    assert "Recalled — do not use" in page and "A recalled lot stays recalled." in page
    assert 'name="status"' not in page  # no status form is offered any more

    r = client.form_post(url, {"status": "available", "reason": "mistake"})
    assert r.status_code == 409 and "New status</a>: a recalled lot stays recalled" in text(r)
    row = fresh(db, Lot, lot.id)
    assert (row.status, row.status_reason) == ("recalled", "maker's field safety notice FSN-12")


def test_staff_may_receive_but_not_quarantine(db, client, login_as, nurse, make_lot):
    lot = make_lot()
    r = login_as(nurse).form_post(f"/lots/{lot.id}/status", {"status": "quarantined", "reason": "x"})
    assert r.status_code == 403
    assert fresh(db, Lot, lot.id).status == "available"
    assert 'action="/lots/%d/status"' % lot.id not in text(client.get(f"/lots/{lot.id}"))


# --- unit labels ---------------------------------------------------------------------------------

def test_unit_labels_print_with_their_codes_and_a_qr_code_each(db, client, login_as, nurse, make_lot):
    lot = make_lot()
    r = login_as(nurse).form_post(f"/lots/{lot.id}/labels", {"count": "3"})
    assert r.status_code == 302
    units = list(db.session.scalars(select(Unit).where(Unit.lot_id == lot.id)))
    assert len(units) == 3 and all(u.is_generated_label and u.serial.startswith("SU-") for u in units)
    sheet = text(client.get(r.headers["Location"]))
    assert 'class="labels-page labels-a4"' in sheet
    for unit in units:
        assert f'<p class="label-code">{unit.serial}</p>' in sheet
        assert segno.make_qr(unit.serial, error="m").svg_inline(scale=4, omitsize=True) in sheet
    assert sheet.count("<svg") == 3 and "LOT42" in sheet and "data-print" in sheet
    assert 'class="labels-page labels-label"' in text(client.get(r.headers["Location"] + "&format=label"))

    # A second batch prints only its own labels; the reprint sheet has every unused label.
    r = client.form_post(f"/lots/{lot.id}/labels", {"count": "2"})
    assert text(client.get(r.headers["Location"])).count("<svg") == 2
    assert text(client.get(f"/lots/{lot.id}/labels")).count("<svg") == 5


@pytest.mark.parametrize("count", ["0", "1001", "ten", ""])
def test_a_wrong_number_of_labels_is_refused_at_the_field(db, client, login_as, nurse, make_lot, count):
    lot = make_lot()
    r = login_as(nurse).form_post(f"/lots/{lot.id}/labels", {"count": count})
    assert r.status_code == 422 and field_error(text(r), "count")
    assert rows(db, Unit) == 0


# --- item types ----------------------------------------------------------------------------------

def test_manager_adds_an_item_type_and_a_duplicate_gtin_is_refused_at_the_field(db, client, login_as, manager,
                                                                               item_type):
    login_as(manager)
    data = {"name": "Roller 0.5 mm", "kind": "single_use_roller", "maker": "Acme", "product_code": "R05",
            "gtin": UNKNOWN_GTIN[1:], "pins": "", "needle_length_mm": "0.5"}
    assert client.form_post("/item-types/new", data).status_code == 302
    row = db.session.scalars(select(ItemType).where(ItemType.name == "Roller 0.5 mm")).one()
    assert (row.gtin, str(row.needle_length_mm)) == (UNKNOWN_GTIN, "0.50")
    page = text(client.get("/item-types"))
    assert "Roller 0.5 mm" in page and "Single-use roller" in page and UNKNOWN_GTIN in page

    r = client.form_post("/item-types/new", {**data, "name": "Other roller"})
    assert r.status_code == 409 and "already exists" in field_error(text(r), "gtin")
    r = client.form_post("/item-types/new", {**data, "name": "Third", "gtin": "12345"})
    assert r.status_code == 422 and "not a valid GTIN" in field_error(text(r), "gtin")
    assert rows(db, ItemType) == 2


# --- sharps containers ---------------------------------------------------------------------------

def test_a_sharps_container_opens_and_closes_with_a_disposal_reference(db, client, login_as, nurse, site):
    login_as(nurse)
    room = site.rooms[0]
    r = client.form_post("/sharps-containers/new", {"site_id": site.id, "label": "SC-9", "room_id": room.id})
    assert r.status_code == 302
    box = db.session.scalars(select(SharpsContainer)).one()
    assert (box.label, box.room_id, box.opened_at, box.opened_by_id) == ("SC-9", room.id, NOW, nurse.id)
    page = text(client.get("/sharps-containers"))
    assert "SC-9" in page and room.name in page and f"/sharps-containers/{box.id}/close" in page

    r = client.form_post("/sharps-containers/new", {"site_id": site.id, "label": "SC-9", "room_id": ""})
    assert r.status_code == 409 and "already exists" in field_error(text(r), "label")

    close = f"/sharps-containers/{box.id}/close"
    assert "data-confirm" in text(client.get(close))
    assert client.form_post(close, {"disposal_ref": "WC-2026-0042"}).status_code == 302
    box = fresh(db, SharpsContainer, box.id)
    assert (box.closed_at, box.closed_by_id, box.disposal_ref) == (NOW, nurse.id, "WC-2026-0042")
    assert "WC-2026-0042" in text(client.get("/sharps-containers?state=closed"))
    assert "SC-9" not in text(client.get("/sharps-containers?state=open"))
    r = client.form_post(close, {"disposal_ref": "again"})
    assert r.status_code == 409
    assert fresh(db, SharpsContainer, box.id).disposal_ref == "WC-2026-0042"


# --- roles and reach -----------------------------------------------------------------------------

def test_auditor_reads_the_stock_screens_but_every_post_is_403(app, db, client, login_as, auditor, make_lot,
                                                                container):
    lot = make_lot()
    login_as(auditor)
    for url in ("/lots", f"/lots/{lot.id}", "/item-types", "/sharps-containers"):
        assert client.get(url).status_code == 200, url
    assert "Receive a lot" not in text(client.get("/lots"))
    before = [tuple(r) for r in db.session.execute(select(Lot.id, Lot.status, Lot.status_reason))]
    posts = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("stock.") and "POST" in r.methods]
    assert len(posts) >= 6
    for rule in posts:
        url = rule.rule.replace("<int:lot_id>", str(lot.id)).replace("<int:container_id>", str(container.id))
        r = client.form_post(url, {"status": "recalled", "reason": "x", "count": "1", "site_id": lot.site_id,
                                   "label": "X", "name": "X", "kind": "other", "quantity": "1",
                                   "barcode": barcode("A1"), "disposal_ref": "x"})
        assert r.status_code == 403, url
    assert [tuple(r) for r in db.session.execute(select(Lot.id, Lot.status, Lot.status_reason))] == before
    assert (rows(db, Lot), rows(db, Unit), rows(db, ItemType), rows(db, SharpsContainer)) == (1, 0, 1, 1)


def test_another_sites_lot_and_container_are_404(db, client, login_as, manager, sister_site, make_lot):
    lot = make_lot(lot_site=sister_site)
    box = SharpsContainer(site_id=sister_site.id, label="B-1", opened_at=NOW)
    db.session.add(box)
    db.session.commit()
    login_as(manager)
    assert client.get(f"/lots/{lot.id}").status_code == 404
    assert client.get(f"/lots/{lot.id}/labels").status_code == 404
    assert client.form_post(f"/lots/{lot.id}/status", {"status": "recalled", "reason": "x"}).status_code == 404
    assert client.form_post(f"/lots/{lot.id}/labels", {"count": "1"}).status_code == 404
    assert client.form_post(f"/sharps-containers/{box.id}/close", {"disposal_ref": "x"}).status_code == 404
    assert client.get(f"/lots?site={sister_site.id}").status_code == 404
    assert "LOT42" not in text(client.get("/lots")) and "B-1" not in text(client.get("/sharps-containers"))
    assert fresh(db, Lot, lot.id).status == "available" and rows(db, Unit) == 0
