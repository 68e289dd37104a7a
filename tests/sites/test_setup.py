"""First run: the set-up service, `flask setup`, and the /setup page guarded by the code from the log."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from compliance.checklists.models import ChecklistTemplate
from compliance.errors import Conflict, Invalid
from compliance.extensions import db as _db
from compliance.guidelines.models import SiteRuleOverride
from compliance.schedule.models import Obligation
from compliance.sites import setup
from compliance.sites.models import Organisation, Site, User

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
GOOD = {
    "organisation": "Klinik Sehat", "admin_name": "Rina Admin", "admin_email": "Rina@Klinik.test",
    "admin_password": "a-long-enough-password", "site_name": "Kemang", "timezone": "Asia/Jakarta",
    "language": "id", "closed_days": "", "opening_hour": "", "closing_hour": "",
}


def _count(model) -> int:
    return _db.session.scalar(select(func.count()).select_from(model))


def _nothing_stored() -> bool:
    return all(_count(m) == 0 for m in (Organisation, Site, User, ChecklistTemplate, Obligation, SiteRuleOverride))


# --- the service ---------------------------------------------------------------------------------

def test_set_up_creates_the_organisation_admin_site_checklists_and_obligations(db):
    result = setup.set_up(GOOD, NOW)
    db.session.commit()
    assert result.organisation.name == "Klinik Sehat"
    admin = result.admin
    assert (admin.role, admin.email, admin.name, admin.language) == ("admin", "rina@klinik.test", "Rina Admin", None)
    assert check_password_hash(admin.password_hash, "a-long-enough-password")
    assert admin.pin_hash is None and admin.sites == [result.site]
    site = result.site
    assert (site.name, site.timezone, site.language, site.closed_weekdays) == ("Kemang", "Asia/Jakarta", "id", "")
    assert result.checklists == _count(ChecklistTemplate) > 0
    kinds = set(db.session.scalars(select(Obligation.kind).where(Obligation.site_id == site.id)))
    assert result.obligations == len(kinds) and {"opening-checklist", "closing-checklist"} <= kinds
    assert _count(SiteRuleOverride) == 0  # the default hours: no number of the site's own


@pytest.mark.parametrize("given, language, zone, expect", [
    ("", "id", "Asia/Jakarta", "id-ID"), (None, "en", "Europe/London", "en-GB"),
    ("", "en", "America/New_York", "en-US"), ("en-AU", "en", "Europe/London", "en-AU"),
])
def test_the_sites_locale_is_chosen_or_follows_its_language_and_zone(db, given, language, zone, expect):
    result = setup.set_up({**GOOD, "locale": given, "language": language, "timezone": zone}, NOW)
    assert result.site.locale == expect


def test_closed_days_and_hours_go_through_the_site_numbers(db):
    friday_evening = datetime(2026, 3, 6, 13, 0, tzinfo=timezone.utc)  # 20:00 in Jakarta
    result = setup.set_up({**GOOD, "closed_days": ["sat", "sun"], "opening_hour": "7", "closing_hour": 21},
                          friday_evening)
    db.session.commit()
    assert result.site.closed_weekdays == "sat,sun"
    numbers = {(r.key, r.value) for r in db.session.scalars(select(SiteRuleOverride))}
    assert numbers == {("opening_hour", 7), ("closing_hour", 21)}
    opening = db.session.scalar(select(Obligation).where(Obligation.kind == "opening-checklist"))
    local = opening.next_due_at.astimezone(ZoneInfo("Asia/Jakarta"))
    assert (local.date().isoformat(), local.hour) == ("2026-03-09", 7)  # Monday: closed on Saturday and Sunday


def test_early_closing_hours_are_set_in_an_order_the_pack_accepts(db):
    setup.set_up({**GOOD, "opening_hour": "5", "closing_hour": "8"}, NOW)
    assert {(r.key, r.value) for r in db.session.scalars(select(SiteRuleOverride))} == {
        ("opening_hour", 5), ("closing_hour", 8)}


@pytest.mark.parametrize("field, value", [
    ("organisation", ""), ("organisation", "x" * 201), ("admin_name", "  "), ("admin_email", "not-an-email"),
    ("admin_password", "short"), ("site_name", ""), ("timezone", "Mars/Olympus_Mons"), ("timezone", ""),
    ("language", "fr"), ("closed_days", "sun,funday"), ("closed_days", "mon,tue,wed,thu,fri,sat,sun"),
    ("opening_hour", "24"), ("closing_hour", "eight"), ("closing_hour", "9"), ("address", "x" * 501),
    ("locale", "fr-FR"),
])
def test_each_wrong_input_is_refused_naming_its_field_and_nothing_is_stored(db, field, value):
    with pytest.raises(Invalid) as refused:
        setup.set_up({**GOOD, field: value}, NOW)
    db.session.rollback()  # what the command and the page do on a refusal
    assert refused.value.field == field
    assert refused.value.message
    assert _nothing_stored()


def test_set_up_is_refused_once_an_organisation_exists(db, make_org):
    make_org("Already here")
    db.session.commit()
    with pytest.raises(Conflict, match="already set up"):
        setup.set_up(GOOD, NOW)
    db.session.rollback()
    assert _count(Organisation) == 1 and _count(User) == 0


def test_the_set_up_code_is_derived_from_the_secret_key_and_readable():
    code = setup.setup_code("one secret")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert not set(code) & set("01OIL")
    assert setup.setup_code("one secret") == code != setup.setup_code("another secret")


def test_wrong_codes_lock_the_set_up_for_a_while(db):
    code, at = setup.setup_code("s"), NOW
    assert setup.check_setup_code(code.lower().replace("-", " "), code, "10.0.0.9", at) == 5  # typed loosely
    for left in (4, 3, 2, 1):
        with pytest.raises(setup.WrongSetupCode) as wrong:
            setup.check_setup_code("AAAA-BBBB-CCCC", code, "10.0.0.9", at)
        assert wrong.value.attempts_left == left
    with pytest.raises(setup.SetupLocked) as locked:
        setup.check_setup_code("AAAA-BBBB-CCCC", code, "10.0.0.8", at + timedelta(minutes=1))
    assert locked.value.until == at + timedelta(minutes=16)
    with pytest.raises(setup.SetupLocked):  # even the right code, from anywhere, until the lock ends
        setup.check_setup_code(code, code, "10.0.0.7", at + timedelta(minutes=15))
    assert setup.check_setup_code(code, code, "10.0.0.9", at + timedelta(minutes=16)) == 5
    with pytest.raises(setup.WrongSetupCode) as wrong:  # the count starts again after the lock
        setup.check_setup_code("x", code, "10.0.0.9", at + timedelta(minutes=17))
    assert wrong.value.attempts_left == 4


# --- the command ---------------------------------------------------------------------------------

def test_setup_command_asks_for_each_value_and_asks_again_when_one_is_wrong(runner, db):
    answers = ["Klinik Sehat", "Rina Admin", "no-at-sign", "rina@klinik.test", "short", "a-long-enough-password",
               "a-long-enough-password", "Kemang", "Jakarta", "Asia/Jakarta", "id", "fr-FR", "", "funday",
               "sat, sunday", "", "8", "19"]
    result = runner.invoke(args=["setup"], input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "Email is not valid" in result.output
    assert "password must be 10 to 200 characters long" in result.output
    assert "Time zone must be an IANA time zone" in result.output
    assert "Error: the opening hour must be before the closing hour" in result.output
    assert "Dates and numbers must be one of" in result.output
    assert "Set up Klinik Sehat: site Kemang (Asia/Jakarta, id, id-ID)" in result.output  # the default: Enter
    assert "a-long-enough-password" not in result.output  # the prompt hides it
    site = db.session.scalar(select(Site))
    assert "unknown weekday" in result.output
    assert site.closed_weekdays == "sat,sun"
    assert {(r.key, r.value) for r in db.session.scalars(select(SiteRuleOverride))} == {("closing_hour", 19)}
    admin = db.session.scalar(select(User))
    assert admin.role == "admin" and check_password_hash(admin.password_hash, "a-long-enough-password")


def test_setup_command_with_options_and_the_password_from_the_environment(runner, db):
    result = runner.invoke(args=[
        "setup", "--no-input", "--organisation", "Studio Ink", "--admin-name", "Sam Owner",
        "--admin-email", "sam@studio.test", "--site-name", "Shoreditch", "--timezone", "Europe/London",
        "--language", "en", "--closed-days", "sun", "--opening-hour", "10", "--closing-hour", "19"],
        env={"SETUP_ADMIN_PASSWORD": "from-the-environment"})
    assert result.exit_code == 0, result.output
    assert "Sign in at http://localhost/login as sam@studio.test" in result.output
    admin = db.session.scalar(select(User))
    assert check_password_hash(admin.password_hash, "from-the-environment")
    site = db.session.scalar(select(Site))
    assert (site.timezone, site.closed_weekdays, site.locale) == ("Europe/London", "sun", "en-GB")  # derived
    assert {(r.key, r.value) for r in db.session.scalars(select(SiteRuleOverride))} == {
        ("opening_hour", 10), ("closing_hour", 19)}
    assert _count(ChecklistTemplate) > 0 and _count(Obligation) > 0


def test_setup_command_refuses_a_wrong_option_naming_it_and_stores_nothing(runner, db):
    result = runner.invoke(args=[
        "setup", "--no-input", "--organisation", "Studio Ink", "--admin-name", "Sam Owner",
        "--admin-email", "sam@studio.test", "--admin-password", "a-long-enough-password",
        "--site-name", "Shoreditch", "--timezone", "Europe/Londres"])
    assert result.exit_code == 1
    assert "--timezone: Time zone must be an IANA time zone such as Asia/Jakarta (nothing was stored)" in result.output
    assert _nothing_stored()
    missing = runner.invoke(args=["setup", "--no-input", "--organisation", "Studio Ink"])
    assert missing.exit_code != 0 and "--admin-name is required with --no-input" in missing.output


def test_setup_command_refuses_when_an_organisation_exists(runner, db, make_org):
    make_org("Already here")
    db.session.commit()
    result = runner.invoke(args=["setup"], input="anything\n")
    assert result.exit_code == 1
    assert "already set up: an organisation exists" in result.output
    assert _count(Organisation) == 1


def test_demo_still_makes_its_own_organisation_and_then_setup_is_refused(runner, db):
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert runner.invoke(args=["setup", "--no-input"]).exit_code == 1


# --- the page ------------------------------------------------------------------------------------

@pytest.fixture
def fresh(app, db):
    """An empty database, and the app not yet told an organisation exists (other tests may have told it)."""
    state = app.extensions["first_run"]
    before = (state.is_set_up, state.announced)
    state.is_set_up, state.announced = False, False
    yield app
    state.is_set_up, state.announced = before


def _token(client, url: str = "/setup") -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def _code(app) -> str:
    return setup.setup_code(app.config["SECRET_KEY"])


DETAILS = {"organisation": "Klinik Sehat", "admin_name": "Rina Admin", "admin_email": "rina@klinik.test",
           "admin_password": "a-long-enough-password", "admin_password_repeat": "a-long-enough-password",
           "site_name": "Kemang", "timezone": "Asia/Jakarta", "language": "id", "closed_days": ["sun"],
           "opening_hour": "9", "closing_hour": "20"}


def test_without_an_organisation_every_page_leads_to_set_up(fresh, client, caplog):
    caplog.set_level(logging.WARNING)
    for path in ("/", "/login", "/overview", "/tablet", "/sites"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/setup"), path
    assert client.get("/healthz").status_code == 200
    static = client.get("/static/css/app.css")
    assert static.status_code == 200
    static.close()
    api = client.get("/api/v1/sites")
    assert api.status_code == 503 and "not set up yet" in api.get_json()["message"]
    logged = [r.getMessage() for r in caplog.records if "set-up code" in r.getMessage()]
    assert len(logged) == 1 and _code(fresh) in logged[0]  # once per process, with the code
    page = client.get("/setup")
    assert page.status_code == 200 and 'name="code"' in page.get_data(as_text=True)


def test_a_wrong_code_is_refused_and_a_few_lock_the_page(fresh, client):
    token = _token(client)
    wrong = client.post("/setup", data={"csrf_token": token, "code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 401
    assert "Wrong set-up code" in wrong.get_data(as_text=True) and ": 4." in wrong.get_data(as_text=True)
    for _ in range(4):
        last = client.post("/setup", data={"csrf_token": token, "code": "AAAA-BBBB-CCCC"})
    assert last.status_code == 429 and "locked for 15 minutes" in last.get_data(as_text=True)
    right = client.post("/setup", data={"csrf_token": token, "code": _code(fresh)})
    assert right.status_code == 429  # the right code too, until the lock ends
    assert 'name="organisation"' not in right.get_data(as_text=True)
    details = client.post("/setup", data={"csrf_token": token, **DETAILS})  # no code given: no set-up
    assert _count(Organisation) == 0 and 'name="organisation"' not in details.get_data(as_text=True)


def test_the_right_code_then_the_details_set_up_and_sign_the_admin_in(fresh, client):
    token = _token(client)
    step = client.post("/setup", data={"csrf_token": token, "code": _code(fresh).lower()})
    assert step.status_code == 302 and step.headers["Location"].endswith("/setup")
    form = client.get("/setup").get_data(as_text=True)
    assert 'name="organisation"' in form and 'value="Asia/Jakarta"' in form
    differ = client.post("/setup", data={"csrf_token": token, **DETAILS, "admin_password_repeat": "something-else"})
    assert differ.status_code == 422 and "The two passwords differ." in differ.get_data(as_text=True)
    bad = client.post("/setup", data={"csrf_token": token, **DETAILS, "timezone": ""})
    assert bad.status_code == 422 and "Time zone is required" in bad.get_data(as_text=True)
    assert _count(Organisation) == 0
    done = client.post("/setup", data={"csrf_token": token, **DETAILS})
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert client.get("/").headers["Location"].endswith("/overview")
    overview = client.get("/overview")
    assert overview.status_code == 200 and "Rina Admin" in overview.get_data(as_text=True)
    assert client.get("/setup").status_code == 404
    site = _db.session.scalar(select(Site))
    assert (site.name, site.closed_weekdays) == ("Kemang", "sun") and _count(Obligation) > 0
    from compliance.audit.models import AuditEntry
    labels = set(_db.session.scalars(select(AuditEntry.actor_label)))
    assert "first run (set-up page)" in labels


def test_set_up_page_is_not_found_once_an_organisation_exists(client, site):
    assert client.get("/setup").status_code == 404
    assert client.post("/setup", data={"code": "x"}).status_code in (400, 404)
