"""The tablet offline: its service worker, the pages it shows without a connection, and a fresh CSRF token for
sending the answers kept on the tablet (the queue itself lives in the browser: compliance/static/js/app.js).

What works offline: the Now screen and the checklists opened on the tablet (their last copy), and answering
checklist items, which are kept on the tablet and sent, once each, when the connection is back. What does not:
the point-of-use gate, recording a cycle, releasing a load — their screens say there is no connection, never a
cached answer, and nothing of theirs is kept to send later.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from flask_wtf.csrf import generate_csrf

from .web import requires

bp = Blueprint("offline", __name__)

# The tablet's static parts, cached when the service worker is installed (and replaced with each release).
PRECACHE = ("css/app.css", "js/app.js", "vendor/htmx-2.0.11.min.js", "favicon.svg")


@lru_cache(maxsize=4)
def _release(static_folder: str) -> str:
    """A version for the caches: changes whenever the service worker or a cached static file changes."""
    digest = hashlib.sha256()
    for name in ("js/sw.js", *PRECACHE):
        digest.update((Path(static_folder) / name).read_bytes())
    return digest.hexdigest()[:12]


@bp.get("/sw.js")
def service_worker():
    """The service worker, at the root so that its scope covers the tablet's pages. Never cached by the browser:
    a new release is picked up at the next load."""
    folder = current_app.static_folder
    script = (Path(folder) / "js/sw.js").read_text(encoding="utf-8")
    precache = [url_for("static", filename=name) for name in PRECACHE] + [
        url_for("offline.offline_page"), url_for("offline.offline_page", what="gate")]
    script = script.replace("__RELEASE__", _release(folder)).replace(
        "__PRECACHE__", ",".join(f'"{u}"' for u in precache))
    response = Response(script, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/tablet/offline")
def offline_page():
    """What the tablet shows for a page it has no copy of, without a connection (cached when installed)."""
    what = "gate" if request.args.get("what") == "gate" else "page"
    return render_template("tablet/offline.html", what=what)


@bp.get("/tablet/token")
@requires("checklists.answer")
def fresh_token():
    """A CSRF token for sending the answers kept on the tablet (the copy of a page may hold an old one)."""
    response = jsonify(csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response
