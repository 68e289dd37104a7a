"""The manager screens for devices, device kinds and sterilisers."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.devices.models import Device, DeviceEvent, DeviceType, Programme, Steriliser, SteriliserStatusChange
from compliance.devices.views import cycles_standing, due_standing
from compliance.sterilisation import services as steri
from tests.sterilisation.conftest import (  # noqa: F401  (fixtures)
    NOW,
    actor,
    add_test,
    good_cycle,
    make_device,
    make_steriliser,
    packed,
    ready_steriliser,
)

LONG = "x" * 10_000


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
def kind(db, site):
    row = DeviceType(organisation_id=site.organisation_id, name="Roller handle", spaulding_class="critical",
                     default_max_cycles=200)
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def sister_site(make_site, site):
    """A second site of the same organisation, which the manager does not belong to."""
    return make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")


def device_data(site, kind, **changes) -> dict:
    data = {"site_id": str(site.id), "device_type_id": str(kind.id), "serial": "RH-0001", "max_cycles": ""}
    data.update(changes)
    return data


def steriliser_data(site, **changes) -> dict:
    data = {"site_id": str(site.id), "name": "Autoclave 2", "make": "W&H", "model": "Lisa", "serial": "L-1",
            "type": "B", "validation_due_on": "2027-01-31", "calibration_due_on": ""}
    data.update(changes)
    return data


# --- pure standings ------------------------------------------------------------------------------

@pytest.mark.parametrize("count, max_cycles, standing", [
    (5, None, None),        # no maker's limit
    (179, 200, "ok"),       # just outside the last 10 %
    (180, 200, "near"),     # exactly 90 %
    (199, 200, "near"),
    (200, 200, "reached"),
    (201, 200, "over"),
    (9, 10, "near"),
])
def test_reprocessing_count_standing_at_the_boundaries(count, max_cycles, standing):
    assert cycles_standing(count, max_cycles) == standing


@pytest.mark.parametrize("due_on, standing", [
    (None, None),
    (date(2026, 11, 24), "overdue"),   # yesterday
    (date(2026, 11, 25), "soon"),      # due today: not overdue yet
    (date(2026, 12, 25), "soon"),      # 30 days ahead
    (date(2026, 12, 26), "ok"),        # 31 days ahead
])
def test_due_date_standing_at_the_boundaries(due_on, standing):
    assert due_standing(due_on, date(2026, 11, 25)) == standing


# --- who may see and do what ---------------------------------------------------------------------

def _post_urls(app, ids: dict) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("devices.") and "POST" in rule.methods:
            url = rule.rule
            for name, value in ids.items():
                url = url.replace(f"<int:{name}>", str(value))
            assert "<" not in url, url
            urls.append(url)
    return urls


def test_every_devices_screen_declares_the_action_it_needs(app):
    endpoints = [e for e in app.view_functions if e.startswith("devices.")]
    assert {"devices.list_devices", "devices.list_sterilisers"} <= set(endpoints)
    for endpoint in endpoints:
        assert getattr(app.view_functions[endpoint], "required_action", None), endpoint


def test_auditor_reads_every_screen_but_every_post_is_403(app, login_as, auditor, site, kind, make_device,
                                                          make_steriliser, db):
    device = make_device(site, type_name="Roller handle")
    steriliser = make_steriliser(site)
    client = login_as(auditor)
    for url in ("/devices", f"/devices/{device.id}", "/device-kinds", "/sterilisers", f"/sterilisers/{steriliser.id}"):
        response = client.get(url)
        assert response.status_code == 200, url
        page = text(response)
        assert "Register a device" not in page and "Take out of service" not in page and "Add a programme" not in page
    for url in ("/devices/new", "/device-kinds/new", "/sterilisers/new", f"/sterilisers/{steriliser.id}/edit"):
        assert client.get(url).status_code == 403, url
    urls = _post_urls(app, {"device_id": device.id, "steriliser_id": steriliser.id})
    assert len(urls) >= 7
    before = (rows(db, Device), rows(db, DeviceEvent), rows(db, DeviceType), rows(db, Steriliser),
              rows(db, Programme), rows(db, SteriliserStatusChange))
    for url in urls:
        response = client.form_post(url, {**device_data(site, kind, serial="HACK-1"), **steriliser_data(site),
                                          "status": "retired", "reason": "because", "temperature_c": "134",
                                          "min_holding_seconds": "180", "spaulding_class": "critical"})
        assert response.status_code == 403, url
    assert (rows(db, Device), rows(db, DeviceEvent), rows(db, DeviceType), rows(db, Steriliser),
            rows(db, Programme), rows(db, SteriliserStatusChange)) == before
    assert fresh(db, Device, device.id).status == "dirty" and fresh(db, Steriliser, steriliser.id).is_in_service


def test_staff_see_the_device_list_but_cannot_register_a_device(login_as, nurse, site, kind, make_device, db):
    make_device(site, serial="RH-0042")
    client = login_as(nurse)
    page = text(client.get("/devices"))
    assert "RH-0042" in page and "Register a device" not in page
    assert client.get("/devices/new").status_code == 403
    assert client.form_post("/devices/new", device_data(site, kind, serial="STAFF-1")).status_code == 403
    assert rows(db, Device, Device.serial == "STAFF-1") == 0


def test_another_sites_device_and_steriliser_are_not_found(login_as, manager, other_site, sister_site,
                                                            make_device, make_steriliser, db):
    client = login_as(manager)
    for site in (other_site, sister_site):  # another organisation's, and a sister site the manager is not at
        device = make_device(site)
        steriliser = make_steriliser(site)
        for url in (f"/devices/{device.id}", f"/sterilisers/{steriliser.id}", f"/sterilisers/{steriliser.id}/edit"):
            assert client.get(url).status_code == 404, url
        assert client.form_post(f"/devices/{device.id}/status",
                                {"status": "retired", "reason": "x"}).status_code == 404
        assert client.form_post(f"/sterilisers/{steriliser.id}/out-of-service", {"reason": "x"}).status_code == 404
        assert client.form_post(f"/sterilisers/{steriliser.id}/programmes",
                                {"name": "P", "temperature_c": "134", "min_holding_seconds": "180"}).status_code == 404
        assert client.get(f"/devices?site={site.id}").status_code == 404
        assert fresh(db, Device, device.id).status == "dirty"
        assert fresh(db, Steriliser, steriliser.id).is_in_service
    assert rows(db, Programme) == 2  # the factories' own


def test_signed_out_visitor_is_sent_to_sign_in(client):
    for url in ("/devices", "/sterilisers", "/device-kinds"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- device kinds --------------------------------------------------------------------------------

def test_manager_adds_a_device_kind_with_its_spaulding_class(login_as, manager, db):
    client = login_as(manager)
    page = text(client.get("/device-kinds/new"))
    assert "Pierces or abrades skin" in page and "Touches only intact skin" in page
    response = client.form_post("/device-kinds/new", {"name": "Dermaroller head", "spaulding_class": "critical",
                                                      "is_hollow": "y", "default_max_cycles": "10"})
    assert response.status_code == 302
    row = db.session.scalar(select(DeviceType).where(DeviceType.name == "Dermaroller head"))
    assert (row.organisation_id, row.spaulding_class, row.is_hollow, row.default_max_cycles) == \
        (manager.organisation_id, "critical", True, 10)
    page = text(client.get("/device-kinds"))
    assert "Dermaroller head" in page and "Critical" in page


def test_duplicate_device_kind_name_is_refused_at_the_field(login_as, manager, kind, db):
    client = login_as(manager)
    response = client.form_post("/device-kinds/new", {"name": "roller HANDLE", "spaulding_class": "critical"})
    assert response.status_code == 409
    assert "already exists" in field_error(text(response), "name")
    assert rows(db, DeviceType) == 1


def test_unknown_spaulding_class_is_refused(login_as, manager, db):
    response = login_as(manager).form_post("/device-kinds/new", {"name": "Odd", "spaulding_class": "extreme"})
    assert response.status_code == 422
    assert "Spaulding class must be one of" in field_error(text(response), "spaulding_class")
    assert rows(db, DeviceType) == 0


# --- registering devices -------------------------------------------------------------------------

def test_manager_registers_a_device_that_starts_dirty_with_a_registered_entry(login_as, manager, site, kind, db):
    client = login_as(manager)
    response = client.form_post("/devices/new", device_data(site, kind))
    assert response.status_code == 302
    device = db.session.scalar(select(Device).where(Device.serial == "RH-0001"))
    assert response.headers["Location"].endswith(f"/devices/{device.id}")
    assert (device.status, device.site_id, device.max_cycles, device.reprocessing_count) == ("dirty", site.id, 200, 0)
    events = db.session.scalars(select(DeviceEvent).where(DeviceEvent.device_id == device.id)).all()
    assert [(e.kind, e.to_status, e.by_id) for e in events] == [("registered", "dirty", manager.id)]
    page = text(client.get(response.headers["Location"]))
    assert "Registered" in page and "Dirty" in page and "0 of 200" in page and "Mira Manager" in page


def test_own_max_cycles_wins_over_the_kinds_default(login_as, manager, site, kind, db):
    login_as(manager).form_post("/devices/new", device_data(site, kind, max_cycles="50"))
    assert db.session.scalar(select(Device.max_cycles).where(Device.serial == "RH-0001")) == 50


def test_duplicate_serial_is_refused_at_the_field_and_nothing_stored(login_as, manager, site, sister_site, kind, db,
                                                                     make_device):
    make_device(sister_site, serial="RH-0001")  # the same organisation, another site
    before = (rows(db, Device), rows(db, DeviceEvent))
    response = login_as(manager).form_post("/devices/new", device_data(site, kind))
    assert response.status_code == 409
    assert field_error(text(response), "serial") == "a device with this serial already exists"
    assert (rows(db, Device), rows(db, DeviceEvent)) == before


def test_ten_thousand_character_serial_is_refused(login_as, manager, site, kind, db):
    response = login_as(manager).form_post("/devices/new", device_data(site, kind, serial=LONG))
    assert response.status_code == 422
    assert field_error(text(response), "serial")
    assert rows(db, Device) == 0 and rows(db, DeviceEvent) == 0


@pytest.mark.parametrize("max_cycles", ["0", "-5", "lots", "1e9"])
def test_impossible_max_cycles_is_refused(login_as, manager, site, kind, db, max_cycles):
    response = login_as(manager).form_post("/devices/new", device_data(site, kind, max_cycles=max_cycles))
    assert response.status_code == 422
    assert "Maker&#39;s maximum reprocessing cycles" in field_error(text(response), "max_cycles")  # its label
    assert rows(db, Device) == 0


def test_unknown_kind_is_refused_and_nothing_stored(login_as, manager, site, kind, other_site, db):
    foreign = DeviceType(organisation_id=other_site.organisation_id, name="Foreign kind")
    db.session.add(foreign)
    db.session.commit()
    client = login_as(manager)
    for type_id in ("999999", str(foreign.id)):
        response = client.form_post("/devices/new", device_data(site, kind, device_type_id=type_id))
        assert response.status_code == 404
        assert field_error(text(response), "device_type_id") == "no such device kind"
    assert rows(db, Device) == 0 and rows(db, DeviceEvent) == 0


def test_another_organisations_site_is_refused_and_nothing_stored(login_as, manager, site, kind, other_site,
                                                                   sister_site, db):
    client = login_as(manager)
    for target in (other_site, sister_site):
        response = client.form_post("/devices/new", device_data(site, kind, site_id=str(target.id)))
        assert response.status_code == 404
        assert field_error(text(response), "site_id") == "no such site"
    assert rows(db, Device) == 0


def test_register_page_without_kinds_points_to_adding_one(login_as, manager):
    page = text(login_as(manager).get("/devices/new"))
    assert "No device kinds yet" in page and "/device-kinds/new" in page and 'name="serial"' not in page


# --- status by hand ------------------------------------------------------------------------------

def test_quarantine_needs_a_reason(login_as, manager, site, make_device, db):
    device = make_device(site)
    response = login_as(manager).form_post(f"/devices/{device.id}/status", {"status": "quarantined", "reason": " "})
    assert response.status_code == 422
    assert field_error(text(response), "reason") == "Reason is required"
    assert fresh(db, Device, device.id).status == "dirty"
    assert rows(db, DeviceEvent, DeviceEvent.device_id == device.id) == 1


def test_quarantine_with_a_reason_is_kept_in_the_history(login_as, manager, site, make_device, db):
    device = make_device(site)
    client = login_as(manager)
    response = client.form_post(f"/devices/{device.id}/status",
                                {"status": "quarantined", "reason": "Bent needles seen at inspection"})
    assert response.status_code == 302
    assert fresh(db, Device, device.id).status == "quarantined"
    event = db.session.scalar(select(DeviceEvent).where(DeviceEvent.device_id == device.id,
                                                        DeviceEvent.kind == "status"))
    assert (event.from_status, event.to_status, event.note, event.by_id) == \
        ("dirty", "quarantined", "Bent needles seen at inspection", manager.id)
    page = text(client.get(f"/devices/{device.id}"))
    assert "Bent needles seen at inspection" in page and "Quarantined" in page
    assert page.index("Status changed by hand") < page.index("Registered</td>")  # newest first


def test_a_retired_device_stays_retired(login_as, manager, site, make_device, db):
    device = make_device(site)
    client = login_as(manager)
    response = client.form_post(f"/devices/{device.id}/status", {"status": "retired", "reason": "Worn out"})
    assert response.status_code == 302
    response = client.form_post(f"/devices/{device.id}/status", {"status": "dirty", "reason": "Try again"})
    assert response.status_code == 409
    assert "a retired device stays retired" in text(response).lower()
    assert fresh(db, Device, device.id).status == "retired"
    assert rows(db, DeviceEvent, DeviceEvent.device_id == device.id) == 2
    page = text(client.get(f"/devices/{device.id}"))
    assert "A retired device stays retired" in page and 'name="status"' not in page


def test_only_the_manual_statuses_can_be_set_by_hand(login_as, manager, site, make_device, db):
    device = make_device(site)
    response = login_as(manager).form_post(f"/devices/{device.id}/status", {"status": "in_service", "reason": "x"})
    assert response.status_code == 422
    assert fresh(db, Device, device.id).status == "dirty"


def test_history_names_the_pack_and_load_in_the_sites_time(db, login_as, manager, actor, ready_steriliser, packed):
    pack = packed()
    cycle = steri.record_cycle(actor, good_cycle(ready_steriliser, [pack], cycle_number="41"), NOW)
    steri.release_cycle(actor, cycle.id, NOW)
    db.session.commit()
    device = pack.items[0].device
    page = text(login_as(manager).get(f"/devices/{device.id}"))
    assert pack.label_code in page
    assert "Load 41, " + ready_steriliser.name in page
    assert "Sterilised (load released)" in page and "Ultrasonic cleaner" in page
    assert "25/11/2026, 10:00" in page  # NOW is 03:00 UTC: 10:00 in Jakarta
    assert "In service" in page


# --- the device list -----------------------------------------------------------------------------

@pytest.fixture
def many_devices(db, site, sister_site, make_device, manager):
    """25 roller handles and 5 pens at the manager's site, 2 pens at a sister site."""
    manager.sites = [site, sister_site]
    db.session.commit()
    for n in range(25):
        make_device(site, serial=f"RH-{n:04d}", type_name="Roller handle")
    for n in range(5):
        make_device(site, serial=f"PEN-{n:04d}", type_name="Pen tip holder")
    for n in range(2):
        make_device(sister_site, serial=f"BDG-{n:04d}", type_name="Pen tip holder")
    db.session.execute(Device.__table__.update().where(Device.serial == "PEN-0001").values(status="quarantined"))
    db.session.execute(Device.__table__.update().where(Device.serial == "PEN-0002")
                       .values(max_cycles=100, reprocessing_count=95))
    db.session.commit()


def _serials(page: str) -> list[str]:
    return re.findall(r'href="/devices/\d+">([^<]+)</a>', page)


def test_device_list_is_paginated(login_as, manager, many_devices):
    client = login_as(manager)
    first = _serials(text(client.get("/devices?per_page=10&sort=serial")))
    third = text(client.get("/devices?per_page=10&sort=serial&page=4"))
    assert len(first) == 10 and first[0] == "BDG-0000"
    assert "32 in all · page 4 of 4" in third and len(_serials(third)) == 2


def test_device_list_filters_by_site_kind_and_status(login_as, manager, many_devices, site, sister_site, db):
    client = login_as(manager)
    assert set(_serials(text(client.get(f"/devices?site={sister_site.id}")))) == {"BDG-0000", "BDG-0001"}
    pens = db.session.scalar(select(DeviceType.id).where(DeviceType.name == "Pen tip holder"))
    assert len(_serials(text(client.get(f"/devices?kind={pens}&per_page=100")))) == 7
    assert len(_serials(text(client.get(f"/devices?kind={pens}&site={site.id}")))) == 5
    assert _serials(text(client.get("/devices?status=quarantined"))) == ["PEN-0001"]


def test_device_list_searches_by_serial_or_kind(login_as, manager, many_devices):
    client = login_as(manager)
    assert _serials(text(client.get("/devices?q=rh-0012"))) == ["RH-0012"]
    assert len(_serials(text(client.get("/devices?q=pen tip&per_page=100")))) == 7
    page = text(client.get("/devices?q=nothing-like-this"))
    assert _serials(page) == [] and "No device matches this search." in page


def test_device_list_sorts_by_reprocessing_count(login_as, manager, many_devices):
    assert _serials(text(login_as(manager).get("/devices?sort=-count")))[0] == "PEN-0002"


def test_device_near_its_limit_is_highlighted(login_as, manager, many_devices):
    page = text(login_as(manager).get("/devices?q=PEN-0002"))
    assert "95 of 100" in page and "near the limit" in page


def test_device_list_counts_by_status(login_as, manager, many_devices):
    page = text(login_as(manager).get("/devices"))
    assert re.search(r"<strong>31</strong> Dirty", page) and re.search(r"<strong>1</strong> Quarantined", page)


def test_empty_device_list_says_what_to_do(login_as, manager, kind):
    page = text(login_as(manager).get("/devices"))
    assert "No devices registered yet." in page and "/devices/new" in page


def test_filter_by_a_site_or_kind_out_of_reach_is_404(login_as, manager, other_site, db):
    foreign = DeviceType(organisation_id=other_site.organisation_id, name="Foreign kind")
    db.session.add(foreign)
    db.session.commit()
    client = login_as(manager)
    assert client.get(f"/devices?site={other_site.id}").status_code == 404
    assert client.get(f"/devices?kind={foreign.id}").status_code == 404


# --- sterilisers ---------------------------------------------------------------------------------

def test_manager_adds_a_steriliser_and_edits_it(login_as, manager, site, db):
    client = login_as(manager)
    response = client.form_post("/sterilisers/new", steriliser_data(site))
    assert response.status_code == 302
    row = db.session.scalar(select(Steriliser).where(Steriliser.name == "Autoclave 2"))
    assert (row.type, row.is_in_service, row.validation_due_on) == ("B", True, date(2027, 1, 31))
    response = client.form_post(f"/sterilisers/{row.id}/edit",
                                steriliser_data(site, name="Autoclave 2b", calibration_due_on="2027-03-01"))
    assert response.status_code == 302
    row = fresh(db, Steriliser, row.id)
    assert (row.name, row.calibration_due_on) == ("Autoclave 2b", date(2027, 3, 1))


def test_type_s_steriliser_can_be_validated_for_wrapped_loads(login_as, manager, site, db):
    login_as(manager).form_post("/sterilisers/new", steriliser_data(site, type="S", is_validated_for_wrapped="y"))
    row = db.session.scalar(select(Steriliser).where(Steriliser.name == "Autoclave 2"))
    assert row.type == "S" and row.is_validated_for_wrapped is True


@pytest.mark.parametrize("stype", ["B", "N"])
def test_wrapped_loads_flag_is_ignored_for_type_b_and_n(login_as, manager, site, db, stype):
    client = login_as(manager)
    assert client.form_post("/sterilisers/new", steriliser_data(site, type=stype,
                                                                is_validated_for_wrapped="y")).status_code == 302
    row = db.session.scalar(select(Steriliser).where(Steriliser.name == "Autoclave 2"))
    assert row.type == stype and row.is_validated_for_wrapped is False


def test_editing_a_type_s_to_type_n_drops_the_wrapped_flag(login_as, manager, site, make_steriliser, db):
    steriliser = make_steriliser(site, type="S", validated=True)
    login_as(manager).form_post(f"/sterilisers/{steriliser.id}/edit",
                                steriliser_data(site, name=steriliser.name, type="N", is_validated_for_wrapped="y"))
    assert fresh(db, Steriliser, steriliser.id).is_validated_for_wrapped is False


@pytest.mark.parametrize("changes, field, status", [
    ({"type": "X"}, "type", 422),
    ({"name": LONG}, "name", 422),
    ({"validation_due_on": "2027-02-30"}, "validation_due_on", 422),
    ({"name": "Autoclave 1"}, "name", 409),
])
def test_bad_steriliser_input_is_refused_at_the_field(login_as, manager, site, make_steriliser, db, changes, field,
                                                      status):
    make_steriliser(site, name="Autoclave 1")
    response = login_as(manager).form_post("/sterilisers/new", steriliser_data(site, **changes))
    assert response.status_code == status
    assert field_error(text(response), field)
    assert rows(db, Steriliser) == 1


@pytest.mark.parametrize("changes, field", [
    ({"temperature_c": "500"}, "temperature_c"),
    ({"min_holding_seconds": "-1"}, "min_holding_seconds"),
    ({"min_holding_seconds": "3:75"}, "min_holding_seconds"),
    ({"min_pressure_kpa": "lots"}, "min_pressure_kpa"),
    ({"name": ""}, "name"),
])
def test_impossible_programme_is_refused_naming_the_field(login_as, manager, site, make_steriliser, db, changes,
                                                          field):
    steriliser = make_steriliser(site)
    data = {"name": "Quick", "temperature_c": "134", "min_holding_seconds": "180", "min_pressure_kpa": ""}
    data.update(changes)
    response = login_as(manager).form_post(f"/sterilisers/{steriliser.id}/programmes", data)
    assert response.status_code == 422
    labels = {"temperature_c": "Temperature (°C)", "min_holding_seconds": "Minimum holding time",
              "min_pressure_kpa": "Minimum pressure (kPa)", "name": "Name"}
    assert field_error(text(response), field).startswith(labels[field])  # the field's label, not its key
    assert rows(db, Programme) == 1  # the factory's own


def test_programme_holding_time_in_minutes_and_seconds(login_as, manager, site, make_steriliser, db):
    steriliser = make_steriliser(site)
    client = login_as(manager)
    response = client.form_post(f"/sterilisers/{steriliser.id}/programmes",
                                {"name": "134 °C wrapped", "temperature_c": "134", "min_holding_seconds": "3:30",
                                 "min_pressure_kpa": "304"})
    assert response.status_code == 302
    row = db.session.scalar(select(Programme).where(Programme.name == "134 °C wrapped"))
    assert (row.min_holding_seconds, str(row.temperature_c), str(row.min_pressure_kpa)) == (210, "134.0", "304.0")
    page = text(client.get(f"/sterilisers/{steriliser.id}"))
    assert "3:30 min" in page and "304.0 kPa" in page


def test_taking_out_of_service_records_a_status_change_with_the_reason(login_as, manager, site, make_steriliser,
                                                                       db):
    steriliser = make_steriliser(site)
    client = login_as(manager)
    response = client.form_post(f"/sterilisers/{steriliser.id}/out-of-service",
                                {"reason": "Door seal leaking; engineer booked"})
    assert response.status_code == 302
    row = fresh(db, Steriliser, steriliser.id)
    assert row.is_in_service is False and row.out_of_service_reason == "Door seal leaking; engineer booked"
    change = db.session.scalar(select(SteriliserStatusChange).where(
        SteriliserStatusChange.steriliser_id == steriliser.id))
    assert (change.is_in_service, change.reason, change.by_id, change.test_id) == \
        (False, "Door seal leaking; engineer booked", manager.id, None)
    page = text(client.get(f"/sterilisers/{steriliser.id}"))
    assert "Door seal leaking; engineer booked" in page and "passing test" in page
    assert 'action="/sterilisers/%d/out-of-service' % steriliser.id not in page


def test_taking_out_of_service_needs_a_reason(login_as, manager, site, make_steriliser, db):
    steriliser = make_steriliser(site)
    response = login_as(manager).form_post(f"/sterilisers/{steriliser.id}/out-of-service", {"reason": ""})
    assert response.status_code == 422
    assert field_error(text(response), "reason") == "Reason is required"
    assert fresh(db, Steriliser, steriliser.id).is_in_service and rows(db, SteriliserStatusChange) == 0


def test_out_of_service_history_is_newest_first_with_tests_in_the_readers_words(
        login_as, manager, site, make_steriliser, add_test, db):
    steriliser = make_steriliser(site)
    test = add_test(steriliser, "air_removal", result="fail")
    db.session.add_all([
        SteriliserStatusChange(steriliser_id=steriliser.id, is_in_service=False, reason="failed air_removal test",
                               test_id=test.id, at=datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)),
        SteriliserStatusChange(steriliser_id=steriliser.id, is_in_service=True, reason="passing air_removal test",
                               test_id=test.id, at=datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)),
        SteriliserStatusChange(steriliser_id=steriliser.id, is_in_service=False, reason="Fan broken",
                               by_id=manager.id, at=datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)),
    ])
    db.session.commit()
    page = text(login_as(manager).get(f"/sterilisers/{steriliser.id}"))
    assert page.index("Fan broken") < page.index("Passing air-removal") < page.index("Failed air-removal")
    assert "22/11/2026, 09:00" in page  # Jakarta time


@time_machine.travel(datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc), tick=False)
def test_overdue_validation_is_judged_by_the_sites_local_date(login_as, manager, site, make_steriliser, db):
    # 18:00 UTC on 24 November is already 01:00 on 25 November in Jakarta: a date of the 24th is overdue there.
    steriliser = make_steriliser(site)
    steriliser.validation_due_on = date(2026, 11, 24)
    steriliser.calibration_due_on = date(2027, 6, 1)
    db.session.commit()
    page = text(login_as(manager).get("/sterilisers"))
    assert "overdue" in page and page.count("overdue") == 1


def test_steriliser_list_shows_type_state_and_programmes(login_as, manager, site, make_steriliser, add_test, db):
    make_steriliser(site, name="Autoclave 1", type="N")
    broken = make_steriliser(site, name="Autoclave 9")
    broken.is_in_service, broken.out_of_service_reason = False, "Fan broken"
    failed = make_steriliser(site, name="Autoclave 10")
    test = add_test(failed, "spore", result="fail")
    failed.is_in_service, failed.out_of_service_reason = False, "failed spore test"  # as the service stores it
    db.session.add(SteriliserStatusChange(steriliser_id=failed.id, is_in_service=False, reason="failed spore test",
                                          test_id=test.id, at=NOW))
    db.session.commit()
    page = text(login_as(manager).get("/sterilisers"))
    assert "Type N" in page and "Unwrapped solid instruments only" in page
    assert "Out of service" in page and "Fan broken" in page and "134 °C" in page
    assert "Failed spore test" in page  # the reader's words, not the stored English


def test_steriliser_list_search_and_empty_state(login_as, manager, site, make_steriliser):
    client = login_as(manager)
    assert "No sterilisers yet." in text(client.get("/sterilisers"))
    make_steriliser(site, name="Autoclave 1")
    make_steriliser(site, name="Small one")
    page = text(client.get("/sterilisers?q=small"))
    assert "Small one" in page and "Autoclave 1" not in page
    assert "No steriliser matches this search." in text(client.get("/sterilisers?q=zzz"))


def test_manager_returns_a_steriliser_taken_out_by_hand(client, login_as, manager, site, make_steriliser, db):
    steriliser = make_steriliser(site)
    login_as(manager)
    client.form_post(f"/sterilisers/{steriliser.id}/out-of-service", {"reason": "door seal"})
    page = client.get(f"/sterilisers/{steriliser.id}").get_data(as_text=True)
    assert "Return to service" in page
    response = client.form_post(f"/sterilisers/{steriliser.id}/return-to-service", {"reason": "repair R-17"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(type(steriliser), steriliser.id).is_in_service
