"""People's own credentials, tried from every door: invitations and password resets by email (the page, the
API, a stale or forged link, a second use, two tabs at once, an unknown address, a flood of requests), ending
every session, one's own PIN on the tablet, a PIN made and shown once, deactivation."""
import re
from datetime import timedelta

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from compliance.auth import accounts
from compliance.auth.models import AccountLink, AuthEvent
from compliance.auth.services import Throttle
from compliance.errors import Conflict, Forbidden, Invalid
from compliance.schedule.models import OutboxMessage
from compliance.sites.models import User
from compliance.timeutil import utcnow
from tests.conftest import PASSWORD, PIN

POLICY = accounts.LinkPolicy(invitation_hours=72, reset_minutes=60)
NEW_PASSWORD = "a brand new passphrase"


def text(response) -> str:
    return response.get_data(as_text=True)


def _messages(db, kind=None):
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(stmt))


def _link_in(message: OutboxMessage) -> str:
    """The path of the link in an email (both bodies carry the same one)."""
    found = re.search(r"http://[^/\s]+(/(?:invitation|password/reset)/[A-Za-z0-9._-]+)", message.text_body)
    assert found and found.group(1) in message.html_body
    return found.group(1)


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _sign_in(app, email, password):
    other = app.test_client()
    response = other.form_post("/login", {"email": email, "password": password})
    assert response.status_code == 302, text(response)
    assert other.get("/overview").status_code == 200
    return other


def _signed_out(client) -> bool:
    response = client.get("/overview")
    return response.status_code == 302 and "/login" in response.headers["Location"]


# --- invitations ------------------------------------------------------------------------------------

def _invite(client, site, email="new.manager@example.test", role="manager", language="", locale="", **extra):
    return client.form_post("/people/new", {"name": "Nia New", "email": email, "role": role, "site_ids": site.id,
                                            "language": language, "locale": locale, "password": "", "pin": "",
                                            **extra})


def test_an_admin_invites_a_manager_who_chooses_a_password_and_is_signed_in(app, client, login_as, admin, site, db):
    login_as(admin)
    response = _invite(client, site)
    assert response.status_code == 302
    person = db.session.scalar(select(User).where(User.email == "new.manager@example.test"))
    assert person.password_hash is None and person.role == "manager"
    [message] = _messages(db, "invitation")
    assert message.recipient == person.email and message.state == "queued" and message.site_id == site.id
    assert "Ada Admin invited you" in message.text_body and "Jakarta" in message.text_body
    page = text(client.get(f"/people/{person.id}"))
    assert "Invited: the link to choose a password works until" in page
    # The Emails page lists it but never shows the link.
    path = _link_in(message)
    detail = text(client.get(f"/emails/{message.id}"))
    assert path.rsplit("/", 1)[1] not in detail and "personal link" in detail

    newcomer = app.test_client()
    form = newcomer.get(path)
    assert form.status_code == 200 and "Welcome, Nia New" in text(form)
    assert form.headers["Cache-Control"] == "no-store" and form.headers["Referrer-Policy"] == "no-referrer"
    response = newcomer.form_post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 302
    assert newcomer.get("/overview").status_code == 200  # signed in
    person = db.session.get(User, person.id)
    db.session.refresh(person)
    assert check_password_hash(person.password_hash, NEW_PASSWORD)
    assert _count(db, AuthEvent, AuthEvent.kind == "invitation_accepted") == 1
    # Spent: a second use is refused and changes nothing.
    again = app.test_client().form_post(path, {"password": "another passphrase", "password_again": "another passphrase"})
    assert again.status_code == 409 and "already used" in text(again)
    db.session.refresh(person)
    assert check_password_hash(person.password_hash, NEW_PASSWORD)
    _sign_in(app, person.email, NEW_PASSWORD)


@pytest.mark.parametrize("password, again, message", [
    ("short", "short", "10 to 200 characters"),
    (NEW_PASSWORD, NEW_PASSWORD + "!", "not the same"),
])
def test_a_bad_password_changes_nothing_and_keeps_the_link(app, client, login_as, admin, site, db, password, again,
                                                          message):
    login_as(admin)
    _invite(client, site)
    path = _link_in(_messages(db, "invitation")[0])
    response = app.test_client().form_post(path, {"password": password, "password_again": again})
    assert response.status_code == 422 and message in text(response)
    person = db.session.scalar(select(User).where(User.email == "new.manager@example.test"))
    assert person.password_hash is None
    assert db.session.scalar(select(AccountLink.used_at)) is None
    assert app.test_client().form_post(path, {"password": NEW_PASSWORD,
                                              "password_again": NEW_PASSWORD}).status_code == 302


def test_an_invitation_expires(db, admin, site):
    from compliance.auth.actor import actor_for_user
    now = utcnow()
    person = accounts.invite(actor_for_user(admin), {"name": "Late Larry", "email": "late@example.test",
                                                     "role": "auditor", "site_ids": [site.id]}, now, POLICY)
    token = _link_in(_messages(db, "invitation")[0]).rsplit("/", 1)[1]
    accounts.read_link(token, accounts.INVITATION, now + timedelta(hours=71, minutes=59))
    with pytest.raises(Invalid, match="expired"):
        accounts.choose_password(token, accounts.INVITATION, NEW_PASSWORD, NEW_PASSWORD, now + timedelta(hours=72))
    assert person.password_hash is None


def test_a_new_invitation_ends_the_earlier_link(app, client, login_as, admin, site, db):
    login_as(admin)
    _invite(client, site)
    first = _link_in(_messages(db, "invitation")[0])
    person = db.session.scalar(select(User).where(User.email == "new.manager@example.test"))
    assert client.form_post(f"/people/{person.id}/invitation").status_code == 302
    second = _link_in(_messages(db, "invitation")[1])
    assert first != second
    refused = app.test_client().get(first)
    assert refused.status_code == 409 and "a newer link was sent" in text(refused)
    assert app.test_client().get(second).status_code == 200


def test_no_invitation_for_staff_or_someone_with_a_password(client, login_as, admin, manager, nurse, site, db):
    login_as(admin)
    for person in (nurse, manager):
        response = client.form_post(f"/people/{person.id}/invitation")
        assert response.status_code in (409, 422)
    assert _messages(db, "invitation") == []


def test_a_manager_may_invite_a_manager_but_not_an_admin(client, login_as, manager, site, db):
    login_as(manager)
    assert _invite(client, site, role="admin").status_code == 403
    assert _invite(client, site, email="m2@example.test").status_code == 302
    assert [m.recipient for m in _messages(db, "invitation")] == ["m2@example.test"]


@pytest.mark.parametrize("tamper", ["altered", "other key", "wrong purpose", "garbage"])
def test_a_forged_or_altered_link_is_refused(app, client, login_as, admin, site, db, tamper):
    login_as(admin)
    _invite(client, site)
    token = _link_in(_messages(db, "invitation")[0]).rsplit("/", 1)[1]
    payload = URLSafeSerializer("x").loads_unsafe(token)[1]
    forged = {
        "altered": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "other key": URLSafeSerializer("not-the-secret", salt="compliance.account-link").dumps(payload),
        "wrong purpose": URLSafeSerializer(app.config["SECRET_KEY"], salt="compliance.account-link").dumps(
            ["password_reset", payload[1]]),
        "garbage": "x" * 300,
    }[tamper]
    for path in (f"/invitation/{forged}", f"/password/reset/{forged}"):
        response = app.test_client().form_post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
        assert response.status_code == 422 and "not valid" in text(response)
    assert db.session.scalar(select(User.password_hash).where(User.email == "new.manager@example.test")) is None


def test_of_two_tabs_using_one_link_at_once_one_wins(db, admin, site, monkeypatch):
    """The second tab read the link before the first spent it: the conditional UPDATE refuses it."""
    from compliance.auth.actor import actor_for_user
    now = utcnow()
    accounts.invite(actor_for_user(admin), {"name": "Two Tabs", "email": "tabs@example.test", "role": "manager",
                                            "site_ids": [site.id]}, now, POLICY)
    token = _link_in(_messages(db, "invitation")[0]).rsplit("/", 1)[1]
    stale = accounts.read_link(token, accounts.INVITATION, now)
    accounts.choose_password(token, accounts.INVITATION, NEW_PASSWORD, NEW_PASSWORD, now)
    db.session.commit()
    monkeypatch.setattr(accounts, "read_link", lambda *a: stale)  # the read before the first tab's commit
    with pytest.raises(Conflict, match="already used"):
        accounts.choose_password(token, accounts.INVITATION, "the other tab's one", "the other tab's one", now)
    db.session.rollback()
    assert check_password_hash(db.session.scalar(select(User.password_hash).where(User.email == "tabs@example.test")),
                               NEW_PASSWORD)


def test_the_api_invites_a_manager_sent_without_a_password(client, login_as, admin, site, db):
    login_as(admin)
    response = client.api("POST", "/api/v1/users", json={"name": "Api Andi", "email": "andi@example.test",
                                                          "role": "manager", "site_ids": [site.id]})
    assert response.status_code == 201, response.get_json()
    assert [m.recipient for m in _messages(db, "invitation")] == ["andi@example.test"]


def test_the_invitation_is_written_in_the_persons_language_and_formats(client, login_as, admin, site, db):
    login_as(admin)
    _invite(client, site, language="id", locale="id-ID")
    _invite(client, site, email="uk@example.test")  # the site's language (English) and formats (en-GB)
    indonesian, english = _messages(db, "invitation")
    assert indonesian.language == "id" and english.language == "en"
    assert "Halo Nia New" in indonesian.text_body and "Anda diundang" in indonesian.subject
    assert "Hello Nia New" in english.text_body and "You are invited" in english.subject
    # The link's end in each reader's formats: id-ID writes 6/12/26 10.15, en-GB 06/12/2026, 10:15.
    assert re.search(r"sampai \d{1,2}/\d{1,2}/\d\d \d\d\.\d\d \(waktu Asia/Jakarta\)", indonesian.text_body)
    assert re.search(r"until \d\d/\d\d/\d{4},? \d\d:\d\d \(Asia/Jakarta time\)", english.text_body)


# --- password reset ---------------------------------------------------------------------------------

def test_a_reset_answers_the_same_whether_or_not_the_address_exists(client, manager, db):
    known = client.form_post("/password/forgot", {"email": manager.email})
    unknown = client.form_post("/password/forgot", {"email": "nobody@example.test"})
    assert known.status_code == unknown.status_code == 200
    assert text(known).replace(manager.email, "@") == text(unknown).replace("nobody@example.test", "@")
    [message] = _messages(db, "password_reset")
    assert message.recipient == manager.email


@pytest.mark.parametrize("who", ["staff", "deactivated", "invited"])
def test_no_reset_email_for_someone_without_a_password_to_reset(client, login_as, admin, nurse, manager, site, db,
                                                                who):
    if who == "deactivated":
        manager.is_active_user = False
        db.session.commit()
        email = manager.email
    elif who == "invited":
        login_as(admin)
        _invite(client, site)
        client.form_post("/logout")
        email = "new.manager@example.test"
    else:
        email = nurse.email
    assert client.form_post("/password/forgot", {"email": email}).status_code == 200
    assert _messages(db, "password_reset") == []


def test_resets_are_throttled_like_sign_in_for_known_and_unknown_addresses(app, client, manager, db):
    limit = app.config["LOGIN_MAX_FAILURES"]
    for email in (manager.email, "nobody@example.test"):
        for _ in range(limit):
            assert client.form_post("/password/forgot", {"email": email}).status_code == 200
        refused = client.form_post("/password/forgot", {"email": email})
        assert refused.status_code == 429 and "Too many requests" in text(refused)
    assert len(_messages(db, "password_reset")) == limit


def test_resets_are_throttled_by_network_address(db, manager):
    throttle = Throttle(max_failures=100, max_failures_per_address=3, window_minutes=15)
    now = utcnow()
    for n in range(3):
        accounts.request_password_reset(f"someone{n}@example.test", "10.0.0.9", now, throttle, POLICY)
    with pytest.raises(Forbidden):
        accounts.request_password_reset(manager.email, "10.0.0.9", now, throttle, POLICY)
    accounts.request_password_reset(manager.email, "10.0.0.10", now, throttle, POLICY)  # another address
    # The window passes.
    accounts.request_password_reset("later@example.test", "10.0.0.9", now + timedelta(minutes=16), throttle, POLICY)


def test_a_reset_sets_the_password_and_ends_every_session(app, client, manager, db):
    laptop, phone = _sign_in(app, manager.email, PASSWORD), _sign_in(app, manager.email, PASSWORD)
    client.form_post("/password/forgot", {"email": manager.email})
    path = _link_in(_messages(db, "password_reset")[0])
    page = client.get(path)
    assert page.status_code == 200 and manager.email in text(page)
    response = client.form_post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert _signed_out(laptop) and _signed_out(phone)
    refused = app.test_client().form_post("/login", {"email": manager.email, "password": PASSWORD})
    assert refused.status_code == 401
    _sign_in(app, manager.email, NEW_PASSWORD)
    assert client.get(path).status_code == 409  # single use


def test_a_reset_link_lasts_the_configured_minutes_and_the_newest_wins(db, manager):
    throttle = Throttle(5, 20, 15)
    now = utcnow()
    accounts.request_password_reset(manager.email, "10.0.0.1", now, throttle, POLICY)
    accounts.request_password_reset(manager.email, "10.0.0.1", now, throttle, POLICY)
    older, newer = [_link_in(m).rsplit("/", 1)[1] for m in _messages(db, "password_reset")]
    with pytest.raises(Conflict, match="newer link"):
        accounts.read_link(older, accounts.PASSWORD_RESET, now)
    with pytest.raises(Invalid, match="expired"):
        accounts.read_link(newer, accounts.PASSWORD_RESET, now + timedelta(minutes=60))
    with pytest.raises(Invalid, match="not valid"):
        accounts.read_link(newer, accounts.INVITATION, now)  # a reset link is not an invitation
    accounts.read_link(newer, accounts.PASSWORD_RESET, now + timedelta(minutes=59))


def test_a_person_deactivated_after_the_email_cannot_use_the_link(app, client, manager, db):
    client.form_post("/password/forgot", {"email": manager.email})
    path = _link_in(_messages(db, "password_reset")[0])
    manager.is_active_user = False
    db.session.commit()
    response = app.test_client().form_post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 403 and "deactivated" in text(response)


# --- sessions end ---------------------------------------------------------------------------------

def test_deactivating_someone_signs_them_out_at_once(app, client, login_as, admin, manager, db):
    theirs = _sign_in(app, manager.email, PASSWORD)
    login_as(admin)
    assert client.form_post(f"/people/{manager.id}/deactivate").status_code == 302
    assert _signed_out(theirs)
    assert db.session.get(User, manager.id).session_version == 1
    client.form_post(f"/people/{manager.id}/reactivate")
    assert _signed_out(theirs)  # reactivating does not bring the old session back
    _sign_in(app, manager.email, PASSWORD)


def test_deactivating_a_nurse_signs_her_out_of_the_tablet(app, client, login_as, manager, nurse, site, enrol_tablet,
                                                         db):
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    assert client.get("/tablet/home").status_code == 200
    manager_client = _sign_in(app, manager.email, PASSWORD)
    assert manager_client.form_post(f"/people/{nurse.id}/deactivate").status_code == 302
    response = client.get("/tablet/home")
    assert response.status_code == 302


def test_a_manager_resetting_a_pin_signs_the_person_out_of_the_tablet(app, client, manager, nurse, site,
                                                                     enrol_tablet, db):
    enrol_tablet(site)
    client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN})
    assert client.get("/tablet/home").status_code == 200
    manager_client = _sign_in(app, manager.email, PASSWORD)
    assert manager_client.form_post(f"/people/{nurse.id}/pin", {"pin": "86420"}).status_code == 200
    assert client.get("/tablet/home").status_code == 302


def test_a_session_from_before_versions_still_works_until_the_first_end(client, login_as, manager, db):
    login_as(manager)  # a bare "12" user id, as cookies made before this release hold
    assert client.get("/overview").status_code == 200
    manager.end_sessions()
    db.session.commit()
    assert _signed_out(client)


# --- one's own PIN on the tablet ----------------------------------------------------------------------

def _on_tablet(client, enrol_tablet, site, nurse):
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    return client


def _change(client, old, new, again=None):
    return client.form_post("/tablet/my-pin", {"old_pin": old, "new_pin": new,
                                               "new_pin_again": new if again is None else again})


def test_staff_change_their_own_pin_after_the_old_one(app, client, nurse, site, enrol_tablet, db):
    _on_tablet(client, enrol_tablet, site, nurse)
    assert "Change my PIN" in text(client.get("/tablet/home"))
    assert client.get("/tablet/my-pin").status_code == 200
    response = _change(client, PIN, "80264")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet/home")
    assert client.get("/tablet/home").status_code == 200  # still signed in on this tablet
    person = db.session.get(User, nurse.id)
    assert check_password_hash(person.pin_hash, "80264")
    assert _count(db, AuthEvent, AuthEvent.kind == "pin_changed") == 1
    client.form_post("/tablet/switch")
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 401
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "80264"}).status_code == 302


def test_a_wrong_old_pin_counts_towards_the_lock(app, client, nurse, site, enrol_tablet, db):
    _on_tablet(client, enrol_tablet, site, nurse)
    tries = app.config["PIN_MAX_ATTEMPTS"]
    response = _change(client, "0000", "80264")
    assert response.status_code == 401 and f"{tries - 1} tries left" in text(response)
    for _ in range(tries - 2):
        _change(client, "0000", "80264")
    locked = _change(client, "0000", "80264")
    assert locked.status_code == 302  # locked: signed out, back to the picker with the lock's end
    assert "Locked after too many wrong PINs until" in text(client.get(locked.headers["Location"]))
    person = db.session.get(User, nurse.id)
    assert person.pin_locked_until is not None and check_password_hash(person.pin_hash, PIN)


@pytest.mark.parametrize("new, again, message", [
    ("12", "12", "4 to 6 digits"),
    ("80264", "80265", "not the same"),
    (PIN, PIN, "same as the old one"),
])
def test_a_bad_new_pin_changes_nothing(client, nurse, site, enrol_tablet, db, new, again, message):
    _on_tablet(client, enrol_tablet, site, nurse)
    response = _change(client, PIN, new, again)
    assert response.status_code == 422 and message in text(response)
    person = db.session.get(User, nurse.id)
    assert check_password_hash(person.pin_hash, PIN) and person.pin_failed_count == 0


def test_changing_ones_pin_ends_ones_session_on_another_tablet(app, nurse, site, enrol_tablet, db):
    other = app.test_client()
    from compliance.auth.services import create_tablet_link, free_tablet_name
    now = utcnow()
    _link, token = create_tablet_link(None, site.id, free_tablet_name(site.id, "Room 2", now), now)
    db.session.commit()
    other.form_post(f"/tablet/enrol/{token}")
    assert other.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    first = app.test_client()
    _link, token = create_tablet_link(None, site.id, free_tablet_name(site.id, "Room 1", now), now)
    db.session.commit()
    first.form_post(f"/tablet/enrol/{token}")
    first.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN})
    assert _change(first, PIN, "80264").status_code == 302
    assert first.get("/tablet/home").status_code == 200
    assert other.get("/tablet/home").status_code == 302


def test_the_pin_page_is_for_a_tablet_session_only(client, login_as, manager, db):
    login_as(manager)
    assert client.get("/tablet/my-pin").status_code in (403, 404)
