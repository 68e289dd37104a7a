"""People's own credentials: invitations and password resets by email, one's own PIN on the tablet, a PIN
made for someone and shown once. Values + now in, rows flushed, never committed.

A link to choose a password is `<signed token>`: a random part signed with SECRET_KEY (itsdangerous), so a
link that was altered or made without the key is refused before the database is asked, and a new SECRET_KEY
ends every link. Only the SHA-256 of the random part is kept (`account_links`); the link is spent by a
conditional UPDATE (two tabs at once: one wins), ends when a newer link of the same kind is sent, and expires."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import Conflict, Forbidden, Invalid
from ..extensions import db
from ..labels import ROLE_LABELS
from ..sites import services as people
from ..sites.models import Site, User
from .actor import Actor
from .models import AccountLink
from .rules import MIN_PASSWORD_LENGTH, generate_pin, is_valid_pin, password_problem
from .services import PinLocked, PinPolicy, Throttle, WrongPin, _event, is_throttled, pin_sign_in

__all__ = ["PinLocked", "WrongPin"]  # re-exported for the views

INVITATION, PASSWORD_RESET = "invitation", "password_reset"
# Who is invited by email to choose a password; staff sign in with a PIN a manager gives them.
INVITED_ROLES = ("manager", "admin", "auditor")
_SALT = "compliance.account-link"


@dataclass(frozen=True)
class LinkPolicy:
    invitation_hours: int
    reset_minutes: int

    @classmethod
    def from_config(cls, config) -> "LinkPolicy":
        return cls(int(config["INVITATION_HOURS"]), int(config["PASSWORD_RESET_MINUTES"]))


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _home_site(person: User) -> Site | None:
    """The site whose language and formats a person's email falls back to: their first active site."""
    return next((s for s in person.sites if s.is_active), person.sites[0] if person.sites else None)


def _end_open_links(person: User, now: datetime, purpose: str | None = None) -> None:
    stmt = update(AccountLink).where(AccountLink.user_id == person.id, AccountLink.used_at.is_(None),
                                     AccountLink.ended_at.is_(None))
    if purpose is not None:
        stmt = stmt.where(AccountLink.purpose == purpose)
    db.session.execute(stmt.values(ended_at=now).execution_options(synchronize_session=False))


def _new_link(person: User, purpose: str, now: datetime, lifetime: timedelta,
              created_by_id: int | None) -> tuple[AccountLink, str]:
    """A new link (the person's older ones of the same kind end); returns the row and the signed token."""
    _end_open_links(person, now, purpose)
    raw = secrets.token_urlsafe(24)
    link = AccountLink(user_id=person.id, purpose=purpose, token_hash=_sha256(raw), created_by_id=created_by_id,
                       created_at=now, expires_at=now + lifetime)
    db.session.add(link)
    db.session.flush()
    return link, _serializer().dumps([purpose, raw])


def link_url(purpose: str, token: str) -> str:
    path = "invitation" if purpose == INVITATION else "password/reset"
    return f"{current_app.config['BASE_URL']}/{path}/{token}"


def _queue_email(person: User, link: AccountLink, token: str, now: datetime, inviter: User | None = None) -> None:
    from ..schedule.services import queue_to_person  # the outbox lives with the scheduler that sends it

    site = _home_site(person)
    tz = site.timezone if site else current_app.config["DEFAULT_TIMEZONE"]
    context = {"link": link_url(link.purpose, token), "expires_at": link.expires_at, "tz": tz,
               "organisation": person.organisation.name, "inviter": inviter,
               "role": ROLE_LABELS.get(person.role, person.role),
               "site_names": ", ".join(s.name for s in person.sites if s.is_active)}
    if link.purpose == INVITATION:
        subject = _l("You are invited to %(organisation)s's hygiene records", organisation=person.organisation.name)
        template = "email/invitation"
    else:
        subject = _l("Choose a new password for %(organisation)s", organisation=person.organisation.name)
        template = "email/password_reset"
    queue_to_person(f"{link.purpose}:{link.id}", link.purpose, person, site, subject, template, context, now)


# --- invitations -------------------------------------------------------------------------------

def invite(actor: Actor, data: dict, now: datetime, policy: LinkPolicy) -> User:
    """Add a manager, admin or auditor without a password and email them a link to choose one."""
    if data.get("role") not in INVITED_ROLES:
        raise Invalid(_l("invitations are for managers, administrators and auditors; staff get a PIN"),
                      field="role")
    if data.get("password"):
        raise Invalid(_l("an invited person chooses their own password; leave it empty"), field="password")
    person = people.create_user(actor, {**data, "password": "", "pin": data.get("pin") or ""}, now, invited=True)
    _send_invitation(actor, person, now, policy)
    return person


def add_person(actor: Actor, data: dict, now: datetime, policy: LinkPolicy) -> tuple[User, bool]:
    """Add a person: a manager, admin or auditor given no password is invited by email (True); anyone else is
    created with the password or PIN given (False)."""
    if data.get("role") in INVITED_ROLES and not data.get("password"):
        return invite(actor, data, now, policy), True
    return people.create_user(actor, data, now), False


def _send_invitation(actor: Actor, person: User, now: datetime, policy: LinkPolicy) -> AccountLink:
    link, token = _new_link(person, INVITATION, now, timedelta(hours=policy.invitation_hours), actor.user_id)
    inviter = db.session.get(User, actor.user_id) if actor.user_id else None
    _queue_email(person, link, token, now, inviter)
    return link


def resend_invitation(actor: Actor, user_id: int, now: datetime, policy: LinkPolicy) -> AccountLink:
    """A new invitation link for someone who has not chosen a password yet; the earlier link stops working."""
    actor.require("users.write")
    person = people.get_user(actor, user_id)
    people.check_role_assignable(actor, person.role)
    if not person.is_active_user:
        raise Conflict(_l("this person is deactivated; reactivate them first"), field="user_id")
    if person.role not in INVITED_ROLES:
        raise Invalid(_l("invitations are for managers, administrators and auditors; staff get a PIN"),
                      field="user_id")
    if person.password_hash:
        raise Conflict(_l("%(name)s has a password already; they can reset it from the sign-in page",
                          name=person.name), field="user_id")
    return _send_invitation(actor, person, now, policy)


def open_invitation(person: User, now: datetime) -> AccountLink | None:
    """The person's newest invitation still waiting to be used, if any."""
    return db.session.scalar(select(AccountLink).where(
        AccountLink.user_id == person.id, AccountLink.purpose == INVITATION, AccountLink.used_at.is_(None),
        AccountLink.ended_at.is_(None), AccountLink.expires_at > now).order_by(AccountLink.id.desc()).limit(1))


def invitations_waiting(user_ids: list[int], now: datetime) -> set[int]:
    """Which of these people have an invitation not yet accepted (open or expired) and no password."""
    if not user_ids:
        return set()
    return set(db.session.scalars(select(User.id).where(
        User.id.in_(user_ids), User.password_hash.is_(None),
        User.id.in_(select(AccountLink.user_id).where(AccountLink.purpose == INVITATION)))))


# --- password reset ----------------------------------------------------------------------------

def request_password_reset(email: str, address: str, now: datetime, throttle: Throttle,
                           policy: LinkPolicy) -> None:
    """Email a reset link if an active person with a password has this address; the caller answers the same
    either way. Throttled like sign-in: by the address typed and by the client's network address."""
    email = (email or "").strip().lower()[:254]
    if is_throttled("password_reset_asked", email, address, now, throttle):
        _event("password_reset_throttled", now, email=email, address=address)
        raise Forbidden(_l("too many password reset requests; try again in %(minutes)s minutes",
                           minutes=throttle.window_minutes))
    person = db.session.scalar(select(User).where(func.lower(User.email) == email))
    _event("password_reset_asked", now, user=person, email=email, address=address)
    if person is None or not person.is_active_user or not person.password_hash or person.role == "staff":
        return
    link, token = _new_link(person, PASSWORD_RESET, now, timedelta(minutes=policy.reset_minutes), None)
    _queue_email(person, link, token, now)


# --- using a link ------------------------------------------------------------------------------

def read_link(token: str, purpose: str, now: datetime) -> AccountLink:
    """The link of this token if it can still be used; refused, saying why, otherwise."""
    ask_again = (_l("ask the person who invited you for a new invitation") if purpose == INVITATION
                 else _l("ask for a new link on the sign-in page"))
    try:
        signed_purpose, raw = _serializer().loads(token or "")
    except (BadSignature, ValueError, TypeError):
        raise Invalid(_l("this link is not valid; %(ask)s", ask=ask_again), field="token") from None
    link = db.session.scalar(select(AccountLink).where(AccountLink.token_hash == _sha256(str(raw))))
    if link is None or signed_purpose != purpose or link.purpose != purpose:
        raise Invalid(_l("this link is not valid; %(ask)s", ask=ask_again), field="token")
    if link.used_at is not None:
        raise Conflict(_l("this link was already used; each link works once. %(ask)s", ask=ask_again),
                       field="token")
    if link.ended_at is not None:
        raise Conflict(_l("a newer link was sent since; use the newest email, or %(ask)s", ask=ask_again),
                       field="token")
    if now >= link.expires_at:
        raise Invalid(_l("this link has expired; %(ask)s", ask=ask_again), field="token")
    if not link.user.is_active_user:
        raise Forbidden(_l("this account is deactivated; ask an administrator"), field="token")
    return link


def choose_password(token: str, purpose: str, password: str, password_again: str, now: datetime) -> User:
    """Set the password through an invitation or reset link, spend the link and end every session of the
    person (their other open links too)."""
    link = read_link(token, purpose, now)
    problem = password_problem(password or "")
    if problem:
        raise Invalid(_l("the password must be %(min)s to 200 characters long", min=MIN_PASSWORD_LENGTH),
                      field="password")
    if password != password_again:
        raise Invalid(_l("the two passwords are not the same"), field="password_again")
    claimed = db.session.execute(
        update(AccountLink).where(AccountLink.id == link.id, AccountLink.used_at.is_(None),
                                  AccountLink.ended_at.is_(None)).values(used_at=now)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise Conflict(_l("this link was already used; each link works once"), field="token")
    person = link.user
    _end_open_links(person, now)
    person.password_hash = generate_password_hash(password)
    person.end_sessions()
    _event("invitation_accepted" if purpose == INVITATION else "password_reset_done", now, user=person,
           email=person.email)
    db.session.flush()
    return person


# --- PINs --------------------------------------------------------------------------------------

def change_own_pin(user_id: int, site_id: int, old_pin: str, new_pin: str, new_pin_again: str, address: str,
                   now: datetime, policy: PinPolicy) -> User:
    """A person changes their own PIN on their site's tablet after typing the old one (a wrong old PIN counts
    towards the lock, as at sign-in). Their other tablet sessions end."""
    new_pin, new_pin_again = (new_pin or "").strip(), (new_pin_again or "").strip()
    if not is_valid_pin(new_pin):
        raise Invalid(_l("the new PIN must be 4 to 6 digits"), field="new_pin")
    if new_pin != new_pin_again:
        raise Invalid(_l("the two new PINs are not the same"), field="new_pin_again")
    person = pin_sign_in(site_id, user_id, old_pin, address, now, policy)  # WrongPin / PinLocked keep the count
    if check_password_hash(person.pin_hash, new_pin):
        raise Invalid(_l("the new PIN is the same as the old one; choose another"), field="new_pin")
    person.pin_hash = generate_password_hash(new_pin)
    person.end_sessions()
    _event("pin_changed", now, user=person, address=address, site_id=site_id)
    db.session.flush()
    return person


def set_pin_for(actor: Actor, user_id: int, pin: str | None) -> tuple[User, str]:
    """A manager sets a person's PIN (or has one made when `pin` is empty), lifts any lock and ends the
    person's tablet sessions; returns the PIN, to show once."""
    pin = (pin or "").strip() or generate_pin()
    return people.reset_pin(actor, user_id, pin), pin
