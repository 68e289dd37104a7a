"""Role × page: every page names the action it needs, and each role gets exactly what PERMISSIONS allows."""
import pytest

from datetime import date

from compliance.auth.models import ApiKey, TabletDevice
from compliance.auth.permissions import role_can
from compliance.sites.models import TrainingRecord

PUBLIC = {"static", "health.healthz", "auth.home", "auth.login", "auth.logout", "auth.tablet", "auth.tablet_pin",
          "auth.enrol_from_link"}
ROLES = ("staff", "manager", "admin", "auditor")


def _page_rules(app):
    return [r for r in app.url_map.iter_rules()
            if not r.rule.startswith("/api/") and r.endpoint not in PUBLIC]


def test_every_page_names_its_required_action(app):
    missing = [r.endpoint for r in _page_rules(app) if not getattr(app.view_functions[r.endpoint],
                                                                   "required_action", None)]
    assert missing == []


def _cases():
    from compliance import create_app

    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "INSTANCE_PATH": "/tmp/perm"},
                     environ={})
    for rule in _page_rules(app):
        method = "GET" if "GET" in rule.methods else "POST"
        for role in ROLES:
            yield pytest.param(rule.rule, method, rule.endpoint, role, id=f"{role}-{method}-{rule.rule}")


@pytest.mark.parametrize("rule,method,endpoint,role", list(_cases()))
def test_role_gets_what_the_permission_table_allows(app, client, login_as, make_user, site, nurse, db,
                                                    rule, method, endpoint, role):
    user = nurse if role == "staff" else make_user(role, [site])
    record = TrainingRecord(user=nurse, course="infection_control", completed_on=date(2026, 1, 1))
    device = TabletDevice(site_id=site.id, name="T", token_hash="0" * 64)
    key = ApiKey(site_id=site.id, name="logger", prefix="abcd", key_hash="1" * 64, created_by_id=nurse.id)
    db.session.add_all([record, device, key])
    db.session.commit()
    ids = {"site_id": site.id, "room_id": site.rooms[0].id, "user_id": nurse.id, "record_id": record.id,
           "device_id": device.id, "key_id": key.id}
    url = rule
    for name, value in ids.items():
        url = url.replace(f"<int:{name}>", str(value))
    assert "<" not in url, f"no id for {rule}"
    login_as(user)
    if method == "GET":
        response = client.get(url)
    else:
        response = client.form_post(url, {})
    action = app.view_functions[endpoint].required_action
    if role_can(role, action):
        assert response.status_code not in (401, 403), (role, url, response.status_code)
        assert "/login" not in response.headers.get("Location", "")
    else:
        assert response.status_code == 403, (role, url, response.status_code)
