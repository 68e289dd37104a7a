"""Device kinds, devices, sterilisers and programmes against a real database, without the web."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.devices import services
from compliance.devices.models import Device, DeviceEvent, DeviceType, Programme, Steriliser, SteriliserStatusChange
from compliance.errors import Conflict, Forbidden, Invalid, NotFound
from tests.sterilisation.conftest import NOW, actor, make_device, make_steriliser  # noqa: F401  (fixtures)


def _count(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def sister_site(make_site, site):
    return make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")


@pytest.fixture
def kind(db, actor):
    row = services.create_device_type(actor, {"name": "Roller handle", "spaulding_class": "critical",
                                              "default_max_cycles": "200"}, NOW)
    db.session.commit()
    return row


def _device(actor, site, kind, serial="RH-1", **extra):
    return services.create_device(actor, {"site_id": site.id, "device_type_id": kind.id, "serial": serial, **extra},
                                  NOW)


# --- device kinds --------------------------------------------------------------------------------

def test_device_kind_name_is_unique_in_an_organisation_whatever_the_case(db, actor, kind, outsider):
    with pytest.raises(Conflict) as exc:
        services.create_device_type(actor, {"name": "ROLLER handle", "spaulding_class": "critical"}, NOW)
    assert exc.value.field == "name"
    # another organisation may use the same name
    services.create_device_type(actor_for_user(outsider), {"name": "Roller handle", "spaulding_class": "critical"}, NOW)


def test_device_kinds_are_scoped_to_the_organisation(db, actor, kind, outsider):
    other = actor_for_user(outsider)
    assert list(db.session.scalars(services.device_types_query(other))) == []
    with pytest.raises(NotFound):
        services.get_device_type(other, kind.id)


@pytest.mark.parametrize("data, field", [
    ({"name": "", "spaulding_class": "critical"}, "name"),
    ({"name": "X", "spaulding_class": "very"}, "spaulding_class"),
    ({"name": "X", "spaulding_class": "critical", "default_max_cycles": "0"}, "default_max_cycles"),
])
def test_impossible_device_kind_is_refused(db, actor, data, field):
    with pytest.raises(Invalid) as exc:
        services.create_device_type(actor, data, NOW)
    assert exc.value.field == field


# --- devices -------------------------------------------------------------------------------------

def test_new_device_is_dirty_with_a_registered_event(db, actor, site, kind, manager):
    device = _device(actor, site, kind)
    assert (device.status, device.reprocessing_count, device.organisation_id) == ("dirty", 0, site.organisation_id)
    [event] = services.device_history(actor, device.id)
    assert (event.kind, event.from_status, event.to_status, event.by_id, event.at) == \
        ("registered", None, "dirty", manager.id, NOW)


def test_max_cycles_defaults_from_the_kind(db, actor, site, kind):
    assert _device(actor, site, kind, "RH-1").max_cycles == 200
    assert _device(actor, site, kind, "RH-2", max_cycles="50").max_cycles == 50
    no_limit = services.create_device_type(actor, {"name": "Forceps", "spaulding_class": "critical"}, NOW)
    assert _device(actor, site, no_limit, "F-1").max_cycles is None


def test_duplicate_serial_is_refused_across_sites_of_one_organisation(db, actor, site, sister_site, kind, manager):
    manager.sites = [site, sister_site]
    db.session.commit()
    both = actor_for_user(manager)
    _device(both, site, kind, "RH-1")
    with pytest.raises(Conflict) as exc:
        _device(both, sister_site, kind, "RH-1")
    assert exc.value.field == "serial"


def test_the_same_serial_in_another_organisation_is_allowed(db, actor, site, kind, outsider, other_site):
    _device(actor, site, kind, "RH-1")
    other = actor_for_user(outsider)
    other_kind = services.create_device_type(other, {"name": "Pen", "spaulding_class": "critical"}, NOW)
    assert _device(other, other_site, other_kind, "RH-1").organisation_id == other_site.organisation_id


def test_device_for_a_site_or_kind_out_of_reach_is_refused(db, actor, site, sister_site, other_site, kind, outsider):
    for target in (sister_site, other_site):
        with pytest.raises(NotFound) as exc:
            _device(actor, target, kind)
        assert exc.value.field == "site_id"
    foreign = services.create_device_type(actor_for_user(outsider), {"name": "Pen", "spaulding_class": "critical"},
                                          NOW)
    with pytest.raises(NotFound) as exc:
        _device(actor, site, foreign)
    assert exc.value.field == "device_type_id"


def test_staff_and_auditors_may_not_register_devices(db, site, kind, nurse, auditor):
    for person in (nurse, auditor):
        with pytest.raises(Forbidden):
            _device(actor_for_user(person), site, kind)


def test_devices_are_scoped_to_the_actors_sites(db, actor, site, sister_site, other_site, make_device, outsider):
    mine = make_device(site, serial="MINE-1")
    sister = make_device(sister_site, serial="SISTER-1")
    foreign = make_device(other_site, serial="FOREIGN-1")
    assert [d.serial for d in db.session.scalars(services.devices_query(actor))] == ["MINE-1"]
    for device in (sister, foreign):
        with pytest.raises(NotFound):
            services.get_device(actor, device.id)
        with pytest.raises(NotFound):
            services.device_history(actor, device.id)
    with pytest.raises(NotFound):
        services.find_device_by_serial(actor, "SISTER-1")
    assert services.find_device_by_serial(actor, " MINE-1 ").id == mine.id
    assert services.get_device(actor_for_user(outsider), foreign.id).id == foreign.id


def test_devices_query_filters(db, actor, site, make_device):
    make_device(site, serial="RH-1", type_name="Roller handle")
    pen = make_device(site, serial="P-1", type_name="Pen tip holder")
    pen.status = "quarantined"
    db.session.commit()
    serials = lambda stmt: [d.serial for d in db.session.scalars(stmt)]  # noqa: E731
    assert serials(services.devices_query(actor, search="pen tip")) == ["P-1"]
    assert serials(services.devices_query(actor, search="rh-")) == ["RH-1"]
    assert serials(services.devices_query(actor, status="quarantined")) == ["P-1"]
    assert serials(services.devices_query(actor, device_type_id=pen.device_type_id)) == ["P-1"]


def test_status_by_hand_needs_a_reason_and_appends_an_event(db, actor, site, make_device, manager):
    device = make_device(site)
    with pytest.raises(Invalid) as exc:
        services.set_device_status(actor, device.id, {"status": "quarantined", "reason": "  "}, NOW)
    assert exc.value.field == "reason"
    db.session.rollback()
    services.set_device_status(actor, device.id, {"status": "quarantined", "reason": "Bent"}, NOW)
    history = services.device_history(actor, device.id)
    assert [(e.kind, e.from_status, e.to_status, e.note, e.by_id) for e in history][0] == \
        ("status", "dirty", "quarantined", "Bent", manager.id)
    assert [e.kind for e in history] == ["status", "registered"]  # newest first


def test_only_quarantine_retire_and_dirty_are_set_by_hand(db, actor, site, make_device):
    device = make_device(site)
    for status in ("in_service", "in_reprocessing", "lost"):
        with pytest.raises(Invalid):
            services.set_device_status(actor, device.id, {"status": status, "reason": "x"}, NOW)


def test_a_retired_device_stays_retired(db, actor, site, make_device):
    device = make_device(site)
    services.set_device_status(actor, device.id, {"status": "retired", "reason": "Worn out"}, NOW)
    for status in ("dirty", "quarantined", "retired"):
        with pytest.raises(Conflict):
            services.set_device_status(actor, device.id, {"status": status, "reason": "Again"}, NOW)
    assert device.status == "retired"


# --- sterilisers and programmes ------------------------------------------------------------------

def _steriliser(actor, site, **extra):
    data = {"site_id": site.id, "name": "Autoclave 2", "type": "B"}
    data.update(extra)
    return services.create_steriliser(actor, data, NOW)


def test_only_type_s_keeps_the_wrapped_loads_flag(db, actor, site):
    assert _steriliser(actor, site, name="S", type="S", is_validated_for_wrapped="on").is_validated_for_wrapped
    assert not _steriliser(actor, site, name="S2", type="S").is_validated_for_wrapped
    for stype in ("B", "N"):
        assert not _steriliser(actor, site, name=stype, type=stype, is_validated_for_wrapped=True) \
            .is_validated_for_wrapped


def test_steriliser_name_is_unique_per_site_only(db, actor, site, sister_site, manager):
    manager.sites = [site, sister_site]
    db.session.commit()
    both = actor_for_user(manager)
    _steriliser(both, site)
    with pytest.raises(Conflict):
        _steriliser(both, site, name="autoclave 2")
    db.session.rollback()
    assert _steriliser(both, sister_site).site_id == sister_site.id


def test_update_steriliser_keeps_its_rules(db, actor, site, make_steriliser):
    steriliser = make_steriliser(site, type="S", validated=True)
    other = make_steriliser(site, name="Other")
    services.update_steriliser(actor, steriliser.id, {"site_id": site.id, "name": "Renamed", "type": "N",
                                                      "is_validated_for_wrapped": True,
                                                      "validation_due_on": "2027-01-31"})
    assert (steriliser.name, steriliser.type, steriliser.is_validated_for_wrapped, steriliser.validation_due_on) == \
        ("Renamed", "N", False, date(2027, 1, 31))
    with pytest.raises(Conflict):
        services.update_steriliser(actor, steriliser.id, {"site_id": site.id, "name": other.name, "type": "B"})


def test_sterilisers_are_scoped_to_the_actors_sites(db, actor, site, sister_site, other_site, make_steriliser):
    mine = make_steriliser(site, name="Mine")
    for target in (sister_site, other_site):
        theirs = make_steriliser(target, name="Theirs")
        with pytest.raises(NotFound):
            services.get_steriliser(actor, theirs.id)
        with pytest.raises(NotFound):
            services.take_out_of_service(actor, theirs.id, "x", NOW)
        with pytest.raises(NotFound):
            services.add_programme(actor, theirs.id, {"name": "P", "temperature_c": "134",
                                                      "min_holding_seconds": "180"})
        with pytest.raises(NotFound):
            _steriliser(actor, target)
    assert list(db.session.scalars(services.sterilisers_query(actor))) == [mine]


def test_taking_out_of_service_records_the_change_with_its_reason(db, actor, site, make_steriliser, manager):
    steriliser = make_steriliser(site)
    with pytest.raises(Invalid):
        services.take_out_of_service(actor, steriliser.id, "", NOW)
    services.take_out_of_service(actor, steriliser.id, "Door seal leaking", NOW)
    assert (steriliser.is_in_service, steriliser.out_of_service_reason) == (False, "Door seal leaking")
    change = db.session.scalar(select(SteriliserStatusChange))
    assert (change.is_in_service, change.reason, change.by_id, change.at, change.test_id) == \
        (False, "Door seal leaking", manager.id, NOW, None)


def test_staff_may_not_take_a_steriliser_out_of_service(db, site, make_steriliser, nurse):
    steriliser = make_steriliser(site)
    with pytest.raises(Forbidden):
        services.take_out_of_service(actor_for_user(nurse), steriliser.id, "Broken", NOW)
    assert _count(db, SteriliserStatusChange) == 0


@pytest.mark.parametrize("changes, field", [
    ({"temperature_c": "500"}, "temperature_c"),
    ({"temperature_c": "99.9"}, "temperature_c"),
    ({"temperature_c": "NaN"}, "temperature_c"),
    ({"min_holding_seconds": "-1"}, "min_holding_seconds"),
    ({"min_holding_seconds": "0"}, "min_holding_seconds"),
    ({"min_holding_seconds": "14401"}, "min_holding_seconds"),
    ({"min_pressure_kpa": "-1"}, "min_pressure_kpa"),
    ({"name": "x" * 81}, "name"),
])
def test_impossible_programme_is_refused_naming_the_field(db, actor, site, make_steriliser, changes, field):
    steriliser = make_steriliser(site)
    data = {"name": "Quick", "temperature_c": "134", "min_holding_seconds": "180"}
    data.update(changes)
    with pytest.raises(Invalid) as exc:
        services.add_programme(actor, steriliser.id, data)
    assert exc.value.field == field


def test_programme_figures_are_stored_and_names_are_unique_per_steriliser(db, actor, site, make_steriliser):
    steriliser = make_steriliser(site)
    row = services.add_programme(actor, steriliser.id, {"name": "121 °C", "temperature_c": "121,0",
                                                        "min_holding_seconds": "900", "min_pressure_kpa": ""})
    assert (str(row.temperature_c), row.min_holding_seconds, row.min_pressure_kpa) == ("121.0", 900, None)
    db.session.commit()
    with pytest.raises(Conflict):
        services.add_programme(actor, steriliser.id, {"name": "121 °c", "temperature_c": "121",
                                                      "min_holding_seconds": "900"})
    db.session.rollback()
    assert _count(db, Programme, Programme.steriliser_id == steriliser.id) == 2


def test_nothing_is_written_by_a_refused_registration(db, actor, site, kind):
    with pytest.raises(Invalid):
        _device(actor, site, kind, serial="x" * 81)
    db.session.rollback()
    assert _count(db, Device) == 0 and _count(db, DeviceEvent) == 0 and _count(db, DeviceType) == 1
    assert _count(db, Steriliser) == 0


def test_a_steriliser_out_by_hand_returns_by_a_managers_hand(db, manager, site, make_steriliser):
    from compliance.auth.actor import actor_for_user
    from compliance.devices import services as dev
    from compliance.errors import Conflict
    from compliance.timeutil import utcnow

    actor = actor_for_user(manager)
    steriliser = make_steriliser(site)
    dev.take_out_of_service(actor, steriliser.id, "door seal replaced", utcnow())
    with pytest.raises(Conflict):
        dev.take_out_of_service(actor, steriliser.id, "again", utcnow())
    dev.return_to_service(actor, steriliser.id, "engineer's repair report R-17", utcnow())
    assert steriliser.is_in_service


def test_a_steriliser_out_by_a_failed_test_is_not_returned_by_hand(db, manager, site, make_steriliser):
    from compliance.auth.actor import actor_for_user
    from compliance.devices import services as dev
    from compliance.errors import Conflict
    from compliance.sterilisation import services as steri
    from compliance.timeutil import utcnow

    actor = actor_for_user(manager)
    steriliser = make_steriliser(site)
    steri.record_test(actor, {"steriliser_id": steriliser.id, "kind": "air_removal", "result": "fail"}, utcnow())
    with pytest.raises(Conflict) as exc:
        dev.return_to_service(actor, steriliser.id, "looks fine", utcnow())
    assert exc.value.rule == "failed-test-recall"
