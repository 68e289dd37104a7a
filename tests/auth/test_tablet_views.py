"""The manager's Tablets page, single-use set-up links, revoking, and the shared tablet's PIN screen."""
from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from compliance.auth import services
from compliance.auth.models import AuthEvent, TabletDevice, TabletLink
from compliance.timeutil import utcnow
from tests.conftest import PIN


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def _link_token(client, login_as, manager, site, name="Treatment room 1"):
    login_as(manager)
    page = client.form_post("/tablets/link", {"site_id": site.id, "name": name})
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    assert name in text and "sets up one tablet only" in text
    token = text.split("/tablet/enrol/")[1].split("<")[0].split('"')[0]
    client.form_post("/logout")
    return token


def test_a_set_up_link_enrols_one_tablet_and_a_second_use_is_refused(app, client, login_as, manager, site, nurse, db):
    token = _link_token(client, login_as, manager, site)
    assert "Treatment room 1" in client.get(f"/tablet/enrol/{token}").get_data(as_text=True)
    response = client.form_post(f"/tablet/enrol/{token}")
    assert response.status_code == 302 and "tablet=" in response.headers["Set-Cookie"]
    assert nurse.name in client.get("/tablet").get_data(as_text=True)
    second = app.test_client()
    for refused in (second.get(f"/tablet/enrol/{token}"), second.form_post(f"/tablet/enrol/{token}")):
        assert refused.status_code == 409
        text = refused.get_data(as_text=True)
        assert "already used" in text and "Treatment room 1" in text
        assert "tablet=" not in refused.headers.get("Set-Cookie", "")
    assert _count(db, TabletDevice) == 1


def test_a_link_without_a_name_or_with_a_taken_name_is_refused(client, login_as, manager, site, db):
    login_as(manager)
    response = client.form_post("/tablets/link", {"site_id": site.id, "name": ""})
    assert response.status_code == 422
    client.form_post("/tablets/link", {"site_id": site.id, "name": "Room 1"})
    response = client.form_post("/tablets/link", {"site_id": site.id, "name": "room 1"})
    assert response.status_code == 409
    assert "already called" in response.get_data(as_text=True)
    assert _count(db, TabletLink) == 1


def test_the_tablets_page_shows_name_set_up_link_last_use_and_open_links(client, login_as, manager, site, db):
    token = _link_token(client, login_as, manager, site, name="Treatment room 1")
    client.form_post(f"/tablet/enrol/{token}")
    services.create_tablet_link(None, site.id, "Decon room", utcnow())
    db.session.commit()
    login_as(manager)
    page = client.get("/tablets").get_data(as_text=True)
    assert "Treatment room 1" in page and "by a link made" in page and manager.name in page
    assert "Set-up links not used yet" in page and "Decon room" in page
    assert "never" not in page.split("Tablets set up")[1]  # enrolling is its first use


def test_a_tablets_last_use_is_updated_at_most_once_a_minute(client, enrol_tablet, site, db):
    enrol_tablet(site)
    first = db.session.scalar(select(TabletDevice.last_used_at))
    client.get("/tablet")
    db.session.expire_all()
    assert db.session.scalar(select(TabletDevice.last_used_at)) == first
    with time_machine.travel(utcnow() + timedelta(minutes=2)):
        client.get("/tablet")
    db.session.expire_all()
    assert db.session.scalar(select(TabletDevice.last_used_at)) > first


def test_a_revoked_tablet_signs_its_person_out_and_is_sent_to_the_revoked_page(app, client, enrol_tablet, site,
                                                                               nurse, manager, login_as, db):
    enrol_tablet(site, "Front desk")
    client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN})
    assert client.get("/tablet/home").status_code == 200
    device_id = db.session.scalar(select(TabletDevice.id))
    laptop = app.test_client()
    with laptop.session_transaction() as s:
        s["_user_id"] = str(manager.id)
        s["_fresh"] = True
    response = laptop.form_post(f"/tablets/{device_id}/revoke")
    assert response.status_code == 302
    response = client.get("/tablet/home")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet/revoked")
    page = client.get("/tablet/revoked")
    assert page.status_code == 403 and "This tablet was revoked" in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AuthEvent).where(
        AuthEvent.kind == "revoked_sign_out")) == 1
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302  # to the revoked page
    assert client.get("/tablet/home").headers["Location"].endswith("/tablet/revoked")
    assert "revoked" in laptop.get("/tablets").get_data(as_text=True)


def test_the_revoke_button_asks_for_confirmation(client, enrol_tablet, site, login_as, manager):
    enrol_tablet(site, "Front desk")
    login_as(manager)
    page = client.get("/tablets").get_data(as_text=True)
    assert 'data-confirm="Revoke the tablet “Front desk”?' in page


def test_a_wrong_pin_says_how_many_tries_are_left(client, enrol_tablet, site, nurse):
    enrol_tablet(site)
    response = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "0000"})
    assert response.status_code == 401
    assert "Wrong PIN. 4 tries left before the lock." in response.get_data(as_text=True)
    for _ in range(2):
        client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "0000"})
    response = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "0000"})
    assert "Wrong PIN. 1 try left before the lock." in response.get_data(as_text=True)


def test_the_lock_message_says_when_it_ends_in_the_sites_local_time(client, enrol_tablet, site, nurse, db):
    enrol_tablet(site)  # Jakarta: UTC+7
    with time_machine.travel("2026-12-02T09:00:00Z", tick=False):
        for _ in range(5):
            response = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "0000"})
        assert response.status_code == 403
        text = response.get_data(as_text=True)
        # 09:15 UTC is 16:15 in Jakarta (4:15 PM on a 12-hour clock)
        assert "until" in text and ("16:15" in text or "4:15" in text) and "Asia/Jakarta" in text
        again = client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).get_data(as_text=True)
        assert "16:15" in again or "4:15" in again
