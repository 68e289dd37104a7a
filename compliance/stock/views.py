"""Screens for single-use stock: item types, lots (receiving by GS1 scan, quarantine, recall, unit labels)
and sharps containers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

import segno
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from ..auth.actor import Actor
from ..extensions import db
from ..i18n import local_date
from ..sites.models import Room, Site, User
from ..timeutil import local_today, utcnow
from ..treatments import services as treatment_services
from ..treatments.models import SharpsContainer, TreatmentUnit
from ..web import arg_id, current_actor, flash_redirect, paginate, requires, sort_clause, submit
from . import services
from .forms import (
    ITEM_KIND_LABELS,
    LOT_STATUS_CHANGES,
    LOT_STATUS_LABELS,
    LOT_STATUS_PILLS,
    CloseContainerForm,
    ItemTypeForm,
    LotStatusForm,
    OpenContainerForm,
    ReceiveLotForm,
    UnitLabelsForm,
)
from .models import ItemType, Lot, Unit

bp = Blueprint("stock", __name__)

EXPIRY_WARNING_DAYS = 30
MAX_LABELS_PER_SHEET = 1000


@bp.context_processor
def _labels() -> dict:
    return {"ITEM_KIND_LABELS": ITEM_KIND_LABELS, "LOT_STATUS_LABELS": LOT_STATUS_LABELS,
            "LOT_STATUS_PILLS": LOT_STATUS_PILLS}


# --- standings: pure -----------------------------------------------------------------------------

def expiry_standing(expires_on: date, today: date, warn_days: int = EXPIRY_WARNING_DAYS) -> str:
    """"expired" once the site's local date is past the expiry (the gate's rule), "expiring" within warn_days."""
    if expires_on < today:
        return "expired"
    if expires_on <= today + timedelta(days=warn_days):
        return "expiring"
    return "ok"


# --- helpers -------------------------------------------------------------------------------------

def _reach_sites(actor: Actor, active_only: bool = False) -> list[Site]:
    """Sites in the actor's reach (staff have no sites.read, so not sites_query)."""
    rows = db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name))
    return [s for s in rows if s.is_active or not active_only]


def _filter_site(actor: Actor) -> int | None:
    site_id = arg_id("site")
    if site_id is not None:
        actor.require_site(site_id)  # a site outside the actor's reach is a 404, not an empty list
    return site_id


def _names(user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def _count_by(column, key_column, ids: Iterable[int], *where) -> dict[int, int]:
    """{id: rows} for the given ids in one grouped query."""
    ids = set(ids)
    if not ids:
        return {}
    stmt = select(key_column, func.count(column)).where(key_column.in_(ids), *where).group_by(key_column)
    return dict(db.session.execute(stmt).all())


# --- lots ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LotFilters:
    q: str
    site_id: int | None
    status: str | None

    @property
    def any(self) -> bool:
        return bool(self.q or self.site_id or self.status)


@dataclass(frozen=True)
class LotRow:
    lot: Lot
    tz: str
    expiry: str      # expired, expiring, ok (by the site's local date)
    units: int       # units known: scanned serials and printed labels
    used: int


def _lot_rows(lots: list[Lot], now: datetime) -> list[LotRow]:
    ids = [lot.id for lot in lots]
    known = _count_by(Unit.id, Unit.lot_id, ids)
    used = dict(db.session.execute(
        select(Unit.lot_id, func.count(TreatmentUnit.id)).join(TreatmentUnit, TreatmentUnit.unit_id == Unit.id)
        .where(Unit.lot_id.in_(ids)).group_by(Unit.lot_id)).all()) if ids else {}
    return [LotRow(lot, lot.site.timezone,
                   expiry_standing(lot.expires_on, local_today(lot.site.timezone, now)),
                   known.get(lot.id, 0), used.get(lot.id, 0)) for lot in lots]


def _expiry_summary(actor: Actor, site_id: int | None, now: datetime) -> dict[str, int]:
    """How many lots still in use (not recalled) have expired or expire soon, each by its site's calendar."""
    horizon = now.date() + timedelta(days=EXPIRY_WARNING_DAYS + 2)  # a day's margin either side of UTC
    stmt = (services.lots_query(actor, site_id=site_id).join(Lot.site).order_by(None)
            .where(Lot.status != "recalled", Lot.expires_on <= horizon)
            .with_only_columns(Lot.expires_on, Site.timezone))
    summary = {"expired": 0, "expiring": 0, "ok": 0}
    for expires_on, tz in db.session.execute(stmt):
        summary[expiry_standing(expires_on, local_today(tz, now))] += 1
    return summary


@bp.get("/lots")
@requires("devices.read")
def list_lots():
    actor = current_actor()
    status = request.args.get("status") if request.args.get("status") in LOT_STATUS_LABELS else None
    args = LotFilters(q=request.args.get("q", "").strip()[:200], site_id=_filter_site(actor), status=status)
    stmt = services.lots_query(actor, site_id=args.site_id, status=args.status, search=args.q).join(Lot.site)
    order = sort_clause({"expiry": Lot.expires_on, "item": ItemType.name, "lot": Lot.lot_number, "site": Site.name,
                         "quantity": Lot.quantity, "status": Lot.status, "received": Lot.received_at}, "expiry")
    page = paginate(stmt.order_by(None).order_by(order, Lot.id)
                    .options(selectinload(Lot.site), selectinload(Lot.item_type)))
    now = utcnow()
    by_status = dict(db.session.execute(services.lots_query(actor, site_id=args.site_id).order_by(None)
                                        .with_only_columns(Lot.status, func.count()).group_by(Lot.status)).all())
    has_types = db.session.scalar(services.item_types_query(actor).limit(1)) is not None
    return render_template("stock/lots.html", page=page, rows=_lot_rows(page.items, now), args=args,
                           by_status=by_status, expiry=_expiry_summary(actor, args.site_id, now),
                           sites=_reach_sites(actor), has_types=has_types)


@bp.route("/lots/receive", methods=["GET", "POST"])
@requires("stock.receive")
def receive_lot():
    actor = current_actor()
    item_types = list(db.session.scalars(services.item_types_query(actor).where(ItemType.is_active.is_(True))))
    sites = _reach_sites(actor, active_only=True)
    form = ReceiveLotForm(sites=sites, item_types=item_types)
    if request.method == "GET":
        form.site_id.data = arg_id("site") or (sites[0].id if len(sites) == 1 else None)
    outcome = submit(form, lambda: services.receive_lot(actor, form.values(), utcnow()),
                     lambda lot: flash_redirect(
                         _("Lot %(lot)s of %(item)s received: %(quantity)s units, use by %(date)s.",
                           lot=lot.lot_number, item=lot.item_type.name, quantity=lot.quantity,
                           date=local_date(lot.expires_on)),
                         url_for("stock.show_lot", lot_id=lot.id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("stock/receive.html", form=form, has_types=bool(item_types)), outcome


@dataclass(frozen=True)
class UnitRow:
    unit: Unit
    used_at: datetime | None


def _lot_page(actor: Actor, lot: Lot, status_form: LotStatusForm | None = None,
              labels_form: UnitLabelsForm | None = None, status: int = 200):
    # After a refused POST, only the form that was sent keeps its input; the other starts empty.
    status_form = status_form or LotStatusForm(formdata=None, current=lot.status)
    labels_form = labels_form or UnitLabelsForm(formdata=None)
    now = utcnow()
    units = paginate(select(Unit).where(Unit.lot_id == lot.id).order_by(Unit.created_at.desc(), Unit.id.desc()),
                     default_per_page=50)
    used = dict(db.session.execute(select(TreatmentUnit.unit_id, TreatmentUnit.added_at).where(
        TreatmentUnit.unit_id.in_([u.id for u in units.items]))).all()) if units.items else {}
    counts = {
        "known": services.lot_unit_count(lot.id),
        "labels": _count_by(Unit.id, Unit.lot_id, [lot.id], Unit.is_generated_label.is_(True)).get(lot.id, 0),
        "used": db.session.scalar(select(func.count(TreatmentUnit.id)).join(Unit, Unit.id == TreatmentUnit.unit_id)
                                  .where(Unit.lot_id == lot.id)),
    }
    tz = lot.site.timezone
    names = _names([lot.received_by_id])
    return render_template("stock/lot.html", lot=lot, site=lot.site, item=lot.item_type, tz=tz,
                           expiry=expiry_standing(lot.expires_on, local_today(tz, now)), counts=counts,
                           units=[UnitRow(u, used.get(u.id)) for u in units.items], page=units,
                           received_by=names.get(lot.received_by_id, ""), status_form=status_form,
                           labels_form=labels_form, can_change=bool(LOT_STATUS_CHANGES.get(lot.status))), status


@bp.get("/lots/<int:lot_id>")
@requires("devices.read")
def show_lot(lot_id: int):
    actor = current_actor()
    return _lot_page(actor, services.get_lot(actor, lot_id))


@bp.post("/lots/<int:lot_id>/status")
@requires("devices.write")
def set_lot_status(lot_id: int):
    actor = current_actor()
    lot = services.get_lot(actor, lot_id)
    form = LotStatusForm(current=lot.status)

    def changed(row: Lot):
        messages = {
            "available": _("Lot %(lot)s is released from quarantine and may be used again.", lot=row.lot_number),
            "quarantined": _("Lot %(lot)s is quarantined: the tablet refuses its units until it is released.",
                             lot=row.lot_number),
            "recalled": _("Lot %(lot)s is recalled: the tablet refuses its units from now on.", lot=row.lot_number),
        }
        return flash_redirect(messages[row.status], url_for("stock.show_lot", lot_id=row.id))

    outcome = submit(form, lambda: services.set_lot_status(actor, lot.id, {"status": form.status.data,
                                                                            "reason": form.reason.data}, utcnow()),
                     changed)
    if not isinstance(outcome, int):
        return outcome
    return _lot_page(actor, services.get_lot(actor, lot_id), status_form=form, status=outcome)


@bp.post("/lots/<int:lot_id>/labels")
@requires("stock.receive")
def generate_unit_labels(lot_id: int):
    actor = current_actor()
    lot = services.get_lot(actor, lot_id)
    form = UnitLabelsForm()
    outcome = submit(form, lambda: services.generate_unit_labels(actor, lot.id, form.count.data, utcnow()),
                     lambda units: redirect(url_for("stock.print_unit_labels", lot_id=lot.id,
                                                    first=min(u.id for u in units), last=max(u.id for u in units))))
    if not isinstance(outcome, int):
        return outcome
    return _lot_page(actor, services.get_lot(actor, lot_id), labels_form=form, status=outcome)


@dataclass(frozen=True)
class UnitLabel:
    code: str
    qr_svg: Markup
    item: str
    lot_number: str
    expires_on: date


def _unit_label(unit: Unit, lot: Lot) -> UnitLabel:
    # A plain QR code (never Micro QR, which few scanners read) holding the code the tablet's scan box takes.
    qr = segno.make_qr(unit.serial, error="m").svg_inline(scale=4, omitsize=True)
    return UnitLabel(unit.serial, Markup(qr), lot.item_type.name, lot.lot_number, lot.expires_on)


@bp.get("/lots/<int:lot_id>/labels")
@requires("stock.receive")
def print_unit_labels(lot_id: int):
    """A printable sheet of unit labels: ?first=&last= (a batch just made), else every unused label of the lot;
    ?format=a4 (3 × 7 label sheet, the default) or label (50 × 30 mm label printer)."""
    actor = current_actor()
    lot = services.get_lot(actor, lot_id)
    stmt = select(Unit).where(Unit.lot_id == lot.id, Unit.is_generated_label.is_(True))
    first, last = arg_id("first"), arg_id("last")
    if first is not None and last is not None:
        stmt = stmt.where(Unit.id.between(first, last))
    else:
        stmt = stmt.where(~Unit.id.in_(select(TreatmentUnit.unit_id)))
    units = list(db.session.scalars(stmt.order_by(Unit.id).limit(MAX_LABELS_PER_SHEET)))
    fmt = request.args.get("format") if request.args.get("format") in ("a4", "label") else "a4"
    return render_template("stock/labels.html", lot=lot, labels=[_unit_label(u, lot) for u in units], fmt=fmt,
                           batch=first is not None)


# --- item types ----------------------------------------------------------------------------------

@bp.get("/item-types")
@requires("devices.read")
def list_item_types():
    actor = current_actor()
    q = request.args.get("q", "").strip()[:200]
    stmt = services.item_types_query(actor)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(ItemType.name.ilike(like), ItemType.maker.ilike(like),
                              ItemType.product_code.ilike(like), ItemType.gtin.ilike(like)))
    order = sort_clause({"name": ItemType.name, "kind": ItemType.kind, "maker": ItemType.maker,
                         "gtin": ItemType.gtin}, "name")
    page = paginate(stmt.order_by(None).order_by(order, ItemType.name, ItemType.id))
    lots = _count_by(Lot.id, Lot.item_type_id, [t.id for t in page.items], Lot.site_id.in_(actor.site_ids))
    return render_template("stock/item_types.html", page=page, q=q, lots=lots)


@bp.route("/item-types/new", methods=["GET", "POST"])
@requires("devices.write")
def new_item_type():
    actor = current_actor()
    form = ItemTypeForm()
    outcome = submit(form, lambda: services.create_item_type(actor, form.data, utcnow()),
                     lambda row: flash_redirect(_("Item type “%(name)s” added.", name=row.name),
                                                url_for("stock.list_item_types")))
    if not isinstance(outcome, int):
        return outcome
    return render_template("stock/item_type_form.html", form=form), outcome


# --- sharps containers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ContainerRow:
    container: SharpsContainer
    site: Site
    room: str
    units: int
    opened_by: str
    closed_by: str


def _container_rows(containers: list[SharpsContainer]) -> list[ContainerRow]:
    sites = {s.id: s for s in db.session.scalars(select(Site).where(
        Site.id.in_({c.site_id for c in containers})))} if containers else {}
    units = _count_by(TreatmentUnit.id, TreatmentUnit.sharps_container_id, [c.id for c in containers])
    names = _names([c.opened_by_id for c in containers] + [c.closed_by_id for c in containers])
    return [ContainerRow(c, sites[c.site_id], c.room.name if c.room else "", units.get(c.id, 0),
                         names.get(c.opened_by_id, ""),
                         names.get(c.closed_by_id, "")) for c in containers]


def _container(actor: Actor, container_id: int) -> SharpsContainer:
    row = db.session.get(SharpsContainer, container_id)
    if row is None or row.site_id not in actor.site_ids:
        abort(404)
    return row


@bp.get("/sharps-containers")
@requires("devices.read")
def list_sharps_containers():
    actor = current_actor()
    site_id = _filter_site(actor)
    state = request.args.get("state") if request.args.get("state") in ("open", "closed") else None
    q = request.args.get("q", "").strip()[:200]
    stmt = select(SharpsContainer).join(Site, Site.id == SharpsContainer.site_id).where(
        SharpsContainer.site_id.in_(actor.site_ids))
    if site_id:
        stmt = stmt.where(SharpsContainer.site_id == site_id)
    total, closed = db.session.execute(
        stmt.with_only_columns(func.count(), func.count(SharpsContainer.closed_at))).one()
    if state:
        stmt = stmt.where(SharpsContainer.closed_at.is_(None) if state == "open"
                          else SharpsContainer.closed_at.is_not(None))
    if q:
        stmt = stmt.where(SharpsContainer.label.ilike(f"%{q}%"))
    order = sort_clause({"label": SharpsContainer.label, "site": Site.name, "opened": SharpsContainer.opened_at,
                         "closed": SharpsContainer.closed_at}, "-opened")
    page = paginate(stmt.order_by(order, SharpsContainer.id.desc()).options(selectinload(SharpsContainer.room)))
    return render_template("stock/containers.html", page=page, rows=_container_rows(page.items), site_id=site_id,
                           state=state, q=q, sites=_reach_sites(actor),
                           counts={"open": total - closed, "closed": closed})


@bp.route("/sharps-containers/new", methods=["GET", "POST"])
@requires("treatments.record")
def open_sharps_container():
    actor = current_actor()
    sites = _reach_sites(actor, active_only=True)
    rooms = list(db.session.scalars(select(Room).where(Room.site_id.in_([s.id for s in sites]),
                                                       Room.is_active.is_(True)).order_by(Room.name)))
    form = OpenContainerForm(sites=sites, rooms=rooms)
    if request.method == "GET":
        form.site_id.data = arg_id("site") or (sites[0].id if len(sites) == 1 else None)
    outcome = submit(form, lambda: treatment_services.open_sharps_container(actor, form.values(), utcnow()),
                     lambda row: flash_redirect(_("Sharps container “%(label)s” opened.", label=row.label),
                                                url_for("stock.list_sharps_containers", site=row.site_id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("stock/container_form.html", form=form), outcome


@bp.route("/sharps-containers/<int:container_id>/close", methods=["GET", "POST"])
@requires("treatments.record")
def close_sharps_container(container_id: int):
    actor = current_actor()
    container = _container(actor, container_id)
    form = CloseContainerForm()
    outcome = submit(form, lambda: treatment_services.close_sharps_container(actor, container.id,
                                                                            form.disposal_ref.data or "", utcnow()),
                     lambda row: flash_redirect(_("Sharps container “%(label)s” closed.", label=row.label),
                                                url_for("stock.list_sharps_containers", site=row.site_id)))
    if not isinstance(outcome, int):
        return outcome
    row = _container_rows([_container(actor, container_id)])[0]
    return render_template("stock/container_close.html", form=form, row=row), outcome

