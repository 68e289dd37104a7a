"""The application factory."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from .config import check_overrides, default_database_url, ensure_audit_key, ensure_secret_key, load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (checked), then `config` on top (tests)."""
    settings = load_config(environ)
    instance_path = (config or {}).get("INSTANCE_PATH") or settings.get("INSTANCE_PATH") or str(ROOT / "instance")
    app = Flask(__name__, template_folder=str(ROOT / "templates"), instance_path=instance_path)
    settings.update(config or {})
    check_overrides(settings)
    ensure_secret_key(settings, app.instance_path)
    default_database_url(settings, app.instance_path)
    ensure_audit_key(settings, app.instance_path)
    app.config.update(_defaults(settings))
    app.config.update(settings)

    if app.config["PROXY_FIX"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    from . import db_setup, i18n, security, web
    from .checklists import obligations as _checklist_subjects  # noqa: F401  (each registers its subject types
    from .devices import obligations as _device_subjects  # noqa: F401          with the schedule engine)
    from .sites import obligations as _site_subjects  # noqa: F401
    from .sterilisation import obligations as _pack_subjects  # noqa: F401
    from .treatments import obligations as _sharps_subjects  # noqa: F401
    from .extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    db_setup.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    web.init_app(app)
    from .sites import setup_views

    setup_views.init_app(app)  # while no organisation exists, pages lead to /setup

    from . import boundary

    boundary.init_app(app)  # first of the before-request functions, and the `int` converter for every route
    _register_models()
    _register_blueprints(app)

    from .cli import register_cli

    register_cli(app)
    setup_views.announce_at_start(app)
    return app


def _defaults(settings: Mapping[str, Any]) -> dict[str, Any]:
    https = str(settings.get("BASE_URL", "")).startswith("https://")
    return {
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "WTF_CSRF_TIME_LIMIT": None,  # a tablet page may stay open all day; the token is bound to the session
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,  # a larger body answers 413 (JSON under /api/)
        "MAX_URL_LENGTH": 4096,  # a longer URL (path and query) answers 414 (JSON under /api/)
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "compliance" / "translations"),
        "TESTING": False,
    }


def _register_models() -> None:
    # Import every domain's models so that metadata (and Alembic) sees all tables.
    from .audit import models as _audit  # noqa: F401
    from .audit import services as _audit_services  # noqa: F401  (its flush listener records every change)
    from .auth import models as _auth  # noqa: F401
    from .checklists import models as _checklists  # noqa: F401
    from .devices import models as _devices  # noqa: F401
    from .guidelines import models as _guidelines  # noqa: F401
    from .schedule import models as _schedule  # noqa: F401
    from .sites import models as _sites  # noqa: F401
    from .sterilisation import models as _sterilisation  # noqa: F401
    from .stock import models as _stock  # noqa: F401
    from .treatments import models as _treatments  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from . import web
    from .api import init_api
    from .audit.views import bp as audit_bp
    from .auth.account_views import bp as accounts_bp
    from .auth.views import bp as auth_bp
    from .checklists.manage_views import bp as checklists_admin_bp
    from .checklists.views import bp as checklists_bp
    from .devices.views import bp as devices_bp
    from .guidelines.views import bp as guidelines_bp
    from .schedule.views import bp as schedule_bp
    from .reports.dashboard import bp as dashboard_bp
    from .sterilisation.views import bp as sterilisation_bp
    from .stock.views import bp as stock_bp
    from .treatments.views import bp as treatments_bp
    from .health import bp as health_bp
    from .offline import bp as offline_bp
    from .reports.views import bp as reports_bp
    from .sites.setup_views import bp as setup_bp
    from .sites.views import bp as sites_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(offline_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(sites_bp)
    app.register_blueprint(setup_bp)
    app.register_blueprint(devices_bp)
    app.register_blueprint(sterilisation_bp)
    app.register_blueprint(stock_bp)
    app.register_blueprint(treatments_bp)
    app.register_blueprint(checklists_admin_bp)
    app.register_blueprint(checklists_bp)
    app.register_blueprint(schedule_bp)
    app.register_blueprint(guidelines_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(dashboard_bp)
    init_api(app)
    web.register_error_handlers(app)
