"""The manager and admin screens: sites, rooms, people, training and API keys."""
from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from compliance.auth.models import ApiKey
from compliance.sites.models import Room, Site, TrainingRecord, User
from compliance.sites.rules import current_expiries, training_status
from compliance.timeutil import utcnow
from tests.conftest import PASSWORD, PIN

LONG = "x" * 10_000


def rows(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def fresh(db, model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def text(response) -> str:
    return response.get_data(as_text=True)


def person_data(site, **changes) -> dict:
    data = {"name": "New Nurse", "email": "new.nurse@example.test", "role": "staff", "site_ids": [str(site.id)],
            "language": "", "password": "", "pin": "1234"}
    data.update(changes)
    return data


@pytest.fixture
def sister_site(make_site, site):
    """A second site of the same organisation, which the manager does not belong to."""
    return make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta", rooms=("Bandung room",))


# --- the pure training standing ------------------------------------------------------------------

@pytest.mark.parametrize("expires_on, status", [
    (date(2025, 5, 31), "expired"),     # the day after the last valid day
    (date(2025, 6, 1), "expiring"),     # valid through today
    (date(2025, 7, 1), "expiring"),     # exactly 30 days ahead
    (date(2025, 7, 2), "valid"),        # 31 days ahead
    (None, "valid"),                    # the course does not expire
])
def test_training_status_boundaries(expires_on, status):
    assert training_status(expires_on, date(2025, 6, 1), 30) == status


def test_a_renewal_supersedes_an_older_record_of_the_same_course():
    best = current_expiries([(1, "first_aid", date(2024, 1, 1)), (1, "first_aid", date(2026, 1, 1)),
                             (1, "sterilisation", None), (1, "sterilisation", date(2020, 1, 1))])
    assert best == {(1, "first_aid"): date(2026, 1, 1), (1, "sterilisation"): None}


# --- who may see and do what ---------------------------------------------------------------------

def _post_urls(app, ids: dict) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("sites.") and "POST" in rule.methods:
            url = rule.rule
            for name, value in ids.items():
                url = url.replace(f"<int:{name}>", str(value))
            urls.append(url)
    return urls


def test_every_screen_declares_the_action_it_needs(app):
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("sites."):
            assert getattr(view, "required_action", None), endpoint


def test_auditor_cannot_post_any_form(client, login_as, auditor, site, nurse, make_training, app, db):
    record = make_training(nurse)
    key = ApiKey(site_id=site.id, name="k", prefix="abcd1234", key_hash="0" * 64, created_by_id=auditor.id,
                 created_at=utcnow())
    db.session.add(key)
    db.session.commit()
    room = site.rooms[0]
    login_as(auditor)
    ids = {"site_id": site.id, "room_id": room.id, "user_id": nurse.id, "record_id": record.id, "key_id": key.id}
    urls = _post_urls(app, ids)
    assert len(urls) >= 15
    before = (rows(db, Site), rows(db, Room), rows(db, User), rows(db, TrainingRecord), rows(db, ApiKey))
    for url in urls:
        response = client.form_post(url, {"name": "Hacked", "reason": "because", "pin": "9999",
                                          **person_data(site, email="hacker@example.test")})
        assert response.status_code == 403, url
    assert (rows(db, Site), rows(db, Room), rows(db, User), rows(db, TrainingRecord), rows(db, ApiKey)) == before
    assert fresh(db, User, nurse.id).is_active_user and fresh(db, TrainingRecord, record.id).is_active


def test_auditor_reads_every_list(login_as, auditor, nurse, make_training):
    make_training(nurse)
    client = login_as(auditor)
    for url in ("/overview", "/sites", "/rooms", "/people", f"/people/{nurse.id}", "/training"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Add a" not in text(response) and "Deactivate" not in text(response)
    assert client.get("/api-keys").status_code == 403


def test_form_without_csrf_token_is_refused(login_as, manager, site, db):
    client = login_as(manager)
    response = client.post("/rooms/new", data={"site_id": site.id, "name": "No token", "kind": "treatment"})
    assert response.status_code == 400
    assert rows(db, Room, Room.name == "No token") == 0


def test_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get("/people")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- sites ---------------------------------------------------------------------------------------

def test_admin_adds_and_edits_a_site(login_as, admin, db):
    client = login_as(admin)
    response = client.form_post("/sites/new", {"name": "Surabaya", "timezone": "Asia/Jakarta", "language": "id",
                                               "address": "Jl. Tunjungan 1"})
    assert response.status_code == 302
    site = db.session.scalar(select(Site).where(Site.name == "Surabaya"))
    assert site.organisation_id == admin.organisation_id and site.language == "id"
    response = client.form_post(f"/sites/{site.id}/edit", {"name": "Surabaya Timur", "timezone": "Asia/Makassar",
                                                           "language": "en", "address": ""})
    assert response.status_code == 302
    site = fresh(db, Site, site.id)
    assert (site.name, site.timezone, site.language) == ("Surabaya Timur", "Asia/Makassar", "en")


def test_unknown_timezone_is_refused(login_as, admin, site, db):
    client = login_as(admin)
    before = rows(db, Site)
    response = client.form_post("/sites/new", {"name": "Mars base", "timezone": "Mars/Olympus_Mons",
                                               "language": "en"})
    assert response.status_code == 422
    assert "Time zone must be an IANA time zone" in text(response)
    assert 'id="timezone-error"' in text(response)
    assert rows(db, Site) == before
    response = client.form_post(f"/sites/{site.id}/edit", {"name": site.name, "timezone": "Nowhere/Land",
                                                           "language": "en"})
    assert response.status_code == 422
    assert fresh(db, Site, site.id).timezone == "Asia/Jakarta"


def test_duplicate_site_name_is_refused(login_as, admin, site, db):
    response = login_as(admin).form_post("/sites/new", {"name": "JAKARTA", "timezone": "Asia/Jakarta",
                                                        "language": "en"})
    assert response.status_code == 409
    assert "a site with this name already exists" in text(response)
    assert rows(db, Site) == 1


def test_manager_cannot_add_or_change_sites(login_as, manager, site, db):
    client = login_as(manager)
    assert client.get("/sites").status_code == 200
    assert client.get("/sites/new").status_code == 403
    assert client.form_post("/sites/new", {"name": "Mine", "timezone": "UTC", "language": "en"}).status_code == 403
    assert client.form_post(f"/sites/{site.id}/deactivate").status_code == 403
    assert rows(db, Site) == 1 and fresh(db, Site, site.id).is_active


def test_admin_deactivates_and_reactivates_a_site(login_as, admin, site, db):
    client = login_as(admin)
    assert client.form_post(f"/sites/{site.id}/deactivate").status_code == 302
    assert not fresh(db, Site, site.id).is_active
    assert f"<td>{site.name}</td>" not in text(client.get("/sites"))
    assert f"<td>{site.name}</td>" in text(client.get("/sites?inactive=1"))
    assert client.form_post(f"/sites/{site.id}/reactivate").status_code == 302
    assert fresh(db, Site, site.id).is_active


def test_admin_cannot_reach_another_organisations_site(login_as, admin, other_site, db):
    client = login_as(admin)
    assert client.get(f"/sites/{other_site.id}/edit").status_code == 404
    assert client.form_post(f"/sites/{other_site.id}/deactivate").status_code == 404
    assert fresh(db, Site, other_site.id).is_active
    assert other_site.name not in text(client.get("/sites"))


# --- rooms ---------------------------------------------------------------------------------------

def test_manager_adds_room_to_own_site(login_as, manager, site, db):
    client = login_as(manager)
    response = client.form_post("/rooms/new", {"site_id": site.id, "name": "Decon room", "kind": "decontamination"})
    assert response.status_code == 302
    room = db.session.scalar(select(Room).where(Room.name == "Decon room"))
    assert room.site_id == site.id and room.kind == "decontamination"
    page = text(client.get(response.headers["Location"]))
    assert "Decon room" in page and "Decontamination room" in page


def test_manager_cannot_add_room_to_another_site(login_as, manager, sister_site, other_site, db):
    client = login_as(manager)
    before = rows(db, Room)
    for site_id in (sister_site.id, other_site.id, 999_999):
        response = client.form_post("/rooms/new", {"site_id": site_id, "name": "Sneaky", "kind": "treatment"})
        assert response.status_code == 404
        assert "no such site" in text(response)
    assert rows(db, Room) == before


def test_manager_cannot_see_other_sites_rooms(login_as, manager, sister_site, db):
    client = login_as(manager)
    room = sister_site.rooms[0]
    assert "Bandung room" not in text(client.get("/rooms"))
    assert client.get(f"/rooms?site={sister_site.id}").status_code == 404
    assert client.get(f"/rooms/{room.id}/edit").status_code == 404
    assert client.form_post(f"/rooms/{room.id}/deactivate").status_code == 404
    assert fresh(db, Room, room.id).is_active


def test_duplicate_room_name_is_refused_at_the_field(login_as, manager, site, db):
    response = login_as(manager).form_post("/rooms/new", {"site_id": site.id, "name": "room 1", "kind": "treatment"})
    assert response.status_code == 409
    assert 'id="name-error"' in text(response) and "already exists at this site" in text(response)
    assert rows(db, Room) == 1


def test_unknown_room_kind_is_refused(login_as, manager, site, db):
    response = login_as(manager).form_post("/rooms/new", {"site_id": site.id, "name": "Odd", "kind": "dungeon"})
    assert response.status_code == 422 and 'id="kind-error"' in text(response)
    assert rows(db, Room) == 1


def test_manager_renames_deactivates_and_reactivates_a_room(login_as, manager, site, db):
    client = login_as(manager)
    room = site.rooms[0]
    response = client.form_post(f"/rooms/{room.id}/edit", {"site_id": site.id, "name": "Room A", "kind": "storage"})
    assert response.status_code == 302
    assert (fresh(db, Room, room.id).name, fresh(db, Room, room.id).kind) == ("Room A", "storage")
    client.form_post(f"/rooms/{room.id}/deactivate")
    assert not fresh(db, Room, room.id).is_active
    assert "<td>Room A</td>" not in text(client.get("/rooms"))
    assert "<td>Room A</td>" in text(client.get("/rooms?inactive=1"))
    client.form_post(f"/rooms/{room.id}/reactivate")
    assert fresh(db, Room, room.id).is_active
    assert rows(db, Room) == 1  # never deleted


def test_rooms_empty_state_offers_the_first_one(login_as, manager, site, db):
    client = login_as(manager)
    client.form_post(f"/rooms/{site.rooms[0].id}/deactivate")
    page = text(client.get("/rooms"))
    assert 'class="empty"' in page and "No rooms yet" in page and "Add the first one" in page


def test_rooms_sort_by_name_both_ways(login_as, manager, site, make_site, db):
    db.session.add_all([Room(site=site, name="Alpha"), Room(site=site, name="Zulu")])
    db.session.commit()
    client = login_as(manager)
    ascending = text(client.get("/rooms?sort=name"))
    descending = text(client.get("/rooms?sort=-name"))
    assert ascending.index("Alpha") < ascending.index("Zulu")
    assert descending.index("Zulu") < descending.index("Alpha")
    assert client.get("/rooms?sort=nonsense").status_code == 200


# --- people --------------------------------------------------------------------------------------

def test_manager_adds_a_staff_member_with_a_pin(login_as, manager, site, db):
    response = login_as(manager).form_post("/people/new", person_data(site))
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new.nurse@example.test"))
    assert user.role == "staff" and user.site_ids == {site.id} and user.language is None
    assert check_password_hash(user.pin_hash, "1234") and user.password_hash is None


def test_manager_adds_a_manager_with_a_password_and_a_language(login_as, manager, site, db):
    response = login_as(manager).form_post("/people/new", person_data(
        site, role="manager", email="m2@example.test", password="long-enough-password", pin="", language="en"))
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "m2@example.test"))
    assert user.language == "en" and check_password_hash(user.password_hash, "long-enough-password")


def test_role_choices_are_limited_to_what_the_actor_may_give(login_as, manager, admin):
    page = text(login_as(manager).get("/people/new"))
    assert 'value="staff"' in page and 'value="manager"' in page
    assert 'value="admin"' not in page and 'value="auditor"' not in page


def test_manager_cannot_give_the_admin_role(login_as, manager, site, nurse, db):
    client = login_as(manager)
    before = rows(db, User)
    response = client.form_post("/people/new", person_data(site, role="admin", password="long-enough-password",
                                                           pin=""))
    assert response.status_code == 403 and 'id="role-error"' in text(response)
    assert rows(db, User) == before
    response = client.form_post(f"/people/{nurse.id}/edit", person_data(
        site, name=nurse.name, email=nurse.email, role="admin", password="long-enough-password", pin=""))
    assert response.status_code == 403
    assert fresh(db, User, nurse.id).role == "staff"


def test_manager_cannot_change_an_admin(login_as, manager, admin, db):
    client = login_as(manager)
    assert client.get(f"/people/{admin.id}/edit").status_code == 403
    assert client.form_post(f"/people/{admin.id}/deactivate").status_code == 403
    assert client.form_post(f"/people/{admin.id}/pin", {"pin": "1111"}).status_code == 403
    assert fresh(db, User, admin.id).is_active_user


def test_duplicate_email_is_refused_and_nothing_stored(login_as, manager, site, nurse, db):
    client = login_as(manager)
    before = rows(db, User)
    response = client.form_post("/people/new", person_data(site, email=nurse.email.upper()))
    assert response.status_code == 409
    assert 'id="email-error"' in text(response) and "this email is already in use" in text(response)
    assert rows(db, User) == before


def test_invalid_email_is_refused_at_the_field(login_as, manager, site, db):
    response = login_as(manager).form_post("/people/new", person_data(site, email="not-an-email"))
    assert response.status_code == 422 and 'id="email-error"' in text(response)
    assert rows(db, User, User.name == "New Nurse") == 0


@pytest.mark.parametrize("pin", ["123", "1234567", "12ab", "", "١٢٣٤"])
def test_pin_must_be_4_to_6_digits(login_as, manager, site, db, pin):
    response = login_as(manager).form_post("/people/new", person_data(site, pin=pin))
    assert response.status_code == 422
    assert 'id="pin-error"' in text(response)
    assert rows(db, User, User.name == "New Nurse") == 0


@pytest.mark.parametrize("pin", ["1234", "123456"])
def test_four_and_six_digit_pins_are_accepted(login_as, manager, site, db, pin):
    assert login_as(manager).form_post("/people/new", person_data(site, pin=pin)).status_code == 302


def test_short_password_is_refused(login_as, manager, site, db):
    response = login_as(manager).form_post("/people/new", person_data(site, role="manager", password="short",
                                                                       pin=""))
    assert response.status_code == 422 and 'id="password-error"' in text(response)
    assert rows(db, User, User.name == "New Nurse") == 0


def test_person_needs_a_site(login_as, manager, site, db):
    response = login_as(manager).form_post("/people/new", person_data(site, site_ids=[]))
    assert response.status_code == 422 and "choose at least one site" in text(response)
    assert rows(db, User, User.name == "New Nurse") == 0


@pytest.mark.parametrize("site_ids", [["999999"], ["abc"]])
def test_unknown_site_ids_are_refused(login_as, manager, site, db, site_ids):
    response = login_as(manager).form_post("/people/new", person_data(site, site_ids=site_ids))
    assert response.status_code in (404, 422)
    assert "Sites" in text(response) and 'class="field checkboxes has-error"' in text(response)
    assert rows(db, User, User.name == "New Nurse") == 0


def test_manager_cannot_put_someone_on_another_site(login_as, manager, site, sister_site, db):
    response = login_as(manager).form_post("/people/new", person_data(site, site_ids=[site.id, sister_site.id]))
    assert response.status_code == 404
    assert rows(db, User, User.name == "New Nurse") == 0


def test_manager_cannot_see_other_sites_people(login_as, manager, sister_site, outsider, make_user, db):
    colleague = make_user("staff", [sister_site], name="Bandung Nurse")
    client = login_as(manager)
    page = text(client.get("/people"))
    assert "Bandung Nurse" not in page and outsider.name not in page
    for person in (colleague, outsider):
        assert client.get(f"/people/{person.id}").status_code == 404
        assert client.get(f"/people/{person.id}/edit").status_code == 404
        assert client.get(f"/people/{person.id}/pin").status_code == 404
        assert client.form_post(f"/people/{person.id}/deactivate").status_code == 404
        assert client.get(f"/training?person={person.id}").status_code == 404
    assert client.get(f"/people?site={sister_site.id}").status_code == 404
    assert fresh(db, User, colleague.id).is_active_user


def test_editing_keeps_the_sites_the_manager_cannot_see(login_as, manager, site, sister_site, make_user, db):
    shared = make_user("staff", [site, sister_site], name="Shared Nurse")
    response = login_as(manager).form_post(f"/people/{shared.id}/edit", person_data(
        site, name="Shared Nurse Renamed", email=shared.email, pin=""))
    assert response.status_code == 302
    user = fresh(db, User, shared.id)
    assert user.name == "Shared Nurse Renamed" and user.site_ids == {site.id, sister_site.id}
    assert check_password_hash(user.pin_hash, PIN)  # a blank PIN keeps the old one


def test_edit_form_shows_only_sites_in_reach(login_as, manager, site, sister_site, make_user):
    shared = make_user("staff", [site, sister_site], name="Shared Nurse")
    page = text(login_as(manager).get(f"/people/{shared.id}/edit"))
    assert "Jakarta" in page and "Bandung" not in page


def test_deactivated_user_cannot_sign_in(client, login_as, manager, make_user, site, nurse, enrol_tablet, db):
    colleague = make_user("manager", [site], name="Leaving Manager", email="leaving@example.test")
    login_as(manager)
    assert client.form_post(f"/people/{colleague.id}/deactivate").status_code == 302
    assert client.form_post(f"/people/{nurse.id}/deactivate").status_code == 302
    assert not fresh(db, User, colleague.id).is_active_user
    assert rows(db, User, User.id == colleague.id) == 1  # kept, not deleted
    client.form_post("/logout")
    assert client.form_post("/login", {"email": colleague.email, "password": PASSWORD}).status_code == 401
    enrol_tablet(site)
    assert nurse.name not in text(client.get("/tablet"))
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 404


def test_a_signed_in_person_is_signed_out_once_deactivated(client, login_as, manager, make_user, site, db):
    colleague = make_user("manager", [site], name="Leaving Manager")
    login_as(colleague)
    assert client.get("/overview").status_code == 200
    colleague.is_active_user = False
    db.session.commit()
    assert client.get("/overview").status_code == 302


def test_reactivated_person_appears_in_the_list_again(login_as, manager, nurse, db):
    client = login_as(manager)
    link = f'href="/people/{nurse.id}"'
    client.form_post(f"/people/{nurse.id}/deactivate")
    assert link not in text(client.get("/people"))
    assert link in text(client.get("/people?inactive=1"))
    client.form_post(f"/people/{nurse.id}/reactivate")
    assert link in text(client.get("/people"))


def test_nobody_can_deactivate_themselves(login_as, manager, db):
    response = login_as(manager).form_post(f"/people/{manager.id}/deactivate")
    assert response.status_code == 422 and "you cannot deactivate yourself" in text(response)
    assert fresh(db, User, manager.id).is_active_user


def test_reset_pin_lifts_the_lock(client, login_as, manager, nurse, site, enrol_tablet, db):
    locked_until = utcnow() + timedelta(minutes=15)
    nurse.pin_locked_until, nurse.pin_failed_count = locked_until, 0
    db.session.commit()
    login_as(manager)
    page = text(client.get(f"/people/{nurse.id}"))
    assert "Locked until" in page
    assert "Locked after too many wrong PINs" in text(client.get(f"/people/{nurse.id}/pin"))
    response = client.form_post(f"/people/{nurse.id}/pin", {"pin": "97531"})
    assert response.status_code == 200 and "97531" in text(response)  # shown once, on this response
    assert response.headers["Cache-Control"] == "no-store"
    user = fresh(db, User, nurse.id)
    assert user.pin_locked_until is None and user.pin_failed_count == 0
    assert check_password_hash(user.pin_hash, "97531")
    assert "not locked" in text(client.get(f"/people/{nurse.id}"))
    client.form_post("/logout")
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": "97531"}).status_code == 302


def test_lock_is_shown_in_the_sites_local_time(login_as, manager, nurse, db):
    nurse.pin_locked_until = datetime(2099, 1, 1, 3, 0, tzinfo=timezone.utc)  # 10:00 in Jakarta (UTC+7)
    db.session.commit()
    page = text(login_as(manager).get(f"/people/{nurse.id}"))
    assert re.search(r"Locked until [^<]*10[.:]00", page)


def test_an_empty_pin_is_made_for_the_person_and_shown_once(login_as, manager, nurse, db):
    client = login_as(manager)
    response = client.form_post(f"/people/{nurse.id}/pin", {"pin": ""})
    assert response.status_code == 200
    shown = re.search(r'class="pin-shown"[^>]*><strong>(\d+)</strong>', text(response)).group(1)
    assert len(shown) == 6 and check_password_hash(fresh(db, User, nurse.id).pin_hash, shown)
    assert shown not in text(client.get(f"/people/{nurse.id}"))  # not shown again, nor flashed


@pytest.mark.parametrize("pin", ["12", "abcd", "1234567"])
def test_reset_pin_refuses_a_bad_pin(login_as, manager, nurse, db, pin):
    response = login_as(manager).form_post(f"/people/{nurse.id}/pin", {"pin": pin})
    assert response.status_code == 422 and "pin must be 4 to 6 digits" in text(response)
    assert check_password_hash(fresh(db, User, nurse.id).pin_hash, PIN)


def test_list_is_paginated_and_searchable(login_as, manager, site, make_user, db):
    for i in range(30):
        make_user("staff", [site], name=f"Person {i:02d}", email=f"p{i:02d}@example.test")
    client = login_as(manager)
    first = text(client.get("/people?sort=name"))  # Mira Manager, then Person 00..23
    assert len(re.findall(r'href="/people/\d+"', first)) == 25
    assert "Person 23" in first and "Person 24" not in first
    assert "31 in all · page 1 of 2" in first and 'rel="next"' in first
    second = text(client.get("/people?sort=name&page=2"))
    assert len(re.findall(r'href="/people/\d+"', second)) == 6
    assert "Person 24" in second and "Person 29" in second and "Person 00" not in second
    found = text(client.get("/people?q=person 1"))
    assert len(re.findall(r'href="/people/\d+"', found)) == 10  # Person 10..19
    assert "Person 10" in found and "Person 20" not in found
    by_email = text(client.get("/people?q=p07@"))
    assert "Person 07" in by_email and "Person 08" not in by_email
    managers = text(client.get("/people?role=manager"))
    assert manager.name in managers and "Person 00" not in managers
    nobody = text(client.get("/people?q=zzz"))
    assert 'class="empty"' in nobody


def test_person_page_shows_sites_role_and_training(login_as, manager, nurse, make_training):
    make_training(nurse, course="first_aid")
    page = text(login_as(manager).get(f"/people/{nurse.id}"))
    assert "Staff" in page and "Jakarta" in page and "First aid" in page


# --- training ------------------------------------------------------------------------------------

def _training_data(user, **changes) -> dict:
    data = {"user_id": user.id, "course": "sterilisation", "completed_on": "2025-03-01",
            "expires_on": "2027-03-01", "evidence_ref": "CERT-1"}
    data.update(changes)
    return data


def test_manager_records_training(login_as, manager, nurse, db):
    response = login_as(manager).form_post("/training/new", _training_data(nurse))
    assert response.status_code == 302
    record = db.session.scalar(select(TrainingRecord))
    assert (record.user_id, record.course, record.completed_on, record.recorded_by_id) == (
        nurse.id, "sterilisation", date(2025, 3, 1), manager.id)


def test_training_expiry_before_completion_is_refused(login_as, manager, nurse, db):
    response = login_as(manager).form_post("/training/new", _training_data(nurse, expires_on="2024-01-01"))
    assert response.status_code == 422 and 'id="expires_on-error"' in text(response)
    assert rows(db, TrainingRecord) == 0


def test_training_with_a_bad_date_or_course_is_refused(login_as, manager, nurse, db):
    client = login_as(manager)
    assert client.form_post("/training/new", _training_data(nurse, completed_on="yesterday")).status_code == 422
    assert client.form_post("/training/new", _training_data(nurse, course="juggling")).status_code == 422
    assert rows(db, TrainingRecord) == 0


def test_manager_cannot_record_training_for_another_sites_person(login_as, manager, outsider, db):
    response = login_as(manager).form_post("/training/new", _training_data(outsider))
    assert response.status_code == 404
    assert rows(db, TrainingRecord) == 0


def test_training_correction_keeps_the_old_record(login_as, manager, nurse, make_training, db):
    old = make_training(nurse, course="first_aid", completed_on=date(2025, 1, 10))
    client = login_as(manager)
    assert "Correct a training record" in text(client.get(f"/training/{old.id}/correct"))
    response = client.form_post(f"/training/{old.id}/correct", _training_data(
        nurse, course="first_aid", completed_on="2025-01-11", expires_on="2026-01-11",
        reason="Date typed wrong"))
    assert response.status_code == 302
    old = fresh(db, TrainingRecord, old.id)
    new = db.session.get(TrainingRecord, old.replaced_by_id)
    assert not old.is_active and old.void_reason == "Date typed wrong" and old.completed_on == date(2025, 1, 10)
    assert new.is_active and new.completed_on == date(2025, 1, 11)
    assert rows(db, TrainingRecord) == 2
    assert "Date typed wrong" not in text(client.get("/training"))
    history = text(client.get("/training?inactive=1"))
    assert "Date typed wrong" in history and "Replaced" in history


def test_training_correction_needs_a_reason(login_as, manager, nurse, make_training, db):
    old = make_training(nurse)
    response = login_as(manager).form_post(f"/training/{old.id}/correct", _training_data(nurse, reason=""))
    assert response.status_code == 422 and 'id="reason-error"' in text(response)
    assert rows(db, TrainingRecord) == 1 and fresh(db, TrainingRecord, old.id).is_active


def test_a_replaced_record_cannot_be_corrected_again(login_as, manager, nurse, make_training, db):
    old = make_training(nurse)
    client = login_as(manager)
    client.form_post(f"/training/{old.id}/correct", _training_data(nurse, reason="first"))
    response = client.form_post(f"/training/{old.id}/correct", _training_data(nurse, reason="second"))
    assert response.status_code == 409 and "already replaced or withdrawn" in text(response)
    assert rows(db, TrainingRecord) == 2


def test_training_withdrawal_keeps_the_record_with_its_reason(login_as, manager, nurse, make_training, db):
    record = make_training(nurse)
    client = login_as(manager)
    assert client.form_post(f"/training/{record.id}/withdraw", {"reason": ""}).status_code == 422
    assert fresh(db, TrainingRecord, record.id).is_active
    response = client.form_post(f"/training/{record.id}/withdraw", {"reason": "Wrong person"})
    assert response.status_code == 302
    record = fresh(db, TrainingRecord, record.id)
    assert not record.is_active and record.void_reason == "Wrong person"
    assert rows(db, TrainingRecord) == 1
    history = text(client.get("/training?inactive=1"))
    assert "Withdrawn" in history and "Wrong person" in history


def test_training_list_shows_status_pills(login_as, manager, nurse, make_training):
    today = utcnow().date()
    make_training(nurse, course="first_aid", completed_on=today - timedelta(days=400),
                  expires_on=today - timedelta(days=35))
    make_training(nurse, course="sterilisation", completed_on=today - timedelta(days=300),
                  expires_on=today + timedelta(days=10))
    make_training(nurse, course="microneedling", completed_on=today - timedelta(days=10),
                  expires_on=today + timedelta(days=300))
    page = text(login_as(manager).get("/training"))
    assert "pill-bad\">Expired" in page and "pill-warn\">Expires soon" in page and "pill-ok\">Valid" in page


def test_a_renewed_course_is_not_shown_as_expired(login_as, manager, nurse, make_training):
    today = utcnow().date()
    make_training(nurse, course="first_aid", completed_on=today - timedelta(days=400),
                  expires_on=today - timedelta(days=35))
    make_training(nurse, course="first_aid", completed_on=today - timedelta(days=5),
                  expires_on=today + timedelta(days=360))
    page = text(login_as(manager).get("/training"))
    assert "Renewed" in page and ">Expired<" not in page


def test_expiry_is_judged_by_the_sites_local_date(login_as, manager, nurse, make_training):
    make_training(nurse, course="first_aid", completed_on=date(2024, 1, 1), expires_on=date(2025, 1, 1))
    # 2025-01-01 20:00 UTC is already 2 January in Jakarta (UTC+7): the course has lapsed there.
    with time_machine.travel(datetime(2025, 1, 1, 20, 0, tzinfo=timezone.utc), tick=False):
        page = text(login_as(manager).get("/training"))
    assert ">Expired<" in page
    with time_machine.travel(datetime(2025, 1, 1, 16, 0, tzinfo=timezone.utc), tick=False):
        page = text(login_as(manager).get("/training"))
    assert ">Expires soon<" in page


def test_training_list_filters_by_course_person_and_search(login_as, manager, nurse, site, make_user,
                                                           make_training):
    other = make_user("staff", [site], name="Other Nurse")
    make_training(nurse, course="first_aid")
    make_training(other, course="sterilisation")
    client = login_as(manager)
    assert "Other Nurse" not in text(client.get(f"/training?person={nurse.id}"))
    by_course = text(client.get("/training?course=sterilisation"))
    assert "Other Nurse" in by_course and nurse.name not in by_course
    assert "Other Nurse" in text(client.get("/training?q=other"))
    assert "Other Nurse" in text(client.get(f"/training?site={site.id}"))


def test_training_sorts_by_expiry_soonest_first(login_as, manager, nurse, make_training, db):
    make_training(nurse, course="first_aid", completed_on=date(2025, 1, 1), expires_on=date(2026, 1, 1))
    never = make_training(nurse, course="sterilisation", completed_on=date(2025, 1, 1))
    never.expires_on = None
    make_training(nurse, course="microneedling", completed_on=date(2025, 1, 1), expires_on=date(2025, 6, 1))
    db.session.commit()
    page = text(login_as(manager).get("/training?sort=expires")).split("<tbody>")[1]
    order = [page.index(label) for label in ("Micro-needling practice", "First aid",
                                             "Decontamination and sterilisation")]
    assert order == sorted(order)
    page = text(login_as(manager).get("/training?sort=-expires")).split("<tbody>")[1]
    assert page.index("Decontamination and sterilisation") < page.index("Micro-needling practice")


def test_training_empty_state(login_as, manager):
    page = text(login_as(manager).get("/training"))
    assert 'class="empty"' in page and "No training recorded yet" in page


def test_manager_cannot_touch_another_sites_training(login_as, manager, outsider, make_training, db):
    record = make_training(outsider)
    client = login_as(manager)
    assert client.get(f"/training/{record.id}/correct").status_code == 404
    assert client.form_post(f"/training/{record.id}/withdraw", {"reason": "x"}).status_code == 404
    assert fresh(db, TrainingRecord, record.id).is_active
    assert outsider.name not in text(client.get("/training"))


# --- overview ------------------------------------------------------------------------------------

def test_overview_counts_the_actors_sites(login_as, manager, nurse, site, outsider, make_training):
    today = utcnow().date()
    make_training(nurse, course="first_aid", completed_on=today - timedelta(days=400),
                  expires_on=today - timedelta(days=1))
    make_training(nurse, course="sterilisation", completed_on=today - timedelta(days=300),
                  expires_on=today + timedelta(days=20))
    make_training(outsider, course="first_aid", completed_on=today - timedelta(days=400),
                  expires_on=today - timedelta(days=1))
    page = text(login_as(manager).get("/overview"))
    counts = dict((label.strip(), int(n)) for n, label in re.findall(r"<strong>(\d+)</strong>([^<]+)</a>", page))
    assert counts == {"Sites": 1, "Rooms": 1, "Active people": 2, "Training expiring within 30 days": 1,
                      "Training expired": 1}
    assert "Some training has expired" in page


# --- API keys ------------------------------------------------------------------------------------

def test_api_key_shown_once_and_stored_hashed(login_as, admin, site, db):
    client = login_as(admin)
    response = client.form_post("/api-keys/new", {"site_id": site.id, "name": "Autoclave logger"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    key = re.search(r'value="(ck_[^"]+)"', text(response)).group(1)
    assert "Copy this key now" in text(response)
    row = db.session.scalar(select(ApiKey))
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in (row.name, row.prefix, row.key_hash) and key.startswith(f"ck_{row.prefix}_")
    listing = text(client.get("/api-keys"))
    assert "Autoclave logger" in listing and row.prefix in listing and key not in listing


def test_api_key_is_revoked_after_confirmation(login_as, admin, site, db):
    client = login_as(admin)
    client.form_post("/api-keys/new", {"site_id": site.id, "name": "Old logger"})
    row = db.session.scalar(select(ApiKey))
    listing = text(client.get("/api-keys"))
    assert f'action="/api-keys/{row.id}/revoke"' in listing and "data-confirm=" in listing
    assert client.form_post(f"/api-keys/{row.id}/revoke").status_code == 302
    assert fresh(db, ApiKey, row.id).revoked_at is not None
    assert "revoked" in text(client.get("/api-keys"))


def test_api_key_refusals_store_nothing(login_as, admin, other_site, site, db):
    client = login_as(admin)
    assert client.form_post("/api-keys/new", {"site_id": other_site.id, "name": "x"}).status_code == 404
    response = client.form_post("/api-keys/new", {"site_id": site.id, "name": LONG})
    assert response.status_code == 422 and 'id="name-error"' in text(response)
    assert client.form_post("/api-keys/new", {"site_id": site.id, "name": ""}).status_code == 422
    assert rows(db, ApiKey) == 0


def test_only_admins_manage_api_keys(login_as, manager, site, db):
    client = login_as(manager)
    assert client.get("/api-keys").status_code == 403
    assert client.form_post("/api-keys/new", {"site_id": site.id, "name": "x"}).status_code == 403
    assert rows(db, ApiKey) == 0


def test_api_keys_empty_state(login_as, admin):
    page = text(login_as(admin).get("/api-keys"))
    assert 'class="empty"' in page and "No API keys yet" in page


# --- long input, everywhere ----------------------------------------------------------------------

def test_ten_thousand_character_name_is_refused(login_as, admin, site, nurse, make_training, db):
    client = login_as(admin)
    record = make_training(nurse)
    before = (rows(db, Site), rows(db, Room), rows(db, User), rows(db, TrainingRecord))
    cases = [
        ("/sites/new", {"name": LONG, "timezone": "UTC", "language": "en"}, "name"),
        ("/sites/new", {"name": "Fine", "timezone": "UTC", "language": "en", "address": LONG}, "address"),
        ("/rooms/new", {"site_id": site.id, "name": LONG, "kind": "treatment"}, "name"),
        ("/people/new", person_data(site, name=LONG), "name"),
        ("/people/new", person_data(site, email=LONG + "@example.test"), "email"),
        ("/people/new", person_data(site, role="manager", password=LONG, pin=""), "password"),
        ("/people/new", person_data(site, pin=LONG), "pin"),
        ("/training/new", _training_data(nurse, evidence_ref=LONG), "evidence_ref"),
        (f"/training/{record.id}/correct", _training_data(nurse, reason=LONG), "reason"),
        (f"/training/{record.id}/withdraw", {"reason": LONG}, "reason"),
        (f"/people/{nurse.id}/pin", {"pin": LONG}, "pin"),
    ]
    for url, data, field in cases:
        response = client.form_post(url, data)
        assert response.status_code == 422, (url, field)
        assert f'id="{field}-error"' in text(response), (url, field)
    assert (rows(db, Site), rows(db, Room), rows(db, User), rows(db, TrainingRecord)) == before
    assert fresh(db, TrainingRecord, record.id).is_active


# --- pages ---------------------------------------------------------------------------------------

def test_pages_have_labels_and_no_inline_script_or_style(login_as, admin, site, nurse, make_training):
    record = make_training(nurse)
    client = login_as(admin)
    urls = ["/overview", "/sites", "/sites/new", f"/sites/{site.id}/edit", "/rooms", "/rooms/new",
            f"/rooms/{site.rooms[0].id}/edit", "/people", "/people/new", f"/people/{nurse.id}",
            f"/people/{nurse.id}/edit", f"/people/{nurse.id}/pin", "/training", "/training/new",
            f"/training/{record.id}/correct", f"/training/{record.id}/withdraw", "/api-keys", "/api-keys/new"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        page = text(response)
        assert "style=" not in page and "<style" not in page, url
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), url
        for input_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', page):
            if input_id == "csrf_token":
                continue
            assert f'for="{input_id}"' in page or re.search(
                rf'<label>\s*<input[^>]*id="{re.escape(input_id)}"', page), (url, input_id)
        if "<table" in page:
            assert "<thead>" in page, url
