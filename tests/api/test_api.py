"""The JSON API: session CRUD flows, API keys, authentication, pagination, input checks and error bodies."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from compliance.auth.models import ApiKey
from compliance.sites.models import Room, Site, TrainingRecord, User
from compliance.timeutil import utcnow

V1 = "/api/v1"


def _assert_utc_iso(value: str) -> None:
    """ISO 8601, UTC, with an explicit offset."""
    assert value.endswith("+00:00"), value
    assert datetime.fromisoformat(value).utcoffset() == timedelta(0)


def _site_body(**changes):
    return {"name": "Surabaya", "timezone": "Asia/Jakarta", "language": "id", "address": "Jl. Raya 1", **changes}


def _user_body(site_ids, **changes):
    return {"name": "Sari Staff", "email": "sari@example.com", "role": "staff", "site_ids": site_ids,
            "pin": "1357", **changes}


# --- session flows -------------------------------------------------------------------------------

def test_admin_creates_reads_updates_and_deactivates_a_site(login_as, admin, site, db):
    c = login_as(admin)
    r = c.api("POST", f"{V1}/sites", _site_body())
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert r.headers["Location"].endswith(f"{V1}/sites/{created['id']}")
    assert created == {"id": created["id"], "name": "Surabaya", "timezone": "Asia/Jakarta", "language": "id",
                       "locale": "id-ID", "address": "Jl. Raya 1", "is_active": True, "created_at": created["created_at"]}
    _assert_utc_iso(created["created_at"])
    assert db.session.get(Site, created["id"]).organisation_id == site.organisation_id

    assert c.api("GET", f"{V1}/sites/{created['id']}").get_json() == created

    r = c.api("PUT", f"{V1}/sites/{created['id']}", _site_body(name="Surabaya Timur", timezone="Asia/Makassar",
                                                              address=""))
    assert r.status_code == 200
    assert (r.get_json()["name"], r.get_json()["timezone"], r.get_json()["address"]) == (
        "Surabaya Timur", "Asia/Makassar", "")
    assert db.session.get(Site, created["id"]).timezone == "Asia/Makassar"
    assert r.get_json()["locale"] == "id-ID"  # left out of the PUT: kept
    r = c.api("PUT", f"{V1}/sites/{created['id']}", _site_body(name="Surabaya Timur", locale="en-US"))
    assert r.status_code == 200 and r.get_json()["locale"] == "en-US"
    r = c.api("PUT", f"{V1}/sites/{created['id']}", _site_body(name="Surabaya Timur", locale="fr-FR"))
    assert r.status_code == 422 and "locale" in r.get_json()["errors"]["json"]
    assert db.session.get(Site, created["id"]).locale == "en-US"

    r = c.api("POST", f"{V1}/sites/{created['id']}/deactivate")
    assert r.status_code == 200 and r.get_json()["is_active"] is False
    assert [s["name"] for s in c.api("GET", f"{V1}/sites").get_json()] == ["Jakarta"]
    listed = c.api("GET", f"{V1}/sites?include_inactive=true").get_json()
    assert [s["name"] for s in listed] == ["Jakarta", "Surabaya Timur"]


def test_manager_adds_renames_lists_and_deactivates_a_room(login_as, manager, site, db):
    c = login_as(manager)
    r = c.api("POST", f"{V1}/rooms", {"site_id": site.id, "name": "Decon", "kind": "decontamination"})
    assert r.status_code == 201, r.get_json()
    room = r.get_json()
    assert (room["site_id"], room["name"], room["kind"], room["is_active"]) == (site.id, "Decon", "decontamination",
                                                                                True)
    _assert_utc_iso(room["created_at"])

    r = c.api("PUT", f"{V1}/rooms/{room['id']}", {"site_id": site.id, "name": "Sterilisation", "kind": "storage"})
    assert r.status_code == 200 and r.get_json()["name"] == "Sterilisation"
    assert db.session.get(Room, room["id"]).kind == "storage"

    names = [x["name"] for x in c.api("GET", f"{V1}/rooms?site_id={site.id}").get_json()]
    assert names == ["Room 1", "Sterilisation"]
    assert [x["name"] for x in c.api("GET", f"{V1}/rooms?q=steril").get_json()] == ["Sterilisation"]

    r = c.api("POST", f"{V1}/rooms/{room['id']}/deactivate")
    assert r.status_code == 200 and r.get_json()["is_active"] is False
    assert [x["name"] for x in c.api("GET", f"{V1}/rooms").get_json()] == ["Room 1"]


def test_duplicate_room_name_is_409_naming_name(login_as, manager, site, snapshot):
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/rooms", {"site_id": site.id, "name": "ROOM 1", "kind": "treatment"})
    assert r.status_code == 409
    assert r.get_json()["errors"] == {"name": [r.get_json()["message"]]}
    assert snapshot() == before


def test_manager_adds_edits_resets_pin_and_deactivates_a_person(login_as, manager, site, db):
    c = login_as(manager)
    r = c.api("POST", f"{V1}/users", _user_body([site.id], email="Sari@Example.COM"))
    assert r.status_code == 201, r.get_json()
    person = r.get_json()
    assert r.headers["Location"].endswith(f"{V1}/users/{person['id']}")
    assert person == {"id": person["id"], "name": "Sari Staff", "email": "sari@example.com", "role": "staff",
                      "language": None, "locale": None, "is_active": True, "site_ids": [site.id],
                      "has_password": False,
                      "has_pin": True, "pin_locked_until": None, "created_at": person["created_at"]}
    _assert_utc_iso(person["created_at"])
    assert check_password_hash(db.session.get(User, person["id"]).pin_hash, "1357")

    body = _user_body([site.id], name="Sari S.", language="id")
    del body["pin"]  # left out: the PIN stays
    r = c.api("PUT", f"{V1}/users/{person['id']}", body)
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["name"], r.get_json()["language"], r.get_json()["has_pin"]) == ("Sari S.", "id", True)
    assert check_password_hash(db.session.get(User, person["id"]).pin_hash, "1357")

    assert [u["name"] for u in c.api("GET", f"{V1}/users?role=staff&q=sari").get_json()] == ["Sari S."]
    assert c.api("GET", f"{V1}/users?role=manager&q=sari").get_json() == []

    user = db.session.get(User, person["id"])
    user.pin_failed_count, user.pin_locked_until = 4, utcnow() + timedelta(minutes=10)
    db.session.commit()
    locked = c.api("GET", f"{V1}/users/{person['id']}").get_json()["pin_locked_until"]
    _assert_utc_iso(locked)
    r = c.api("POST", f"{V1}/users/{person['id']}/pin", {"pin": "975310"})
    assert r.status_code == 200 and r.get_json()["pin_locked_until"] is None
    user = db.session.get(User, person["id"])
    assert check_password_hash(user.pin_hash, "975310") and user.pin_failed_count == 0

    r = c.api("POST", f"{V1}/users/{person['id']}/deactivate")
    assert r.status_code == 200 and r.get_json()["is_active"] is False
    assert c.api("GET", f"{V1}/users?q=sari").get_json() == []
    assert len(c.api("GET", f"{V1}/users?q=sari&include_inactive=1").get_json()) == 1


def test_user_output_never_contains_hashes_or_secrets(login_as, admin, manager, nurse):
    people = login_as(admin).api("GET", f"{V1}/users").get_json()
    assert {p["email"] for p in people} >= {admin.email, manager.email, nurse.email}
    for person in people:
        assert not {"password_hash", "pin_hash", "password", "pin"} & set(person)
        assert person["site_ids"] == sorted(person["site_ids"])


def test_manager_records_corrects_and_withdraws_training(login_as, manager, nurse, db):
    c = login_as(manager)
    body = {"user_id": nurse.id, "course": "first_aid", "completed_on": "2025-01-10", "expires_on": "2027-01-10",
            "evidence_ref": "FA-1"}
    r = c.api("POST", f"{V1}/training", body)
    assert r.status_code == 201, r.get_json()
    first = r.get_json()
    assert first == {**body, "id": first["id"], "is_active": True, "replaced_by_id": None, "void_reason": "",
                     "recorded_by_id": manager.id, "created_at": first["created_at"]}
    _assert_utc_iso(first["created_at"])
    assert [t["id"] for t in c.api("GET", f"{V1}/training?user_id={nurse.id}&course=first_aid").get_json()] == [
        first["id"]]

    r = c.api("POST", f"{V1}/training/{first['id']}/correct", {**body, "completed_on": "2025-01-12",
                                                                 "reason": "wrong date on the form"})
    assert r.status_code == 201, r.get_json()
    second = r.get_json()
    assert (second["completed_on"], second["is_active"]) == ("2025-01-12", True)
    old = c.api("GET", f"{V1}/training/{first['id']}").get_json()
    assert (old["is_active"], old["replaced_by_id"], old["void_reason"]) == (False, second["id"],
                                                                              "wrong date on the form")
    assert [t["id"] for t in c.api("GET", f"{V1}/training?course=first_aid").get_json()] == [second["id"]]
    everything = c.api("GET", f"{V1}/training?course=first_aid&include_inactive=true").get_json()
    assert {t["id"] for t in everything} == {first["id"], second["id"]}

    r = c.api("POST", f"{V1}/training/{first['id']}/correct", {**body, "reason": "again"})
    assert r.status_code == 409 and "record_id" in r.get_json()["errors"]

    r = c.api("POST", f"{V1}/training/{second['id']}/withdraw", {"reason": "entered for the wrong person"})
    assert r.status_code == 200
    assert (r.get_json()["is_active"], r.get_json()["void_reason"]) == (False, "entered for the wrong person")
    assert c.api("POST", f"{V1}/training/{second['id']}/withdraw", {"reason": "twice"}).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(TrainingRecord)) == 2


def test_me_describes_the_signed_in_person(login_as, manager, site):
    r = login_as(manager).api("GET", f"{V1}/me")
    assert r.status_code == 200
    me = r.get_json()
    assert (me["kind"], me["name"], me["role"], me["site_ids"], me["user_id"], me["api_key_id"]) == (
        "user", "Mira Manager", "manager", [site.id], manager.id, None)
    assert "rooms.write" in me["permissions"] and "sites.write" not in me["permissions"]


def test_me_describes_the_api_key(client, admin, site, make_key):
    me = client.api("GET", f"{V1}/me", key=make_key(site, by=admin)).get_json()
    assert (me["kind"], me["name"], me["role"], me["site_ids"], me["user_id"]) == (
        "api_key", "logger", "machine", [site.id], None)
    # A data logger: its site's sterilisation records, and posting tests and cycles; no people, rooms or sites.
    assert set(me["permissions"]) == {"sterilisation.read", "tests.record", "cycles.record"}


# --- pagination ----------------------------------------------------------------------------------

def test_lists_are_paginated_with_an_x_pagination_header(login_as, manager, site, db):
    db.session.add_all(Room(site=site, name=f"Room {n}") for n in range(2, 6))  # Room 1 .. Room 5
    db.session.commit()
    c = login_as(manager)
    r = c.api("GET", f"{V1}/rooms?page=2&page_size=2")
    assert r.status_code == 200
    assert [x["name"] for x in r.get_json()] == ["Room 3", "Room 4"]
    assert json.loads(r.headers["X-Pagination"]) == {"total": 5, "total_pages": 3, "first_page": 1,
                                                    "last_page": 3, "page": 2, "previous_page": 1, "next_page": 3}
    r = c.api("GET", f"{V1}/rooms")  # default page size 25
    assert len(r.get_json()) == 5 and json.loads(r.headers["X-Pagination"])["total_pages"] == 1


@pytest.mark.parametrize("query,field", [("page_size=101", "page_size"), ("page=0", "page"),
                                         ("site_id=abc", "site_id"), ("role=owner", "role")])
def test_bad_query_parameters_are_422_naming_them(login_as, manager, query, field):
    url = f"{V1}/users?{query}" if field == "role" else f"{V1}/rooms?{query}"
    r = login_as(manager).api("GET", url)
    assert r.status_code == 422
    assert field in r.get_json()["errors"]["query"]


# --- authentication ------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [("GET", "/me"), ("GET", "/sites"), ("GET", "/rooms/1"),
                                         ("POST", "/sites"), ("POST", "/rooms/1/deactivate"),
                                         ("PUT", "/users/1")])
def test_no_credentials_is_401_before_the_body_is_read(client, site, snapshot, method, path):
    before = snapshot()
    r = client.open(f"{V1}{path}", method=method, json={"name": "x" * 10_000})
    assert r.status_code == 401
    assert r.get_json()["code"] == 401 and r.get_json()["message"]
    assert snapshot() == before


def test_api_key_reads_no_sites_or_rooms_not_even_its_own(client, world, make_key):
    """A data logger needs neither: 403 for its own site's as for any other (the role decides before the reach)."""
    key = make_key(world.site, by=world.admin)
    for path in ("/rooms", f"/rooms/{world.room_id}", f"/rooms/{world.b_room_id}", f"/rooms/{world.x_room_id}",
                 "/sites", f"/sites/{world.site_id}"):
        r = client.api("GET", f"{V1}{path}", key=key)
        assert r.status_code == 403, path
        assert "machine" in r.get_json()["message"]


def test_api_key_write_is_403_and_stores_nothing(client, world, make_key, snapshot):
    key = make_key(world.site, by=world.admin)
    before = snapshot()
    r = client.api("POST", f"{V1}/rooms", {"site_id": world.site_id, "name": "Logger room", "kind": "storage"},
                   key=key)
    assert r.status_code == 403 and r.get_json()["code"] == 403
    assert snapshot() == before


def test_api_key_use_is_recorded(client, admin, site, make_key, db):
    key = make_key(site, by=admin)
    assert client.api("GET", f"{V1}/me", key=key).status_code == 200
    assert db.session.scalar(select(ApiKey.last_used_at)) is not None


@pytest.mark.parametrize("case", ["revoked", "unknown", "site deactivated", "x-api-key header revoked"])
def test_revoked_or_unknown_key_is_401(client, admin, site, make_key, db, case):
    key = make_key(site, by=admin, revoked=case.endswith("revoked"))
    if case == "unknown":
        key = key[:-4] + "AAAA"
    if case == "site deactivated":
        site.is_active = False
        db.session.commit()
    if case.startswith("x-api-key"):
        r = client.open(f"{V1}/rooms", headers={"X-API-Key": key})
    else:
        r = client.api("GET", f"{V1}/rooms", key=key)
    assert r.status_code == 401
    assert r.get_json() == {"code": 401, "message": "unknown or revoked API key"}


def test_missing_csrf_header_on_a_session_write_is_400_and_stores_nothing(login_as, manager, site, snapshot):
    c = login_as(manager)
    before = snapshot()
    room = {"site_id": site.id, "name": "Sneaky", "kind": "treatment"}
    r = c.api("POST", f"{V1}/rooms", room, csrf=False)
    assert r.status_code == 400
    assert "csrf_token" in r.get_json()["errors"]
    r = c.open(f"{V1}/rooms", method="POST", json=room, headers={"X-CSRFToken": "forged"})
    assert r.status_code == 400
    r = c.api("POST", f"{V1}/rooms", {"name": "x" * 10_000}, csrf=False)  # checked before the body is read
    assert r.status_code == 400
    assert snapshot() == before
    assert c.api("GET", f"{V1}/rooms").status_code == 200  # reads need no token


# --- input checks --------------------------------------------------------------------------------

def test_duplicate_email_is_409_naming_email_and_the_person_who_has_it(login_as, manager, make_user, site, snapshot):
    existing = make_user("staff", [site], email="dup@example.com")
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/users", _user_body([site.id], email="DUP@example.com"))
    assert r.status_code == 409
    assert r.get_json() == {"code": 409, "message": r.get_json()["message"],
                            "errors": {"email": [r.get_json()["message"]]}, "existing_id": existing.id}
    assert snapshot() == before


def test_an_email_used_in_another_organisation_is_409_without_naming_anyone(login_as, manager, outsider, site):
    r = login_as(manager).api("POST", f"{V1}/users", _user_body([site.id], email=outsider.email))
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["email"]
    assert "existing_id" not in r.get_json()


def test_pin_with_a_letter_is_422_naming_pin(login_as, manager, nurse, site, snapshot):
    c = login_as(manager)
    before = snapshot()
    r = c.api("POST", f"{V1}/users", _user_body([site.id], pin="12a4"))
    assert r.status_code == 422
    assert set(r.get_json()["errors"]["json"]) == {"pin"}
    r = c.api("POST", f"{V1}/users/{nurse.id}/pin", {"pin": "12a4"})
    assert r.status_code == 422
    assert set(r.get_json()["errors"]["json"]) == {"pin"}
    assert snapshot() == before


def test_staff_without_pin_is_422_from_the_business_rule(login_as, manager, site, snapshot):
    before = snapshot()
    body = _user_body([site.id])
    del body["pin"]
    r = login_as(manager).api("POST", f"{V1}/users", body)
    assert r.status_code == 422
    assert list(r.get_json()["errors"]) == ["pin"]
    assert snapshot() == before


def test_unknown_time_zone_is_422_naming_timezone(login_as, admin, site, snapshot):
    c = login_as(admin)
    before = snapshot()
    r = c.api("POST", f"{V1}/sites", _site_body(timezone="Mars/Olympus_Mons"))
    assert r.status_code == 422
    assert list(r.get_json()["errors"]["json"]) == ["timezone"]
    r = c.api("PUT", f"{V1}/sites/{site.id}", _site_body(timezone="Asia/Jakarta "))
    assert r.status_code == 422 and "timezone" in r.get_json()["errors"]["json"]
    assert snapshot() == before


LONG_NAME_CASES = {
    "site": ("admin", "POST", "/sites", lambda w: _site_body()),
    "site update": ("admin", "PUT", "/sites/{site_id}", lambda w: _site_body()),
    "room": ("manager", "POST", "/rooms", lambda w: {"site_id": w.site_id, "kind": "treatment"}),
    "person": ("manager", "POST", "/users", lambda w: _user_body([w.site_id])),
    "person update": ("manager", "PUT", "/users/{nurse_id}", lambda w: _user_body([w.site_id], email="nurse@example.com")),
}


@pytest.mark.parametrize("case", LONG_NAME_CASES)
def test_a_10000_character_name_is_422_naming_name(login_as, world, snapshot, case):
    who, method, path, body = LONG_NAME_CASES[case]
    before = snapshot()
    r = login_as(getattr(world, who)).api(method, V1 + path.format(**vars(world)),
                                          {**body(world), "name": "N" * 10_000})
    assert r.status_code == 422
    assert r.get_json()["code"] == 422
    assert list(r.get_json()["errors"]["json"]) == ["name"]
    assert snapshot() == before


@pytest.mark.parametrize("path,body,field", [
    ("/users", lambda w: _user_body([w.site_id], password_hash="scrypt:forged"), "password_hash"),
    ("/users", lambda w: _user_body([w.site_id], organisation_id=999), "organisation_id"),
    ("/rooms", lambda w: {"site_id": w.site_id, "name": "R", "kind": "treatment", "is_active": False}, "is_active"),
    ("/training", lambda w: {"user_id": w.nurse_id, "course": "first_aid", "completed_on": "2025-01-01",
                             "recorded_by_id": w.admin_id}, "recorded_by_id"),
])
def test_an_unknown_json_field_is_refused_with_422(login_as, world, snapshot, path, body, field):
    before = snapshot()
    r = login_as(world.manager).api("POST", V1 + path, body(world))
    assert r.status_code == 422
    assert r.get_json()["errors"]["json"] == {field: ["Unknown field."]}
    assert snapshot() == before


@pytest.mark.parametrize("body,field", [
    ({"site_id": "one", "name": "R", "kind": "treatment"}, "site_id"),
    ({"site_id": 1, "name": 7, "kind": "treatment"}, "name"),
    ({"site_id": 1, "name": "R", "kind": "kitchen"}, "kind"),
    ({"name": "R", "kind": "treatment"}, "site_id"),
])
def test_wrong_type_choice_or_missing_field_is_422_naming_it(login_as, manager, site, snapshot, body, field):
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/rooms", body)
    assert r.status_code == 422
    assert list(r.get_json()["errors"]["json"]) == [field]
    assert snapshot() == before


def test_malformed_json_is_400(login_as, manager):
    c = login_as(manager)
    r = c.open(f"{V1}/rooms", method="POST", data="{not json", content_type="application/json",
               headers={"X-CSRFToken": c.csrf_token()})
    assert r.status_code == 400 and r.get_json()["code"] == 400


def test_training_that_expires_before_completion_is_422(login_as, manager, nurse, snapshot):
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/training", {"user_id": nurse.id, "course": "first_aid",
                                                          "completed_on": "2025-05-01", "expires_on": "2025-04-30"})
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["expires_on"]
    assert snapshot() == before


def test_timestamps_convert_any_offset_to_utc(login_as, manager, nurse, db):
    user = db.session.get(User, nurse.id)
    user.pin_locked_until = datetime(2030, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=7)))
    db.session.commit()
    body = login_as(manager).api("GET", f"{V1}/users/{nurse.id}").get_json()
    assert body["pin_locked_until"] == "2030-01-01T02:00:00+00:00"
