"""Choosing one's password through an emailed link (invitation, reset), asking for a reset, changing one's own
PIN on the tablet, sending an invitation again. Thin: the work is in accounts.py."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..errors import Forbidden, ServiceError
from ..extensions import db
from ..timeutil import utcnow
from ..web import client_address, current_actor, refuse_at_field, requires
from . import accounts
from .forms import ChangePinForm, ChoosePasswordForm, ConfirmForm, ForgotPasswordForm
from .views import _pin_policy, _pin_refusal, _throttle

bp = Blueprint("accounts", __name__)


def link_policy() -> accounts.LinkPolicy:
    return accounts.LinkPolicy.from_config(current_app.config)


def _private(response, status: int = 200):
    """A page whose URL holds a personal link: not cached, and the link never sent on as a Referer."""
    response = current_app.make_response((response, status))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- password reset ----------------------------------------------------------------------------

@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"][:254]
    status = 200
    if form.validate_on_submit():
        try:
            accounts.request_password_reset(form.email.data, client_address(), utcnow(), _throttle(), link_policy())
        except Forbidden:
            db.session.commit()  # the refused request is kept: it is part of the throttle
            form.email.errors = [_("Too many requests for a new password. Try again in %(minutes)s minutes.",
                                   minutes=current_app.config["LOGIN_WINDOW_MINUTES"])]
            status = 429
        else:
            db.session.commit()
            # The same page whether or not the address belongs to someone.
            return render_template("auth/reset_asked.html", email=form.email.data,
                                   minutes=current_app.config["PASSWORD_RESET_MINUTES"])
    elif request.method == "POST":
        status = 422
    return render_template("auth/forgot.html", form=form), status


def _choose_password(token: str, purpose: str):
    try:
        link = accounts.read_link(token, purpose, utcnow())
    except ServiceError as exc:
        db.session.rollback()
        return _private(render_template("auth/link_refused.html", message=exc.message, purpose=purpose),
                        exc.status)
    form = ChoosePasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            person = accounts.choose_password(token, purpose, form.password.data, form.password_again.data,
                                              utcnow())
        except ServiceError as exc:
            status = refuse_at_field(form, exc, fallback="password")
        else:
            db.session.commit()
            logout_user()
            session.clear()
            if purpose == accounts.INVITATION:
                login_user(person)
                flash(_("Welcome, %(name)s. Your password is set.", name=person.name), "success")
                return redirect(url_for("auth.home"))
            flash(_("Your password was changed and every session of your account was signed out. "
                    "Sign in with the new password."), "success")
            return redirect(url_for("auth.login"))
    elif request.method == "POST":
        status = 422
    return _private(render_template("auth/choose_password.html", form=form, link=link, purpose=purpose), status)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    return _choose_password(token, accounts.PASSWORD_RESET)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    return _choose_password(token, accounts.INVITATION)


@bp.post("/people/<int:user_id>/invitation")
@requires("users.write")
def resend_invitation(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    link = accounts.resend_invitation(current_actor(), user_id, utcnow(), link_policy())
    db.session.commit()
    flash(_("A new invitation was sent to %(email)s; the earlier link no longer works.", email=link.user.email),
          "success")
    return redirect(url_for("sites.show_user", user_id=user_id))


# --- one's own PIN on the tablet ---------------------------------------------------------------

@bp.route("/tablet/my-pin", methods=["GET", "POST"])
@requires("tablet.use")
def change_pin():
    if g.tablet is None or not session.get("tablet_mode"):
        abort(404)  # on the site's tablet only, after signing in there with the PIN
    g.site = g.tablet.site
    form = ChangePinForm()
    status = 200
    if form.validate_on_submit():
        try:
            person = accounts.change_own_pin(current_user.id, g.tablet.site_id, form.old_pin.data, form.new_pin.data,
                                             form.new_pin_again.data, client_address(), utcnow(), _pin_policy())
        except ServiceError as exc:
            status = refuse_at_field(form, exc, fallback="old_pin", aliases={"pin": "old_pin"})
            if isinstance(exc, accounts.PinLocked | accounts.WrongPin):
                form.old_pin.errors = [_pin_refusal(exc, g.tablet.site)]
                status = exc.status if exc.status != 422 else 401
            if isinstance(exc, accounts.PinLocked):  # locked now: nobody stays signed in as this person
                logout_user()
                session.pop("tablet_mode", None)
                flash(form.old_pin.errors[0], "error")
                return redirect(url_for("auth.tablet"))
        else:
            db.session.commit()
            # Every other session of this person ended; this tablet's goes on under the new session version.
            site_id = session.get("tablet_site_id")
            login_user(person)
            session["tablet_mode"], session["tablet_site_id"] = True, site_id
            flash(_("Your PIN is changed. Use the new one from now on."), "success")
            return redirect(url_for("auth.tablet_home"))
    elif request.method == "POST":
        status = 422
    return render_template("tablet/change_pin.html", form=form), status
