"""Who may reach what over the API, table-driven: out-of-reach objects are 404 (never 403: their existence is
not confirmed), read-only callers get 403 on every write, and nothing is stored by a refused request."""
from types import SimpleNamespace

import pytest

V1 = "/api/v1"


def _person(site_id, email="planted@example.com"):
    return {"name": "Planted", "email": email, "role": "staff", "site_ids": [site_id], "pin": "8642"}


def _training(user_id, **extra):
    return {"user_id": user_id, "course": "first_aid", "completed_on": "2025-02-01", **extra}


# (method, path, body) — {site}, {room}, {user}, {record} are the target's; own_* are site A's.
OUT_OF_REACH = {
    "read site": ("GET", "/sites/{site}", None),
    "read room": ("GET", "/rooms/{room}", None),
    "update room": ("PUT", "/rooms/{room}", lambda t, w: {"site_id": w.site_id, "name": "Mine", "kind": "storage"}),
    "deactivate room": ("POST", "/rooms/{room}/deactivate", None),
    "add room to their site": ("POST", "/rooms", lambda t, w: {"site_id": t.site, "name": "Planted",
                                                                "kind": "treatment"}),
    "move own room to their site": ("PUT", "/rooms/{own_room}", lambda t, w: {"site_id": t.site, "name": "Moved",
                                                                              "kind": "treatment"}),
    "read person": ("GET", "/users/{user}", None),
    "update person": ("PUT", "/users/{user}", lambda t, w: _person(w.site_id, "taken@example.com")),
    "deactivate person": ("POST", "/users/{user}/deactivate", None),
    "reset their PIN": ("POST", "/users/{user}/pin", lambda t, w: {"pin": "8642"}),
    "add person to their site": ("POST", "/users", lambda t, w: _person(t.site)),
    "give own person their site": ("PUT", "/users/{own_user}", lambda t, w: _person(t.site, "nurse@example.com")),
    "read training": ("GET", "/training/{record}", None),
    "record their training": ("POST", "/training", lambda t, w: _training(t.user)),
    "correct their training": ("POST", "/training/{record}/correct",
                               lambda t, w: _training(w.nurse_id, reason="mine now")),
    "withdraw their training": ("POST", "/training/{record}/withdraw", lambda t, w: {"reason": "gone"}),
}
# Only admins may change sites; for them another organisation's site is out of reach.
ADMIN_OUT_OF_REACH = {
    "update site": ("PUT", "/sites/{site}", lambda t, w: {"name": "Mine", "timezone": "UTC", "language": "en"}),
    "deactivate site": ("POST", "/sites/{site}/deactivate", None),
}


def _target(w, which):
    """Site B of the caller's own organisation, or a site of another organisation."""
    if which == "site B":
        return SimpleNamespace(site=w.site_b_id, room=w.b_room_id, user=w.b_nurse_id, record=w.b_record_id)
    return SimpleNamespace(site=w.other_site_id, room=w.x_room_id, user=w.x_nurse_id, record=w.x_record_id)


def _call(client, w, t, method, path, body, key=None):
    url = V1 + path.format(site=t.site, room=t.room, user=t.user, record=t.record,
                           own_room=w.room_id, own_user=w.nurse_id)
    return client.api(method, url, body(t, w) if body else None, key=key)


@pytest.mark.parametrize("case", OUT_OF_REACH)
@pytest.mark.parametrize("which", ["site B", "another organisation"])
def test_manager_of_site_a_gets_404_for_anything_of_another_site(login_as, world, snapshot, which, case):
    client = login_as(world.manager)
    before = snapshot()
    r = _call(client, world, _target(world, which), *OUT_OF_REACH[case])
    assert r.status_code == 404, r.get_json()
    assert r.get_json()["code"] == 404
    assert snapshot() == before


@pytest.mark.parametrize("case", {**OUT_OF_REACH, **ADMIN_OUT_OF_REACH})
def test_admin_gets_404_for_anything_of_another_organisation(login_as, world, snapshot, case):
    client = login_as(world.admin)
    before = snapshot()
    cases = {**OUT_OF_REACH, **ADMIN_OUT_OF_REACH}
    r = _call(client, world, _target(world, "another organisation"), *cases[case])
    assert r.status_code == 404, r.get_json()
    assert snapshot() == before


@pytest.mark.parametrize("kind", ["sites", "rooms", "users", "training"])
def test_an_out_of_reach_object_answers_exactly_like_a_missing_one(login_as, world, kind):
    client = login_as(world.manager)
    theirs = {"sites": world.site_b_id, "rooms": world.b_room_id, "users": world.b_nurse_id,
              "training": world.b_record_id}[kind]
    out_of_reach = client.api("GET", f"{V1}/{kind}/{theirs}")
    missing = client.api("GET", f"{V1}/{kind}/987654")
    assert (out_of_reach.status_code, out_of_reach.get_json()) == (missing.status_code, missing.get_json())


@pytest.mark.parametrize("path,filter_", [("/rooms", "site_id={site_b}"), ("/users", "site_id={site_b}"),
                                          ("/training", "user_id={b_nurse}"), ("/sites", "q=Bandung")])
def test_lists_leave_out_other_sites_even_when_asked_for_them(login_as, world, path, filter_):
    client = login_as(world.manager)
    query = filter_.format(site_b=world.site_b_id, b_nurse=world.b_nurse_id)
    r = client.api("GET", f"{V1}{path}?{query}&include_inactive=true")
    assert r.status_code == 200 and r.get_json() == []
    everything = client.api("GET", f"{V1}{path}?include_inactive=true").get_json()
    own = {"/rooms": {world.room_id}, "/sites": {world.site_id}, "/training": {world.record_id},
           "/users": {world.manager_id, world.admin_id, world.auditor_id, world.nurse_id}}[path]
    assert {x["id"] for x in everything} == own


# Every write, with a body that an admin's request would carry through (see the control test below).
WRITES = {
    "add site": ("POST", "/sites", lambda t, w: {"name": "Surabaya", "timezone": "Asia/Jakarta", "language": "id"}),
    "update site": ("PUT", "/sites/{site}", lambda t, w: {"name": "Renamed", "timezone": "UTC", "language": "en"}),
    "deactivate site": ("POST", "/sites/{site}/deactivate", None),
    "add room": ("POST", "/rooms", lambda t, w: {"site_id": t.site, "name": "New room", "kind": "treatment"}),
    "update room": ("PUT", "/rooms/{room}", lambda t, w: {"site_id": t.site, "name": "Renamed", "kind": "storage"}),
    "deactivate room": ("POST", "/rooms/{room}/deactivate", None),
    "add person": ("POST", "/users", lambda t, w: _person(t.site)),
    "update person": ("PUT", "/users/{user}", lambda t, w: _person(t.site, "nurse@example.com")),
    "deactivate person": ("POST", "/users/{user}/deactivate", None),
    "reset PIN": ("POST", "/users/{user}/pin", lambda t, w: {"pin": "8642"}),
    "record training": ("POST", "/training", lambda t, w: _training(t.user)),
    "correct training": ("POST", "/training/{record}/correct", lambda t, w: _training(t.user, reason="typo")),
    "withdraw training": ("POST", "/training/{record}/withdraw", lambda t, w: {"reason": "entered in error"}),
}
READS = ["/me", "/sites", "/sites/{site}", "/rooms", "/rooms/{room}", "/users", "/users/{user}", "/training",
         "/training/{record}"]


def _own(w):
    return SimpleNamespace(site=w.site_id, room=w.room_id, user=w.nurse_id, record=w.record_id)


@pytest.mark.parametrize("case", WRITES)
@pytest.mark.parametrize("caller", ["auditor", "site API key"])
def test_read_only_callers_get_403_on_every_write_and_nothing_is_stored(login_as, client, make_key, world,
                                                                       snapshot, caller, case):
    if caller == "auditor":
        client, key = login_as(world.auditor), None
    else:
        key = make_key(world.site, by=world.admin)
    before = snapshot()
    r = _call(client, world, _own(world), *WRITES[case], key=key)
    assert r.status_code == 403, r.get_json()
    assert r.get_json()["code"] == 403 and r.get_json()["message"]
    assert snapshot() == before


@pytest.mark.parametrize("case", WRITES)
def test_admin_may_do_every_write_of_the_table(login_as, world, snapshot, case):
    """The control for the 403s above: the same requests succeed for an admin and change the database."""
    before = snapshot()
    r = _call(login_as(world.admin), world, _own(world), *WRITES[case])
    assert r.status_code in (200, 201), r.get_json()
    assert snapshot() != before


@pytest.mark.parametrize("path", READS)
def test_auditor_may_read_their_site(login_as, world, path):
    t = _own(world)
    r = login_as(world.auditor).api("GET", V1 + path.format(site=t.site, room=t.room, user=t.user, record=t.record))
    assert r.status_code == 200, r.get_json()


@pytest.mark.parametrize("path", READS)
def test_site_api_key_reads_no_site_room_person_or_training_of_its_own_site(client, make_key, world, path):
    """A data logger's key is not a person: of these it reads only /me (tests/api/test_integrators.py walks all)."""
    t = _own(world)
    r = client.api("GET", V1 + path.format(site=t.site, room=t.room, user=t.user, record=t.record),
                   key=make_key(world.site, by=world.admin))
    assert r.status_code == (200 if path == "/me" else 403), r.get_json()


def test_manager_may_not_change_sites_or_give_the_admin_role(login_as, world, snapshot):
    client = login_as(world.manager)
    before = snapshot()
    assert _call(client, world, _own(world), *WRITES["update site"]).status_code == 403
    assert _call(client, world, _own(world), *WRITES["add site"]).status_code == 403
    r = client.api("POST", f"{V1}/users", {**_person(world.site_id), "role": "admin", "password": "long-enough-pw"})
    assert r.status_code == 403 and list(r.get_json()["errors"]) == ["role"]
    assert snapshot() == before
