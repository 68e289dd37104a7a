"""Input checks shared by services (forms and the API both reach them): a clear message naming the field."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

import email_validator
from email_validator import EmailNotValidError, validate_email
from flask_babel import LazyString, get_locale, gettext
from flask_babel import lazy_gettext as _l

from .boundary import MAX_ID
from .errors import Invalid, NotFound
from .labels import field_label
from .timeutil import is_valid_timezone

# Clinics use internal mail domains (".local", ".test" in staging); email_validator refuses these
# special-use names by default, and its documentation says to edit this list to allow them.
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if d not in ("local", "test")]


class TooLong(Invalid):
    """A text over its limit, refused whole (never cut): the limit and the text's length, for a screen's own words."""

    def __init__(self, message, field: str, limit: int, length: int):
        super().__init__(message, field=field)
        self.limit, self.length = limit, length


def text(data: dict, name: str, max_len: int, required: bool = True) -> str:
    value = data.get(name)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise Invalid(_l("%(field)s is required", field=field_label(name)), field=name)
    if len(value) > max_len:
        raise TooLong(_l("%(field)s must be at most %(max)s characters; this text has %(length)s",
                         field=field_label(name), max=max_len, length=len(value)), name, max_len, len(value))
    return value


def idempotency_key(data: dict) -> str | None:
    """An optional idempotency key made by the client, by the checklist answers' rule: 8 to 64 characters."""
    if data.get("idempotency_key") in (None, ""):
        return None
    key = text(data, "idempotency_key", 64)
    if len(key) < 8:
        raise Invalid(_l("idempotency_key must be at least 8 characters"), field="idempotency_key")
    return key


class ChoiceWords:
    """The choices of a refused value as a reader sees them, rendered when the message is read: each choice's label
    in the reader's language where `labels` has one ("Acne scars", "Bekas jerawat"), else its code ("III")."""

    def __init__(self, options: Iterable[str], labels: Mapping[str, Any] | None = None):
        self.options, self.labels = tuple(options), labels or {}

    def __str__(self) -> str:
        return ", ".join(str(self.labels.get(o, o)) for o in self.options)


def choice(data: dict, name: str, options: Iterable[str], required: bool = True,
           labels: Mapping[str, Any] | None = None) -> str | None:
    """One of `options`; a refusal lists them by their `labels` (a code's label, lazy or not), else by code."""
    options = tuple(options)
    value = data.get(name)
    if value in (None, "") and not required:
        return None
    if value not in options:
        raise Invalid(_l("%(field)s must be one of: %(options)s", field=field_label(name),
                         options=ChoiceWords(options, labels)), field=name)
    return value


def timezone_name(data: dict) -> str:
    value = text(data, "timezone", 64)
    if not is_valid_timezone(value):
        raise Invalid(_l("%(field)s must be an IANA time zone such as Asia/Jakarta", field=field_label("timezone")),
                      field="timezone")
    return value


def _email_refusal(reason: str, name: str) -> str:
    """email_validator explains in English only: an English reader gets its reason, any other our own sentence."""
    if str(get_locale() or "en").split("_")[0] == "en":
        return gettext("%(field)s is not valid: %(reason)s", field=field_label(name), reason=reason)
    return gettext("%(field)s: enter a valid email address, such as name@clinic.com", field=field_label(name))


def email(data: dict, name: str = "email") -> str:
    raw = text(data, name, 254)
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Invalid(LazyString(_email_refusal, str(exc), name), field=name) from None


# --- the plausible window of every date and time a person or machine types -----------------------
# Nothing in a clinic's records happened before 2000 or is planned more than ten years ahead; a value outside
# is a typing slip (or an attack on date arithmetic), refused with the field's name. Narrower where the
# meaning demands: something done is not in the future (a local day may run up to a day ahead of UTC's).
EARLIEST_DAY = date(2000, 1, 1)
YEARS_AHEAD = 10


def latest_day(today: date) -> date:
    try:
        return today.replace(year=today.year + YEARS_AHEAD)
    except ValueError:  # 29 February
        return today.replace(year=today.year + YEARS_AHEAD, day=28)


def day_problem(value: date, today: date, not_future: bool = False) -> tuple[date, date] | None:
    """None when `value` lies in its window, else the window (first, last) it missed."""
    last = today + timedelta(days=1) if not_future else latest_day(today)
    return None if EARLIEST_DAY <= value <= last else (EARLIEST_DAY, last)


def check_day(value: date, name: str, today: date, not_future: bool = False) -> date:
    window = day_problem(value, today, not_future)
    if window:
        raise Invalid(_l("%(field)s must be between %(first)s and %(last)s", field=field_label(name),
                         first=window[0].isoformat(), last=window[1].isoformat()), field=name)
    return value


def check_moment(value: datetime, name: str, now: datetime, not_future: bool = False) -> datetime:
    """An aware date and time within the window; `not_future` allows five minutes of clock drift."""
    if not_future and value > now + timedelta(minutes=5):
        raise Invalid(_l("%(field)s is in the future", field=field_label(name)), field=name)
    check_day(value.astimezone(timezone.utc).date(), name, now.date())
    return value


def date_value(data: dict, name: str, required: bool = True, today: date | None = None,
               not_future: bool = False) -> date | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise Invalid(_l("%(field)s is required", field=field_label(name)), field=name)
        return None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(str(value))
        except ValueError:
            raise Invalid(_l("%(field)s must be a date (YYYY-MM-DD)", field=field_label(name)), field=name) from None
    return check_day(value, name, today or datetime.now(timezone.utc).date(), not_future)


def integer(data: dict, name: str, lo: int, hi: int, required: bool = True) -> int | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise Invalid(_l("%(field)s is required", field=field_label(name)), field=name)
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise Invalid(_l("%(field)s must be a whole number", field=field_label(name)), field=name) from None
    if not lo <= number <= hi:
        raise Invalid(_l("%(field)s must be between %(lo)s and %(hi)s", field=field_label(name), lo=lo, hi=hi),
                      field=name)
    return number


class DecimalRefused(ValueError):
    """Why parse_decimal refused a value: kind is "number", "range" or "places"; str() is the API's sentence."""

    def __init__(self, kind: str, places: int, lo=None, hi=None):
        self.kind, self.places, self.lo, self.hi = kind, places, lo, hi
        super().__init__({"number": "must be a number",
                          "range": f"must be between {lo} and {hi}",
                          "places": f"at most {places} decimal place(s)"}[kind])


def parse_decimal(raw, places: int, lo: Decimal | None = None, hi: Decimal | None = None,
                  decimal_comma: bool = True) -> Decimal:
    """The decimal as given, with `places` places: refused, never rounded, when it has more digits (even zeros).

    The one reading of a decimal for the forms and the API: a string ("134.5"; on a form also "134,5", as an
    Indonesian screen shows it and its edit fields hold it), an int, or a JSON number (a float, read by its
    shortest repr, so 133.95 stays 133.95). The API passes decimal_comma=False: machines write decimal points.
    """
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
        raise DecimalRefused("number", places, lo, hi)
    text = str(raw).strip()
    if decimal_comma:
        text = text.replace(",", ".")
    try:
        # str(), never Decimal(float): Decimal(133.95) is 133.94999999999998863131622783839702606201171875.
        number = Decimal(text)
    except InvalidOperation:
        raise DecimalRefused("number", places, lo, hi) from None
    if not number.is_finite():
        raise DecimalRefused("number", places, lo, hi)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise DecimalRefused("range", places, lo, hi)
    # Trailing zeros count too: "2.100" or "1,300" typed with a thousands separator must not become 2.1 or 1.3.
    if number.as_tuple().exponent < -places:
        raise DecimalRefused("places", places, lo, hi)
    try:
        return number.quantize(Decimal(1).scaleb(-places))  # only adds zeros: the value is unchanged
    except InvalidOperation:  # too many digits for the context, without bounds
        raise DecimalRefused("number", places, lo, hi) from None


def decimal(data: dict, name: str, lo: Decimal, hi: Decimal, required: bool = True,
            places: int = 1) -> Decimal | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise Invalid(_l("%(field)s is required", field=field_label(name)), field=name)
        return None
    try:
        return parse_decimal(value, places, lo, hi)
    except DecimalRefused as exc:
        message = {
            "number": _l("%(field)s must be a number", field=field_label(name)),
            "range": _l("%(field)s must be between %(lo)s and %(hi)s", field=field_label(name), lo=lo, hi=hi),
            # Refuse extra digits rather than round them: 133.95 °C must not become 134.0 °C and pass a rule.
            "places": _l("%(field)s has at most %(places)s decimal places", field=field_label(name), places=places),
        }[exc.kind]
        raise Invalid(message, field=name) from None


def boolean(data: dict, name: str) -> bool:
    value = data.get(name)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def ident(data: dict, name: str) -> int:
    """A record's id: a whole number that can exist (1 … 2^31 − 1)."""
    try:
        number = int(data.get(name))
    except (TypeError, ValueError):
        raise Invalid(_l("%(field)s is required", field=field_label(name)), field=name) from None
    if not 0 < number <= MAX_ID:
        raise NotFound(_l("no such record: %(field)s %(id)s", field=field_label(name), id=number), field=name)
    return number
