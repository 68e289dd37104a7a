"""Input checks shared by services (forms and the API both reach them): a clear message naming the field."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Iterable

import email_validator
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from .errors import Invalid
from .timeutil import is_valid_timezone

# Clinics use internal mail domains (".local", ".test" in staging); email_validator refuses these
# special-use names by default, and its documentation says to edit this list to allow them.
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if d not in ("local", "test")]


def text(data: dict, name: str, max_len: int, required: bool = True) -> str:
    value = data.get(name)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise Invalid(_l("%(field)s is required", field=name), field=name)
    if len(value) > max_len:
        raise Invalid(_l("%(field)s must be at most %(max)s characters", field=name, max=max_len), field=name)
    return value


def choice(data: dict, name: str, options: Iterable[str], required: bool = True) -> str | None:
    value = data.get(name)
    if value in (None, "") and not required:
        return None
    if value not in tuple(options):
        raise Invalid(_l("%(field)s must be one of: %(options)s", field=name, options=", ".join(options)), field=name)
    return value


def timezone_name(data: dict) -> str:
    value = text(data, "timezone", 64)
    if not is_valid_timezone(value):
        raise Invalid(_l("timezone must be an IANA time zone such as Asia/Jakarta"), field="timezone")
    return value


def email(data: dict) -> str:
    raw = text(data, "email", 254)
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Invalid(_l("email is not valid: %(reason)s", reason=str(exc)), field="email") from None


def date_value(data: dict, name: str, required: bool = True) -> date | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise Invalid(_l("%(field)s is required", field=name), field=name)
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Invalid(_l("%(field)s must be a date (YYYY-MM-DD)", field=name), field=name) from None


def integer(data: dict, name: str, lo: int, hi: int, required: bool = True) -> int | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise Invalid(_l("%(field)s is required", field=name), field=name)
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise Invalid(_l("%(field)s must be a whole number", field=name), field=name) from None
    if not lo <= number <= hi:
        raise Invalid(_l("%(field)s must be between %(lo)s and %(hi)s", field=name, lo=lo, hi=hi), field=name)
    return number


def decimal(data: dict, name: str, lo: Decimal, hi: Decimal, required: bool = True,
            places: int = 1) -> Decimal | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise Invalid(_l("%(field)s is required", field=name), field=name)
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise Invalid(_l("%(field)s must be a number", field=name), field=name) from None
    if not number.is_finite() or not lo <= number <= hi:
        raise Invalid(_l("%(field)s must be between %(lo)s and %(hi)s", field=name, lo=lo, hi=hi), field=name)
    # Refuse extra digits rather than round them: 133.95 °C must not become 134.0 °C and pass a rule.
    if number.as_tuple().exponent < -places:
        raise Invalid(_l("%(field)s has at most %(places)s decimal places", field=name, places=places), field=name)
    return number.quantize(Decimal(1).scaleb(-places))


def boolean(data: dict, name: str) -> bool:
    value = data.get(name)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def ident(data: dict, name: str) -> int:
    try:
        return int(data.get(name))
    except (TypeError, ValueError):
        raise Invalid(_l("%(field)s is required", field=name), field=name) from None
