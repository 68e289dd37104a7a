"""Manager and admin screens for sites, rooms, people, training and API keys."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, func, literal
from sqlalchemy.orm import selectinload

from ..auth import accounts
from ..auth import services as auth_services
from ..auth.actor import Actor
from ..auth.models import ApiKey
from ..auth.permissions import ASSIGNABLE_ROLES
from ..auth.rules import is_pin_locked
from ..errors import Forbidden, ServiceError
from ..extensions import db
from ..timeutil import local_today, utcnow
from ..auth.account_views import link_policy
from ..web import arg_id, current_actor, flash_redirect, paginate, refuse_at_field, requires, sort_clause, submit
from . import services
from .forms import (
    LANGUAGE_LABELS,
    ROLE_LABELS,
    ROOM_KIND_LABELS,
    ApiKeyForm,
    CorrectTrainingForm,
    ResetPinForm,
    RoomForm,
    SiteForm,
    TrainingForm,
    UserForm,
    WithdrawTrainingForm,
    choices,
)
from .models import Room, Site, TrainingRecord, User, count
from ..guidelines import load_pack
from .rules import current_expiries, record_status, training_status
from .training import COURSES

bp = Blueprint("sites", __name__)

TRAINING_STATUS = {  # status -> (label, pill class)
    "valid": (_l("Valid"), "pill-ok"),
    "expiring": (_l("Expires soon"), "pill-warn"),
    "expired": (_l("Expired"), "pill-bad"),
    "renewed": (_l("Renewed"), "pill-muted"),
    "replaced": (_l("Replaced"), "pill-muted"),
    "withdrawn": (_l("Withdrawn"), "pill-muted"),
}


@bp.context_processor
def _labels() -> dict:
    return {"ROLE_LABELS": ROLE_LABELS, "ROOM_KIND_LABELS": ROOM_KIND_LABELS, "LANGUAGE_LABELS": LANGUAGE_LABELS,
            "COURSES": COURSES, "TRAINING_STATUS": TRAINING_STATUS}


# --- helpers -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListArgs:
    q: str
    site_id: int | None
    inactive: bool


def _list_args(actor: Actor) -> ListArgs:
    site_id = arg_id("site")
    if site_id is not None:
        services.get_site(actor, site_id)  # a site outside the actor's reach is a 404, not an empty list
    return ListArgs(q=request.args.get("q", "").strip()[:200], site_id=site_id,
                    inactive=request.args.get("inactive") == "1")


def _sites(actor: Actor, keep: Iterable[int] = ()) -> list[Site]:
    """Active sites in reach for select boxes, plus inactive ones a record already points at."""
    keep = set(keep)
    return [s for s in db.session.scalars(services.sites_query(actor, include_inactive=True))
            if s.is_active or s.id in keep]


def _filter_sites(actor: Actor) -> list[Site]:
    return list(db.session.scalars(services.sites_query(actor, include_inactive=True)))


def _require_assignable(actor: Actor, user: User) -> None:
    """Don't offer a form the service would refuse: a manager may not change an admin or an auditor."""
    if user.role not in ASSIGNABLE_ROLES.get(actor.role, ()):
        raise Forbidden(_("You may not change a person with the role %(role)s.", role=ROLE_LABELS[user.role]),
                        field="role")


def _user_tz(actor: Actor, user: User) -> str:
    """The time zone to show a person's times in: their first site in the actor's reach."""
    for site in user.sites:
        if site.id in actor.site_ids:
            return site.timezone
    return user.sites[0].timezone if user.sites else current_app.config["DEFAULT_TIMEZONE"]


def _warn_days() -> int:
    """How long before expiry training shows as expiring: a number of the guideline pack."""
    return int(load_pack().number("trained-practitioner", "expiring_warning_days"))


@dataclass(frozen=True)
class TrainingRow:
    record: TrainingRecord
    tz: str
    status: str


def _training_rows(actor: Actor, records: list[TrainingRecord], now: datetime) -> list[TrainingRow]:
    user_ids = {r.user_id for r in records}
    best = current_expiries(db.session.execute(
        services.training_query(actor).where(TrainingRecord.user_id.in_(user_ids)).order_by(None)
        .with_only_columns(TrainingRecord.user_id, TrainingRecord.course, TrainingRecord.expires_on)).all()
    ) if user_ids else {}
    rows = []
    for record in records:
        tz = _user_tz(actor, record.user)
        rows.append(TrainingRow(record, tz, record_status(record, local_today(tz, now), best, _warn_days())))
    return rows


def _training_summary(actor: Actor, now: datetime) -> dict[str, int]:
    """How many (active person, course) pairs have lapsed or lapse within the warning period."""
    stmt = services.training_query(actor).where(User.is_active_user.is_(True)).order_by(None)
    rows = db.session.execute(
        stmt.with_only_columns(TrainingRecord.user_id, TrainingRecord.course, TrainingRecord.expires_on)).all()
    people = {u.id: u for u in db.session.scalars(
        services.users_query(actor).options(selectinload(User.sites)))}
    summary = {"valid": 0, "expiring": 0, "expired": 0}
    for (user_id, _course), expires_on in current_expiries(rows).items():
        if user_id in people:
            summary[training_status(expires_on, local_today(_user_tz(actor, people[user_id]), now),
                                    _warn_days())] += 1
    return summary


# --- overview ------------------------------------------------------------------------------------

@bp.get("/overview")
@requires("sites.read")
def dashboard():
    actor = current_actor()
    counts = {
        "sites": count(services.sites_query(actor)),
        "rooms": count(services.rooms_query(actor)) if actor.can("rooms.read") else 0,
        "people": count(services.users_query(actor)) if actor.can("users.read") else 0,
    }
    if actor.can("training.read"):
        counts.update(_training_summary(actor, utcnow()))
    return render_template("sites/dashboard.html", counts=counts)


# --- sites ---------------------------------------------------------------------------------------

@bp.get("/sites")
@requires("sites.read")
def list_sites():
    actor = current_actor()
    args = ListArgs(q=request.args.get("q", "").strip()[:200], site_id=None,
                    inactive=request.args.get("inactive") == "1")
    stmt = services.sites_query(actor, search=args.q, include_inactive=args.inactive)
    order = sort_clause({"name": Site.name, "timezone": Site.timezone, "created": Site.created_at}, "name")
    page = paginate(stmt.order_by(None).order_by(order, Site.id))
    return render_template("sites/sites.html", page=page, args=args)


def _site_form_page(form: SiteForm, site: Site | None, status: int):
    return render_template("sites/site_form.html", form=form, site=site), status


@bp.route("/sites/new", methods=["GET", "POST"])
@requires("sites.write")
def new_site():
    actor = current_actor()
    form = SiteForm()
    if request.method == "GET":
        form.timezone.data = current_app.config["DEFAULT_TIMEZONE"]
    outcome = submit(form, lambda: services.create_site(actor, form.data, utcnow()),
                     lambda site: flash_redirect(_("Site “%(name)s” added. Add its rooms next.", name=site.name),
                                                 url_for("sites.list_rooms", site=site.id)))
    if not isinstance(outcome, int):
        return outcome
    return _site_form_page(form, None, outcome)


@bp.route("/sites/<int:site_id>/edit", methods=["GET", "POST"])
@requires("sites.write")
def edit_site(site_id: int):
    actor = current_actor()
    site = services.get_site(actor, site_id)
    form = SiteForm(obj=site if request.method == "GET" else None)
    outcome = submit(form, lambda: services.update_site(actor, site.id, form.data),
                     lambda saved: flash_redirect(_("Site “%(name)s” saved.", name=saved.name),
                                                  url_for("sites.list_sites")))
    if not isinstance(outcome, int):
        return outcome
    return _site_form_page(form, site, outcome)


@bp.post("/sites/<int:site_id>/deactivate", endpoint="deactivate_site", defaults={"active": False})
@bp.post("/sites/<int:site_id>/reactivate", endpoint="reactivate_site", defaults={"active": True})
@requires("sites.write")
def set_site_active(site_id: int, active: bool):
    try:
        site = services.set_site_active(current_actor(), site_id, active)
    except ServiceError:
        db.session.rollback()
        raise
    db.session.commit()
    flash(_("Site “%(name)s” reactivated.", name=site.name) if active
          else _("Site “%(name)s” deactivated. Its records are kept.", name=site.name), "success")
    return redirect(url_for("sites.list_sites", inactive=None if active else "1"))


# --- rooms ---------------------------------------------------------------------------------------

@bp.get("/rooms")
@requires("rooms.read")
def list_rooms():
    actor = current_actor()
    args = _list_args(actor)
    stmt = services.rooms_query(actor, site_id=args.site_id, search=args.q, include_inactive=args.inactive)
    order = sort_clause({"name": Room.name, "site": Site.name, "kind": Room.kind}, "site")
    page = paginate(stmt.order_by(None).order_by(order, Room.name, Room.id).options(selectinload(Room.site)))
    return render_template("sites/rooms.html", page=page, args=args, sites=_filter_sites(actor))


def _room_form(actor: Actor, room: Room | None = None) -> RoomForm:
    form = RoomForm(obj=room if request.method == "GET" else None)
    form.site_id.choices = choices((s.id, s.name) for s in _sites(actor, keep=[room.site_id] if room else []))
    return form


@bp.route("/rooms/new", methods=["GET", "POST"])
@requires("rooms.write")
def new_room():
    actor = current_actor()
    form = _room_form(actor)
    if request.method == "GET":
        form.site_id.data = arg_id("site")
    outcome = submit(form, lambda: services.create_room(actor, form.data, utcnow()),
                     lambda room: flash_redirect(_("Room “%(name)s” added to %(site)s.", name=room.name,
                                                   site=room.site.name),
                                                 url_for("sites.list_rooms", site=room.site_id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/room_form.html", form=form, room=None), outcome


@bp.route("/rooms/<int:room_id>/edit", methods=["GET", "POST"])
@requires("rooms.write")
def edit_room(room_id: int):
    actor = current_actor()
    room = services.get_room(actor, room_id)
    form = _room_form(actor, room)
    outcome = submit(form, lambda: services.update_room(actor, room.id, form.data),
                     lambda saved: flash_redirect(_("Room “%(name)s” saved.", name=saved.name),
                                                  url_for("sites.list_rooms", site=saved.site_id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/room_form.html", form=form, room=room), outcome


@bp.post("/rooms/<int:room_id>/deactivate", endpoint="deactivate_room", defaults={"active": False})
@bp.post("/rooms/<int:room_id>/reactivate", endpoint="reactivate_room", defaults={"active": True})
@requires("rooms.write")
def set_room_active(room_id: int, active: bool):
    try:
        room = services.set_room_active(current_actor(), room_id, active)
    except ServiceError:
        db.session.rollback()
        raise
    db.session.commit()
    flash(_("Room “%(name)s” reactivated.", name=room.name) if active
          else _("Room “%(name)s” deactivated. Its records are kept.", name=room.name), "success")
    return redirect(url_for("sites.list_rooms", site=room.site_id, inactive=None if active else "1"))


# --- people --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PersonRow:
    user: User
    sites: list[Site]
    tz: str
    locked: bool


def _person_row(actor: Actor, user: User, now: datetime) -> PersonRow:
    return PersonRow(user, [s for s in user.sites if s.id in actor.site_ids], _user_tz(actor, user),
                     is_pin_locked(user.pin_locked_until, now))


@bp.get("/people")
@requires("users.read")
def list_users():
    actor = current_actor()
    args = _list_args(actor)
    role = request.args.get("role") if request.args.get("role") in ROLE_LABELS else None
    stmt = services.users_query(actor, site_id=args.site_id, search=args.q, role=role,
                                include_inactive=args.inactive)
    order = sort_clause({"name": User.name, "email": User.email, "role": User.role, "created": User.created_at},
                        "name")
    page = paginate(stmt.order_by(None).order_by(order, User.id).options(selectinload(User.sites)))
    now = utcnow()
    rows = [_person_row(actor, u, now) for u in page.items]
    return render_template("sites/users.html", page=page, rows=rows, args=args, role=role, sites=_filter_sites(actor))


@bp.get("/people/<int:user_id>")
@requires("users.read")
def show_user(user_id: int):
    actor = current_actor()
    user = services.get_user(actor, user_id)
    now = utcnow()
    records = list(db.session.scalars(services.training_query(actor, user_id=user.id)))
    invited = user.password_hash is None and user.role in accounts.INVITED_ROLES
    return render_template("sites/user.html", person=_person_row(actor, user, now),
                           training=_training_rows(actor, records, now), invited=invited,
                           invitation=accounts.open_invitation(user, now) if invited else None,
                           can_manage=actor.can("users.write") and user.role in ASSIGNABLE_ROLES.get(actor.role, ()))


def _user_form(actor: Actor, user: User | None = None) -> UserForm:
    current = user.site_ids if user else set()
    form = UserForm(roles=ASSIGNABLE_ROLES.get(actor.role, ()), sites=_sites(actor, keep=current))
    if request.method == "GET" and user is not None:
        form.name.data, form.email.data, form.role.data = user.name, user.email, user.role
        form.language.data = user.language or ""
        form.locale.data = user.locale or ""
        form.site_ids.data = sorted(current & actor.site_ids)
    return form


@bp.route("/people/new", methods=["GET", "POST"])
@requires("users.write")
def new_user():
    actor = current_actor()
    form = _user_form(actor)
    if request.method == "GET":
        site_id = arg_id("site")
        form.site_ids.data = [site_id] if site_id in actor.site_ids else []
        form.role.data = "staff"
    outcome = submit(form, lambda: accounts.add_person(actor, form.values(), utcnow(), link_policy()), _added)
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/user_form.html", form=form, person=None), outcome


def _added(result):
    user, invited = result
    message = (_("%(name)s added. An invitation to choose a password was sent to %(email)s.", name=user.name,
                 email=user.email) if invited else _("%(name)s added.", name=user.name))
    return flash_redirect(message, url_for("sites.show_user", user_id=user.id))


@bp.route("/people/<int:user_id>/edit", methods=["GET", "POST"])
@requires("users.write")
def edit_user(user_id: int):
    actor = current_actor()
    user = services.get_user(actor, user_id)
    _require_assignable(actor, user)
    form = _user_form(actor, user)
    outcome = submit(form, lambda: services.update_user(actor, user.id, form.values()),
                     lambda saved: flash_redirect(_("%(name)s saved.", name=saved.name),
                                                  url_for("sites.show_user", user_id=saved.id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/user_form.html", form=form, person=user), outcome


@bp.route("/people/<int:user_id>/pin", methods=["GET", "POST"])
@requires("users.write")
def reset_pin(user_id: int):
    actor = current_actor()
    user = services.get_user(actor, user_id)
    _require_assignable(actor, user)
    form = ResetPinForm()
    outcome = submit(form, lambda: accounts.set_pin_for(actor, user.id, form.pin.data), _pin_shown_once)
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/reset_pin.html", form=form, person=_person_row(actor, user, utcnow())), outcome


def _pin_shown_once(result):
    """The new PIN, on this response only (never in a flash cookie or a URL), not cached."""
    person, pin = result
    response = make_response(render_template("sites/pin_shown.html", person=person, pin=pin))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/people/<int:user_id>/deactivate", endpoint="deactivate_user", defaults={"active": False})
@bp.post("/people/<int:user_id>/reactivate", endpoint="reactivate_user", defaults={"active": True})
@requires("users.write")
def set_user_active(user_id: int, active: bool):
    try:
        user = services.set_user_active(current_actor(), user_id, active)
    except ServiceError:
        db.session.rollback()
        raise
    db.session.commit()
    flash(_("%(name)s can sign in again.", name=user.name) if active
          else _("%(name)s can no longer sign in. Their records are kept.", name=user.name), "success")
    return redirect(url_for("sites.show_user", user_id=user.id))


# --- training ------------------------------------------------------------------------------------

@bp.get("/training")
@requires("training.read")
def list_training():
    actor = current_actor()
    args = _list_args(actor)
    course = request.args.get("course") if request.args.get("course") in COURSES else None
    person_id = arg_id("person")
    person = services.get_user(actor, person_id) if person_id is not None else None
    stmt = services.training_query(actor, user_id=person_id, search=args.q, course=course,
                                   include_inactive=args.inactive)
    if args.site_id is not None:
        at_site = services.users_query(actor, site_id=args.site_id, include_inactive=True)
        stmt = stmt.where(TrainingRecord.user_id.in_(at_site.with_only_columns(User.id).order_by(None)))
    # A course that never expires sorts after every date, on SQLite and PostgreSQL alike.
    expires = func.coalesce(TrainingRecord.expires_on, literal(date.max, Date))
    order = sort_clause({"completed": TrainingRecord.completed_on, "expires": expires,
                         "person": User.name, "course": TrainingRecord.course}, "-completed")
    page = paginate(stmt.order_by(None).order_by(order, TrainingRecord.id.desc()).options(
        selectinload(TrainingRecord.user).selectinload(User.sites), selectinload(TrainingRecord.recorded_by)))
    rows = _training_rows(actor, page.items, utcnow())
    return render_template("sites/training.html", page=page, rows=rows, args=args, course=course, person=person,
                           sites=_filter_sites(actor))


def _training_form(form_class, actor: Actor, record: TrainingRecord | None = None):
    people = list(db.session.scalars(services.users_query(actor)))
    if record is not None and record.user not in people:
        people.append(record.user)
    form = form_class(people=people)
    if request.method == "GET" and record is not None:
        for name in ("user_id", "course", "completed_on", "expires_on", "evidence_ref"):
            form[name].data = getattr(record, name)
    return form


@bp.route("/training/new", methods=["GET", "POST"])
@requires("training.write")
def new_training():
    actor = current_actor()
    form = _training_form(TrainingForm, actor)
    if request.method == "GET":
        form.user_id.data = arg_id("person")
    outcome = submit(form, lambda: services.record_training(actor, form.values(), utcnow()),
                     lambda record: flash_redirect(_("Training recorded for %(name)s.", name=record.user.name),
                                                   url_for("sites.list_training", person=record.user_id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/training_form.html", form=form), outcome


@bp.route("/training/<int:record_id>/correct", methods=["GET", "POST"])
@requires("training.write")
def correct_training(record_id: int):
    actor = current_actor()
    record = services.get_training(actor, record_id)
    form = _training_form(CorrectTrainingForm, actor, record)
    outcome = submit(form, lambda: services.correct_training(actor, record.id, form.values(), utcnow()),
                     lambda new: flash_redirect(_("Correction saved. The earlier record is kept in the history."),
                                                url_for("sites.list_training", person=new.user_id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/training_correct.html", form=form, record=record), outcome


@bp.route("/training/<int:record_id>/withdraw", methods=["GET", "POST"])
@requires("training.write")
def withdraw_training(record_id: int):
    actor = current_actor()
    record = services.get_training(actor, record_id)
    form = WithdrawTrainingForm()
    outcome = submit(form, lambda: services.withdraw_training(actor, record.id, form.reason.data),
                     lambda withdrawn: flash_redirect(
                         _("Training record withdrawn. It stays in the history with your reason."),
                         url_for("sites.list_training", person=withdrawn.user_id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("sites/training_withdraw.html", form=form, record=record), outcome


# --- API keys ------------------------------------------------------------------------------------

@bp.get("/api-keys")
@requires("apikeys.manage")
def list_api_keys():
    actor = current_actor()
    args = _list_args(actor)
    stmt = auth_services.api_keys_query(actor)
    if args.site_id is not None:
        stmt = stmt.where(ApiKey.site_id == args.site_id)
    if args.q:
        stmt = stmt.where(ApiKey.name.ilike(f"%{args.q}%"))
    order = sort_clause({"created": ApiKey.created_at, "name": ApiKey.name, "used": ApiKey.last_used_at}, "-created")
    page = paginate(stmt.order_by(None).order_by(order, ApiKey.id.desc()).options(selectinload(ApiKey.site)))
    return render_template("sites/api_keys.html", page=page, args=args, sites=_filter_sites(actor))


@bp.route("/api-keys/new", methods=["GET", "POST"])
@requires("apikeys.manage")
def new_api_key():
    actor = current_actor()
    form = ApiKeyForm()
    form.site_id.choices = choices((s.id, s.name) for s in _sites(actor))
    if request.method == "GET":
        form.site_id.data = arg_id("site")
    status = 200
    if form.validate_on_submit():
        try:
            row, key = auth_services.create_api_key(actor, form.site_id.data, form.name.data, utcnow())
        except ServiceError as exc:
            status = refuse_at_field(form, exc)
        else:
            db.session.commit()
            # Shown in this response only (no redirect): the key must not travel through the session cookie.
            response = current_app.make_response(render_template("sites/api_key_created.html", row=row, key=key))
            response.headers["Cache-Control"] = "no-store"
            return response
    elif form.is_submitted():
        status = 422
    return render_template("sites/api_key_form.html", form=form), status


@bp.post("/api-keys/<int:key_id>/revoke")
@requires("apikeys.manage")
def revoke_api_key(key_id: int):
    try:
        row = auth_services.revoke_api_key(current_actor(), key_id, utcnow())
    except ServiceError:
        db.session.rollback()
        raise
    db.session.commit()
    flash(_("API key “%(name)s” revoked. It is refused from now on.", name=row.name), "success")
    return redirect(url_for("sites.list_api_keys"))
