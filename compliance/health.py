"""GET /healthz: is the process up, and can it reach its database. GET /favicon.ico: the product's icon, for the
browsers and tools that ask for it there whatever the page links (the pages link /static/favicon.svg)."""
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


@bp.get("/favicon.ico")
def favicon():
    """The same SVG the pages link (served as image/svg+xml: browsers read it whatever the path's ending). Its
    bytes, not a file stream: a client that never reads the body to its end leaves no file open."""
    icon = Path(current_app.static_folder or "") / "favicon.svg"
    response = current_app.response_class(icon.read_bytes(), mimetype="image/svg+xml")
    response.add_etag()
    response.make_conditional(request)
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
