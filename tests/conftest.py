"""Fixtures: an app on SQLite (default) or on the PostgreSQL named by TEST_DATABASE_URL; factories; sign-in helpers."""
from __future__ import annotations

import contextvars
import os
import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import pytest
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from compliance import create_app
from compliance.extensions import db as _db
from compliance.sites.models import Organisation, Room, Site, TrainingRecord, User
from compliance.timeutil import utcnow

PASSWORD = "correct-horse-battery"
PIN = "2468"

# Sites and sterilisers in tests were added long before the fixed moments the tests use.
LONG_AGO = datetime(2025, 1, 1, tzinfo=timezone.utc)


@lru_cache(maxsize=None)
def hashed(secret: str) -> str:
    """Hashing costs ~0.1 s (scrypt); factories reuse one hash per secret."""
    return generate_password_hash(secret)


class Client(FlaskClient):
    """The test client: each request runs in an app context of its own, as in production.

    Without this, requests would share the test's app context, so `g` (cached CSRF token, actor)
    and the SQLAlchemy session would leak from one request to the next and hide bugs. The test's
    own session is committed first: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE).
    """

    def open(self, *args, **kwargs):
        _db.session.commit()
        with self.application.app_context():
            return super().open(*args, **kwargs)

    def download(self, url: str, **kwargs):
        """GET a download as a WSGI server serves it, and read the whole body.

        `open` keeps the request's app context until the response is returned; a server (gunicorn) reads
        the body of a streamed response only after Flask has torn the request's contexts down (its
        database session closed). Here the request runs in an empty context, so nothing of the test's
        app context is reused, and the body is read to the end after the contexts are gone.
        """
        _db.session.commit()
        response = contextvars.Context().run(FlaskClient.open, self, url, method="GET", **kwargs)
        try:
            response.get_data()
        finally:
            response.close()
        return response

    def csrf_token(self) -> str:
        page = self.get("/login").get_data(as_text=True)
        return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def form_post(self, url: str, data: dict | None = None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self.post(url, data=data, **kw)

    def api(self, method: str, url: str, json=None, key: str | None = None, csrf: bool = True):
        headers = {}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif csrf and method.upper() not in ("GET", "HEAD"):
            headers["X-CSRFToken"] = self.csrf_token()
        return self.open(url, method=method, json=json, headers=headers)


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    application = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": _database_url(tmp_path_factory),
            "BASE_URL": "http://localhost",
            "SERVER_NAME": None,
            "INSTANCE_PATH": str(instance),
        },
        environ={},
    )
    application.test_client_class = Client
    with application.app_context():
        _db.drop_all()
        _db.create_all()
    yield application
    with application.app_context():
        _db.drop_all()
        _db.engine.dispose()


@pytest.fixture
def db(app):
    """A clean database for each test (rows deleted, schema kept), inside an app context."""
    with app.app_context():
        yield _db
        _db.session.rollback()
        _db.session.remove()
        with _db.engine.begin() as conn:
            for table in reversed(_db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def client(app, db) -> Client:
    return app.test_client()


@pytest.fixture
def runner(app, db):
    return app.test_cli_runner()


@pytest.fixture
def make_org(db):
    def make(name: str = "Org") -> Organisation:
        org = Organisation(name=f"{name} {Organisation.query.count() + 1}")
        db.session.add(org)
        db.session.flush()
        return org

    return make


@pytest.fixture
def make_site(db, make_org):
    def make(org: Organisation | None = None, name: str | None = None, timezone: str = "Asia/Jakarta",
             language: str = "en", rooms: tuple[str, ...] = ("Room 1",)) -> Site:
        org = org or make_org()
        site = Site(organisation=org, name=name or f"Site {Site.query.count() + 1}", timezone=timezone,
                    language=language, created_at=LONG_AGO)
        db.session.add(site)
        for room in rooms:
            db.session.add(Room(site=site, name=room))
        db.session.commit()
        return site

    return make


@pytest.fixture
def make_user(db):
    def make(role: str = "staff", sites: list[Site] | None = None, org: Organisation | None = None,
             name: str | None = None, email: str | None = None, pin: str | None = PIN,
             password: str | None = PASSWORD, language: str | None = None) -> User:
        sites = sites or []
        org = org or (sites[0].organisation if sites else None)
        n = User.query.count() + 1
        user = User(organisation=org, name=name or f"{role.title()} {n}", email=email or f"{role}{n}@example.test",
                    role=role, language=language, pin_hash=hashed(pin) if pin else None,
                    password_hash=hashed(password) if password and role != "staff" else None)
        user.sites = list(sites)
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_training(db):
    def make(user: User, course: str = "infection_control", completed_on: date | None = None,
             expires_on: date | None = None) -> TrainingRecord:
        completed_on = completed_on or (utcnow().date() - timedelta(days=30))
        record = TrainingRecord(user=user, course=course, completed_on=completed_on,
                                expires_on=expires_on or completed_on + timedelta(days=365))
        db.session.add(record)
        db.session.commit()
        return record

    return make


@pytest.fixture
def site(make_site):
    return make_site(name="Jakarta", timezone="Asia/Jakarta", language="en")


@pytest.fixture
def other_site(make_site):
    """A site of another organisation."""
    return make_site(name="Elsewhere", timezone="Europe/London", language="en")


@pytest.fixture
def manager(make_user, site):
    return make_user("manager", [site], name="Mira Manager", email="manager@example.test")


@pytest.fixture
def admin(make_user, site):
    return make_user("admin", [site], name="Ada Admin", email="admin@example.test")


@pytest.fixture
def auditor(make_user, site):
    return make_user("auditor", [site], name="Audra Auditor", email="auditor@example.test")


@pytest.fixture
def nurse(make_user, site):
    return make_user("staff", [site], name="Nur Nurse", email="nurse@example.test", pin=PIN)


@pytest.fixture
def outsider(make_user, other_site):
    return make_user("manager", [other_site], name="Otto Outsider", email="outsider@example.test")


@pytest.fixture
def login_as(client):
    """Sign a person in on the test client (as a password sign-in would)."""

    def login(user: User) -> Client:
        with client.session_transaction() as session:
            session["_user_id"] = str(user.id)
            session["_fresh"] = True
        return client

    return login


@pytest.fixture
def enrol_tablet(client, app):
    """Make the test client a site's shared tablet through a real single-use set-up link."""
    from compliance.auth.services import create_tablet_link, free_tablet_name
    from compliance.timeutil import utcnow

    def enrol(site: Site, name: str = "Tablet") -> Client:
        now = utcnow()
        _link, token = create_tablet_link(None, site.id, free_tablet_name(site.id, name, now), now)
        _db.session.commit()
        response = client.form_post(f"/tablet/enrol/{token}")
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return enrol
