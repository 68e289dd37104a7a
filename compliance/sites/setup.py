"""First run: the organisation, its first admin and its first site, with the default checklists and the site's
obligations, in one transaction; and the one-time set-up code that guards the set-up page.

Values + now in, rows flushed, never committed: `flask setup` and the /setup page both call set_up().
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text
from werkzeug.security import generate_password_hash

from .. import validation as v
from ..auth.models import AuthEvent
from ..auth.rules import MIN_PASSWORD_LENGTH, password_problem
from ..config import LANGUAGES
from ..errors import Conflict, Forbidden, Invalid
from ..extensions import db
from ..labels import LANGUAGE_LABELS
from ..names import name_key
from .models import Organisation, Site, User

DAILY_CHECKS = "daily-checks"  # the guideline rule whose numbers hold the opening and closing hours
SET_UP_REASON = "Chosen when the clinic was set up"
# The set-up code: 12 characters without look-alikes (no 0/O, 1/I/L), about 60 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
MAX_CODE_ATTEMPTS = 5   # wrong codes in a row before the set-up page locks
CODE_LOCK_MINUTES = 15


@dataclass(frozen=True)
class FirstRun:
    organisation: Organisation
    admin: User
    site: Site
    checklists: int
    obligations: int


def organisation_exists() -> bool:
    """Whether the product has been set up (the demo counts: it makes its own organisation)."""
    return db.session.scalar(select(Organisation.id).limit(1)) is not None


# --- the inputs, one by one (the command checks each as it is typed) ------------------------------

def _weekdays() -> tuple[str, ...]:
    from ..schedule.rules import WEEKDAYS  # the schedule imports sites

    return WEEKDAYS


def _default_hours() -> tuple[int, int]:
    from ..guidelines import load_pack

    pack = load_pack()
    return int(pack.default(DAILY_CHECKS, "opening_hour")), int(pack.default(DAILY_CHECKS, "closing_hour"))


def check_organisation(raw: Any) -> str:
    name = v.text({"organisation": raw}, "organisation", 200)
    if db.session.scalar(select(Organisation.id).where(Organisation.name_key == name_key(name))):
        raise Conflict(_l("an organisation with this name already exists"), field="organisation")
    return name


def check_admin_name(raw: Any) -> str:
    return v.text({"admin_name": raw}, "admin_name", 200)


def check_admin_email(raw: Any) -> str:
    try:
        email = v.email({"email": raw})
    except Invalid as exc:
        raise Invalid(exc._message, field="admin_email") from None
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise Conflict(_l("this email is already in use"), field="admin_email")
    return email


def check_admin_password(raw: Any) -> str:
    password = "" if raw is None else str(raw)
    if password_problem(password):
        raise Invalid(_l("password must be %(min)s to 200 characters long", min=MIN_PASSWORD_LENGTH),
                      field="admin_password")
    return password


def check_site_name(raw: Any) -> str:
    return v.text({"site_name": raw}, "site_name", 200)


def check_timezone(raw: Any) -> str:
    return v.timezone_name({"timezone": raw})


def check_language(raw: Any) -> str:
    return v.choice({"language": raw}, "language", LANGUAGES, labels=LANGUAGE_LABELS)


def check_locale(raw: Any, language: str, timezone: str) -> str:
    """The site's formats (dates, times, numbers); empty: from its language and time zone."""
    from ..config import LOCALES
    from .rules import default_locale

    if raw in (None, ""):
        return default_locale(language, timezone)
    return v.choice({"locale": raw}, "locale", LOCALES)


def check_closed_days(raw: Any) -> list[str]:
    """Weekly days off: a list, or text such as "sat,sun" (empty or "none": open every day)."""
    if raw is None:
        raw = []
    if isinstance(raw, str):
        raw = [] if raw.strip().lower() in ("", "none", "-") else raw.replace(" ", ",").split(",")
    given = {str(d).strip().lower()[:3] for d in raw if str(d).strip()}
    weekdays = _weekdays()
    if given - set(weekdays):
        raise Invalid(_l("unknown weekday; use mon, tue, wed, thu, fri, sat, sun"), field="closed_days")
    if len(given) == len(weekdays):
        raise Invalid(_l("a site cannot be closed every day"), field="closed_days")
    return [d for d in weekdays if d in given]


def check_hour(name: str, raw: Any) -> int:
    if raw is None or raw == "":
        return _default_hours()[0 if name == "opening_hour" else 1]
    return v.integer({name: raw}, name, 0, 23)


def check_hours(opening: int, closing: int) -> None:
    if opening >= closing:
        raise Invalid(_l("the opening hour must be before the closing hour"), field="closing_hour")


CHECKS: dict[str, Callable[[Any], Any]] = {
    "organisation": check_organisation,
    "admin_name": check_admin_name,
    "admin_email": check_admin_email,
    "admin_password": check_admin_password,
    "site_name": check_site_name,
    "timezone": check_timezone,
    "language": check_language,
    "closed_days": check_closed_days,
    "opening_hour": lambda raw: check_hour("opening_hour", raw),
    "closing_hour": lambda raw: check_hour("closing_hour", raw),
}


def check_inputs(data: dict) -> dict[str, Any]:
    """Every input checked, in the order the set-up asks for them; the first refusal names its field."""
    values = {name: check(data.get(name)) for name, check in CHECKS.items()}
    values["address"] = v.text(data, "address", 500, required=False)
    values["locale"] = check_locale(data.get("locale"), values["language"], values["timezone"])
    check_hours(values["opening_hour"], values["closing_hour"])
    return values


# --- the set-up itself -------------------------------------------------------------------------

def _serialise_first_runs() -> None:
    """Two set-ups at once (the command and the page) must not make two organisations: on PostgreSQL a
    transaction lock makes the second wait and then see the first's organisation. SQLite transactions
    already take the write lock at BEGIN."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(727813)"))


def set_up(data: dict, now: datetime) -> FirstRun:
    """Create the organisation, its first admin and its first site with the default checklists and the site's
    obligations; refused once any organisation exists, and by the first input that is not valid."""
    from ..auth.actor import actor_for_user
    from ..checklists.services import load_default_templates
    from ..guidelines.services import set_site_number
    from ..schedule import services as schedule
    from ..schedule.models import Obligation

    _serialise_first_runs()
    if organisation_exists():
        raise Conflict(_l("this installation is already set up: an organisation exists"), field="organisation")
    values = check_inputs(data)
    org = Organisation(name=values["organisation"], created_at=now)
    db.session.add(org)
    db.session.flush()
    site = Site(organisation_id=org.id, name=values["site_name"], timezone=values["timezone"],
                language=values["language"], locale=values["locale"], address=values["address"], created_at=now)
    admin = User(organisation_id=org.id, name=values["admin_name"], email=values["admin_email"], role="admin",
                 language=None, password_hash=generate_password_hash(values["admin_password"]), created_at=now)
    admin.sites = [site]
    db.session.add_all([site, admin])
    db.session.flush()

    checklists = load_default_templates(org.id, now)
    actor = actor_for_user(admin)
    if values["closed_days"]:
        schedule.set_closing_days(actor, site.id, {"closed_weekdays": values["closed_days"]}, now)
    # Through the site's own numbers, so that the history shows them and the pack's limits apply. The pack
    # wants opening <= closing at every step: move the closing hour first unless it comes before 09:00.
    default_opening, default_closing = _default_hours()
    hours = [("closing_hour", values["closing_hour"], default_closing),
             ("opening_hour", values["opening_hour"], default_opening)]
    if values["closing_hour"] < default_opening:
        hours.reverse()
    for key, value, default in hours:
        if value != default:
            set_site_number(actor, site.id, DAILY_CHECKS, key, value, SET_UP_REASON, now)
    schedule.sync_site(site, now)
    db.session.flush()
    obligations = db.session.scalar(select(func.count()).select_from(Obligation).where(Obligation.site_id == site.id))
    return FirstRun(org, admin, site, checklists, obligations)


# --- the set-up code ---------------------------------------------------------------------------

def setup_code(secret_key: str) -> str:
    """The one-time code the set-up page asks for, printed in the server's log.

    Derived from the secret key (random, and secret), not drawn per process: every worker process and every
    restart print the same code until the set-up is done, so the code in the log always works.
    """
    digest = hmac.new(str(secret_key).encode(), b"compliance first-run set-up code", hashlib.sha256).digest()
    number = int.from_bytes(digest[:16], "big")
    chars = []
    for _ in range(CODE_LENGTH):
        number, index = divmod(number, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    code = "".join(chars)
    return "-".join(code[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def _normalise(code: str) -> bytes:
    return "".join(c for c in str(code or "").upper() if c.isalnum()).encode()[:64]


class WrongSetupCode(Invalid):
    keep_changes = True  # the failed attempt counts towards the lock


class SetupLocked(Forbidden):
    status = 429
    keep_changes = True

    def __init__(self, message, until: datetime):
        super().__init__(message, field="code")
        self.until = until


def _lock_until(now: datetime, lock_minutes: int) -> tuple[datetime | None, int]:
    """(end of the current lock or None, wrong codes since the last lock within the lock's length)."""
    last_lock = db.session.scalar(select(func.max(AuthEvent.at)).where(AuthEvent.kind == "setup_locked"))
    if last_lock is not None and now < last_lock + timedelta(minutes=lock_minutes):
        return last_lock + timedelta(minutes=lock_minutes), 0
    since = now - timedelta(minutes=lock_minutes)
    if last_lock is not None and last_lock > since:
        since = last_lock
    failures = db.session.scalar(select(func.count()).select_from(AuthEvent).where(
        AuthEvent.kind == "setup_code_failed", AuthEvent.at > since))
    return None, failures


def check_setup_code(given: str, expected: str, address: str, now: datetime,
                     max_attempts: int = MAX_CODE_ATTEMPTS, lock_minutes: int = CODE_LOCK_MINUTES) -> int:
    """Compare a typed set-up code in constant time; the max_attempts-th wrong code in a row (within
    lock_minutes) locks the page for everyone for lock_minutes. Returns the attempts left after a right code."""
    until, failures = _lock_until(now, lock_minutes)
    if until is not None:
        db.session.add(AuthEvent(kind="setup_code_refused", address=address[:64], at=now))
        db.session.flush()
        raise SetupLocked(_l("too many wrong codes"), until)
    if hmac.compare_digest(_normalise(given), _normalise(expected)):
        db.session.add(AuthEvent(kind="setup_code_ok", address=address[:64], at=now))
        db.session.flush()
        return max_attempts - failures
    db.session.add(AuthEvent(kind="setup_code_failed", address=address[:64], at=now))
    if failures + 1 >= max_attempts:
        db.session.add(AuthEvent(kind="setup_locked", address=address[:64], at=now))
        db.session.flush()
        raise SetupLocked(_l("too many wrong codes"), now + timedelta(minutes=lock_minutes))
    db.session.flush()
    error = WrongSetupCode(_l("wrong set-up code"), field="code")
    error.attempts_left = max_attempts - failures - 1
    raise error


def code_fingerprint(code: str) -> str:
    """What the browser's session keeps after a right code (not the code itself)."""
    return base64.urlsafe_b64encode(hashlib.sha256(_normalise(code)).digest()[:12]).decode()
