"""Operations on sites, rooms, people and training: actor + values + now in, rows flushed, never committed."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select
from werkzeug.security import generate_password_hash

from .. import validation as v
from ..auth.actor import Actor
from ..auth.permissions import ASSIGNABLE_ROLES
from ..auth.rules import MIN_PASSWORD_LENGTH, is_valid_pin, password_problem
from ..config import LANGUAGES, LOCALES
from ..errors import Conflict, Duplicate, Forbidden, Invalid, NotFound
from ..extensions import db
from ..names import name_key
from ..labels import LANGUAGE_LABELS, ROLE_LABELS, ROOM_KIND_LABELS
from .models import ROLES, Room, Site, TrainingRecord, User, user_sites
from .rules import default_locale
from .training import COURSES

ROOM_KINDS = ("treatment", "decontamination", "storage", "reception")


# --- sites -------------------------------------------------------------------------------------

def sites_query(actor: Actor, search: str = "", include_inactive: bool = False) -> Select:
    """Sites in the actor's reach, by name, optionally filtered."""
    actor.require("sites.read")
    stmt = select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name)
    if search:
        stmt = stmt.where(Site.name.ilike(f"%{search.strip()}%"))
    if not include_inactive:
        stmt = stmt.where(Site.is_active.is_(True))
    return stmt


def get_site(actor: Actor, site_id: int) -> Site:
    """One site in the actor's reach, or NotFound."""
    actor.require_site(site_id)
    site = db.session.get(Site, site_id)
    if site is None:
        raise NotFound(_l("no such site"), field="site_id")
    return site


def _site_values(data: dict, site: Site | None = None) -> dict[str, Any]:
    values = {
        "name": v.text(data, "name", 200),
        "timezone": v.timezone_name(data),
        "language": v.choice(data, "language", LANGUAGES, labels=LANGUAGE_LABELS),
        "address": v.text(data, "address", 500, required=False),
        "locale": v.choice(data, "locale", LOCALES, required=False),
    }
    if values["locale"] is None:  # not given: the site keeps its own, a new one gets its default
        values["locale"] = site.locale if site is not None else default_locale(values["language"], values["timezone"])
    return values


def create_site(actor: Actor, data: dict, now: datetime) -> Site:
    """An admin adds a site to the organisation."""
    actor.require("sites.write")
    values = _site_values(data)
    _unique_site_name(actor.organisation_id, values["name"])
    site = Site(organisation_id=actor.organisation_id, created_at=now, **values)
    db.session.add(site)
    db.session.flush()
    return site


def update_site(actor: Actor, site_id: int, data: dict) -> Site:
    """An admin changes a site's settings."""
    actor.require("sites.write")
    site = get_site(actor, site_id)
    values = _site_values(data, site)
    _unique_site_name(actor.organisation_id, values["name"], exclude_id=site.id)
    for key, value in values.items():
        setattr(site, key, value)
    db.session.flush()
    return site


def set_site_active(actor: Actor, site_id: int, active: bool) -> Site:
    """Deactivate (or reactivate) a site; sites are never deleted."""
    actor.require("sites.write")
    site = get_site(actor, site_id)
    site.is_active = active
    db.session.flush()
    return site


def _unique_site_name(org_id: int, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Site.id).where(Site.organisation_id == org_id, Site.name_key == name_key(name))
    if exclude_id:
        stmt = stmt.where(Site.id != exclude_id)
    if existing := db.session.scalar(stmt):  # only admins change sites, and they reach every site of theirs
        raise Duplicate(_l("a site with this name already exists"), existing, field="name")


# --- rooms -------------------------------------------------------------------------------------

def rooms_query(actor: Actor, site_id: int | None = None, search: str = "", include_inactive: bool = False) -> Select:
    """Rooms of the sites in the actor's reach."""
    actor.require("rooms.read")
    stmt = select(Room).join(Site).where(Room.site_id.in_(actor.site_ids)).order_by(Site.name, Room.name)
    if site_id is not None:
        stmt = stmt.where(Room.site_id == site_id)
    if search:
        stmt = stmt.where(Room.name.ilike(f"%{search.strip()}%"))
    if not include_inactive:
        stmt = stmt.where(Room.is_active.is_(True))
    return stmt


def get_room(actor: Actor, room_id: int) -> Room:
    """One room of a site in the actor's reach, or NotFound."""
    room = db.session.get(Room, room_id)
    if room is None or room.site_id not in actor.site_ids:
        raise NotFound(_l("no such room"), field="room_id")
    return room


def _room_values(actor: Actor, data: dict) -> dict[str, Any]:
    try:
        site_id = int(data.get("site_id"))
    except (TypeError, ValueError):
        raise Invalid(_l("site_id is required"), field="site_id") from None
    actor.require_site(site_id)
    return {
        "site_id": site_id,
        "name": v.text(data, "name", 120),
        "kind": v.choice(data, "kind", ROOM_KINDS, labels=ROOM_KIND_LABELS),
    }


def create_room(actor: Actor, data: dict, now: datetime) -> Room:
    """A manager adds a room to one of their sites."""
    actor.require("rooms.write")
    values = _room_values(actor, data)
    _unique_room_name(values["site_id"], values["name"])
    room = Room(created_at=now, **values)
    db.session.add(room)
    db.session.flush()
    return room


def update_room(actor: Actor, room_id: int, data: dict) -> Room:
    """A manager renames a room or changes its kind (moving it to another site of theirs is allowed)."""
    actor.require("rooms.write")
    room = get_room(actor, room_id)
    values = _room_values(actor, data)
    _unique_room_name(values["site_id"], values["name"], exclude_id=room.id)
    for key, value in values.items():
        setattr(room, key, value)
    db.session.flush()
    return room


def set_room_active(actor: Actor, room_id: int, active: bool) -> Room:
    """Deactivate (or reactivate) a room; rooms are never deleted."""
    actor.require("rooms.write")
    room = get_room(actor, room_id)
    room.is_active = active
    db.session.flush()
    return room


def _unique_room_name(site_id: int, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Room.id).where(Room.site_id == site_id, Room.name_key == name_key(name))
    if exclude_id:
        stmt = stmt.where(Room.id != exclude_id)
    if existing := db.session.scalar(stmt):  # a room of a site the caller is changing: in reach
        raise Duplicate(_l("a room with this name already exists at this site"), existing, field="name")


# --- users -------------------------------------------------------------------------------------

def users_query(actor: Actor, site_id: int | None = None, search: str = "", role: str | None = None,
                include_inactive: bool = False) -> Select:
    """People who belong to at least one site in the actor's reach (or to none, for admins)."""
    actor.require("users.read")
    in_reach = select(user_sites.c.user_id).where(user_sites.c.site_id.in_(actor.site_ids))
    if site_id is not None:
        in_reach = in_reach.where(user_sites.c.site_id == site_id)
    stmt = select(User).where(User.organisation_id == actor.organisation_id)
    if actor.role == "admin" and site_id is None:
        stmt = stmt.where(or_(User.id.in_(in_reach), ~User.id.in_(select(user_sites.c.user_id))))
    else:
        stmt = stmt.where(User.id.in_(in_reach))
    if search:
        like = f"%{search.strip()}%"
        stmt = stmt.where(or_(User.name.ilike(like), User.email.ilike(like)))
    if role:
        stmt = stmt.where(User.role == role)
    if not include_inactive:
        stmt = stmt.where(User.is_active_user.is_(True))
    return stmt.order_by(User.name)


def get_user(actor: Actor, user_id: int) -> User:
    """One person in the actor's reach, or NotFound."""
    user = db.session.get(User, user_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound(_l("no such person"), field="user_id")
    if actor.role != "admin" and not (user.site_ids & actor.site_ids):
        raise NotFound(_l("no such person"), field="user_id")
    return user


def _site_ids(actor: Actor, data: dict) -> list[int]:
    raw = data.get("site_ids") or []
    if isinstance(raw, (str, int)):
        raw = [raw]
    try:
        ids = sorted({int(x) for x in raw})
    except (TypeError, ValueError):
        raise Invalid(_l("site_ids must be site numbers"), field="site_ids") from None
    if not ids:
        raise Invalid(_l("choose at least one site"), field="site_ids")
    for site_id in ids:
        if site_id not in actor.site_ids:
            raise NotFound(_l("no such site: %(id)s", id=site_id), field="site_ids")
    return ids


def check_role_assignable(actor: Actor, role: str) -> None:
    if role not in ASSIGNABLE_ROLES.get(actor.role, frozenset()):
        raise Forbidden(_l("your role (%(role)s) may not give the role %(new_role)s",
                           role=ROLE_LABELS.get(actor.role, actor.role), new_role=ROLE_LABELS[role]), field="role")


def _credentials(role: str, data: dict, existing: User | None, invited: bool = False) -> dict[str, str | None]:
    """Hash the password and PIN given; staff sign in by PIN, the others by password (an invited person has
    none until they choose one through their invitation)."""
    out: dict[str, str | None] = {}
    password = data.get("password") or ""
    pin = str(data.get("pin") or "")
    if password and role == "staff":
        raise Invalid(_l("staff sign in with a PIN on the tablet; leave the password empty"), field="password")
    if role == "staff":
        out["password_hash"] = None  # a manager made staff loses the laptop sign-in
    if password:
        problem = password_problem(password)
        if problem:
            raise Invalid(_l("password must be %(min)s to 200 characters long", min=MIN_PASSWORD_LENGTH),
                          field="password")
        out["password_hash"] = generate_password_hash(password)
    if pin:
        if not is_valid_pin(pin):
            raise Invalid(_l("pin must be 4 to 6 digits"), field="pin")
        out["pin_hash"] = generate_password_hash(pin)
    has_password = bool(password) or bool(existing and existing.password_hash)
    has_pin = bool(pin) or bool(existing and existing.pin_hash)
    if role == "staff" and not has_pin:
        raise Invalid(_l("staff need a PIN of 4 to 6 digits to sign in on the tablet"), field="pin")
    if role != "staff" and not has_password and not invited:
        raise Invalid(_l("%(role)s: a password is needed to sign in", role=ROLE_LABELS[role]), field="password")
    return out


def _unique_email(actor: Actor, email: str, exclude_id: int | None = None) -> None:
    """Emails are unique across organisations; the 409 names the person only when the caller may read them."""
    stmt = select(User).where(func.lower(User.email) == email)
    if exclude_id:
        stmt = stmt.where(User.id != exclude_id)
    existing = db.session.scalar(stmt)
    if existing is not None:
        in_reach = existing.organisation_id == actor.organisation_id and (
            actor.role == "admin" or bool(existing.site_ids & actor.site_ids))
        raise Duplicate(_l("this email is already in use"), existing.id if in_reach else None, field="email")


def create_user(actor: Actor, data: dict, now: datetime, invited: bool = False) -> User:
    """Add a person to one or more of the actor's sites (`invited`: with no password yet; see
    auth.accounts.invite)."""
    actor.require("users.write")
    role = v.choice(data, "role", ROLES, labels=ROLE_LABELS)
    check_role_assignable(actor, role)
    email = v.email(data)
    _unique_email(actor, email)
    values = {
        "name": v.text(data, "name", 200),
        "email": email,
        "role": role,
        "language": v.choice(data, "language", LANGUAGES, required=False, labels=LANGUAGE_LABELS),
        "locale": v.choice(data, "locale", LOCALES, required=False),
    }
    site_ids = _site_ids(actor, data)
    values.update(_credentials(role, data, None, invited))
    user = User(organisation_id=actor.organisation_id, created_at=now, **values)
    user.sites = list(db.session.scalars(select(Site).where(Site.id.in_(site_ids))))
    db.session.add(user)
    db.session.flush()
    return user


def update_user(actor: Actor, user_id: int, data: dict) -> User:
    """Change a person's name, email, role, language, locale, sites, and (if given) password or PIN."""
    actor.require("users.write")
    user = get_user(actor, user_id)
    check_role_assignable(actor, user.role)
    role = v.choice(data, "role", ROLES, labels=ROLE_LABELS)
    check_role_assignable(actor, role)
    email = v.email(data)
    _unique_email(actor, email, user.id)
    new_sites = set(_site_ids(actor, data))
    # Sites outside the actor's reach stay as they were: a manager can't remove someone from site B.
    kept = {s.id for s in user.sites if s.id not in actor.site_ids}
    values = {
        "name": v.text(data, "name", 200),
        "email": email,
        "role": role,
        "language": v.choice(data, "language", LANGUAGES, required=False, labels=LANGUAGE_LABELS),
        "locale": v.choice(data, "locale", LOCALES, required=False),
    }
    # Someone invited who has not chosen a password yet stays invited (their link still works).
    values.update(_credentials(role, data, user, invited=user.password_hash is None and user.role != "staff"
                               and role != "staff"))
    for key, value in values.items():
        setattr(user, key, value)
    user.sites = list(db.session.scalars(select(Site).where(Site.id.in_(new_sites | kept))))
    db.session.flush()
    return user


def reset_pin(actor: Actor, user_id: int, pin: str) -> User:
    """Give a person a new PIN and lift any PIN lock."""
    actor.require("users.write")
    user = get_user(actor, user_id)
    check_role_assignable(actor, user.role)
    if not is_valid_pin(pin or ""):
        raise Invalid(_l("pin must be 4 to 6 digits"), field="pin")
    user.pin_hash = generate_password_hash(pin)
    user.pin_failed_count = 0
    user.pin_locked_until = None
    user.end_sessions()  # whoever signed in with the old PIN is signed out
    db.session.flush()
    return user


def set_user_active(actor: Actor, user_id: int, active: bool) -> User:
    """Deactivate (or reactivate) a person; people are never deleted, their records stay theirs."""
    actor.require("users.write")
    user = get_user(actor, user_id)
    check_role_assignable(actor, user.role)
    if user.id == actor.user_id and not active:
        raise Invalid(_l("you cannot deactivate yourself"), field="user_id")
    user.is_active_user = active
    if not active:
        user.end_sessions()  # signed out at their next request, on every browser and tablet
    db.session.flush()
    return user


# --- training ----------------------------------------------------------------------------------

def training_query(actor: Actor, user_id: int | None = None, search: str = "", course: str | None = None,
                   include_inactive: bool = False) -> Select:
    """Training records of people in the actor's reach, newest first."""
    actor.require("training.read")
    people = users_query(actor, include_inactive=True).with_only_columns(User.id).order_by(None)
    stmt = select(TrainingRecord).join(TrainingRecord.user).where(TrainingRecord.user_id.in_(people))
    if user_id is not None:
        stmt = stmt.where(TrainingRecord.user_id == user_id)
    if search:
        like = f"%{search.strip()}%"
        stmt = stmt.where(or_(User.name.ilike(like), TrainingRecord.evidence_ref.ilike(like)))
    if course:
        stmt = stmt.where(TrainingRecord.course == course)
    if not include_inactive:
        stmt = stmt.where(TrainingRecord.is_active.is_(True))
    return stmt.order_by(TrainingRecord.completed_on.desc(), TrainingRecord.id.desc())


def get_training(actor: Actor, record_id: int) -> TrainingRecord:
    """One training record of a person in the actor's reach, or NotFound."""
    record = db.session.get(TrainingRecord, record_id)
    try:
        if record is None:
            raise NotFound(_l("no such training record"), field="record_id")
        get_user(actor, record.user_id)
    except NotFound:
        # The same answer whether the record is missing or out of reach: don't confirm it exists.
        raise NotFound(_l("no such training record"), field="record_id") from None
    return record


def _training_values(actor: Actor, data: dict) -> dict[str, Any]:
    try:
        user_id = int(data.get("user_id"))
    except (TypeError, ValueError):
        raise Invalid(_l("user_id is required"), field="user_id") from None
    get_user(actor, user_id)
    completed_on = v.date_value(data, "completed_on", not_future=True)
    expires_on = v.date_value(data, "expires_on", required=False)
    if expires_on is not None and expires_on < completed_on:
        raise Invalid(_l("expires_on must not be before completed_on"), field="expires_on")
    return {
        "user_id": user_id,
        "course": v.choice(data, "course", COURSES, labels=COURSES),
        "completed_on": completed_on,
        "expires_on": expires_on,
        "evidence_ref": v.text(data, "evidence_ref", 300, required=False),
    }


def record_training(actor: Actor, data: dict, now: datetime) -> TrainingRecord:
    """Record a completed course for a person in the actor's reach."""
    actor.require("training.write")
    record = TrainingRecord(recorded_by_id=actor.user_id, created_at=now, **_training_values(actor, data))
    db.session.add(record)
    db.session.flush()
    _training_changed(record.user_id, now)
    return record


def _training_changed(user_id: int, now: datetime) -> None:
    """The person's renewal obligations follow their in-force records (a lazy import: schedule reads sites)."""
    from ..schedule import services as schedule
    for site_id in db.session.get(User, user_id).site_ids:
        schedule.refresh_site(site_id, now)


def correct_training(actor: Actor, record_id: int, data: dict, now: datetime) -> TrainingRecord:
    """A correction is a new record; the old one is kept, inactive, pointing at its replacement."""
    actor.require("training.write")
    old = get_training(actor, record_id)
    if not old.is_active:
        raise Conflict(_l("this record was already replaced or withdrawn"), field="record_id")
    reason = v.text(data, "reason", 2000)
    new = record_training(actor, data, now)
    old.is_active = False
    old.replaced_by_id = new.id
    old.void_reason = reason
    db.session.flush()
    _training_changed(old.user_id, now)
    return new


def withdraw_training(actor: Actor, record_id: int, reason: str) -> TrainingRecord:
    """Withdraw a record entered in error; it stays visible in the history with the reason."""
    actor.require("training.write")
    record = get_training(actor, record_id)
    if not record.is_active:
        raise Conflict(_l("this record was already replaced or withdrawn"), field="record_id")
    record.void_reason = v.text({"reason": reason}, "reason", 2000)
    record.is_active = False
    db.session.flush()
    return record
