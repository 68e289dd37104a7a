"""Every form of the product, posted with what an attacker or a slipping finger sends: numbers and ids far beyond
the database's INTEGER, dates of year 1 and 9999, text with a NUL, a control character and 100,000 characters.
As the demo admin (laptop) and as Sari on an enrolled tablet, on every POST route with real ids of the demo:
never a server error. Every page with an id in its URL, given an id that cannot exist: 404."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from compliance.extensions import db as _db
from compliance.sites.models import Site, User
from tests.test_permissions import _ids

pytestmark = pytest.mark.slow

BAD_VALUES = {
    "huge number": "99999999999999999999999",
    "beyond INTEGER": "2147483648",
    "year 1": "0001-01-01",
    "year 9999": "9999-12-31T23:59",
    "NUL and control": "abc\x00def\x1b[31m",
    "100,000 characters": "Ä" * 100_000,
}
# Harvested from the page; when a POST route has no page, these names are tried.
COMMON_FIELDS = ("name", "site_id", "room_id", "user_id", "pin", "note", "reason", "value", "code", "email",
                 "performed_at", "started_at", "completed_on", "expires_on", "quantity", "passes", "day")


class _Fields(HTMLParser):
    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def handle_starttag(self, tag, attrs):
        if tag in ("input", "select", "textarea", "button"):
            name = dict(attrs).get("name")
            if name and name != "csrf_token":
                self.names.add(name)


def _field_names(client, url: str) -> set[str]:
    response = client.get(url)
    if response.status_code != 200 or "html" not in response.content_type:
        return set(COMMON_FIELDS)
    parser = _Fields()
    parser.feed(response.get_data(as_text=True))
    return parser.names or set(COMMON_FIELDS)


def _url(rule, ids: dict) -> str:
    url = rule.rule
    for name in re.findall(r"<(?:\w+:)?(\w+)>", url):
        url = re.sub(rf"<(?:\w+:)?{name}>", str(ids.get(name, 999999)), url)
    return url


def _post_routes(app):
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and not rule.rule.startswith("/api/") and rule.endpoint not in (
                "auth.logout", "auth.tablet_switch", "static"):
            yield rule


def _walk_forms(app, client, ids) -> list[str]:
    server_errors = []
    for rule in _post_routes(app):
        url = _url(rule, ids)
        names = _field_names(client, url)
        for label, bad in BAD_VALUES.items():
            response = client.form_post(url, {name: bad for name in names})
            if response.status_code >= 500:
                server_errors.append(f"POST {url} ({label}): {response.status_code}")
            _db.session.rollback()
    return server_errors


@pytest.fixture
def demo(runner, db):
    assert runner.invoke(args=["demo"]).exit_code == 0
    site = _db.session.scalar(select(Site).where(Site.name == "Jakarta Kemang"))
    return site, _ids(site)


def test_no_form_answers_a_server_error_to_out_of_range_input(app, client, demo, enrol_tablet):
    site, ids = demo
    enrol_tablet(site)  # first Sari on the tablet (the admin's walk deactivates the site and people)
    sari = _db.session.scalar(select(User).where(User.email == "sari@demo.clinic"))
    assert client.form_post(f"/tablet/pin/{sari.id}", {"pin": "1234"}).status_code == 302
    errors = _walk_forms(app, client, ids)
    client.form_post("/logout")
    admin = _db.session.scalar(select(User).where(User.email == "admin@demo.clinic"))
    with client.session_transaction() as session:
        session["_user_id"] = admin.get_id()
        session["_fresh"] = True
    errors += _walk_forms(app, client, ids)
    assert errors == [], "\n".join(errors)


def test_a_page_with_an_id_that_cannot_exist_is_not_found(app, client, demo):
    _site, ids = demo
    admin = _db.session.scalar(select(User).where(User.email == "admin@demo.clinic"))
    with client.session_transaction() as session:
        session["_user_id"] = admin.get_id()
    wrong = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or "<int:" not in rule.rule:
            continue
        for impossible in ("2147483648", "99999999999999999999999"):
            url = re.sub(r"<int:\w+>", impossible, rule.rule)
            for name in re.findall(r"<(?:\w+:)?(\w+)>", url):
                url = re.sub(rf"<(?:\w+:)?{name}>", str(ids.get(name, "x")), url)
            status = client.get(url).status_code
            if status != 404:
                wrong.append(f"GET {url}: {status}")
    assert wrong == [], "\n".join(wrong)
