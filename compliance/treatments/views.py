"""Treatment screens: the tablet flow with the point-of-use gate, and the manager's lists, trace and look-back."""
from flask import Blueprint, render_template

from ..web import requires

bp = Blueprint("treatments", __name__)


@bp.get("/treatments")
@requires("treatments.read")
def list_treatments():
    return render_template("errors/error.html", code=200, message="", errors={})


@bp.get("/trace")
@requires("trace.read")
def trace():
    return render_template("errors/error.html", code=200, message="", errors={})
