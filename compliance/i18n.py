"""Language and time zone for each request: the person's language, else their site's; the site's zone."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_locale
from flask_login import current_user

from .config import LANGUAGES
from .extensions import babel


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


def local_datetime(value: datetime | None, tz_name: str | None = None, fmt: str = "medium") -> str:
    """Format a UTC instant in a site's zone (default: this request's), in the request's language."""
    if value is None:
        return ""
    tz = ZoneInfo(tz_name or select_timezone())
    return format_datetime(value.astimezone(tz), format=fmt, locale=str(get_locale()))


def local_time(value: datetime | None, tz_name: str | None = None) -> str:
    if value is None:
        return ""
    tz = ZoneInfo(tz_name or select_timezone())
    return format_time(value.astimezone(tz), format="short", locale=str(get_locale()))


def local_date(value: date | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return format_date(value, format=fmt, locale=str(get_locale()))


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["local_dt"] = local_datetime
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())
