"""Password sign-in, PIN sign-in on an enrolled tablet, lockout, throttling, CSRF and response headers."""
from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from compliance.auth.models import AuthEvent, TabletDevice
from compliance.sites.models import User
from compliance.timeutil import utcnow
from tests.conftest import PASSWORD, PIN


def _events(db, kind):
    return db.session.scalar(select(func.count()).select_from(AuthEvent).where(AuthEvent.kind == kind))


def test_password_sign_in_and_out(client, manager, db):
    response = client.form_post("/login", {"email": manager.email.upper(), "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/overview").status_code == 200
    client.form_post("/logout")
    assert client.get("/overview").status_code == 302  # back to the sign-in page
    assert _events(db, "password_ok") == 1 and _events(db, "sign_out") == 1


def test_wrong_password_is_refused_and_recorded(client, manager, db):
    response = client.form_post("/login", {"email": manager.email, "password": "wrong-password"})
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert _events(db, "password_failed") == 1


def test_unknown_email_gives_the_same_answer(client, db):
    response = client.form_post("/login", {"email": "nobody@example.test", "password": "whatever-it-is"})
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)


def test_staff_cannot_sign_in_with_a_password(client, nurse):
    response = client.form_post("/login", {"email": nurse.email, "password": PASSWORD})
    assert response.status_code == 401


def test_repeated_wrong_passwords_slow_the_account_down(client, manager, app, db):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.form_post("/login", {"email": manager.email, "password": "wrong-password"})
    response = client.form_post("/login", {"email": manager.email, "password": PASSWORD})
    assert response.status_code == 429  # even the right password waits out the window
    with time_machine.travel(utcnow() + timedelta(minutes=app.config["LOGIN_WINDOW_MINUTES"], seconds=1)):
        assert client.form_post("/login", {"email": manager.email, "password": PASSWORD}).status_code == 302


def test_repeated_failures_from_one_address_are_slowed(client, app, db):
    for i in range(app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]):
        client.form_post("/login", {"email": f"guess{i}@example.test", "password": "wrong-password"})
    response = client.form_post("/login", {"email": "another@example.test", "password": "wrong-password"})
    assert response.status_code == 429
    assert _events(db, "password_throttled") == 1


def test_login_without_csrf_token_is_refused(client, manager, db):
    response = client.post("/login", data={"email": manager.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert _events(db, "password_ok") == 0


def test_next_only_redirects_within_the_site(client, manager):
    response = client.form_post("/login", {"email": manager.email, "password": PASSWORD,
                                           "next": "https://evil.example/"})
    assert response.headers["Location"] == "/"
    client.form_post("/logout")
    response = client.form_post("/login", {"email": manager.email, "password": PASSWORD, "next": "/people"})
    assert response.headers["Location"] == "/people"


def test_responses_carry_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_is_httponly_and_samesite(client, manager):
    response = client.form_post("/login", {"email": manager.email, "password": PASSWORD})
    cookie = response.headers.get("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_cookies_are_secure_when_served_over_https(tmp_path):
    from compliance import create_app

    app = create_app({"BASE_URL": "https://clinic.example", "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"}, environ={})
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


# --- the tablet --------------------------------------------------------------------------------

def test_tablet_screen_needs_an_enrolled_browser(client, nurse):
    response = client.get("/tablet")
    assert response.status_code == 403
    assert nurse.name not in response.get_data(as_text=True)


def test_enrolled_tablet_lists_the_sites_staff_and_signs_in_by_pin(client, enrol_tablet, site, nurse, outsider, db):
    enrol_tablet(site)
    page = client.get("/tablet").get_data(as_text=True)
    assert nurse.name in page and outsider.name not in page
    response = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN})
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet/home")
    assert client.get("/tablet/home").status_code == 200
    assert _events(db, "pin_ok") == 1


def test_switching_person_takes_two_taps_and_signs_the_previous_person_out(client, enrol_tablet, site, nurse,
                                                                            make_user, db):
    other = make_user("staff", [site], name="Second Nurse", pin="1357")
    enrol_tablet(site)
    client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN})
    home = client.get("/tablet/home").get_data(as_text=True)
    assert 'action="/tablet/switch"' in home  # tap 1: "Switch person"
    response = client.form_post("/tablet/switch")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet")
    assert client.get("/tablet/home").status_code == 302  # the previous person is signed out at once
    assert _events(db, "switch_sign_out") == 1
    picker = client.get("/tablet").get_data(as_text=True)
    assert f'href="/tablet/pin/{other.id}"' in picker  # tap 2: the person; then the PIN
    client.form_post(f"/tablet/pin/{other.id}", {"pin": "1357"})
    assert "Second Nurse" in client.get("/tablet/home").get_data(as_text=True)


def test_person_of_another_site_cannot_sign_in_on_this_tablet(client, enrol_tablet, site, outsider):
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{outsider.id}", {"pin": PIN}).status_code == 404


def test_five_wrong_pins_lock_the_person_until_the_lock_ends(client, enrol_tablet, site, nurse, app, db):
    enrol_tablet(site)
    for attempt in range(4):
        response = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "0000"})
        assert response.status_code == 401
    response = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "0000"})
    assert response.status_code == 403
    assert _events(db, "pin_locked") == 1
    assert "Locked after too many wrong PINs until" in response.get_data(as_text=True)
    db.session.expire_all()
    locked_until = db.session.get(User, nurse.id).pin_locked_until
    assert locked_until is not None and locked_until.tzinfo is not None
    # While locked even the right PIN is refused.
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 403
    with time_machine.travel(locked_until + timedelta(seconds=1)):
        assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302


def test_malformed_pin_is_refused_without_counting_as_sign_in(client, enrol_tablet, site, nurse, db):
    enrol_tablet(site)
    response = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "12ab"})
    assert response.status_code == 422
    assert _events(db, "pin_ok") == 0


def test_tablet_returns_to_the_picker_after_idle_time(client, enrol_tablet, site, nurse, app, db):
    enrol_tablet(site)
    client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN})
    with time_machine.travel(utcnow() + timedelta(seconds=app.config["TABLET_IDLE_SECONDS"] + 5)):
        response = client.get("/tablet/home")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet")
    assert _events(db, "idle_sign_out") == 1
    assert client.get("/tablet/home").status_code == 302  # signed out: to the sign-in page


def test_tablet_page_tells_the_browser_its_idle_time(client, enrol_tablet, site, nurse, app):
    enrol_tablet(site)
    client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN})
    page = client.get("/tablet/home").get_data(as_text=True)
    assert f'data-idle-seconds="{app.config["TABLET_IDLE_SECONDS"]}"' in page


def test_revoked_tablet_shows_nobody(client, enrol_tablet, site, nurse, db):
    enrol_tablet(site)
    device = db.session.scalar(select(TabletDevice))
    device.revoked_at = utcnow()
    db.session.commit()
    response = client.get("/tablet")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet/revoked")
    page = client.get("/tablet/revoked")
    assert page.status_code == 403 and nurse.name not in page.get_data(as_text=True)


def test_forged_enrolment_link_is_refused(client, db):
    response = client.form_post("/tablet/enrol/not-a-real-token")
    assert response.status_code == 422
    assert "not valid" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(TabletDevice)) == 0


def test_manager_enrols_this_browser_from_the_tablets_page(client, login_as, manager, site, nurse, db):
    login_as(manager)
    response = client.form_post("/tablets", {"site_id": site.id, "name": "Front desk"})
    assert response.status_code == 302
    assert "tablet=" in response.headers["Set-Cookie"]
    assert nurse.name in client.get("/tablet").get_data(as_text=True)


def test_manager_cannot_enrol_a_tablet_for_another_site(client, login_as, manager, other_site, db):
    login_as(manager)
    response = client.form_post("/tablets", {"site_id": other_site.id, "name": "Sneaky"})
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(TabletDevice)) == 0


def test_htmx_post_without_csrf_header_is_refused(client, login_as, manager):
    login_as(manager)
    response = client.post("/logout", headers={"HX-Request": "true"})
    assert response.status_code == 400
    token = client.csrf_token()
    response = client.post("/logout", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 302


def test_a_staff_member_never_signs_in_with_a_password_even_if_one_was_stored(client, nurse, db):
    from tests.conftest import hashed

    nurse.password_hash = hashed(PASSWORD)  # e.g. a manager who was made staff before the fix
    db.session.commit()
    assert client.form_post("/login", {"email": nurse.email, "password": PASSWORD}).status_code == 401


def test_api_without_credentials_asks_for_a_bearer_key(client):
    response = client.get("/api/v1/sites")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
