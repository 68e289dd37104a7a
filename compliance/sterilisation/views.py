"""Decontamination-room tablet screens and the manager's steriliser logbook and recalls."""
from flask import Blueprint, render_template

from ..web import requires

bp = Blueprint("sterilisation", __name__)


@bp.get("/logbook")
@requires("sterilisation.read")
def logbook():
    return render_template("sites/dashboard.html")


@bp.get("/recalls")
@requires("sterilisation.read")
def list_recalls():
    return render_template("sites/dashboard.html")


@bp.get("/decontamination")
@requires("reprocess.record")
def decon_home():
    return render_template("sites/dashboard.html")
