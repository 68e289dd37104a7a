"""Manager screens for device kinds, devices and sterilisers (built out by the devices screens work)."""
from flask import Blueprint, render_template

from ..web import requires

bp = Blueprint("devices", __name__)


@bp.get("/devices")
@requires("devices.read")
def list_devices():
    return render_template("sites/dashboard.html")


@bp.get("/sterilisers")
@requires("sterilisation.read")
def list_sterilisers():
    return render_template("sites/dashboard.html")
