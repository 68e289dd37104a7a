"""The auditor reads every report and the audit log of its sites and changes nothing: every write route of
the product (pages and API, every method that writes) is tried as the demo auditor with real ids of its
sites, a valid CSRF token and an empty body; each must answer 403, and no row of any table may change."""
import re

from sqlalchemy import func, select

from compliance.extensions import db as _db
from compliance.sites.models import Site, User
from tests.test_permissions import _ids

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Routes anyone may post to: signing in and out are not writes of records (they are audited sign-in events);
# the first-run page only while no organisation exists (here it is not found); asking for a password reset and
# choosing a password through one's own emailed link (public, tested in tests/auth/test_accounts.py).
NOT_WRITES = {"auth.login", "auth.logout", "auth.tablet", "auth.tablet_pin", "auth.enrol_from_link",
              "setup.setup_page", "accounts.forgot_password", "accounts.reset_password", "accounts.accept_invitation"}
# Rows that reading itself appends: sign-in events and the audit entries of them.
APPEND_ON_READ = {"auth_events", "audit_entries", "audit_heads"}


def _counts():
    return {t.name: _db.session.scalar(select(func.count()).select_from(t)) for t in _db.metadata.sorted_tables
            if t.name not in APPEND_ON_READ}


def _write_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_WRITES or rule.endpoint == "static":
            continue
        for method in sorted(set(rule.methods) & set(WRITE_METHODS)):
            yield rule, method


def test_the_auditor_cannot_reach_a_single_write_route(app, client, runner, db):
    assert runner.invoke(args=["demo"]).exit_code == 0
    site = _db.session.scalar(select(Site).where(Site.name == "Jakarta Kemang"))
    ids = _ids(site)
    auditor = _db.session.scalar(select(User).where(User.email == "auditor@demo.clinic"))
    assert site.id in {s.id for s in auditor.sites}
    with client.session_transaction() as session:
        session["_user_id"] = str(auditor.id)
        session["_fresh"] = True
    token = client.csrf_token()
    before = _counts()
    routes, reached = list(_write_routes(app)), []
    assert len(routes) > 60  # the walk covers the whole product, not a sample
    for rule, method in routes:
        url = rule.rule
        for name in re.findall(r"<(?:\w+:)?(\w+)>", url):
            url = re.sub(rf"<(?:\w+:)?{name}>", str(ids.get(name, 999999)), url)
        if url.startswith("/api/"):
            response = client.open(url, method=method, json={}, headers={"X-CSRFToken": token})
        else:
            response = client.open(url, method=method, data={"csrf_token": token})
        if response.status_code != 403:
            reached.append(f"{method} {url} ({rule.endpoint}): {response.status_code}")
    assert reached == [], "\n".join(reached)
    assert _counts() == before
