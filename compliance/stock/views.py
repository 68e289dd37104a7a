"""Screens for single-use stock: item types, lots, unit labels (built out by the stock screens work)."""
from flask import Blueprint, render_template

from ..web import requires

bp = Blueprint("stock", __name__)


@bp.get("/lots")
@requires("devices.read")
def list_lots():
    return render_template("errors/error.html", code=200, message="", errors={})
