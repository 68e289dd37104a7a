"""Fixtures for the safety tests: the treatment and sterilisation factories, the API's snapshot and keys, the
clock held at NOW, a tablet signed in by PIN, and a table of item states that must never reach a client."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine

from compliance.stock.models import Unit
from compliance.sterilisation import services as steri
from compliance.treatments import services
from tests.api.conftest import make_key, snapshot  # noqa: F401  (fixtures)
from tests.conftest import PIN
from tests.treatments.conftest import (  # noqa: F401  (fixtures)
    NOW,
    actor,
    add_test,
    barcode,
    client_row,
    container,
    good_cycle,
    item_type,
    make_device,
    make_lot,
    make_steriliser,
    needled,
    now,
    packed,
    ready_steriliser,
    start,
    sterile_pack,
    trained_nurse,
    untrained_nurse,
)


@pytest.fixture(autouse=True)
def frozen():
    """The tablet and the API take `now` from the clock: hold it at the factories' NOW (10:00 in Jakarta)."""
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def on_tablet(client, enrol_tablet, site, trained_nurse):
    """The trained nurse signed in by PIN on the site's enrolled tablet."""
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{trained_nurse.id}", {"pin": PIN}).status_code == 302
    return client


# --- the item states -------------------------------------------------------------------------------
# Each maker puts one item into a state and returns the code a tablet would scan. Units are made known
# beforehand (as an SU- label or an earlier scan would), so that a refused scan changes nothing but the attempt.

def _unit(w, serial, **lot):
    lot_row = w.make_lot(**lot)
    w.db.session.add(Unit(organisation_id=w.site.organisation_id, item_type_id=lot_row.item_type_id,
                          lot_id=lot_row.id, serial=serial, created_at=NOW - timedelta(days=1)))
    w.db.session.commit()
    return barcode(serial)


def failed_load(w):
    pack = w.packed()
    cycle = steri.record_cycle(w.actor, good_cycle(w.ready_steriliser, [pack], temperature_c="121.0"), NOW,
                               confirm_failure=True)
    w.db.session.commit()
    assert cycle.status == "failed"
    return pack.label_code


def load_awaiting_release(w):
    pack = w.packed()
    steri.record_cycle(w.actor, good_cycle(w.ready_steriliser, [pack]), NOW)
    w.db.session.commit()
    return pack.label_code


def _sterile(w, **changes):
    pack = w.sterile_pack()
    for name, value in changes.items():
        setattr(pack, name, value)
    w.db.session.commit()
    return pack


def recalled_pack(w):
    return _sterile(w, status="recalled").label_code


def expired_pack(w):
    return _sterile(w, expires_at=NOW - timedelta(seconds=1)).label_code


def compromised_pack(w):
    pack = w.sterile_pack()
    steri.compromise_pack(w.actor, pack.label_code, {"reason": "wet"}, NOW - timedelta(minutes=5))
    w.db.session.commit()
    return pack.label_code


def used_pack(w):
    pack = w.sterile_pack()
    assert services.add_pack(w.actor, w.start().id, pack.label_code, NOW).accepted
    w.db.session.commit()
    return pack.label_code


def _device(w, **changes):
    pack = w.sterile_pack()
    device = pack.items[0].device
    for name, value in changes.items():
        setattr(device, name, value)
    w.db.session.commit()
    return pack.label_code


def quarantined_device(w):
    return _device(w, status="quarantined")


def retired_device(w):
    return _device(w, status="retired")


def device_over_its_makers_limit(w):
    return _device(w, max_cycles=5, reprocessing_count=6)


def used_unit(w):
    w.make_lot()
    assert services.add_unit(w.actor, w.start().id, barcode("USED-1"), NOW).accepted
    w.db.session.commit()
    return barcode("USED-1")


def recalled_lot(w):
    return _unit(w, "RCL-1", status="recalled")


def quarantined_lot(w):
    return _unit(w, "QRN-1", status="quarantined")


def expired_lot(w):
    return _unit(w, "EXP-1", expires_on=NOW.date() - timedelta(days=1))


# state: (subject, maker, the reason's code, the guideline it applies)
ITEM_STATES = {
    "failed load": ("pack", failed_load, "pack_failed", "cycle-parameters-met"),
    "load awaiting release": ("pack", load_awaiting_release, "load_not_released", "spaulding-critical"),
    "recalled pack": ("pack", recalled_pack, "pack_recalled", "failed-test-recall"),
    "expired pack": ("pack", expired_pack, "pack_expired", "sterile-storage"),
    "compromised pack": ("pack", compromised_pack, "pack_compromised", "sterile-storage"),
    "used pack": ("pack", used_pack, "pack_used", "spaulding-critical"),
    "quarantined device": ("pack", quarantined_device, "device_withdrawn", "spaulding-critical"),
    "retired device": ("pack", retired_device, "device_withdrawn", "spaulding-critical"),
    "device over its maker's limit": ("pack", device_over_its_makers_limit, "device_over_limit",
                                      "spaulding-critical"),
    "used unit": ("unit", used_unit, "unit_used", "single-use-never-reused"),
    "recalled lot": ("unit", recalled_lot, "lot_recalled", "single-use-never-reused"),
    "quarantined lot": ("unit", quarantined_lot, "lot_quarantined", "single-use-never-reused"),
    "expired lot": ("unit", expired_lot, "lot_expired", "single-use-never-reused"),
}


@pytest.fixture
def item_in_state(db, site, actor, start, sterile_pack, packed, ready_steriliser, make_lot):
    """make(state) -> (subject, scanned code, code of the reason, rule): the item, put into that state."""
    w = SimpleNamespace(db=db, site=site, actor=actor, start=start, sterile_pack=sterile_pack, packed=packed,
                        ready_steriliser=ready_steriliser, make_lot=make_lot)

    def make(state: str):
        subject, maker, code, rule = ITEM_STATES[state]
        return subject, maker(w), code, rule

    return make
