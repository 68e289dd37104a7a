"""Manager and admin screens for sites, rooms, people, training and API keys."""
from __future__ import annotations

from flask import Blueprint, render_template

from ..web import current_actor, requires

bp = Blueprint("sites", __name__)


@bp.get("/overview")
@requires("sites.read")
def dashboard():
    return render_template("sites/dashboard.html", actor=current_actor())


@bp.get("/sites")
@requires("sites.read")
def list_sites():
    return render_template("sites/dashboard.html")


@bp.get("/rooms")
@requires("rooms.read")
def list_rooms():
    return render_template("sites/dashboard.html")


@bp.get("/people")
@requires("users.read")
def list_users():
    return render_template("sites/dashboard.html")


@bp.get("/training")
@requires("training.read")
def list_training():
    return render_template("sites/dashboard.html")


@bp.get("/api-keys")
@requires("apikeys.manage")
def list_api_keys():
    return render_template("sites/dashboard.html")
