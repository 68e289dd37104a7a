"""The set-up page: while the database holds no organisation, every page leads to /setup, which asks for the
one-time code printed in the server's log, then for the organisation, its first admin and first site."""
from __future__ import annotations

import math
import threading

import click
from babel.dates import get_day_names
from flask import Blueprint, Flask, abort, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from wtforms import EmailField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from ..errors import ServiceError
from ..extensions import db
from ..labels import LANGUAGE_LABELS
from ..timeutil import timezone_choices, utcnow
from ..web import client_address, is_api_request, refuse_at_field
from . import setup
from .forms import MultiCheckboxField, choices
from .forms import TextLimit

bp = Blueprint("setup", __name__)

# Reached before the set-up too: static files, the icon, the health check and the set-up page itself.
OPEN_ENDPOINTS = frozenset({"static", "health.favicon", "health.healthz", "setup.setup_page"})
_SESSION_KEY = "setup_code"
_choice = {"validate_choice": False}


class FirstRunState:
    """Per app: whether an organisation has been seen (then it stays so for the process), and whether the
    code has been logged by this process."""

    def __init__(self) -> None:
        self.is_set_up = False
        self.announced = False
        self.lock = threading.Lock()


def _state() -> FirstRunState:
    return current_app.extensions["first_run"]


def is_set_up() -> bool:
    """An organisation exists. Asked of the database only until the answer is yes: one cheap query per request
    on a fresh install, none afterwards."""
    state = _state()
    if state.is_set_up:
        return True
    try:
        exists = setup.organisation_exists()
    except SQLAlchemyError:  # no tables yet (migrations not applied): the pages fail as they would anyway
        db.session.rollback()
        return True
    state.is_set_up = exists
    return exists


def announce_code(app: Flask, url: str | None = None) -> None:
    """Write the set-up code to the server's log (once per process), with the page's address (BASE_URL's, or
    the one the first request came to)."""
    state = app.extensions["first_run"]
    with state.lock:
        if state.announced:
            return
        state.announced = True
    code = setup.setup_code(app.config["SECRET_KEY"])
    app.logger.warning("No organisation yet. To set up this installation, open %s and type the set-up "
                       "code %s (or run: flask --app wsgi setup)", url or app.config["BASE_URL"].rstrip("/") + "/setup",
                       code)


def announce_at_start(app: Flask) -> None:
    """At a server's start (gunicorn, any WSGI server: no command line around it), log the code when the
    database is reachable and holds no organisation. Not for commands such as `flask demo`, nor for tests."""
    if app.config.get("TESTING") or click.get_current_context(silent=True) is not None:
        return
    with app.app_context():
        if not is_set_up():
            announce_code(app)
        db.session.remove()


def _gate():
    if _state().is_set_up or request.endpoint in OPEN_ENDPOINTS or is_set_up():
        return None
    announce_code(current_app._get_current_object(), url_for("setup.setup_page", _external=True))
    if is_api_request():
        return jsonify(code=503, message="not set up yet: open /setup in a browser, or run "
                                         "`flask --app wsgi setup`"), 503
    return redirect(url_for("setup.setup_page"))


def init_app(app: Flask) -> None:
    app.extensions["first_run"] = FirstRunState()
    app.before_request(_gate)


# --- forms ---------------------------------------------------------------------------------------

class SetupCodeForm(FlaskForm):
    code = StringField(_l("Set-up code"), validators=[DataRequired(), Length(max=64)],
                       description=_l("Printed in the server's log when it started, e.g. ABCD-EFGH-JKMN."),
                       render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"})


class SetupForm(FlaskForm):
    organisation = StringField(_l("Organisation"), validators=[Length(max=200)],
                               description=_l("The clinic's name, as reports show it."))
    admin_name = StringField(_l("Your name"), validators=[Length(max=200)], render_kw={"autocomplete": "name"})
    admin_email = EmailField(_l("Your email"), validators=[Length(max=254)],
                             description=_l("You sign in with it."), render_kw={"autocomplete": "email"})
    admin_password = PasswordField(_l("Password"), validators=[Length(max=200)],
                                   description=_l("At least 10 characters."),
                                   render_kw={"autocomplete": "new-password"})
    admin_password_repeat = PasswordField(_l("Password again"),
                                          validators=[EqualTo("admin_password",
                                                              message=_l("The two passwords differ."))],
                                          render_kw={"autocomplete": "new-password"})
    site_name = StringField(_l("Site name"), validators=[Length(max=200)],
                            description=_l("For example the street or the part of town."))
    timezone = SelectField(_l("Time zone"), **_choice)
    language = SelectField(_l("Language"), description=_l("The language the tablet uses unless a person chose one."),
                           **_choice)
    locale = SelectField(_l("Dates and numbers"), description=_l("How dates, times and numbers are written at "
                                                                  "the site; people may choose their own."),
                         **_choice)
    address = TextAreaField(_l("Address"), validators=[Optional(), TextLimit(500)])
    closed_days = MultiCheckboxField(_l("Closed every week on"), **_choice)
    opening_hour = IntegerField(_l("Opening checks due by (hour)"), validators=[Optional()],
                                render_kw={"min": 0, "max": 23})
    closing_hour = IntegerField(_l("Closing checks due by (hour)"), validators=[Optional()],
                                render_kw={"min": 0, "max": 23})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = choices([("", _l("Choose the site's time zone")),
                                         *((z, z) for z in timezone_choices())])
        self.language.choices = choices(LANGUAGE_LABELS.items())
        from ..config import LOCALES
        from ..i18n import locale_label

        self.locale.choices = choices([("", _l("From the language and time zone")),
                                       *((tag, locale_label(tag)) for tag in LOCALES)])
        names = get_day_names("wide", locale=str(get_locale()))
        from ..schedule.rules import WEEKDAYS

        self.closed_days.choices = choices((day, names[n].capitalize()) for n, day in enumerate(WEEKDAYS))

    def values(self) -> dict:
        return {"organisation": self.organisation.data, "admin_name": self.admin_name.data,
                "admin_email": self.admin_email.data, "admin_password": self.admin_password.data,
                "site_name": self.site_name.data, "timezone": self.timezone.data, "language": self.language.data,
                "locale": self.locale.data or None, "address": self.address.data, "closed_days": self.closed_days.data or [],
                "opening_hour": self.opening_hour.data, "closing_hour": self.closing_hour.data}


# --- the page ------------------------------------------------------------------------------------

def _policy() -> tuple[int, int]:
    c = current_app.config
    return c.get("SETUP_MAX_ATTEMPTS", setup.MAX_CODE_ATTEMPTS), c.get("SETUP_LOCK_MINUTES", setup.CODE_LOCK_MINUTES)


@bp.route("/setup", methods=["GET", "POST"])
def setup_page():
    """Step 1: the code from the log; step 2 (this browser gave the right code): the organisation, its first
    admin and first site. Not found once an organisation exists."""
    if is_set_up():
        abort(404)
    code = setup.setup_code(current_app.config["SECRET_KEY"])
    announce_code(current_app._get_current_object(), url_for("setup.setup_page", _external=True))
    if session.get(_SESSION_KEY) != setup.code_fingerprint(code):
        return _code_step(code)
    form = SetupForm()
    if request.method == "GET":
        form.language.data = request.accept_languages.best_match(LANGUAGE_LABELS) or "en"
        form.opening_hour.data, form.closing_hour.data = (setup.check_hour("opening_hour", None),
                                                          setup.check_hour("closing_hour", None))
    status = 200
    if form.validate_on_submit():
        g.audit_label = "first run (set-up page)"
        try:
            result = setup.set_up(form.values(), utcnow())
        except ServiceError as exc:
            status = refuse_at_field(form, exc, fallback="organisation",
                                     aliases={"code": "organisation"})
        else:
            db.session.commit()
            _state().is_set_up = True
            session.pop(_SESSION_KEY, None)
            session.pop("tablet_mode", None)
            login_user(result.admin)
            flash(_("%(organisation)s is set up. Next: add your people, rooms, sterilisers and the site's tablet.",
                    organisation=result.organisation.name), "success")
            return redirect(url_for("auth.home"))
    elif request.method == "POST":
        status = 422
    return render_template("sites/setup.html", form=form), status


def _code_step(code: str):
    form = SetupCodeForm()
    status = 200
    max_attempts, lock_minutes = _policy()
    if form.validate_on_submit():
        now = utcnow()
        try:
            setup.check_setup_code(form.code.data, code, client_address(), now, max_attempts, lock_minutes)
        except setup.SetupLocked as exc:
            db.session.commit()  # the attempt is kept: it drives the lock
            status = 429
            form.code.errors = [_("Too many wrong codes: the set-up page is locked for %(minutes)s minutes "
                                  "(until %(time)s UTC). Check the code in the server's log, or run "
                                  "flask --app wsgi setup on the server.",
                                  minutes=max(1, math.ceil((exc.until - now).total_seconds() / 60)),
                                  time=exc.until.strftime("%H:%M"))]
        except setup.WrongSetupCode as exc:
            db.session.commit()
            status = 401
            form.code.errors = [_("Wrong set-up code. Wrong codes left before this page locks for %(minutes)s "
                                  "minutes: %(left)s.", left=exc.attempts_left, minutes=lock_minutes)]
        else:
            db.session.commit()
            session[_SESSION_KEY] = setup.code_fingerprint(code)
            return redirect(url_for("setup.setup_page"))
    elif request.method == "POST":
        status = 422
    return render_template("sites/setup_code.html", form=form, max_attempts=max_attempts,
                           lock_minutes=lock_minutes), status
