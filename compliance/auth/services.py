"""Sign-in, tablets and API keys: values + now in, rows flushed, never committed."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import Forbidden, Invalid, NotFound
from ..extensions import db
from ..sites.models import Site, User
from .actor import Actor
from .models import ApiKey, AuthEvent, TabletDevice
from .rules import after_failed_pin, is_login_throttled, is_pin_locked, is_valid_pin

# Checked when the email is unknown, so that a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


@dataclass(frozen=True)
class Throttle:
    max_failures: int
    max_failures_per_address: int
    window_minutes: int


@dataclass(frozen=True)
class PinPolicy:
    max_attempts: int
    lock_minutes: int


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _event(kind: str, now: datetime, user: User | None = None, email: str = "", address: str = "",
           site_id: int | None = None) -> None:
    db.session.add(AuthEvent(kind=kind, user_id=user.id if user else None, email=email[:254],
                             address=address[:64], site_id=site_id, at=now))


def password_sign_in(email: str, password: str, address: str, now: datetime, throttle: Throttle) -> User:
    """Check an email and password; refuse while the account or the address has too many recent failures."""
    email = (email or "").strip().lower()[:254]
    since = now - timedelta(minutes=throttle.window_minutes)
    failures = select(func.count()).select_from(AuthEvent).where(
        AuthEvent.kind == "password_failed", AuthEvent.at >= since)
    by_account = db.session.scalar(failures.where(AuthEvent.email == email))
    by_address = db.session.scalar(failures.where(AuthEvent.address == address))
    if is_login_throttled(by_account, by_address, throttle.max_failures, throttle.max_failures_per_address):
        _event("password_throttled", now, email=email, address=address)
        raise Forbidden(_l("too many failed sign-ins; try again in %(minutes)s minutes", minutes=throttle.window_minutes))
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    ok = check_password_hash(user.password_hash if user and user.password_hash else _DUMMY_HASH, password or "")
    if not (user and user.password_hash and ok and user.is_active_user and user.role != "staff"):
        _event("password_failed", now, user=user, email=email, address=address)
        raise Invalid(_l("wrong email or password"), field="password")
    _event("password_ok", now, user=user, email=email, address=address)
    return user


def tablet_people(site_id: int) -> list[User]:
    """The active people of a site who can sign in on its tablet (those with a PIN)."""
    return list(db.session.scalars(
        select(User).join(User.sites).where(
            Site.id == site_id, User.is_active_user.is_(True), User.pin_hash.is_not(None)
        ).order_by(User.name)))


def pin_sign_in(site_id: int, user_id: int, pin: str, address: str, now: datetime, policy: PinPolicy) -> User:
    """Check a PIN on a site's tablet; the policy's Nth wrong PIN in a row locks the person for a while."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active_user or site_id not in user.site_ids or not user.pin_hash:
        raise NotFound(_l("this person cannot sign in on this tablet"), field="user_id")
    if is_pin_locked(user.pin_locked_until, now):
        raise Forbidden(_l("locked after too many wrong PINs; ask a manager or wait"), field="pin")
    if not is_valid_pin(pin or "") or not check_password_hash(user.pin_hash, pin):
        failure = after_failed_pin(user.pin_failed_count, policy.max_attempts, policy.lock_minutes, now)
        user.pin_failed_count = failure.failed_count
        user.pin_locked_until = failure.locked_until
        _event("pin_failed", now, user=user, address=address, site_id=site_id)
        if failure.locked_until:
            _event("pin_locked", now, user=user, address=address, site_id=site_id)
            db.session.flush()
            raise Forbidden(_l("locked after too many wrong PINs; ask a manager or wait"), field="pin")
        db.session.flush()
        raise Invalid(_l("wrong PIN"), field="pin")
    user.pin_failed_count = 0
    user.pin_locked_until = None
    _event("pin_ok", now, user=user, address=address, site_id=site_id)
    db.session.flush()
    return user


def record_sign_out(user: User, now: datetime, kind: str = "sign_out") -> None:
    """Note a sign-out (by the person, or by the tablet's idle timer)."""
    _event(kind, now, user=user)


# --- tablets -----------------------------------------------------------------------------------

def enrol_tablet(actor: Actor, site_id: int, name: str, now: datetime) -> tuple[TabletDevice, str]:
    """Make this browser a site's shared tablet; returns the device and the token for its cookie."""
    actor.require("tablets.manage")
    actor.require_site(site_id)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid(_l("name is required (at most 120 characters)"), field="name")
    token = secrets.token_urlsafe(32)
    device = TabletDevice(site_id=site_id, name=name, token_hash=_sha256(token),
                          created_by_id=actor.user_id, created_at=now)
    db.session.add(device)
    db.session.flush()
    return device, token


ENROLMENT_MAX_AGE = 24 * 3600


def make_enrolment_token(site_id: int, name: str, by_user_id: int | None = None) -> str:
    """A signed link token (24 hours) that makes a browser a site's tablet, for a QR code or the demo."""
    from flask import current_app
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="tablet-enrol").dumps(
        {"site_id": site_id, "name": name[:120], "by": by_user_id})


def read_enrolment_token(token: str) -> dict:
    """The site and name in a valid enrolment token; Invalid when expired or forged."""
    from flask import current_app
    from itsdangerous import BadData, URLSafeTimedSerializer

    try:
        data = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="tablet-enrol").loads(
            token, max_age=ENROLMENT_MAX_AGE)
    except BadData:
        raise Invalid(_l("this set-up link is expired or not valid; ask a manager for a new one"), field="token") from None
    site = db.session.get(Site, data.get("site_id"))
    if site is None or not site.is_active:
        raise NotFound(_l("no such site"), field="site_id")
    return {"site": site, "name": data.get("name") or "Tablet", "by": data.get("by")}


def enrol_tablet_from_link(token: str, now: datetime) -> tuple[TabletDevice, str]:
    """Enrol a tablet from a manager's signed link (no one is signed in on the tablet)."""
    data = read_enrolment_token(token)
    site = data["site"]
    creator = data["by"] or db.session.scalar(select(User.id).join(User.sites).where(
        Site.id == site.id, User.role.in_(("manager", "admin"))).order_by(User.id))
    if creator is None:
        creator = db.session.scalar(select(User.id).where(
            User.organisation_id == site.organisation_id, User.role == "admin").order_by(User.id))
    token_value = secrets.token_urlsafe(32)
    device = TabletDevice(site_id=site.id, name=data["name"], token_hash=_sha256(token_value),
                          created_by_id=creator, created_at=now)
    db.session.add(device)
    db.session.flush()
    return device, token_value


def tablet_for_token(token: str | None) -> TabletDevice | None:
    """The enrolled, unrevoked tablet this cookie token belongs to."""
    if not token:
        return None
    device = db.session.scalar(select(TabletDevice).where(TabletDevice.token_hash == _sha256(token)))
    if device is None or device.revoked_at is not None or not device.site.is_active:
        return None
    return device


def tablets_query(actor: Actor):
    actor.require("tablets.manage")
    return select(TabletDevice).where(TabletDevice.site_id.in_(actor.site_ids)).order_by(
        TabletDevice.created_at.desc())


def revoke_tablet(actor: Actor, device_id: int, now: datetime) -> TabletDevice:
    """A revoked tablet shows no names and signs nobody in."""
    actor.require("tablets.manage")
    device = db.session.get(TabletDevice, device_id)
    if device is None or device.site_id not in actor.site_ids:
        raise NotFound(_l("no such tablet"), field="device_id")
    device.revoked_at = device.revoked_at or now
    db.session.flush()
    return device


# --- API keys ----------------------------------------------------------------------------------

def create_api_key(actor: Actor, site_id: int, name: str, now: datetime) -> tuple[ApiKey, str]:
    """An admin creates a key for a site's machine; the key itself is returned once and never stored."""
    actor.require("apikeys.manage")
    actor.require_site(site_id)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid(_l("name is required (at most 120 characters)"), field="name")
    prefix = secrets.token_hex(4)
    key = f"ck_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(site_id=site_id, name=name, prefix=prefix, key_hash=_sha256(key),
                 created_by_id=actor.user_id, created_at=now)
    db.session.add(row)
    db.session.flush()
    return row, key


def api_keys_query(actor: Actor):
    actor.require("apikeys.manage")
    return select(ApiKey).where(ApiKey.site_id.in_(actor.site_ids)).order_by(ApiKey.created_at.desc())


def revoke_api_key(actor: Actor, key_id: int, now: datetime) -> ApiKey:
    """A revoked key is refused from then on."""
    actor.require("apikeys.manage")
    row = db.session.get(ApiKey, key_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such API key"), field="key_id")
    row.revoked_at = row.revoked_at or now
    db.session.flush()
    return row


def actor_for_api_key(key: str, now: datetime) -> Actor | None:
    """The machine actor of a valid, unrevoked key: its one site only."""
    if not key or not key.startswith("ck_"):
        return None
    row = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == _sha256(key)))
    if row is None or row.revoked_at is not None or not row.site.is_active:
        return None
    row.last_used_at = now
    return Actor(organisation_id=row.site.organisation_id, role="machine",
                 site_ids=frozenset({row.site_id}), api_key_id=row.id)
