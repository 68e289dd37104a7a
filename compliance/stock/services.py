"""Single-use item types, lots and units: actor + values + now in, rows flushed, never committed."""
from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from .. import validation as v
from ..labels import field_label
from ..auth.actor import Actor
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from .forms import ITEM_KIND_LABELS, LOT_STATUS_LABELS  # the words of a refused choice
from .models import ITEM_KINDS, ItemType, Lot, Unit
from .rules import BarcodeError, Gs1Data, parse_gs1

LABEL_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_NEEDLE_MM = (Decimal("0.1"), Decimal("3.0"))
GENERATED_PREFIX = "SU-"


def item_types_query(actor: Actor) -> Select:
    actor.require("devices.read")
    return select(ItemType).where(ItemType.organisation_id == actor.organisation_id).order_by(ItemType.name)


def create_item_type(actor: Actor, data: dict, now: datetime) -> ItemType:
    """A single-use product, with its GTIN when it carries a GS1 barcode."""
    actor.require("devices.write")
    name = v.text(data, "name", 160)
    gtin = v.text(data, "gtin", 14, required=False) or None
    if gtin is not None:
        try:
            parse_gs1(f"(01){gtin.zfill(14)}")
        except BarcodeError:
            raise Invalid(_l("gtin is not a valid GTIN"), field="gtin") from None
        gtin = gtin.zfill(14)
    for column, value, field in ((ItemType.name, name, "name"), (ItemType.gtin, gtin, "gtin")):
        if value and db.session.scalar(select(ItemType.id).where(ItemType.organisation_id == actor.organisation_id,
                                                                 column == value)):
            raise Conflict(_l("an item type with this %(field)s already exists", field=field_label(field)), field=field)
    row = ItemType(organisation_id=actor.organisation_id, name=name,
                   kind=v.choice(data, "kind", ITEM_KINDS, labels=ITEM_KIND_LABELS),
                   maker=v.text(data, "maker", 160, required=False),
                   product_code=v.text(data, "product_code", 80, required=False), gtin=gtin,
                   pins=v.integer(data, "pins", 1, 100, required=False),
                   needle_length_mm=v.decimal(data, "needle_length_mm", *_NEEDLE_MM, required=False, places=2),
                   created_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def _item_type(actor: Actor, type_id) -> ItemType:
    row = db.session.get(ItemType, type_id) if str(type_id or "").isdigit() else None
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound(_l("no such item type"), field="item_type_id")
    return row


# Why a scan is refused, in our words: the GS1 reader's (biip) own messages are English only.
BARCODE_PROBLEMS = {
    "empty": _l("the scan is empty"),
    "too_long": _l("it is too long for a GS1 barcode"),
    "not_gs1": _l("it is not a GS1 barcode"),
    "unreadable": _l("its GS1 data (application identifiers and values) could not be read"),
    "no_gtin": _l("it holds no GTIN (01)"),
    "check_digit": _l("the GTIN's check digit is wrong: check the number or scan again"),
}


def receive_lot(actor: Actor, data: dict, now: datetime) -> Lot:
    """A lot arrives at a site: item type, lot number, expiry and quantity (typed, or read from a GS1 scan)."""
    actor.require("stock.receive")
    site_id = v.ident(data, "site_id")
    actor.require_site(site_id)
    if data.get("barcode"):
        try:
            scanned = parse_gs1(str(data["barcode"]))
        except BarcodeError as exc:
            raise Invalid(_l("the barcode could not be read: %(reason)s", reason=BARCODE_PROBLEMS[exc.kind]),
                          field="barcode") from None
        item_type = db.session.scalar(select(ItemType).where(ItemType.organisation_id == actor.organisation_id,
                                                             ItemType.gtin == scanned.gtin))
        if item_type is None:
            raise NotFound(_l("no item type has the GTIN %(gtin)s; add it first", gtin=scanned.gtin), field="barcode")
        for name, typed, read in (("item_type_id", data.get("item_type_id"), item_type.id),
                                  ("lot_number", data.get("lot_number"), scanned.lot),
                                  ("expires_on", data.get("expires_on"), scanned.expires_on)):
            if typed not in (None, "") and read is not None and str(typed).strip() != str(read):
                raise Invalid(_l("%(field)s typed does not match the barcode (%(read)s)", field=field_label(name),
                                 read=read),
                              field=name)
        data = {**data, "item_type_id": item_type.id, "lot_number": scanned.lot or data.get("lot_number"),
                "expires_on": scanned.expires_on or data.get("expires_on")}
    item_type = _item_type(actor, data.get("item_type_id"))
    lot_number = v.text(data, "lot_number", 40)
    if db.session.scalar(select(Lot.id).where(Lot.site_id == site_id, Lot.item_type_id == item_type.id,
                                              Lot.lot_number == lot_number)):
        raise Conflict(_l("this lot was already received at this site"), field="lot_number")
    lot = Lot(site_id=site_id, item_type_id=item_type.id, lot_number=lot_number,
              expires_on=v.date_value(data, "expires_on"), quantity=v.integer(data, "quantity", 1, 100000),
              supplier_ref=v.text(data, "supplier_ref", 120, required=False), status="available",
              received_by_id=actor.user_id, received_at=now)
    db.session.add(lot)
    db.session.flush()
    return lot


def generate_unit_labels(actor: Actor, lot_id: int, count: int, now: datetime) -> list[Unit]:
    """Labels for units that carry no serial of their own (printed and stuck on each unit)."""
    actor.require("stock.receive")
    lot = get_lot(actor, lot_id)
    if lot.status == "recalled":
        raise Conflict(_l("a recalled lot gets no labels"), field="lot_id")
    count = v.integer({"count": count}, "count", 1, 1000)
    units = []
    for _ in range(count):
        serial = GENERATED_PREFIX + "".join(secrets.choice(LABEL_ALPHABET) for _ in range(8))
        unit = Unit(organisation_id=actor.organisation_id, item_type_id=lot.item_type_id, lot_id=lot.id,
                    serial=serial, is_generated_label=True, created_at=now)
        db.session.add(unit)
        units.append(unit)
    db.session.flush()
    return units


def lots_query(actor: Actor, site_id: int | None = None, status: str | None = None, search: str = "") -> Select:
    actor.require("devices.read")
    stmt = select(Lot).join(Lot.item_type).where(Lot.site_id.in_(actor.site_ids))
    if site_id:
        stmt = stmt.where(Lot.site_id == site_id)
    if status:
        stmt = stmt.where(Lot.status == status)
    if search:
        like = f"%{search.strip()}%"
        stmt = stmt.where(or_(Lot.lot_number.ilike(like), ItemType.name.ilike(like)))
    return stmt.order_by(Lot.expires_on, Lot.id)


def get_lot(actor: Actor, lot_id: int) -> Lot:
    actor.require("devices.read")
    lot = db.session.get(Lot, lot_id)
    if lot is None or lot.site_id not in actor.site_ids:
        raise NotFound(_l("no such lot"), field="lot_id")
    return lot


def set_lot_status(actor: Actor, lot_id: int, data: dict, now: datetime) -> Lot:
    """Quarantine or recall a lot (or release it from quarantine) with a reason; a recall is final."""
    actor.require("devices.write")
    lot = get_lot(actor, lot_id)
    status = v.choice(data, "status", ("available", "quarantined", "recalled"), labels=LOT_STATUS_LABELS)
    if lot.status == "recalled":
        raise Conflict(_l("a recalled lot stays recalled"), field="status")
    lot.status, lot.status_reason, lot.status_changed_at = status, v.text(data, "reason", 2000), now
    db.session.flush()
    return lot


def resolve_unit(actor: Actor, site_id: int, raw: str, now: datetime) -> Unit:
    """The unit a scan names: a GS1 barcode with a serial (made known on first scan) or one of our labels."""
    text = (raw or "").strip()
    if not text:
        raise Invalid(_l("scan or type the unit's barcode"), field="code")
    if text.upper().startswith(GENERATED_PREFIX):
        unit = db.session.scalar(select(Unit).where(Unit.organisation_id == actor.organisation_id,
                                                    Unit.serial == text.upper()))
        if unit is None or unit.lot.site_id not in actor.site_ids:
            raise NotFound(_l("no unit with the label %(code)s", code=text.upper()), field="code")
        return unit
    try:
        scanned: Gs1Data = parse_gs1(text)
    except BarcodeError as exc:
        raise Invalid(_l("the barcode could not be read: %(reason)s", reason=BARCODE_PROBLEMS[exc.kind]),
                      field="code") from None
    if not scanned.serial:
        raise Invalid(_l("this barcode has no serial number (21): scan the unit itself, or print unit labels"),
                      field="code")
    item_type = db.session.scalar(select(ItemType).where(ItemType.organisation_id == actor.organisation_id,
                                                         ItemType.gtin == scanned.gtin))
    if item_type is None:
        raise NotFound(_l("no item type has the GTIN %(gtin)s", gtin=scanned.gtin), field="code")
    unit = db.session.scalar(select(Unit).where(Unit.organisation_id == actor.organisation_id,
                                                Unit.item_type_id == item_type.id, Unit.serial == scanned.serial))
    if unit is not None:
        return unit
    lot = db.session.scalar(select(Lot).where(Lot.site_id == site_id, Lot.item_type_id == item_type.id,
                                              Lot.lot_number == (scanned.lot or "")))
    if lot is None:
        raise NotFound(_l("lot %(lot)s of %(item)s was not received at this site", lot=scanned.lot or "?",
                          item=item_type.name), field="code")
    unit = Unit(organisation_id=actor.organisation_id, item_type_id=item_type.id, lot_id=lot.id,
                serial=scanned.serial, created_at=now)
    try:
        with db.session.begin_nested():  # another tablet may make the same unit known at the same moment
            db.session.add(unit)
    except IntegrityError:
        unit = db.session.scalar(select(Unit).where(Unit.organisation_id == actor.organisation_id,
                                                    Unit.item_type_id == item_type.id, Unit.serial == scanned.serial))
    return unit


def lot_unit_count(lot_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Unit).where(Unit.lot_id == lot_id))
