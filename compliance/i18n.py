"""Language, formats and time zone for each request.

Two settings, kept apart: the *language* (the person's, else their site's) chooses the words; the *locale*
(the person's, else their site's, e.g. en-GB or id-ID) chooses how dates, times, the clock and numbers are
written, always through Babel's CLDR data. The site's zone turns UTC instants into local times.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Iterator
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal, get_decimal_symbol
from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask_babel import get_locale
from flask_login import current_user

from .config import LANGUAGES, LOCALES
from .extensions import babel
from .sites.rules import default_locale

# Set while an email or a job writes for one reader (force_format_locale); wins over the request's.
_forced_locale: ContextVar[str | None] = ContextVar("forced_format_locale", default=None)


def _context_site():
    """The site this request is about: set by the view (g.site), the tablet, or the person's first site."""
    site = getattr(g, "site", None)
    if site is not None:
        return site
    device = getattr(g, "tablet", None)
    if device is not None:
        return device.site
    if current_user and current_user.is_authenticated and current_user.sites:
        return current_user.sites[0]
    return None


def select_locale() -> str:
    """The language of the words (Flask-Babel's locale): en or id."""
    if not has_request_context():  # a CLI command or a scheduled job: the configured default
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.language in LANGUAGES:
        return current_user.language
    site = _context_site()
    if site is not None and site.language in LANGUAGES:
        return site.language
    return request.accept_languages.best_match(LANGUAGES) or current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    if not has_request_context():
        return current_app.config["DEFAULT_TIMEZONE"]
    site = _context_site()
    return site.timezone if site is not None else current_app.config["DEFAULT_TIMEZONE"]


def _fallback_locale() -> str:
    language = str(get_locale()) if has_app_context() else "en"
    zone = current_app.config["DEFAULT_TIMEZONE"] if has_app_context() else "UTC"
    return default_locale(language, zone)


def select_format_locale() -> str:
    """The locale tag (en-GB …) of this request: the person's own, else their site's, else from the language."""
    forced = _forced_locale.get()
    if forced:
        return forced
    if not has_request_context():
        return _fallback_locale()
    tag = None
    if current_user and current_user.is_authenticated and getattr(current_user, "locale", None) in LOCALES:
        tag = current_user.locale
    if tag is None:
        site = _context_site()
        if site is not None and getattr(site, "locale", None) in LOCALES:
            tag = site.locale
    return tag or _fallback_locale()


def babel_locale(tag: str | None = None) -> Locale:
    """Babel's Locale for a tag such as "en-GB" (default: this request's formats)."""
    return Locale.parse(tag or select_format_locale(), sep="-")


@contextmanager
def force_format_locale(tag: str | None) -> Iterator[None]:
    """Write dates and numbers in `tag`'s formats inside the block (an email for one reader)."""
    token = _forced_locale.set(tag if tag in LOCALES else None)
    try:
        yield
    finally:
        _forced_locale.reset(token)


def locale_label(tag: str) -> str:
    """The locale's name in the reader's language, with an example: "English (United Kingdom) — 02/12/2026 21:33"."""
    name = babel_locale(tag).get_display_name(str(get_locale()) if has_app_context() else "en")
    sample = format_datetime(datetime(2026, 12, 2, 21, 33), format="short", locale=babel_locale(tag))
    return f"{name} — {sample} · {number(Decimal('1234.5'), tag=tag)}"


def local_datetime(value: datetime | None, tz_name: str | None = None, fmt: str = "medium") -> str:
    """Format a UTC instant in a site's zone (default: this request's), in this request's locale."""
    if value is None:
        return ""
    tz = ZoneInfo(tz_name or select_timezone())
    return format_datetime(value.astimezone(tz), format=fmt, locale=babel_locale())


def local_time(value: datetime | None, tz_name: str | None = None) -> str:
    if value is None:
        return ""
    tz = ZoneInfo(tz_name or select_timezone())
    return format_time(value.astimezone(tz), format="short", locale=babel_locale())


def local_date(value: date | None, fmt: str = "medium") -> str:
    """A calendar day in this request's locale ("2 Dec 2026" in en-GB; "short" is 02/12/2026)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, format=fmt, locale=babel_locale())


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def number(value, places: int | None = None, tag: str | None = None, grouping: bool = True) -> str:
    """A number in the locale's separators, keeping the places it has ("0.50" → "0,50" in id-ID), or `places`."""
    if value is None or value == "":
        return ""
    number_ = value if isinstance(value, Decimal) else Decimal(str(value))
    digits = _places(number_) if places is None else places
    pattern = ("#,##0" if grouping else "0") + ("." + "0" * digits if digits else "")
    return format_decimal(number_, format=pattern, locale=babel_locale(tag))


def input_number(value, places: int | None = None) -> str:
    """A number for an edit field: the locale's decimal sign, no grouping, so that it reads back the same."""
    return number(value, places, grouping=False)


def decimal_symbol(tag: str | None = None) -> str:
    return get_decimal_symbol(babel_locale(tag))


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["local_dt"] = local_datetime
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["input_number"] = input_number
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())
    app.jinja_env.globals["format_locale"] = select_format_locale
    app.jinja_env.globals["locale_label"] = locale_label
