"""API authentication: a person's session cookie (with CSRF on writes) or a site's API key."""
from __future__ import annotations

from http import HTTPStatus

from flask import g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from flask_babel import lazy_gettext as _l

from ..auth.actor import Actor, actor_for_user
from ..auth.permissions import role_writes
from ..errors import Forbidden
from ..auth.services import actor_for_api_key
from ..extensions import db
from ..timeutil import utcnow

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _key_from_request() -> str | None:
    """A site API key from `Authorization: Bearer`, else from `X-API-Key` (documented as siteApiKeyHeader)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def _unauthorised(message: str):
    raise Unauthorized(description=message, www_authenticate=WWWAuthenticate("Bearer", {"realm": "api"}))


def api_actor() -> Actor:
    """Who is calling: an API key, else the signed-in person (writes need the CSRF token); else 401."""
    actor = getattr(g, "api_actor", None)
    if actor is not None:
        return actor
    key = _key_from_request()
    if key:
        actor = actor_for_api_key(key, utcnow())
        if actor is None:
            _unauthorised("unknown or revoked API key")
    elif current_user.is_authenticated:
        if request.method not in SAFE_METHODS:
            try:
                validate_csrf(request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token"))
            except ValidationError as exc:
                raise CSRFError(str(exc)) from None
        actor = actor_for_user(current_user._get_current_object())
    else:
        _unauthorised("sign in, or send a site API key as 'Authorization: Bearer <key>'")
    g.api_actor = actor
    return actor


WRITE_SECURITY = [{"sessionCookie": [], "csrfToken": []}, {"siteApiKey": []}, {"siteApiKeyHeader": []}]


def authenticate_request():
    """A blueprint's before_request: know the caller (401) and check a session's CSRF header (400) before
    any input is read; commit the API key's last_used_at, which api_actor() noted."""
    if request.method == "OPTIONS":
        return
    actor = api_actor()
    if request.method not in SAFE_METHODS and not role_writes(actor.role):
        # A read-only role is refused before its input is read, whatever the route (auditors change nothing).
        raise Forbidden(_l("your role (%(role)s) only reads; it may not change anything", role=actor.role))
    if actor.api_key_id is not None:
        db.session.commit()


def error_docs(blp):
    """A decorator factory for `blp`: document an operation's error answers (401 always) and, for writes,
    the CSRF header."""

    def errors(*codes: int, write: bool = False):
        def decorate(func):
            for code in (401, *codes):
                func = blp.alt_response(code, response=HTTPStatus(code).name)(func)
            if write:
                func = blp.doc(security=WRITE_SECURITY)(func)
            return func

        return decorate

    return errors
