"""The API as an integrator (a steriliser's data logger) meets it: what a site's key may read, idempotency keys on
steriliser tests and cycles, 409s that name the existing record, the X-Pagination and X-API-Key headers as
documented, and 413 and 414 answered in JSON."""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.sites.models import Site, User
from compliance.sterilisation.models import Cycle, Pack, SteriliserTest
from tests.schedule.conftest import free_port
from tests.test_permissions import _ids

from .test_sterilisation_api import cycle_body, make_device, make_steriliser, packed, step  # noqa: F401 (fixtures)

V1 = "/api/v1"
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# Everything a data logger needs of its site, and nothing more.
MACHINE_READS = {"/api/v1/me", "/api/v1/sterilisers", "/api/v1/sterilisers/{steriliser_id}",
                 "/api/v1/steriliser-tests", "/api/v1/steriliser-tests/{test_id}", "/api/v1/cycles",
                 "/api/v1/cycles/{cycle_id}", "/api/v1/packs", "/api/v1/packs/{code}",
                 "/api/v1/cycle-records", "/api/v1/cycle-records/{curve_id}", "/api/v1/cycle-records/{curve_id}/file"}

# Lists that need a query to be read at all (else 422, whoever asks).
QUERIES = {"/api/v1/rates": "?site_id={site_id}", "/api/v1/look-back": "?cycle_id={cycle_id}"}


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- a site's key reads what a data logger needs, never people ------------------------------------

def test_a_site_key_reads_exactly_what_a_data_logger_needs_and_no_email_or_name(app, client, runner, db, make_key):
    """Every GET of the OpenAPI document, with a demo site's key and real ids of that site: the logger's reads answer
    200 with data, everything else 403; no answer holds an email address or a person's name."""
    assert runner.invoke(args=["demo"]).exit_code == 0
    site = db.session.scalar(select(Site).where(Site.name == "Jakarta Kemang"))
    admin = db.session.scalar(select(User).where(User.email == "admin@demo.clinic"))
    key = make_key(site, by=admin)
    ids = _ids(site)
    ids["test_id"] = db.session.scalar(select(SteriliserTest.id).where(SteriliserTest.site_id == site.id).limit(1))
    assert ids["test_id"] and ids["cycle_id"] != 999999 and ids["steriliser_id"] != 999999
    names = [n for n in db.session.scalars(select(User.name)) if len(n) > 3]
    spec = client.get(f"{V1}/openapi.json").get_json()
    gets = [path for path, item in spec["paths"].items() if "get" in item]
    assert MACHINE_READS < set(gets) and len(gets) > 40

    answers, leaks = {}, []
    for path in gets:
        url = re.sub(r"{(\w+)}", lambda m: str(ids.get(m.group(1), 999999)), path) + QUERIES.get(path, "").format(**ids)
        response = client.api("GET", url, key=key)
        answers[path] = response.status_code
        body = response.get_data(as_text=True)
        if EMAIL.search(body) or any(name in body for name in names):
            leaks.append(path)
        if path in MACHINE_READS and "{" not in path and path != "/api/v1/me":
            assert response.get_json(), f"{path} lists nothing: the walk would prove little"
    assert {path for path, status in answers.items() if status == 200} == MACHINE_READS
    assert {path: status for path, status in answers.items() if path not in MACHINE_READS} == {
        path: 403 for path in gets if path not in MACHINE_READS}
    assert leaks == []
    undocumented = [path for path in gets if answers[path] == 403 and "403" not in spec["paths"][path]["get"]["responses"]]
    assert undocumented == []
    me = client.api("GET", f"{V1}/me", key=key).get_json()
    assert set(me["permissions"]) == {"sterilisation.read", "tests.record", "cycles.record"}


def test_people_keep_their_reads(login_as, auditor, nurse, site):
    """The control for the 403s above: the people who read these lists still do."""
    for person, paths in ((auditor, ("/users", "/training", "/sites", "/rooms", "/recalls", "/devices")),
                          (nurse, ("/recalls", "/devices", "/checklist-runs", "/obligations"))):
        client = login_as(person)
        for path in paths:
            assert client.api("GET", V1 + path).status_code == 200, (person.role, path)


# --- idempotency keys on steriliser tests ---------------------------------------------------------

@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _test_body(steriliser, **changes):
    return {"steriliser_id": steriliser.id, "kind": "air_removal", "result": "pass",
            "performed_at": (NOW - timedelta(minutes=5)).isoformat(), "idempotency_key": "logger-0001-air", **changes}


def test_a_replayed_test_answers_200_with_the_stored_test_and_stores_nothing(frozen, client, admin, site, make_key,
                                                                              make_steriliser, db):
    key = make_key(site, by=admin)
    steriliser = make_steriliser(site)
    first = client.api("POST", f"{V1}/steriliser-tests", _test_body(steriliser), key=key)
    assert first.status_code == 201, first.get_json()
    # The same values written differently (another offset for the same instant) mean the same test.
    again = client.api("POST", f"{V1}/steriliser-tests", _test_body(
        steriliser, performed_at=(NOW - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=7))).isoformat()),
        key=key)
    assert again.status_code == 200, again.get_json()
    assert again.get_json() == first.get_json()
    assert again.get_json()["idempotency_key"] == "logger-0001-air"
    assert _count(db, SteriliserTest) == 1


@pytest.mark.parametrize("change", ["result", "site", "author"])
def test_another_use_of_a_tests_key_is_a_409_naming_the_existing_test(frozen, client, login_as, admin, manager, site,
                                                                      make_site, make_key, make_steriliser, db, change):
    key = make_key(site, by=admin)
    steriliser = make_steriliser(site)
    first = client.api("POST", f"{V1}/steriliser-tests", _test_body(steriliser), key=key).get_json()
    if change == "result":
        r = client.api("POST", f"{V1}/steriliser-tests", _test_body(steriliser, result="fail"), key=key)
    elif change == "site":  # the admin reaches both sites: the existing test is named
        other = make_steriliser(make_site(org=site.organisation, name="Bandung"))
        r = login_as(admin).api("POST", f"{V1}/steriliser-tests", _test_body(other))
    else:  # a person of the same site, with the logger's key and values
        r = login_as(manager).api("POST", f"{V1}/steriliser-tests", _test_body(steriliser))
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["existing_id"] == first["id"]
    assert list(r.get_json()["errors"]) == ["idempotency_key"]
    assert _count(db, SteriliserTest) == 1


def test_a_409_names_the_existing_record_only_to_a_caller_who_may_read_it(frozen, client, admin, site, other_site,
                                                                         make_user, make_key, make_steriliser, db):
    theirs = make_steriliser(other_site)
    their_key = make_key(other_site, by=make_user("admin", [other_site]))
    assert client.api("POST", f"{V1}/steriliser-tests", _test_body(theirs), key=their_key).status_code == 201
    r = client.api("POST", f"{V1}/steriliser-tests", _test_body(make_steriliser(site)),
                   key=make_key(site, by=admin))
    assert r.status_code == 409
    assert "existing_id" not in r.get_json()


def test_the_same_test_posted_again_without_a_key_is_a_409_naming_it(frozen, client, admin, site, make_key,
                                                                     make_steriliser, db):
    key = make_key(site, by=admin)
    steriliser = make_steriliser(site)
    body = _test_body(steriliser, idempotency_key=None)
    first = client.api("POST", f"{V1}/steriliser-tests", body, key=key)
    assert first.status_code == 201
    second = client.api("POST", f"{V1}/steriliser-tests", body, key=key)
    assert second.status_code == 409, second.get_json()
    assert second.get_json()["existing_id"] == first.get_json()["id"]
    # Not a duplicate: the same kind with another result, or a minute later.
    assert client.api("POST", f"{V1}/steriliser-tests", {**body, "result": "fail"}, key=key).status_code == 201
    later = {**body, "performed_at": (NOW - timedelta(minutes=4)).isoformat()}
    assert client.api("POST", f"{V1}/steriliser-tests", later, key=key).status_code == 201
    assert _count(db, SteriliserTest) == 3


@pytest.mark.parametrize("bad", ["short", "x" * 65])
def test_an_idempotency_key_follows_the_checklist_answers_rule(frozen, client, admin, site, make_key,
                                                              make_steriliser, db, bad):
    r = client.api("POST", f"{V1}/steriliser-tests", _test_body(make_steriliser(site), idempotency_key=bad),
                   key=make_key(site, by=admin))
    assert r.status_code == 422
    assert "idempotency_key" in r.get_json()["errors"]["json"]
    assert _count(db, SteriliserTest) == 0


# --- idempotency keys on cycles, and the 409 for a cycle number -----------------------------------

@pytest.fixture
def ready(frozen, make_steriliser, db, site):
    """A type B steriliser with today's air-removal test and a spore test 3 days old."""
    steriliser = make_steriliser(site)
    for kind, at in (("spore", NOW - timedelta(days=3)), ("air_removal", NOW - timedelta(hours=2))):
        db.session.add(SteriliserTest(site_id=site.id, steriliser_id=steriliser.id, kind=kind, performed_at=at,
                                      result="pass", indicator_lot="LOT-1" if kind == "spore" else "",
                                      control_result="grew" if kind == "spore" else None))
    db.session.commit()
    return steriliser


def test_a_replayed_cycle_answers_200_with_the_load_as_it_is_now(ready, client, login_as, admin, manager, site,
                                                                 make_key, packed, db):
    key = make_key(site, by=admin)
    packs = [packed(), packed()]
    body = cycle_body(ready, packs, cycle_number=41, idempotency_key="logger-cycle-41")
    first = client.api("POST", f"{V1}/cycles", body, key=key)
    assert first.status_code == 201, first.get_json()
    assert login_as(manager).api("POST", f"{V1}/cycles/{first.get_json()['id']}/release").status_code == 200
    # The logger lost the answer and sends it again: pack labels in another order, the temperature as a number.
    again = client.api("POST", f"{V1}/cycles", {**body, "temperature_c": 134.5,
                                                "pack_codes": body["pack_codes"][::-1]}, key=key)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["status"] == "released"
    assert "Location" not in again.headers
    assert _count(db, Cycle) == 1
    assert {db.session.get(Pack, p.id).status for p in packs} == {"sterile"}


def test_another_use_of_a_cycles_key_is_a_409_naming_the_existing_load(ready, client, admin, site, make_key, db):
    key = make_key(site, by=admin)
    first = client.api("POST", f"{V1}/cycles", cycle_body(ready, idempotency_key="logger-cycle-42"), key=key)
    assert first.status_code == 201
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready, temperature_c="135.0", idempotency_key="logger-cycle-42"),
                   key=key)
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["existing_id"] == first.get_json()["id"]
    assert _count(db, Cycle) == 1


def test_a_cycle_number_recorded_before_is_a_409_naming_the_existing_load(ready, client, admin, site, make_key, db):
    key = make_key(site, by=admin)
    first = client.api("POST", f"{V1}/cycles", cycle_body(ready, cycle_number=7), key=key)
    assert first.status_code == 201
    r = client.api("POST", f"{V1}/cycles", cycle_body(ready, cycle_number=7, printout_ref="LOG-0002"), key=key)
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["existing_id"] == first.get_json()["id"]
    assert list(r.get_json()["errors"]) == ["cycle_number"]
    assert _count(db, Cycle) == 1


def test_two_requests_with_one_key_at_once_store_one_load(app, ready, admin, site, make_key, db):
    """Two clients, two threads, two transactions: the unique key lets one load in; the other is the replay."""
    key = make_key(site, by=admin)
    body = cycle_body(ready, idempotency_key="logger-cycle-race")
    barrier, answers = threading.Barrier(2), []

    def post():
        with app.app_context(), app.test_client() as c:
            barrier.wait()
            r = c.open(f"{V1}/cycles", method="POST", json=body, headers={"Authorization": f"Bearer {key}"})
            answers.append((r.status_code, r.get_json()["id"]))

    threads = [threading.Thread(target=post) for _ in range(2)]
    db.session.commit()
    with time_machine.travel(NOW, tick=False):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(status for status, _ in answers) == [200, 201], answers
    assert len({cycle_id for _, cycle_id in answers}) == 1
    db.session.remove()
    assert _count(db, Cycle) == 1


@pytest.mark.parametrize("case", ["room", "steriliser", "device kind", "device serial", "device of another site"])
def test_other_duplicates_are_409s_naming_the_existing_record_in_reach(frozen, login_as, admin, manager, site,
                                                                       make_site, make_steriliser, make_device,
                                                                       db, case):
    client = login_as(manager)
    if case == "room":
        existing, r = site.rooms[0].id, client.api("POST", f"{V1}/rooms", {
            "site_id": site.id, "name": site.rooms[0].name.upper(), "kind": "treatment"})
    elif case == "steriliser":
        existing = make_steriliser(site, name="Autoclave A").id
        r = client.api("POST", f"{V1}/sterilisers", {"site_id": site.id, "name": "autoclave a", "type": "B"})
    elif case == "device kind":
        device = make_device(site)
        existing = device.device_type_id
        r = client.api("POST", f"{V1}/device-kinds", {"name": device.device_type.name, "spaulding_class": "critical",
                                                     "is_hollow": False})
    else:  # serials are unique in the organisation; the manager of site A reaches only site A's devices
        owner = site if case == "device serial" else make_site(org=site.organisation, name="Bandung")
        device = make_device(owner, serial="SN-DUP")
        existing = device.id if owner is site else None
        r = client.api("POST", f"{V1}/devices", {"site_id": site.id, "device_type_id": device.device_type_id,
                                                "serial": "SN-DUP"})
    assert r.status_code == 409, r.get_json()
    assert r.get_json().get("existing_id") == existing


@pytest.mark.parametrize("record", ["test", "cycle"])
def test_a_key_stored_between_the_look_up_and_the_insert_is_answered_as_a_replay(ready, admin, site, db, monkeypatch,
                                                                                 record):
    """The race of two requests with one key, made certain: the second one's look-up misses the first one's row
    (not yet committed when it looked); its insert then hits the unique index, and it answers the first row."""
    from compliance.auth.actor import actor_for_user
    from compliance.sterilisation import services

    actor = actor_for_user(admin)
    if record == "test":
        body = _test_body(ready, idempotency_key="race-test-0001", performed_at=None)  # now: not a repost by its time
        call, look_up = services.record_test, "_replayed_test"
    else:
        body, call, look_up = cycle_body(ready, idempotency_key="race-cycle-001"), services.record_cycle, "_replayed_cycle"
    first = call(actor, dict(body), NOW)
    db.session.commit()
    real, misses = getattr(services, look_up), []

    def late(*args):
        if not misses:
            misses.append(True)
            return None
        return real(*args)

    monkeypatch.setattr(services, look_up, late)
    second = call(actor, dict(body), NOW)
    assert misses and second.id == first.id and second.replayed
    db.session.commit()
    assert _count(db, SteriliserTest if record == "test" else Cycle) == (3 if record == "test" else 1)


# --- the tablet's forms send a key of their own ---------------------------------------------------

def test_the_tablets_cycle_form_carries_a_fresh_key_and_a_double_tap_stores_one_load(ready, login_as, manager, db):
    client = login_as(manager)
    page = client.get(f"/decontamination/cycles/new?steriliser={ready.id}").get_data(as_text=True)
    keys = re.findall(r'name="idempotency_key"[^>]*value="([^"]+)"', page) or re.findall(
        r'value="([^"]+)"[^>]*name="idempotency_key"', page)
    assert len(keys) == 1 and len(keys[0]) >= 16
    other = client.get(f"/decontamination/cycles/new?steriliser={ready.id}").get_data(as_text=True)
    assert keys[0] not in other  # each form its own key
    form = {"steriliser_id": ready.id, "temperature_c": "134,5", "holding_seconds": "200", "indicator_result": "pass",
            "printout_ref": "LOG-9", "idempotency_key": keys[0]}
    first = client.form_post("/decontamination/cycles/new", form)
    second = client.form_post("/decontamination/cycles/new", form)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(db, Cycle) == 1


def test_the_tablets_test_form_carries_a_key_and_a_double_tap_stores_one_test(ready, login_as, nurse, db):
    client = login_as(nurse)
    page = client.get(f"/decontamination/tests/new?steriliser={ready.id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="idempotency_key"', page)
    assert key
    before = _count(db, SteriliserTest)
    form = {"steriliser_id": ready.id, "kind": "automatic_control", "result": "pass", "idempotency_key": key.group(1)}
    assert client.form_post("/decontamination/tests/new", form).status_code == 302
    assert client.form_post("/decontamination/tests/new", form).status_code == 302
    assert _count(db, SteriliserTest) == before + 1


# --- headers: X-Pagination as sent and documented, X-API-Key --------------------------------------

def test_x_pagination_is_json_text_and_documented_as_such(frozen, client, admin, site, make_key, ready):
    key = make_key(site, by=admin)
    r = client.api("GET", f"{V1}/steriliser-tests?page_size=1", key=key)
    assert r.status_code == 200 and len(r.get_json()) == 1
    assert json.loads(r.headers["X-Pagination"]) == {"total": 2, "total_pages": 2, "first_page": 1, "last_page": 2,
                                                     "page": 1, "next_page": 2}
    spec = client.get(f"{V1}/openapi.json").get_json()
    header = spec["paths"][f"{V1}/steriliser-tests"]["get"]["responses"]["200"]["headers"]["X-Pagination"]
    documented = spec["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
    assert documented["schema"]["type"] == "string"
    assert "JSON" in documented["description"]
    assert json.loads(documented["schema"]["example"]).keys() <= {
        "total", "total_pages", "first_page", "last_page", "page", "previous_page", "next_page"}
    assert "PAGINATION" not in spec["components"].get("headers", {})  # flask-smorest's object-typed header


def test_x_api_key_is_documented_and_works_like_the_bearer_key(frozen, client, admin, site, make_key, ready, db):
    key = make_key(site, by=admin)
    spec = client.get(f"{V1}/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["siteApiKeyHeader"] == {
        **spec["components"]["securitySchemes"]["siteApiKeyHeader"], "type": "apiKey", "in": "header",
        "name": "X-API-Key"}
    assert {"siteApiKeyHeader": []} in spec["security"]
    assert {"siteApiKeyHeader": []} in spec["paths"][f"{V1}/cycles"]["post"]["security"]
    r = client.open(f"{V1}/steriliser-tests", method="POST", json=_test_body(ready), headers={"X-API-Key": key})
    assert r.status_code == 201, r.get_json()
    assert client.get(f"{V1}/steriliser-tests", headers={"X-API-Key": "ck_nope"}).status_code == 401
    # Authorization wins when both are sent.
    both = client.get(f"{V1}/steriliser-tests", headers={"X-API-Key": key, "Authorization": "Bearer ck_nope"})
    assert both.status_code == 401


# --- 413 and 414 in JSON under /api/, the error page elsewhere ------------------------------------

def test_a_url_over_4kb_answers_414_in_json_under_the_api_and_a_page_elsewhere(client, admin, site, make_key):
    key = make_key(site, by=admin)
    long_query = "q=" + "x" * 4100
    r = client.api("GET", f"{V1}/cycles?{long_query}", key=key)
    assert r.status_code == 414
    assert r.mimetype == "application/json" and r.get_json()["code"] == 414 and r.get_json()["message"]
    page = client.get(f"/login?{long_query}")
    assert page.status_code == 414 and page.mimetype == "text/html"
    # Just under the limit is read as usual.
    ok = client.api("GET", f"{V1}/cycles?q={'x' * (4096 - len('/api/v1/cycles?q=') - 1)}", key=key)
    assert ok.status_code in (200, 422)


def test_a_body_over_the_limit_answers_413_in_json_under_the_api(app, client, admin, site, make_key, db):
    key = make_key(site, by=admin)
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = b'{"notes": "' + b"x" * limit + b'"}'
    r = client.open(f"{V1}/steriliser-tests", method="POST", data=body, content_type="application/json",
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 413
    assert r.mimetype == "application/json" and r.get_json()["code"] == 413 and "MB" in r.get_json()["message"]
    assert _count(db, SteriliserTest) == 0


def test_openapi_documents_existing_id_and_the_replay_answers(client, site):
    spec = client.get(f"{V1}/openapi.json").get_json()
    assert "existing_id" in spec["components"]["schemas"]["ApiError"]["properties"]
    for path in ("/steriliser-tests", "/cycles"):
        post = spec["paths"][V1 + path]["post"]
        assert {"200", "201", "409"} <= set(post["responses"]), path
        body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        key = spec["components"]["schemas"][body]["properties"]["idempotency_key"]
        assert (key["minLength"], key["maxLength"]) == (8, 64)


def _get(port: int, target: str) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        connection.close()


@pytest.mark.slow
def test_under_gunicorn_with_its_conf_a_url_over_4kb_reaches_the_app_and_answers_json(tmp_path):
    """gunicorn alone answers an HTML 414 from 4094 bytes; started as the README starts it (from the repository
    root, so with gunicorn.conf.py) the app answers URLs up to 8 KB itself."""
    root, port = Path(__file__).resolve().parents[2], free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "TEST_DATABASE"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}", SECRET_KEY="x" * 32, INSTANCE_PATH=str(tmp_path))
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen([str(Path(sys.prefix) / "bin" / "gunicorn"), "--workers", "1", "--bind",
                                f"127.0.0.1:{port}", "wsgi:app"], cwd=root, env=env, stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                _get(port, "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        status, content_type, body = _get(port, f"/api/v1/cycles?q={'x' * 5000}")
        assert (status, content_type) == (414, "application/json"), body
        assert json.loads(body)["code"] == 414
        status, content_type, _body = _get(port, f"/login?q={'x' * 5000}")
        assert status == 414 and content_type.startswith("text/html")
        status, _type, _body = _get(port, f"/api/v1/cycles?q={'x' * 9000}")  # over gunicorn's 8190: its own page
        assert status == 414
    finally:
        process.terminate()
        process.wait(10)
        log.close()
