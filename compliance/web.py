"""What every page shares: the acting person, permission checks, pagination, errors, the tablet's idle timer."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from functools import wraps
from math import ceil
from typing import Any, Callable

from flask import Flask, abort, current_app, flash, g, has_request_context, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException, RequestURITooLarge
from werkzeug.wrappers import Response

from .schedule.labels import ACTION_LABELS, kind_label, state_label
from .schedule.models import PRIVATE_KINDS
from .auth.actor import Actor, actor_for_user
from .errors import ServiceError
from .extensions import db, login_manager
from .labels import ROLE_LABELS, ROOM_KIND_LABELS
from .boundary import MAX_ID
from .timeutil import utcnow
from .validation import day_problem

TABLET_COOKIE = "tablet"


def current_actor() -> Actor:
    """The signed-in person as an Actor (cached for the request)."""
    actor = getattr(g, "actor", None)
    if actor is None:
        if not current_user.is_authenticated:
            abort(401)
        actor = g.actor = actor_for_user(current_user._get_current_object())
    return actor


def requires(action: str) -> Callable:
    """A view decorator: signed in, and the role allows `action` (else 403)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_actor().can(action):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_action = action  # read by the role × page test
        return wrapped

    return decorator


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(stmt, default_per_page: int = 25) -> Page:
    """One page of a select, from ?page= and ?per_page= (clamped to 10..100)."""
    page = max(1, request.args.get("page", 1, type=int) or 1)
    per_page = min(100, max(10, request.args.get("per_page", default_per_page, type=int) or default_per_page))
    from .sites.models import count

    total = count(stmt)
    page = min(page, max(1, ceil(total / per_page)))  # past the last page: the last page (no offset overflow)
    items = list(db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique())
    return Page(items=items, page=page, per_page=per_page, total=total)


def arg_id(name: str) -> int | None:
    """A record id from the query string, or None when absent, not a number, or not one that can exist."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value <= MAX_ID else None


def arg_day(name: str) -> date | None:
    """A date filter from the query string (YYYY-MM-DD), or None when absent, malformed or outside the window
    every date is kept in (2000-01-01 to ten years ahead)."""
    try:
        value = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    return None if day_problem(value, utcnow().date()) else value


def sort_clause(options: dict[str, Any], default: str):
    """The ORDER BY for ?sort=key or ?sort=-key among the allowed keys."""
    raw = request.args.get("sort", default)
    key = raw.lstrip("-")
    if key not in options:
        raw, key = default, default.lstrip("-")
    column = options[key]
    return column.desc() if raw.startswith("-") else column.asc()


def url_with(**changes: Any) -> str:
    """The current page's URL with some query arguments changed (pagination, sorting, filters)."""
    args = request.args.to_dict()
    args.update(request.view_args or {})
    args.update(changes)
    return url_for(request.endpoint, **args)


def client_address() -> str:
    return (request.remote_addr or "")[:64]


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def wants_partial() -> bool:
    return request.headers.get("HX-Request") == "true"


def _load_user(session_user_id: str):
    """The person of a session cookie ("12.3": id and session version; a bare "12" is version 0, from before
    versions): None, so signed out, once the person is deactivated or their sessions were ended."""
    from .sites.models import User

    user_id, _dot, version = str(session_user_id).partition(".")
    try:
        number, version_number = int(user_id), int(version or 0)
    except (TypeError, ValueError):
        return None
    if not 0 < number < 2**31:
        return None
    user = db.session.get(User, number)
    if user is None or not user.is_active_user or version_number != (user.session_version or 0):
        return None
    return user


def _before_request():
    if request.endpoint in ("static", "health.favicon"):
        return None
    from .auth.services import record_sign_out, tablet_for_token, touch_tablet

    device = tablet_for_token(request.cookies.get(TABLET_COOKIE))
    g.tablet = device if device is not None and device.is_active else None
    g.revoked_tablet = device if device is not None and not device.is_active else None
    if device is not None and not device.is_active:
        refusal = _refuse_revoked_tablet()
        if refusal is not None:
            return refusal
    elif g.tablet is not None and touch_tablet(g.tablet, utcnow()):
        db.session.commit()  # the last use, at most once a minute (and never audited: a Core UPDATE)
    if session.get("tablet_mode") and current_user.is_authenticated:
        from flask import current_app

        now = time.time()
        idle = current_app.config["TABLET_IDLE_SECONDS"]
        if now - session.get("last_seen", now) > idle:
            record_sign_out(current_user._get_current_object(), utcnow(), kind="idle_sign_out")
            db.session.commit()
            logout_user()
            session.pop("tablet_mode", None)
            flash(_("Signed out after %(minutes)s minutes without activity.", minutes=idle // 60), "info")
            if is_api_request():
                return jsonify(code=401, message="signed out after inactivity"), 401
            return redirect(url_for("auth.tablet"))
        session["last_seen"] = now
    return None


# Pages a browser with a revoked tablet cookie still reaches: the revoked page, a new set-up, a manager's sign-in.
_REVOKED_ALLOWED = {"auth.tablet_revoked", "auth.enrol_from_link", "auth.login", "health.healthz", "health.favicon"}


def _refuse_revoked_tablet():
    """A revoked tablet's next request: whoever is signed in on it is signed out, and it is sent to the revoked
    page. A person signed in with a password (a manager in that browser) is not a tablet session: left alone."""
    from .auth.services import record_sign_out

    if current_user.is_authenticated and not session.get("tablet_mode"):
        return None
    if current_user.is_authenticated:
        record_sign_out(current_user._get_current_object(), utcnow(), kind="revoked_sign_out")
        db.session.commit()
        logout_user()
        session.pop("tablet_mode", None)
    if request.endpoint in _REVOKED_ALLOWED:
        return None
    if is_api_request():
        return jsonify(code=403, message="this tablet was revoked"), 403
    return redirect(url_for("auth.tablet_revoked"))


def _error_response(code: int, message: str, errors: dict | None = None, headers: list | None = None):
    headers = [(k, v) for k, v in (headers or []) if k.lower() != "content-type"]
    if is_api_request():
        body: dict[str, Any] = {"code": code, "message": message}
        if errors:
            body["errors"] = errors
        return jsonify(body), code, headers
    return render_template("errors/error.html", code=code, message=message, errors=errors or {}), code, headers


def _request_target_length() -> int:
    """The length of the URL as the client sent it (path and query string, still percent-encoded)."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        query = environ.get("QUERY_STRING", "")
        raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    return len(raw)


def _refuse_long_url():
    """414 for a URL over MAX_URL_LENGTH, before anything reads it (gunicorn.conf.py lets longer lines reach us, so
    that the API answers in JSON and a page with the error page)."""
    from flask import current_app

    limit = current_app.config["MAX_URL_LENGTH"]
    if _request_target_length() > limit:
        raise RequestURITooLarge(_("This address is too long: at most %(limit)s characters.", limit=limit))


def _http_error(exc: HTTPException):
    if exc.code == 413:
        from flask import current_app

        megabytes = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)
        return _error_response(413, _("What was sent is too large: at most %(n)s MB.", n=megabytes),
                               None, exc.get_headers())
    if isinstance(exc, CSRFError):
        if is_api_request():
            return _error_response(400, "CSRF check failed: send the X-CSRFToken header with a session's token",
                                   {"csrf_token": [exc.description]})
        return _error_response(400, _("The form expired or was not sent from this site (CSRF check failed). "
                                      "Go back, reload the page and try again."),
                               {"csrf_token": [exc.description]})
    data = getattr(exc, "data", None) or {}
    errors = data.get("messages") or data.get("errors")
    return _error_response(exc.code or 500, exc.description or exc.name, errors, exc.get_headers())


def _settle(exc: ServiceError) -> None:
    """End the transaction of a refused operation: roll it back, or commit it when `exc.keep_changes`."""
    if exc.keep_changes:
        db.session.commit()  # e.g. a wrong manager PIN: the failure counts towards the lock
    else:
        db.session.rollback()  # a refused operation stores nothing, even what it flushed before refusing


def refuse_at_field(form, exc: ServiceError, fallback: str | None = None, aliases: dict | None = None, *,
                    on_form: bool = False) -> int:
    """Settle a refusal; its message goes to its field, alias or fallback, else a flash (on_form: the form's)."""
    _settle(exc)
    name = (aliases or {}).get(exc.field, exc.field)
    name = name if name and name in form else fallback
    if name:
        form[name].errors = [*form[name].errors, exc.message]
    elif on_form:
        form.form_errors.append(exc.message)
    else:
        flash(exc.message, "error")
    return exc.status


def submit(form, operation: Callable[[], Any], success: Callable[[Any], Response], **refusal: Any) -> Response | int:
    """Validate, run operation, commit, return success(result); else the status to render the form with."""
    if not form.validate_on_submit():
        return 422 if form.is_submitted() else 200
    try:
        result = operation()
    except ServiceError as exc:
        return refuse_at_field(form, exc, **refusal)
    db.session.commit()
    return success(result)


def flash_redirect(message: str, url: str) -> Response:
    """Flash a success message and redirect to url."""
    flash(message, "success")
    return redirect(url)


def _service_error(exc: ServiceError):
    _settle(exc)
    errors = {exc.field: [exc.message]} if exc.field else None
    if is_api_request():
        body = {"code": exc.status, "message": exc.message}
        if errors:
            body["errors"] = errors
        if exc.rule:
            body["rule"] = exc.rule
        body.update(exc.details())
        return jsonify(body), exc.status
    return _error_response(exc.status, exc.message, errors)


def init_app(app: Flask) -> None:
    login_manager.user_loader(_load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    # "basic": "strong" logs a shared tablet out whenever a proxy changes the User-Agent (STACK.md trap 6).
    login_manager.session_protection = "basic"
    # First of all: a URL too long is refused before the session, CSRF or the API's authentication look at it.
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_long_url)
    app.before_request(_before_request)
    app.jinja_env.globals["url_with"] = url_with

    @app.teardown_request
    def _rollback_on_error(exc):
        if exc is not None:
            db.session.rollback()

    @app.context_processor
    def _globals():
        actor = None
        if has_request_context() and current_user and current_user.is_authenticated:
            actor = current_actor()
        tablet = getattr(g, "tablet", None) if has_request_context() else None
        return {"actor": actor, "tablet_device": tablet, "ROLE_LABELS": ROLE_LABELS,
                "ROOM_KIND_LABELS": ROOM_KIND_LABELS, "kind_label": kind_label, "state_label": state_label,
                "ACTION_LABELS": ACTION_LABELS, "PRIVATE_KINDS": PRIVATE_KINDS}


def _integrity_error(exc: IntegrityError):
    """The last line behind the services' own checks: two requests at the same moment both passed the check
    (two rooms "Ärzte"), and the database's unique constraint refused the second. Nothing is stored."""
    db.session.rollback()
    current_app.logger.warning("refused by a database constraint: %s", exc.orig)
    return _error_response(409, _("Someone saved the same thing a moment ago (it must be unique). "
                                  "Reload the page to see it."))


def _out_of_range(exc: Exception):
    """A number or date the database or the calendar cannot hold got past every earlier check: 422, nothing
    stored (and logged, so the check that should have caught it can be added)."""
    db.session.rollback()
    current_app.logger.warning("value out of range: %r", exc, exc_info=exc)
    return _error_response(422, _("A number or date is outside what can be stored. Check the values and try "
                                  "again."))


def register_error_handlers(app: Flask) -> None:
    """After the API is set up, so that these handlers replace flask-smorest's app-wide one."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(DataError, _out_of_range)
    app.register_error_handler(OverflowError, _out_of_range)
