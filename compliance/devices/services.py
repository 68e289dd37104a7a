"""Device kinds, devices, sterilisers and programmes: actor + values + now in, rows flushed, never committed."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select

from .. import validation as v
from ..auth.actor import Actor
from ..errors import Conflict, Duplicate, NotFound
from ..extensions import db
from ..names import name_key
from ..schedule import services as schedule
from .forms import DEVICE_STATUS_LABELS, SPAULDING_LABELS, STERILISER_TYPE_LABELS  # a refused choice's words
from .models import (
    SPAULDING_CLASSES,
    STERILISER_TYPES,
    Device,
    DeviceEvent,
    DeviceType,
    Programme,
    Steriliser,
    SteriliserStatusChange,
)

# Status changes a person may make by hand; the others follow from reprocessing and treatments.
MANUAL_STATUS_CHANGES = {"quarantined", "retired", "dirty"}


# --- device kinds ------------------------------------------------------------------------------

def device_types_query(actor: Actor, include_inactive: bool = False) -> Select:
    actor.require("devices.read")
    stmt = select(DeviceType).where(DeviceType.organisation_id == actor.organisation_id).order_by(DeviceType.name)
    return stmt if include_inactive else stmt.where(DeviceType.is_active.is_(True))


def get_device_type(actor: Actor, type_id: int) -> DeviceType:
    actor.require("devices.read")
    row = db.session.get(DeviceType, type_id)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound(_l("no such device kind"), field="device_type_id")
    return row


def create_device_type(actor: Actor, data: dict, now: datetime) -> DeviceType:
    """A kind of reusable device with its Spaulding class (critical: pierces or abrades skin)."""
    actor.require("devices.write")
    name = v.text(data, "name", 120)
    if existing := db.session.scalar(select(DeviceType.id).where(DeviceType.organisation_id == actor.organisation_id,
                                                                 DeviceType.name_key == name_key(name))):
        raise Duplicate(_l("a device kind with this name already exists"), existing, field="name")
    row = DeviceType(organisation_id=actor.organisation_id, name=name,
                     spaulding_class=v.choice(data, "spaulding_class", SPAULDING_CLASSES, labels=SPAULDING_LABELS),
                     is_hollow=v.boolean(data, "is_hollow"),
                     default_max_cycles=v.integer(data, "default_max_cycles", 1, 100000, required=False),
                     created_at=now)
    db.session.add(row)
    db.session.flush()
    return row


# --- devices -----------------------------------------------------------------------------------

def devices_query(actor: Actor, site_id: int | None = None, search: str = "", status: str | None = None,
                  device_type_id: int | None = None) -> Select:
    """Devices of the sites in the actor's reach."""
    actor.require("devices.read")
    stmt = select(Device).join(Device.device_type).where(Device.site_id.in_(actor.site_ids))
    if site_id is not None:
        stmt = stmt.where(Device.site_id == site_id)
    if search:
        like = f"%{search.strip()}%"
        stmt = stmt.where(or_(Device.serial.ilike(like), DeviceType.name.ilike(like)))
    if status:
        stmt = stmt.where(Device.status == status)
    if device_type_id:
        stmt = stmt.where(Device.device_type_id == device_type_id)
    return stmt.order_by(DeviceType.name, Device.serial)


def get_device(actor: Actor, device_id: int) -> Device:
    actor.require("devices.read")
    row = db.session.get(Device, device_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such device"), field="device_id")
    return row


def find_device_by_serial(actor: Actor, serial: str) -> Device:
    actor.require("devices.read")
    row = db.session.scalar(select(Device).where(Device.organisation_id == actor.organisation_id,
                                                 Device.serial == (serial or "").strip()))
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no device with this serial"), field="serial")
    return row


def create_device(actor: Actor, data: dict, now: datetime) -> Device:
    """Register a reusable device. A new device is dirty: it is reprocessed before first use."""
    actor.require("devices.write")
    site_id = v.ident(data, "site_id")
    actor.require_site(site_id)
    device_type = get_device_type(actor, v.ident(data, "device_type_id"))
    serial = v.text(data, "serial", 80)
    existing = db.session.scalar(select(Device).where(Device.organisation_id == actor.organisation_id,
                                                      Device.serial == serial))
    if existing is not None:  # serials are unique in the organisation; named when the caller reaches its site
        raise Duplicate(_l("a device with this serial already exists"),
                        existing.id if existing.site_id in actor.site_ids else None, field="serial")
    max_cycles = v.integer(data, "max_cycles", 1, 100000, required=False) or device_type.default_max_cycles
    device = Device(organisation_id=actor.organisation_id, site_id=site_id, device_type_id=device_type.id,
                    serial=serial, status="dirty", max_cycles=max_cycles, reprocessing_count=0, created_at=now)
    db.session.add(device)
    db.session.flush()
    db.session.add(DeviceEvent(device_id=device.id, kind="registered", to_status="dirty", by_id=actor.user_id, at=now))
    db.session.flush()
    return device


def change_device_status(device: Device, to_status: str, actor_user_id: int | None, now: datetime, *,
                         kind: str = "status", note: str = "", pack_id: int | None = None,
                         cycle_id: int | None = None, method: str = "") -> None:
    """Move a device to a status and append the event (used by every service that moves devices)."""
    db.session.add(DeviceEvent(device_id=device.id, kind=kind, from_status=device.status, to_status=to_status,
                               note=note, pack_id=pack_id, cycle_id=cycle_id, method=method,
                               by_id=actor_user_id, at=now))
    device.status = to_status


def set_device_status(actor: Actor, device_id: int, data: dict, now: datetime) -> Device:
    """Quarantine, retire or send back to dirty by hand, with a reason."""
    actor.require("devices.write")
    device = get_device(actor, device_id)
    to_status = v.choice(data, "status", sorted(MANUAL_STATUS_CHANGES), labels=DEVICE_STATUS_LABELS)
    if device.status == "retired":
        raise Conflict(_l("a retired device stays retired"), field="status")
    reason = v.text(data, "reason", 2000)
    change_device_status(device, to_status, actor.user_id, now, note=reason)
    db.session.flush()
    return device


def device_history(actor: Actor, device_id: int) -> list[DeviceEvent]:
    """Every event of a device, newest first (packs, loads and, later, treatments are linked from them)."""
    get_device(actor, device_id)
    return list(db.session.scalars(select(DeviceEvent).where(DeviceEvent.device_id == device_id)
                                   .order_by(DeviceEvent.at.desc(), DeviceEvent.id.desc())))


# --- sterilisers and programmes ----------------------------------------------------------------

def sterilisers_query(actor: Actor, site_id: int | None = None, include_inactive: bool = False) -> Select:
    actor.require("sterilisation.read")
    stmt = select(Steriliser).where(Steriliser.site_id.in_(actor.site_ids))
    if site_id is not None:
        stmt = stmt.where(Steriliser.site_id == site_id)
    if not include_inactive:
        stmt = stmt.where(Steriliser.is_active.is_(True))
    return stmt.order_by(Steriliser.name)


def get_steriliser(actor: Actor, steriliser_id: int) -> Steriliser:
    actor.require("sterilisation.read")
    row = db.session.get(Steriliser, steriliser_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such steriliser"), field="steriliser_id")
    return row


def _steriliser_values(actor: Actor, data: dict) -> dict[str, Any]:
    site_id = v.ident(data, "site_id")
    actor.require_site(site_id)
    stype = v.choice(data, "type", STERILISER_TYPES, labels=STERILISER_TYPE_LABELS)
    return {
        "site_id": site_id,
        "name": v.text(data, "name", 120),
        "make": v.text(data, "make", 120, required=False),
        "model": v.text(data, "model", 120, required=False),
        "serial": v.text(data, "serial", 80, required=False),
        "type": stype,
        "is_validated_for_wrapped": stype == "S" and v.boolean(data, "is_validated_for_wrapped"),
        "validation_due_on": v.date_value(data, "validation_due_on", required=False),
        "calibration_due_on": v.date_value(data, "calibration_due_on", required=False),
    }


def create_steriliser(actor: Actor, data: dict, now: datetime) -> Steriliser:
    """Add a steriliser; it starts in service (its tests decide what it may do)."""
    actor.require("devices.write")
    values = _steriliser_values(actor, data)
    if existing := db.session.scalar(select(Steriliser.id).where(
            Steriliser.site_id == values["site_id"], Steriliser.name_key == name_key(values["name"]))):
        raise Duplicate(_l("a steriliser with this name already exists at this site"), existing, field="name")
    row = Steriliser(created_at=now, is_in_service=True, **values)
    db.session.add(row)
    db.session.flush()
    schedule.refresh_site(row.site_id, now)  # its daily and weekly tests become obligations
    return row


def update_steriliser(actor: Actor, steriliser_id: int, data: dict) -> Steriliser:
    actor.require("devices.write")
    row = get_steriliser(actor, steriliser_id)
    values = _steriliser_values(actor, data)
    if existing := db.session.scalar(select(Steriliser.id).where(
            Steriliser.site_id == values["site_id"], Steriliser.id != row.id,
            Steriliser.name_key == name_key(values["name"]))):
        raise Duplicate(_l("a steriliser with this name already exists at this site"), existing, field="name")
    for key, value in values.items():
        setattr(row, key, value)
    db.session.flush()
    return row


def set_steriliser_service(steriliser: Steriliser, in_service: bool, reason: str, by_id: int | None,
                           now: datetime, test_id: int | None = None) -> None:
    """Take a steriliser out of service or return it, appending the change."""
    if steriliser.is_in_service == in_service:
        return
    steriliser.is_in_service = in_service
    steriliser.out_of_service_reason = "" if in_service else reason
    db.session.add(SteriliserStatusChange(steriliser_id=steriliser.id, is_in_service=in_service, reason=reason,
                                          test_id=test_id, by_id=by_id, at=now))
    db.session.flush()
    schedule.refresh_site(steriliser.site_id, now)  # its obligations pause while it is out of service


def take_out_of_service(actor: Actor, steriliser_id: int, reason: str, now: datetime) -> Steriliser:
    """A manager takes a steriliser out of service by hand (a fault, a repair) with a reason."""
    actor.require("devices.write")
    row = get_steriliser(actor, steriliser_id)
    if not row.is_in_service:
        raise Conflict(_l("this steriliser is already out of service"), field="reason")
    set_steriliser_service(row, False, v.text({"reason": reason}, "reason", 2000), actor.user_id, now)
    db.session.flush()
    return row


def return_to_service(actor: Actor, steriliser_id: int, reason: str, now: datetime) -> Steriliser:
    """A manager returns a steriliser taken out by hand (after a repair). One taken out by a failed test
    returns only through a passing test of that kind (failed-test-recall)."""
    actor.require("devices.write")
    row = get_steriliser(actor, steriliser_id)
    if row.is_in_service:
        raise Conflict(_l("this steriliser is in service"), field="reason")
    last_out = db.session.scalar(select(SteriliserStatusChange).where(
        SteriliserStatusChange.steriliser_id == row.id, SteriliserStatusChange.is_in_service.is_(False))
        .order_by(SteriliserStatusChange.at.desc(), SteriliserStatusChange.id.desc()))
    if last_out is not None and last_out.test_id is not None:
        raise Conflict(_l("a failed test took it out of service: it returns when that test passes"),
                       field="reason", rule="failed-test-recall")
    set_steriliser_service(row, True, v.text({"reason": reason}, "reason", 2000), actor.user_id, now)
    db.session.flush()
    return row


def add_programme(actor: Actor, steriliser_id: int, data: dict) -> Programme:
    """A programme's set temperature, minimum holding time and optional minimum pressure."""
    actor.require("devices.write")
    steriliser = get_steriliser(actor, steriliser_id)
    name = v.text(data, "name", 80)
    if db.session.scalar(select(Programme.id).where(Programme.steriliser_id == steriliser.id,
                                                    Programme.name_key == name_key(name))):
        raise Conflict(_l("this steriliser already has a programme with this name"), field="name")
    row = Programme(steriliser_id=steriliser.id, name=name,
                    temperature_c=v.decimal(data, "temperature_c", Decimal("100"), Decimal("150")),
                    min_holding_seconds=v.integer(data, "min_holding_seconds", 1, 4 * 3600),
                    min_pressure_kpa=v.decimal(data, "min_pressure_kpa", Decimal("0"), Decimal("600"), required=False))
    db.session.add(row)
    db.session.flush()
    return row
