"""The JSON API under /api/v1, documented by an OpenAPI 3 document at /api/v1/openapi.json."""
from __future__ import annotations

from flask import Flask

from ..extensions import api, csrf


def init_api(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Clinic compliance API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api.init_app(app)
    from . import auth  # noqa: F401  (request hooks)
    from .sites import blp as sites_blp

    # CSRF is checked by the API's own auth hook: required for cookie sessions, not for API keys.
    csrf.exempt(sites_blp)
    api.register_blueprint(sites_blp)
