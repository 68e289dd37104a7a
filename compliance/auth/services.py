"""Sign-in, tablets and API keys: values + now in, rows flushed, never committed."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..extensions import db
from ..sites.models import Site, User
from .actor import Actor
from .models import ApiKey, AuthEvent, TabletDevice, TabletLink
from .rules import after_failed_pin, is_login_throttled, is_pin_locked, is_valid_pin, pin_tries_left

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


def is_throttled(kind: str, email: str, address: str, now: datetime, throttle: Throttle) -> bool:
    """Too many `kind` events within the window for this email or from this network address."""
    since = now - timedelta(minutes=throttle.window_minutes)
    events = select(func.count()).select_from(AuthEvent).where(AuthEvent.kind == kind, AuthEvent.at >= since)
    by_account = db.session.scalar(events.where(AuthEvent.email == email))
    by_address = db.session.scalar(events.where(AuthEvent.address == address))
    return is_login_throttled(by_account, by_address, throttle.max_failures, throttle.max_failures_per_address)


def password_sign_in(email: str, password: str, address: str, now: datetime, throttle: Throttle) -> User:
    """Check an email and password; refuse while the account or the address has too many recent failures."""
    email = (email or "").strip().lower()[:254]
    if is_throttled("password_failed", email, address, now, throttle):
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


class PinLocked(Forbidden):
    """The person is locked out of PIN sign-in until `locked_until` (UTC)."""

    keep_changes = True  # the failure that caused the lock is kept

    def __init__(self, locked_until: datetime):
        super().__init__(_l("locked after too many wrong PINs; ask a manager or wait"), field="pin")
        self.locked_until = locked_until

    def details(self) -> dict:
        return {"locked_until": self.locked_until.isoformat()}


class WrongPin(Invalid):
    """A wrong PIN; `tries_left` more wrong ones in a row and the person is locked."""

    keep_changes = True  # the failure counts towards the lock

    def __init__(self, tries_left: int):
        super().__init__(_l("wrong PIN"), field="pin")
        self.tries_left = tries_left

    def details(self) -> dict:
        return {"tries_left": self.tries_left}


def pin_sign_in(site_id: int, user_id: int, pin: str, address: str, now: datetime, policy: PinPolicy) -> User:
    """Check a PIN on a site's tablet; the policy's Nth wrong PIN in a row locks the person for a while."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active_user or site_id not in user.site_ids or not user.pin_hash:
        raise NotFound(_l("this person cannot sign in on this tablet"), field="user_id")
    if is_pin_locked(user.pin_locked_until, now):
        raise PinLocked(user.pin_locked_until)
    if not is_valid_pin(pin or "") or not check_password_hash(user.pin_hash, pin):
        failure = after_failed_pin(user.pin_failed_count, policy.max_attempts, policy.lock_minutes, now)
        user.pin_failed_count = failure.failed_count
        user.pin_locked_until = failure.locked_until
        _event("pin_failed", now, user=user, address=address, site_id=site_id)
        if failure.locked_until:
            _event("pin_locked", now, user=user, address=address, site_id=site_id)
            db.session.flush()
            raise PinLocked(failure.locked_until)
        db.session.flush()
        raise WrongPin(pin_tries_left(failure.failed_count, policy.max_attempts))
    user.pin_failed_count = 0
    user.pin_locked_until = None
    _event("pin_ok", now, user=user, address=address, site_id=site_id)
    db.session.flush()
    return user


def record_sign_out(user: User, now: datetime, kind: str = "sign_out") -> None:
    """Note a sign-out (by the person, or by the tablet's idle timer)."""
    _event(kind, now, user=user)


# --- tablets -----------------------------------------------------------------------------------

TABLET_LINK_HOURS = 24
# A tablet's last use is written at most this often: one small UPDATE a minute, not one per request.
LAST_USE_EVERY = timedelta(minutes=1)


def _name_key(name: str) -> str:
    # Compared case-folded in Python: SQLite's lower() folds ASCII only (STACK.md trap 11).
    return " ".join(name.split()).casefold()


def _clean_tablet_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name or len(name) > 120:
        raise Invalid(_l("give the tablet a name, for example its room (at most 120 characters)"), field="name")
    return name


def _names_in_use(site_id: int, now: datetime) -> set[str]:
    """Names of the site's active tablets and of its set-up links not yet used or expired."""
    devices = db.session.scalars(select(TabletDevice.name).where(
        TabletDevice.site_id == site_id, TabletDevice.revoked_at.is_(None)))
    links = db.session.scalars(select(TabletLink.name).where(
        TabletLink.site_id == site_id, TabletLink.used_at.is_(None), TabletLink.expires_at > now))
    return {_name_key(n) for n in [*devices, *links]}


def _require_free_name(site_id: int, name: str, now: datetime) -> None:
    if _name_key(name) in _names_in_use(site_id, now):
        raise Conflict(_l("a tablet or an unused set-up link of this site is already called “%(name)s”; "
                          "choose another name or revoke that tablet first", name=name), field="name")


def free_tablet_name(site_id: int, base: str, now: datetime) -> str:
    """`base`, or `base 2`, `base 3`… whichever no active tablet or open link of the site uses (the demo's names)."""
    taken = _names_in_use(site_id, now)
    name, n = base, 1
    while _name_key(name) in taken:
        n += 1
        name = f"{base} {n}"
    return name


def _new_device(site_id: int, name: str, created_by_id: int | None, now: datetime,
                link_id: int | None = None) -> tuple[TabletDevice, str]:
    token = secrets.token_urlsafe(32)
    device = TabletDevice(site_id=site_id, name=name, token_hash=_sha256(token), created_by_id=created_by_id,
                          created_at=now, link_id=link_id, last_used_at=now)
    db.session.add(device)
    db.session.flush()
    return device, token


def enrol_tablet(actor: Actor, site_id: int, name: str, now: datetime) -> tuple[TabletDevice, str]:
    """Make this browser a site's shared tablet under a name no active tablet of the site has; returns the
    device and the token for its cookie."""
    actor.require("tablets.manage")
    actor.require_site(site_id)
    name = _clean_tablet_name(name)
    _require_free_name(site_id, name, now)
    return _new_device(site_id, name, actor.user_id, now)


def create_tablet_link(actor: Actor | None, site_id: int, name: str, now: datetime,
                       hours: int = TABLET_LINK_HOURS) -> tuple[TabletLink, str]:
    """A single-use set-up link (valid `hours`) for one named tablet; returns the row and the token, shown once.
    `actor` None: the command line or the demo, which act for the whole instance."""
    if actor is not None:
        actor.require("tablets.manage")
        actor.require_site(site_id)
    site = db.session.get(Site, site_id)
    if site is None or not site.is_active:
        raise NotFound(_l("no such site"), field="site_id")
    name = _clean_tablet_name(name)
    _require_free_name(site_id, name, now)
    token = secrets.token_urlsafe(24)
    link = TabletLink(site_id=site_id, name=name, token_hash=_sha256(token),
                      created_by_id=actor.user_id if actor is not None else None, created_at=now,
                      expires_at=now + timedelta(hours=hours))
    db.session.add(link)
    db.session.flush()
    return link, token


class LinkSpent(Conflict):
    """The set-up link was used already: the refusal page names the tablet it made and when."""

    def __init__(self, link: TabletLink):
        super().__init__(_l("this set-up link was already used; each link sets up one tablet. "
                            "Ask a manager for a new link"), field="token")
        self.link = link


def read_tablet_link(token: str, now: datetime) -> TabletLink:
    """The unused, unexpired set-up link of this token; refused (with why) otherwise."""
    link = db.session.scalar(select(TabletLink).where(TabletLink.token_hash == _sha256(token or "")))
    if link is None:
        raise Invalid(_l("this set-up link is not valid; ask a manager for a new one"), field="token")
    if link.used_at is not None:
        raise LinkSpent(link)
    if now >= link.expires_at:
        raise Invalid(_l("this set-up link has expired; ask a manager for a new one"), field="token")
    if not link.site.is_active:
        raise NotFound(_l("no such site"), field="site_id")
    return link


def enrol_tablet_from_link(token: str, now: datetime) -> tuple[TabletDevice, str]:
    """Enrol one tablet from a manager's set-up link and spend the link: of two browsers using it at once,
    exactly one wins the conditional UPDATE below; the other is refused."""
    link = read_tablet_link(token, now)
    claimed = db.session.execute(
        update(TabletLink).where(TabletLink.id == link.id, TabletLink.used_at.is_(None)).values(used_at=now)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.refresh(link)
        raise LinkSpent(link)
    db.session.refresh(link)
    # A tablet enrolled meanwhile under the same name (the manager's own browser): keep both, told apart.
    name = free_tablet_name(link.site_id, link.name, now) if _name_key(link.name) in {
        _name_key(n) for n in db.session.scalars(select(TabletDevice.name).where(
            TabletDevice.site_id == link.site_id, TabletDevice.revoked_at.is_(None)))} else link.name
    return _new_device(link.site_id, name, link.created_by_id, now, link_id=link.id)


def tablet_for_token(token: str | None) -> TabletDevice | None:
    """The tablet this cookie token belongs to (revoked ones too: the caller refuses those), or None."""
    if not token:
        return None
    device = db.session.scalar(select(TabletDevice).where(TabletDevice.token_hash == _sha256(token))
                               .options(joinedload(TabletDevice.site)))
    if device is None or not device.site.is_active:
        return None
    return device


def touch_tablet(device: TabletDevice, now: datetime) -> bool:
    """Note the tablet's last use, at most once a minute (a conditional UPDATE, so two requests write once)."""
    if device.last_used_at is not None and now - device.last_used_at < LAST_USE_EVERY:
        return False
    result = db.session.execute(
        update(TabletDevice).where(
            TabletDevice.id == device.id,
            (TabletDevice.last_used_at.is_(None)) | (TabletDevice.last_used_at <= now - LAST_USE_EVERY))
        .values(last_used_at=now).execution_options(synchronize_session=False))
    return result.rowcount == 1


def tablets_query(actor: Actor):
    actor.require("tablets.manage")
    return select(TabletDevice).where(TabletDevice.site_id.in_(actor.site_ids)).options(
        selectinload(TabletDevice.site), selectinload(TabletDevice.created_by),
        selectinload(TabletDevice.revoked_by), selectinload(TabletDevice.link).selectinload(TabletLink.created_by),
    ).order_by(TabletDevice.revoked_at.is_not(None), TabletDevice.created_at.desc())


def open_links(actor: Actor, now: datetime) -> list[TabletLink]:
    """The actor's sites' set-up links not yet used and not expired."""
    actor.require("tablets.manage")
    return list(db.session.scalars(select(TabletLink).where(
        TabletLink.site_id.in_(actor.site_ids), TabletLink.used_at.is_(None), TabletLink.expires_at > now)
        .options(selectinload(TabletLink.site), selectinload(TabletLink.created_by)).order_by(TabletLink.created_at.desc())))


def revoke_tablet(actor: Actor, device_id: int, now: datetime) -> TabletDevice:
    """A revoked tablet shows no names and signs nobody in; its next request is sent to the revoked page."""
    actor.require("tablets.manage")
    device = db.session.get(TabletDevice, device_id)
    if device is None or device.site_id not in actor.site_ids:
        raise NotFound(_l("no such tablet"), field="device_id")
    if device.revoked_at is not None:
        raise Conflict(_l("this tablet was already revoked"), field="device_id")
    device.revoked_at = now
    device.revoked_by_id = actor.user_id
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
