"""Factories for stock and treatments, on top of the sterilisation ones."""
from datetime import date, timedelta

import pytest

from compliance.stock.models import ItemType, Lot
from compliance.treatments import services
from compliance.treatments.models import Client, SharpsContainer
from tests.sterilisation.conftest import (  # noqa: F401  (fixtures)
    NOW,
    actor,
    add_test,
    good_cycle,
    make_device,
    make_steriliser,
    now,
    packed,
    ready_steriliser,
)
from compliance.sterilisation import services as steri

GTIN = "09506000134352"


@pytest.fixture
def item_type(db, site):
    row = ItemType(organisation_id=site.organisation_id, name="Cartridge 12-pin", kind="needle_cartridge",
                   gtin=GTIN, pins=12)
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def make_lot(db, site, item_type):
    def make(lot_number="LOT42", expires_on=date(2027, 12, 31), status="available", lot_site=None):
        lot = Lot(site_id=(lot_site or site).id, item_type_id=item_type.id, lot_number=lot_number,
                  expires_on=expires_on, quantity=100, status=status)
        db.session.add(lot)
        db.session.commit()
        return lot

    return make


def barcode(serial, lot="LOT42", expiry="271231"):
    return f"(01){GTIN}(17){expiry}(10){lot}(21){serial}"


@pytest.fixture
def trained_nurse(nurse, make_training):
    make_training(nurse, course="infection_control", completed_on=NOW.date() - timedelta(days=100))
    make_training(nurse, course="microneedling", completed_on=NOW.date() - timedelta(days=100))
    return nurse


@pytest.fixture
def client_row(db, site):
    row = Client(organisation_id=site.organisation_id, site_id=site.id, code="C-TEST22")
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def container(db, site):
    row = SharpsContainer(site_id=site.id, label="SC-1", opened_at=NOW - timedelta(days=10))
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def start(db, site, client_row, trained_nurse, actor):
    """Start a screened treatment by the trained nurse (the manager's actor records it)."""
    def begin(screened=True, practitioner=None):
        treatment = services.start_treatment(actor, {
            "room_id": site.rooms[0].id, "client_id": client_row.id, "procedure": "acne_scars", "method": "roller",
            "practitioner_id": (practitioner or trained_nurse).id}, NOW)
        if screened:
            services.record_screening(actor, treatment.id, {
                "active_skin_infection": "no", "herpes_history": "no", "metal_allergy": "no", "skin_type": "III",
                "age_confirmed": "yes"}, NOW)
        db.session.commit()
        return treatment

    return begin


@pytest.fixture
def sterile_pack(db, actor, ready_steriliser, packed):
    def make():
        pack = packed()
        cycle = steri.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
        steri.release_cycle(actor, cycle.id, NOW)
        db.session.commit()
        return pack

    return make


@pytest.fixture
def untrained_nurse(make_user, site):
    """Staff of the site with no training record: the gate refuses with training_missing (a manager may override)."""
    return make_user("staff", sites=[site], name="Untrained Nurse")


@pytest.fixture
def needled(db, actor, sterile_pack):
    """Open a sterile roller pack for a treatment through the gate: what a roller treatment needs to finish."""
    def add(treatment):
        result = services.add_pack(actor, treatment.id, sterile_pack().label_code, NOW)
        assert result.accepted, result.reasons
        db.session.commit()
        return treatment

    return add
