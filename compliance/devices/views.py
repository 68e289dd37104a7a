"""Manager screens for device kinds, reusable devices, sterilisers and their programmes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from math import ceil
from typing import Iterable

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..auth.actor import Actor
from ..extensions import db
from ..sites import services as site_services
from ..sites.models import Site, User
from ..sterilisation.models import Cycle, Pack, SteriliserTest
from ..timeutil import local_today, utcnow
from ..web import arg_id, current_actor, flash_redirect, Page, paginate, requires, sort_clause, submit
from . import services
from .forms import (
    CLEANING_METHOD_LABELS,
    DEVICE_EVENT_LABELS,
    DEVICE_STATUS_LABELS,
    DEVICE_STATUS_PILLS,
    SPAULDING_HELP,
    SPAULDING_LABELS,
    STERILISER_TYPE_HELP,
    STERILISER_TYPE_LABELS,
    TEST_KIND_LABELS,
    DeviceForm,
    DeviceStatusForm,
    DeviceTypeForm,
    OutOfServiceForm,
    ProgrammeForm,
    SteriliserForm,
)
from .models import Device, DeviceEvent, DeviceType, Steriliser, SteriliserStatusChange

bp = Blueprint("devices", __name__)

DUE_WARNING_DAYS = 30
HISTORY_PER_PAGE = 50


@bp.context_processor
def _labels() -> dict:
    return {"SPAULDING_LABELS": SPAULDING_LABELS, "SPAULDING_HELP": SPAULDING_HELP,
            "STERILISER_TYPE_LABELS": STERILISER_TYPE_LABELS, "STERILISER_TYPE_HELP": STERILISER_TYPE_HELP,
            "DEVICE_STATUS_LABELS": DEVICE_STATUS_LABELS, "DEVICE_STATUS_PILLS": DEVICE_STATUS_PILLS,
            "DEVICE_EVENT_LABELS": DEVICE_EVENT_LABELS, "CLEANING_METHOD_LABELS": CLEANING_METHOD_LABELS,
            "TEST_KIND_LABELS": TEST_KIND_LABELS}


# --- standings: pure -----------------------------------------------------------------------------

def cycles_standing(count: int, max_cycles: int | None) -> str | None:
    """None without a maker's limit; "over", "reached", "near" (within 10 % of it) or "ok"."""
    if not max_cycles:
        return None
    if count > max_cycles:
        return "over"
    if count == max_cycles:
        return "reached"
    if count * 10 >= max_cycles * 9:
        return "near"
    return "ok"


def due_standing(due_on: date | None, today: date, warn_days: int = DUE_WARNING_DAYS) -> str | None:
    """None when no date is set; "overdue" once the site's local date is past it, "soon" within warn_days."""
    if due_on is None:
        return None
    if due_on < today:
        return "overdue"
    if due_on <= today + timedelta(days=warn_days):
        return "soon"
    return "ok"


# --- helpers -------------------------------------------------------------------------------------

def _reach_sites(actor: Actor, keep: Iterable[int] = (), active_only: bool = False) -> list[Site]:
    """Sites in the actor's reach (staff have no sites.read, so not sites_query), plus ones a record points at."""
    keep = set(keep)
    rows = db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name))
    return [s for s in rows if not active_only or s.is_active or s.id in keep]


def _filter_site(actor: Actor) -> int | None:
    site_id = arg_id("site")
    if site_id is not None:
        site_services.get_site(actor, site_id)  # a site outside the actor's reach is a 404, not an empty list
    return site_id


def _names(user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def _list_page(items: list, per_page: int) -> Page:
    """One page of an already loaded list, from ?page=."""
    page = max(1, request.args.get("page", 1, type=int) or 1)
    page = min(page, max(1, ceil(len(items) / per_page)))
    return Page(items=items[(page - 1) * per_page:page * per_page], page=page, per_page=per_page, total=len(items))


# --- device kinds --------------------------------------------------------------------------------

@bp.get("/device-kinds")
@requires("devices.read")
def list_device_types():
    actor = current_actor()
    stmt = services.device_types_query(actor)
    order = sort_clause({"name": DeviceType.name, "class": DeviceType.spaulding_class,
                         "cycles": DeviceType.default_max_cycles}, "name")
    page = paginate(stmt.order_by(None).order_by(order, DeviceType.name, DeviceType.id))
    return render_template("devices/device_types.html", page=page)


@bp.route("/device-kinds/new", methods=["GET", "POST"])
@requires("devices.write")
def new_device_type():
    actor = current_actor()
    form = DeviceTypeForm()
    outcome = submit(form, lambda: services.create_device_type(actor, form.data, utcnow()),
                     lambda kind: flash_redirect(_("Device kind “%(name)s” added.", name=kind.name),
                                                 url_for("devices.list_device_types")))
    if not isinstance(outcome, int):
        return outcome
    return render_template("devices/device_type_form.html", form=form), outcome


# --- devices -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceFilters:
    q: str
    site_id: int | None
    device_type_id: int | None
    status: str | None

    @property
    def any(self) -> bool:
        return bool(self.q or self.site_id or self.device_type_id or self.status)


@bp.get("/devices")
@requires("devices.read")
def list_devices():
    actor = current_actor()
    type_id = arg_id("kind")
    if type_id is not None:
        services.get_device_type(actor, type_id)  # another organisation's kind is a 404
    status = request.args.get("status") if request.args.get("status") in DEVICE_STATUS_LABELS else None
    args = DeviceFilters(q=request.args.get("q", "").strip()[:200], site_id=_filter_site(actor),
                         device_type_id=type_id, status=status)
    stmt = services.devices_query(actor, site_id=args.site_id, search=args.q, status=args.status,
                                  device_type_id=args.device_type_id).join(Device.site)
    order = sort_clause({"serial": Device.serial, "kind": DeviceType.name, "class": DeviceType.spaulding_class,
                         "site": Site.name, "status": Device.status, "count": Device.reprocessing_count}, "kind")
    page = paginate(stmt.order_by(None).order_by(order, Device.serial, Device.id)
                    .options(selectinload(Device.site), selectinload(Device.device_type)))
    standings = {d.id: cycles_standing(d.reprocessing_count, d.max_cycles) for d in page.items}
    # Counts by status over the sites in reach (one grouped query) for the quick filters above the table.
    by_status = dict(db.session.execute(services.devices_query(actor, site_id=args.site_id).order_by(None)
                                        .with_only_columns(Device.status, func.count()).group_by(Device.status))
                     .all())
    kinds = list(db.session.scalars(services.device_types_query(actor, include_inactive=True)))
    return render_template("devices/devices.html", page=page, args=args, standings=standings, by_status=by_status,
                           sites=_reach_sites(actor), kinds=kinds)


@bp.route("/devices/new", methods=["GET", "POST"])
@requires("devices.write")
def new_device():
    actor = current_actor()
    kinds = list(db.session.scalars(services.device_types_query(actor)))
    form = DeviceForm(sites=_reach_sites(actor, active_only=True), kinds=kinds)
    if request.method == "GET":
        form.site_id.data = arg_id("site")
        form.device_type_id.data = arg_id("kind")
    outcome = submit(form, lambda: services.create_device(actor, form.data, utcnow()),
                     lambda device: flash_redirect(_(
                         "Device %(serial)s registered. It starts as dirty: clean and sterilise it before first use.",
                         serial=device.serial), url_for("devices.show_device", device_id=device.id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("devices/device_form.html", form=form, kinds=kinds), outcome


@dataclass(frozen=True)
class HistoryRow:
    event: DeviceEvent
    by_name: str
    pack_label: str | None
    load_number: int | None
    steriliser_name: str | None
    # The treatment this event belongs to ("used" events), once treatments are recorded; see device.html.
    treatment: object | None = None


def _history_rows(events: list[DeviceEvent]) -> list[HistoryRow]:
    """Ready values for the history table: names, pack labels and load numbers in three queries, not per row."""
    names = _names(e.by_id for e in events)
    pack_ids = {e.pack_id for e in events if e.pack_id}
    cycle_ids = {e.cycle_id for e in events if e.cycle_id}
    packs = dict(db.session.execute(select(Pack.id, Pack.label_code).where(Pack.id.in_(pack_ids))).all()) \
        if pack_ids else {}
    loads = {row.id: (row.cycle_number, row.name) for row in db.session.execute(
        select(Cycle.id, Cycle.cycle_number, Steriliser.name).join(Steriliser, Cycle.steriliser_id == Steriliser.id)
        .where(Cycle.id.in_(cycle_ids)))} if cycle_ids else {}
    return [HistoryRow(event=e, by_name=names.get(e.by_id, ""), pack_label=packs.get(e.pack_id),
                       load_number=loads[e.cycle_id][0] if e.cycle_id in loads else None,
                       steriliser_name=loads[e.cycle_id][1] if e.cycle_id in loads else None)
            for e in events]


def _device_page(actor: Actor, device: Device, status_form: DeviceStatusForm, status: int = 200):
    page = _list_page(services.device_history(actor, device.id), HISTORY_PER_PAGE)
    return render_template("devices/device.html", device=device, site=device.site, kind=device.device_type,
                           standing=cycles_standing(device.reprocessing_count, device.max_cycles),
                           history=_history_rows(page.items), page=page, status_form=status_form), status


@bp.get("/devices/<int:device_id>")
@requires("devices.read")
def show_device(device_id: int):
    actor = current_actor()
    return _device_page(actor, services.get_device(actor, device_id), DeviceStatusForm())


@bp.post("/devices/<int:device_id>/status")
@requires("devices.write")
def set_device_status(device_id: int):
    actor = current_actor()
    device = services.get_device(actor, device_id)
    form = DeviceStatusForm()
    outcome = submit(form, lambda: services.set_device_status(actor, device.id, form.data, utcnow()),
                     lambda changed: flash_redirect(
                         _("Device %(serial)s: status changed to “%(status)s”.", serial=changed.serial,
                           status=DEVICE_STATUS_LABELS[changed.status]),
                         url_for("devices.show_device", device_id=changed.id)))
    if not isinstance(outcome, int):
        return outcome
    return _device_page(actor, device, form, outcome)


# --- sterilisers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceChangeRow:
    change: SteriliserStatusChange
    by_name: str
    test_kind: str | None  # the test that caused it, if any


def _service_history(steriliser_ids: Iterable[int]) -> list[ServiceChangeRow]:
    """Every time these sterilisers went out of or back into service, newest first, with who and which test."""
    ids = set(steriliser_ids)
    if not ids:
        return []
    changes = list(db.session.scalars(
        select(SteriliserStatusChange).where(SteriliserStatusChange.steriliser_id.in_(ids))
        .order_by(SteriliserStatusChange.at.desc(), SteriliserStatusChange.id.desc())))
    names = _names(c.by_id for c in changes)
    test_ids = {c.test_id for c in changes if c.test_id}
    tests = dict(db.session.execute(select(SteriliserTest.id, SteriliserTest.kind)
                                    .where(SteriliserTest.id.in_(test_ids))).all()) if test_ids else {}
    return [ServiceChangeRow(c, names.get(c.by_id, ""), tests.get(c.test_id)) for c in changes]


def _latest_changes(sterilisers: list[Steriliser]) -> dict[int, ServiceChangeRow]:
    """The change that took each out-of-service steriliser out (its reason in the reader's words)."""
    latest: dict[int, ServiceChangeRow] = {}
    for row in _service_history(s.id for s in sterilisers if not s.is_in_service):
        latest.setdefault(row.change.steriliser_id, row)
    return latest


@dataclass(frozen=True)
class SteriliserRow:
    steriliser: Steriliser
    validation: str | None
    calibration: str | None
    out: ServiceChangeRow | None  # why it is out of service, if it is


def _steriliser_row(steriliser: Steriliser, now: datetime, latest: dict[int, ServiceChangeRow]) -> SteriliserRow:
    today = local_today(steriliser.site.timezone, now)  # "overdue" by the site's calendar, not the server's
    out = latest.get(steriliser.id)
    return SteriliserRow(steriliser, due_standing(steriliser.validation_due_on, today),
                         due_standing(steriliser.calibration_due_on, today),
                         out if out is not None and not out.change.is_in_service else None)


@bp.get("/sterilisers")
@requires("sterilisation.read")
def list_sterilisers():
    actor = current_actor()
    site_id = _filter_site(actor)
    q = request.args.get("q", "").strip()[:200]
    stmt = services.sterilisers_query(actor, site_id=site_id).join(Steriliser.site)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(Steriliser.name.ilike(like) | Steriliser.make.ilike(like) | Steriliser.model.ilike(like)
                          | Steriliser.serial.ilike(like))
    order = sort_clause({"name": Steriliser.name, "site": Site.name, "type": Steriliser.type,
                         "validation": Steriliser.validation_due_on, "calibration": Steriliser.calibration_due_on,
                         "service": Steriliser.is_in_service}, "name")
    page = paginate(stmt.order_by(None).order_by(order, Steriliser.name, Steriliser.id)
                    .options(selectinload(Steriliser.site), selectinload(Steriliser.programmes)))
    now, latest = utcnow(), _latest_changes(page.items)
    rows = [_steriliser_row(s, now, latest) for s in page.items]
    return render_template("devices/sterilisers.html", page=page, rows=rows, q=q, site_id=site_id,
                           sites=_reach_sites(actor))


def _steriliser_form(actor: Actor, steriliser: Steriliser | None = None) -> SteriliserForm:
    return SteriliserForm(obj=steriliser if request.method == "GET" else None,
                          sites=_reach_sites(actor, keep=[steriliser.site_id] if steriliser else [], active_only=True))


@bp.route("/sterilisers/new", methods=["GET", "POST"])
@requires("devices.write")
def new_steriliser():
    actor = current_actor()
    form = _steriliser_form(actor)
    if request.method == "GET":
        form.site_id.data = arg_id("site")
    outcome = submit(form, lambda: services.create_steriliser(actor, form.data, utcnow()),
                     lambda steriliser: flash_redirect(
                         _("Steriliser “%(name)s” added. Add its programmes next.", name=steriliser.name),
                         url_for("devices.show_steriliser", steriliser_id=steriliser.id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("devices/steriliser_form.html", form=form, steriliser=None), outcome


@bp.route("/sterilisers/<int:steriliser_id>/edit", methods=["GET", "POST"])
@requires("devices.write")
def edit_steriliser(steriliser_id: int):
    actor = current_actor()
    steriliser = services.get_steriliser(actor, steriliser_id)
    form = _steriliser_form(actor, steriliser)
    outcome = submit(form, lambda: services.update_steriliser(actor, steriliser.id, form.data),
                     lambda saved: flash_redirect(_("Steriliser “%(name)s” saved.", name=saved.name),
                                                  url_for("devices.show_steriliser", steriliser_id=saved.id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("devices/steriliser_form.html", form=form, steriliser=steriliser), outcome


def _steriliser_page(actor: Actor, steriliser_id: int, programme_form: ProgrammeForm | None = None,
                     out_form: OutOfServiceForm | None = None, status: int = 200):
    # After a refused POST, only the form that was sent keeps its input; the other starts empty.
    steriliser = services.get_steriliser(actor, steriliser_id)
    programme_form = programme_form or ProgrammeForm(formdata=None)
    out_form = out_form or OutOfServiceForm(formdata=None)
    history = _service_history([steriliser.id])
    row = _steriliser_row(steriliser, utcnow(), {steriliser.id: history[0]} if history else {})
    return render_template("devices/steriliser.html", row=row, steriliser=steriliser, site=steriliser.site,
                           programmes=list(steriliser.programmes), history=history,
                           programme_form=programme_form, out_form=out_form), status


@bp.get("/sterilisers/<int:steriliser_id>")
@requires("sterilisation.read")
def show_steriliser(steriliser_id: int):
    return _steriliser_page(current_actor(), steriliser_id)


@bp.post("/sterilisers/<int:steriliser_id>/programmes")
@requires("devices.write")
def add_programme(steriliser_id: int):
    actor = current_actor()
    services.get_steriliser(actor, steriliser_id)
    form = ProgrammeForm()
    outcome = submit(form, lambda: services.add_programme(actor, steriliser_id, form.values()),
                     lambda programme: flash_redirect(_("Programme “%(name)s” added.", name=programme.name),
                                                      url_for("devices.show_steriliser", steriliser_id=steriliser_id)))
    if not isinstance(outcome, int):
        return outcome
    return _steriliser_page(actor, steriliser_id, programme_form=form, status=outcome)


@bp.post("/sterilisers/<int:steriliser_id>/out-of-service")
@requires("devices.write")
def take_out_of_service(steriliser_id: int):
    actor = current_actor()
    services.get_steriliser(actor, steriliser_id)
    form = OutOfServiceForm()
    outcome = submit(form, lambda: services.take_out_of_service(actor, steriliser_id, form.reason.data, utcnow()),
                     lambda steriliser: flash_redirect(
                         _("“%(name)s” is out of service. It returns to service with a passing test.",
                           name=steriliser.name),
                         url_for("devices.show_steriliser", steriliser_id=steriliser_id)))
    if not isinstance(outcome, int):
        return outcome
    return _steriliser_page(actor, steriliser_id, out_form=form, status=outcome)


@bp.post("/sterilisers/<int:steriliser_id>/return-to-service")
@requires("devices.write")
def return_to_service(steriliser_id: int):
    actor = current_actor()
    services.get_steriliser(actor, steriliser_id)
    form = OutOfServiceForm()
    outcome = submit(form, lambda: services.return_to_service(actor, steriliser_id, form.reason.data, utcnow()),
                     lambda steriliser: flash_redirect(_("“%(name)s” is back in service.", name=steriliser.name),
                                                       url_for("devices.show_steriliser",
                                                               steriliser_id=steriliser_id)))
    if not isinstance(outcome, int):
        return outcome
    return _steriliser_page(actor, steriliser_id, out_form=form, status=outcome)
