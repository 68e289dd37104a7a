"""Sign-in with a password (laptops), with a PIN (a site's shared tablet), and tablet set-up."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import time

import segno
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user

from ..errors import Forbidden, ServiceError
from ..extensions import db
from ..sites.models import Site
from ..sites.services import sites_query
from ..timeutil import utcnow
from ..i18n import local_datetime
from ..web import TABLET_COOKIE, client_address, current_actor, paginate, requires, submit
from . import services
from .forms import ConfirmForm, EnrolTabletForm, LoginForm, PinForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _throttle() -> services.Throttle:
    c = current_app.config
    return services.Throttle(c["LOGIN_MAX_FAILURES"], c["LOGIN_MAX_FAILURES_PER_ADDRESS"], c["LOGIN_WINDOW_MINUTES"])


def _pin_policy() -> services.PinPolicy:
    c = current_app.config
    return services.PinPolicy(c["PIN_MAX_ATTEMPTS"], c["PIN_LOCK_MINUTES"])


@bp.get("/")
def home():
    if current_user.is_authenticated:
        if session.get("tablet_mode") or current_user.role == "staff":
            return redirect(url_for("auth.tablet_home"))
        return redirect(url_for("sites.dashboard"))
    if g.tablet is not None:
        return redirect(url_for("auth.tablet"))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200
    if form.validate_on_submit():
        try:
            user = services.password_sign_in(form.email.data, form.password.data, client_address(), utcnow(),
                                             _throttle())
        except ServiceError as exc:
            db.session.commit()  # keep the failed attempt: it drives the throttle
            status = 429 if isinstance(exc, Forbidden) else 401
            form.password.errors = [_("Too many failed sign-ins. Try again later.") if status == 429
                                    else _("Wrong email or password.")]
        else:
            db.session.commit()
            session.pop("tablet_mode", None)
            login_user(user)
            return redirect(_safe_next(form.next.data) or url_for("auth.home"))
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if current_user.is_authenticated:
        services.record_sign_out(current_user._get_current_object(), utcnow())
        db.session.commit()
    was_tablet = session.pop("tablet_mode", False)
    logout_user()
    if was_tablet or g.tablet is not None:
        return redirect(url_for("auth.tablet"))
    return redirect(url_for("auth.login"))


# --- the shared tablet -------------------------------------------------------------------------

def _require_tablet():
    if g.tablet is None:
        return render_template("tablet/not_enrolled.html"), 403
    return None


@bp.get("/tablet")
def tablet():
    refusal = _require_tablet()
    if refusal:
        return refusal
    g.site = g.tablet.site
    people = services.tablet_people(g.tablet.site_id)
    return render_template("tablet/picker.html", people=people, form=ConfirmForm())


@bp.route("/tablet/pin/<int:user_id>", methods=["GET", "POST"])
def tablet_pin(user_id: int):
    refusal = _require_tablet()
    if refusal:
        return refusal
    g.site = g.tablet.site
    person = next((p for p in services.tablet_people(g.tablet.site_id) if p.id == user_id), None)
    if person is None:
        abort(404)
    form = PinForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.pin_sign_in(g.tablet.site_id, user_id, form.pin.data, client_address(), utcnow(),
                                        _pin_policy())
        except ServiceError as exc:
            db.session.commit()  # the failed attempt and any lock are kept
            status = exc.status if exc.status != 422 else 401
            form.pin.errors = [_pin_refusal(exc, g.tablet.site)]
        else:
            db.session.commit()
            logout_user()
            session.clear()
            login_user(user)
            session["tablet_mode"] = True
            session["tablet_site_id"] = g.tablet.site_id
            session["last_seen"] = time.time()
            return redirect(url_for("auth.tablet_home"))
    elif request.method == "POST":
        status = 422
    return render_template("tablet/pin.html", person=person, form=form), status


def _pin_refusal(exc: ServiceError, site: Site) -> str:
    """What the PIN screen says: tries left before the lock, or when the lock ends in the site's local time."""
    if isinstance(exc, services.PinLocked):
        return _("Locked after too many wrong PINs until %(time)s (%(zone)s time). Ask a manager to reset "
                 "your PIN, or wait until then.", time=local_datetime(exc.locked_until, site.timezone, "short"),
                 zone=site.timezone)
    if isinstance(exc, services.WrongPin):
        return ngettext("Wrong PIN. %(num)d try left before the lock.",
                        "Wrong PIN. %(num)d tries left before the lock.", exc.tries_left)
    return exc.message


@bp.post("/tablet/switch")
@requires("tablet.use")
def tablet_switch():
    """"Switch person": the person signed in on the tablet is signed out at once, then the picker."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.record_sign_out(current_user._get_current_object(), utcnow(), kind="switch_sign_out")
    db.session.commit()
    logout_user()
    session.pop("tablet_mode", None)
    session.pop("tablet_site_id", None)
    return redirect(url_for("auth.tablet"))


@bp.get("/tablet/revoked")
def tablet_revoked():
    """Where a revoked tablet's requests are sent."""
    device = getattr(g, "revoked_tablet", None)
    if device is None:
        return redirect(url_for("auth.home"))
    g.site = device.site
    return render_template("tablet/revoked.html", device=device), 403


@bp.get("/tablet/home")
@requires("tablet.use")
def tablet_home():
    site = g.tablet.site if g.tablet is not None else (current_user.sites[0] if current_user.sites else None)
    if site is None:
        abort(404)
    g.site = site
    return render_template("tablet/home.html", site=site, rooms=[r for r in site.rooms if r.is_active],
                           form=ConfirmForm(), now=utcnow())


# --- tablet set-up by a manager ----------------------------------------------------------------

def _tablets_page(form: EnrolTabletForm, status: int = 200):
    actor = current_actor()
    page = paginate(services.tablets_query(actor))
    links = services.open_links(actor, utcnow())
    return render_template("auth/tablets.html", form=form, page=page, links=links, confirm=ConfirmForm()), status


def _enrol_form(actor) -> EnrolTabletForm:
    form = EnrolTabletForm()
    form.site_id.choices = [(s.id, s.name) for s in db.session.scalars(sites_query(actor))]
    return form


@bp.route("/tablets", methods=["GET", "POST"])
@requires("tablets.manage")
def tablets():
    actor = current_actor()
    form = _enrol_form(actor)
    status = submit(form, lambda: services.enrol_tablet(actor, form.site_id.data, form.name.data, utcnow()),
                    _enrolled_here)
    if not isinstance(status, int):
        return status
    return _tablets_page(form, status)


def _enrolled_here(result):
    device, token = result
    flash(_("This browser is now the tablet “%(name)s” of %(site)s.", name=device.name, site=device.site.name),
          "success")
    return _become_tablet(token)


def _become_tablet(token: str):
    """Sign whoever is here out and give the browser the tablet cookie."""
    response = redirect(url_for("auth.tablet"))
    response.set_cookie(TABLET_COOKIE, token, max_age=int(timedelta(days=400).total_seconds()),
                        httponly=True, samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    session.pop("tablet_mode", None)
    logout_user()
    return response


def _link_refused(exc: ServiceError):
    db.session.rollback()  # a refused set-up changes nothing
    spent = exc.link if isinstance(exc, services.LinkSpent) else None
    return render_template("tablet/link_refused.html", message=exc.message, spent=spent), exc.status


@bp.route("/tablet/enrol/<token>", methods=["GET", "POST"])
def enrol_from_link(token: str):
    """A single-use set-up link from a manager (or the demo command): confirm, then this browser is the tablet."""
    try:
        link = services.read_tablet_link(token, utcnow())
    except ServiceError as exc:
        return _link_refused(exc)
    g.site = link.site  # the set-up page and its message speak the site's language
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            device, cookie_token = services.enrol_tablet_from_link(token, utcnow())
        except ServiceError as exc:
            return _link_refused(exc)
        db.session.commit()
        flash(_("This browser is now the tablet “%(name)s” of %(site)s.", name=device.name, site=device.site.name),
              "success")
        return _become_tablet(cookie_token)
    return render_template("tablet/enrol.html", site=link.site, name=link.name, form=form)


@bp.post("/tablets/link")
@requires("tablets.manage")
def make_tablet_link():
    """A manager makes a single-use set-up link (and QR code) for one named tablet, to open on the tablet itself."""
    actor = current_actor()
    form = _enrol_form(actor)
    status = submit(form, lambda: services.create_tablet_link(actor, form.site_id.data, form.name.data, utcnow()),
                    _show_link)
    if not isinstance(status, int):
        return status
    return _tablets_page(form, status)


def _show_link(result):
    link_row, token = result
    link = url_for("auth.enrol_from_link", token=token, _external=True)
    qr_svg = segno.make(link, error="m").svg_inline(scale=5, title=_("Tablet set-up link"))
    return render_template("auth/tablet_link.html", link=link, qr_svg=qr_svg, site=link_row.site,
                           name=link_row.name, expires_at=link_row.expires_at)


@bp.post("/tablets/<int:device_id>/revoke")
@requires("tablets.manage")
def revoke_tablet(device_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    device = services.revoke_tablet(current_actor(), device_id, utcnow())
    db.session.commit()
    flash(_("Tablet “%(name)s” revoked.", name=device.name), "success")
    return redirect(url_for("auth.tablets"))
