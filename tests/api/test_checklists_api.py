"""Checklists over the JSON API: a nurse's run start to finish, retries stored once, refusals that name the field
and store nothing, corrections that keep the old answer, site reach, read-only callers, the document."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.checklists import services
from compliance.checklists.models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction

V1 = "/api/v1"
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # 10:00 in Jakarta

ENDPOINTS = {
    "/api/v1/checklist-templates": {"get"},
    "/api/v1/checklist-templates/{template_id}": {"get"},
    "/api/v1/checklist-runs": {"get", "post"},
    "/api/v1/checklist-runs/{run_id}": {"get"},
    "/api/v1/checklist-runs/{run_id}/answers": {"post"},
    "/api/v1/answers/{answer_id}/amend": {"post"},
    "/api/v1/corrective-actions": {"get"},
    "/api/v1/corrective-actions/{action_id}/close": {"post"},
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(autouse=True)
def frozen():
    """The clock stands at NOW: the services' `now` is the request's utcnow()."""
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def templates(db, site):
    services.load_default_templates(site.organisation_id, NOW)
    db.session.commit()
    return {t.key: t for t in db.session.scalars(select(ChecklistTemplate))}


@pytest.fixture
def sister_site(make_site, site):
    return make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")


@pytest.fixture
def item(templates):
    """An item of a checklist by keys: item("opening", "fridge_temp")."""
    return lambda template, key: next(i for i in services.current_version(templates[template]).items if i.key == key)


@pytest.fixture
def run_at(db, templates, admin):
    """A run started by the site's admin (who reaches every site of the organisation)."""

    def start(site, template="opening") -> ChecklistRun:
        run = services.start_run(actor_for_user(admin), {"site_id": site.id, "template_id": templates[template].id},
                                 NOW)
        db.session.commit()
        return run

    return start


def _count(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _answer(c, run_id, item, value, key, note=None):
    body = {"item_id": item.id, "value": value, "idempotency_key": key}
    if note is not None:
        body["note"] = note
    return c.api("POST", f"{V1}/checklist-runs/{run_id}/answers", body)


# --- a nurse's run, start to finish --------------------------------------------------------------

def test_a_nurse_fills_in_the_opening_checklist_and_a_manager_closes_its_corrective_action(
        client, login_as, nurse, manager, site, templates, item, db):
    c = login_as(nurse)
    listed = {t["key"]: t for t in c.api("GET", f"{V1}/checklist-templates").get_json()}
    assert set(listed) == set(templates)
    assert listed["opening"]["current_version"] == 1 and listed["opening"]["item_count"] == 5
    assert listed["opening"]["title"] == {"en": "Site opening", "id": "Pembukaan klinik"}
    detail = c.api("GET", f"{V1}/checklist-templates/{templates['opening'].id}").get_json()
    assert [i["key"] for i in detail["version"]["items"]] == ["surfaces_clean", "disinfectant_fresh",
                                                               "sharps_below_line", "fridge_temp", "hand_soap"]
    fridge = next(i for i in detail["version"]["items"] if i["key"] == "fridge_temp")
    assert (fridge["min_value"], fridge["max_value"], fridge["unit"]) == ("2.00", "8.00", "°C")

    r = c.api("POST", f"{V1}/checklist-runs", {"site_id": site.id, "template_id": templates["opening"].id})
    assert r.status_code == 201, r.get_json()
    run = r.get_json()
    assert r.headers["Location"].endswith(f"/api/v1/checklist-runs/{run['id']}")
    assert (run["day"], run["version_number"], run["is_complete"]) == ("2026-11-25", 1, False)

    for n, (key, value) in enumerate([("surfaces_clean", True), ("disinfectant_fresh", "yes"),
                                      ("sharps_below_line", "ya"), ("hand_soap", True)]):
        r = _answer(c, run["id"], item("opening", key), value, f"flow-key-{n}")
        assert r.status_code == 201, r.get_json()
    r = _answer(c, run["id"], item("opening", "fridge_temp"), 11, "flow-key-fridge",
                note="door left open; stock moved")
    assert r.status_code == 201 and r.get_json()["value"] == "11"

    body = c.api("GET", f"{V1}/checklist-runs/{run['id']}").get_json()
    assert body["is_complete"] and body["completed_at"]
    assert [a["item_id"] for a in body["answers"]] == [i["id"] for i in body["items"]]
    assert len(body["history"]) == 5
    assert [a["answer_id"] for a in body["corrective_actions"]] == [r.get_json()["id"]]

    actions = c.api("GET", f"{V1}/corrective-actions").get_json()
    assert len(actions) == 1 and actions[0]["is_open"] and actions[0]["due_on"] == "2026-11-26"
    assert c.api("POST", f"{V1}/corrective-actions/{actions[0]['id']}/close", {"note": "x"}).status_code == 403
    m = login_as(manager)
    r = m.api("POST", f"{V1}/corrective-actions/{actions[0]['id']}/close", {"note": "Fridge serviced"})
    assert r.status_code == 200 and not r.get_json()["is_open"] and r.get_json()["close_note"] == "Fridge serviced"
    assert m.api("GET", f"{V1}/corrective-actions").get_json() == []
    assert [a["id"] for a in m.api("GET", f"{V1}/corrective-actions?state=closed").get_json()] == [actions[0]["id"]]
    assert m.api("POST", f"{V1}/corrective-actions/{actions[0]['id']}/close", {"note": "again"}).status_code == 409


def test_a_retried_answer_answers_200_with_the_same_answer_and_stores_one_row(client, login_as, nurse, site,
                                                                              run_at, item, db):
    run = run_at(site)
    c = login_as(nurse)
    first = _answer(c, run.id, item("opening", "hand_soap"), True, "retry-key-0001")
    again = _answer(c, run.id, item("opening", "hand_soap"), True, "retry-key-0001")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json() == again.get_json()
    assert _count(db, Answer) == 1
    # The same key for another item is a client's mistake, not a retry.
    r = _answer(c, run.id, item("opening", "surfaces_clean"), True, "retry-key-0001")
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["idempotency_key"]
    # A new key for an answered item is refused: a correction goes through /amend.
    r = _answer(c, run.id, item("opening", "hand_soap"), True, "retry-key-0002")
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["item_id"]
    assert _count(db, Answer) == 1


def test_a_retried_run_start_answers_the_same_run_and_stores_one_row(client, login_as, nurse, manager, site,
                                                                     templates, db):
    body = {"site_id": site.id, "template_id": templates["opening"].id, "idempotency_key": "api-run-key-00000001"}
    c = login_as(nurse)
    first, again = c.api("POST", f"{V1}/checklist-runs", body), c.api("POST", f"{V1}/checklist-runs", body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.get_json() == again.get_json() and first.headers["Location"] == again.headers["Location"]
    assert _count(db, ChecklistRun) == 1
    # Another person with the same key is a client's mistake, not a retry.
    r = login_as(manager).api("POST", f"{V1}/checklist-runs", body)
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["idempotency_key"]
    assert _count(db, ChecklistRun) == 1


def test_a_malformed_run_key_is_422_naming_it_and_no_key_starts_a_run_each_time(client, login_as, nurse, site,
                                                                                 templates, db):
    c = login_as(nurse)
    body = {"site_id": site.id, "template_id": templates["opening"].id}
    for key in ("short", "spaces are not allowed", "x" * 65):
        r = c.api("POST", f"{V1}/checklist-runs", {**body, "idempotency_key": key})
        assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["idempotency_key"], key
    assert _count(db, ChecklistRun) == 0
    ids = {c.api("POST", f"{V1}/checklist-runs", body).get_json()["id"] for _ in range(2)}
    assert len(ids) == 2 and _count(db, ChecklistRun) == 2


def test_a_correction_keeps_the_old_answer_and_a_retry_of_it_stores_nothing(client, login_as, nurse, site, run_at,
                                                                             item, db):
    run = run_at(site)
    c = login_as(nurse)
    old = _answer(c, run.id, item("opening", "surfaces_clean"), True, "amend-key-0001").get_json()
    body = {"value": False, "note": "trolley missed", "reason": "tapped yes by mistake",
            "idempotency_key": "amend-key-0002"}
    first = c.api("POST", f"{V1}/answers/{old['id']}/amend", body)
    again = c.api("POST", f"{V1}/answers/{old['id']}/amend", body)
    assert (first.status_code, again.status_code) == (201, 200) and first.get_json() == again.get_json()
    new = first.get_json()
    assert (new["amends_id"], new["value"], new["amend_reason"]) == (old["id"], False, "tapped yes by mistake")
    detail = c.api("GET", f"{V1}/checklist-runs/{run.id}").get_json()
    assert [a["id"] for a in detail["answers"]] == [new["id"]]
    assert [a["id"] for a in detail["history"]] == [old["id"], new["id"]]
    assert detail["history"][0]["value"] is True  # the old answer is kept as it was
    assert _count(db, CorrectiveAction) == 1  # a "no" that needs a note opened one
    # Only the answer in force can be corrected; a reason is required.
    r = c.api("POST", f"{V1}/answers/{old['id']}/amend", {**body, "idempotency_key": "amend-key-0003"})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["answer_id"]
    r = c.api("POST", f"{V1}/answers/{new['id']}/amend", {"value": True, "idempotency_key": "amend-key-0004"})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["reason"]
    assert _count(db, Answer) == 2


# --- refusals name the field and store nothing ---------------------------------------------------

def test_a_number_that_is_not_a_number_is_422_naming_value_and_stores_nothing(client, login_as, nurse, site, run_at,
                                                                               item, snapshot):
    run = run_at(site)
    c = login_as(nurse)
    before = snapshot()
    r = _answer(c, run.id, item("opening", "fridge_temp"), "warm", "nan-key-0001")
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["value"]
    r = _answer(c, run.id, item("opening", "fridge_temp"), "11", "nan-key-0002")  # out of limits, no note
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["note"]
    r = _answer(c, run.id, item("opening", "fridge_temp"), ["4"], "nan-key-0003")
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["value"]
    r = c.api("POST", f"{V1}/checklist-runs/{run.id}/answers", {"item_id": item("opening", "fridge_temp").id,
                                                                  "value": "4", "idempotency_key": "nan-key-0004",
                                                                  "answered_by_id": 1})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["answered_by_id"]
    assert snapshot() == before


def test_an_item_of_another_checklist_is_404_and_stores_nothing(client, login_as, nurse, site, run_at, item,
                                                                snapshot):
    run = run_at(site, "closing")
    before = snapshot()
    r = _answer(login_as(nurse), run.id, item("opening", "hand_soap"), True, "other-key-0001")
    assert r.status_code == 404 and list(r.get_json()["errors"]) == ["item_id"]
    assert snapshot() == before


def test_a_photo_or_signature_is_not_answered_over_json(client, login_as, nurse, site, run_at, item, snapshot):
    run = run_at(site, "closing")
    before = snapshot()
    r = _answer(login_as(nurse), run.id, item("closing", "signature"), "a" * 32 + ".png", "photo-key-0001")
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["value"]
    assert snapshot() == before


# --- reach and roles -----------------------------------------------------------------------------

def test_another_sites_run_is_404_and_out_of_the_lists(client, login_as, nurse, site, sister_site, run_at, item,
                                                       snapshot):
    theirs = run_at(sister_site)
    ours = run_at(site)
    c = login_as(nurse)
    assert c.api("GET", f"{V1}/checklist-runs/{theirs.id}").status_code == 404
    assert [r["id"] for r in c.api("GET", f"{V1}/checklist-runs").get_json()] == [ours.id]
    before = snapshot()
    r = _answer(c, theirs.id, item("opening", "hand_soap"), True, "reach-key-0001")
    assert r.status_code == 404 and list(r.get_json()["errors"]) == ["run_id"]
    r = c.api("POST", f"{V1}/checklist-runs", {"site_id": sister_site.id, "template_id": theirs.version.template_id})
    assert r.status_code == 404 and list(r.get_json()["errors"]) == ["site_id"]
    assert snapshot() == before


def test_another_organisations_checklist_is_404(client, login_as, outsider, templates):
    c = login_as(outsider)
    assert c.api("GET", f"{V1}/checklist-templates/{templates['opening'].id}").status_code == 404
    assert c.api("GET", f"{V1}/checklist-templates").get_json() == []
    assert c.api("GET", f"{V1}/checklist-runs?template_id={templates['opening'].id}").status_code == 404


def test_auditor_reads_but_may_not_start_answer_correct_or_close(client, login_as, nurse, auditor, site, run_at,
                                                                 item, db, snapshot):
    run = run_at(site)
    nurse_c = login_as(nurse)
    answered = _answer(nurse_c, run.id, item("opening", "fridge_temp"), "12", "aud-key-0001", note="warm").get_json()
    action = db.session.scalar(select(CorrectiveAction))
    c = login_as(auditor)
    assert c.api("GET", f"{V1}/checklist-runs/{run.id}").status_code == 200
    assert len(c.api("GET", f"{V1}/corrective-actions").get_json()) == 1
    before = snapshot()
    writes = [
        ("/checklist-runs", {"site_id": site.id, "template_id": run.version.template_id}),
        (f"/checklist-runs/{run.id}/answers", {"item_id": item("opening", "hand_soap").id, "value": True,
                                               "idempotency_key": "aud-key-0002"}),
        (f"/answers/{answered['id']}/amend", {"value": "5", "reason": "misread", "idempotency_key": "aud-key-0003"}),
        (f"/corrective-actions/{action.id}/close", {"note": "done"}),
    ]
    for path, body in writes:
        r = c.api("POST", V1 + path, body)
        assert r.status_code == 403, (path, r.get_json())
    assert snapshot() == before


def test_a_sites_api_key_reads_no_runs_and_answers_nothing(client, admin, site, run_at, item, make_key, snapshot):
    """A data logger has nothing to do with checklists (who answered what is about people)."""
    run = run_at(site)
    key = make_key(site, by=admin)
    assert client.api("GET", f"{V1}/checklist-runs/{run.id}", key=key).status_code == 403
    assert client.api("GET", f"{V1}/checklist-runs", key=key).status_code == 403
    before = snapshot()
    r = client.api("POST", f"{V1}/checklist-runs/{run.id}/answers",
                   {"item_id": item("opening", "hand_soap").id, "value": True, "idempotency_key": "key-key-0001"},
                   key=key)
    assert r.status_code == 403
    assert snapshot() == before


# --- lists ---------------------------------------------------------------------------------------

def test_runs_list_filters_by_checklist_completeness_and_local_day(client, login_as, nurse, site, run_at, item, db):
    opening, closing = run_at(site), run_at(site, "closing")
    older = run_at(site, "weekly")
    older.day = date(2026, 11, 20)
    db.session.commit()
    c = login_as(nurse)
    for n, key in enumerate(["surfaces_clean", "disinfectant_fresh", "sharps_below_line", "hand_soap"]):
        _answer(c, opening.id, item("opening", key), True, f"list-key-{n:04d}")
    _answer(c, opening.id, item("opening", "fridge_temp"), "5", "list-key-fridge")

    def ids(query):
        r = c.api("GET", f"{V1}/checklist-runs?{query}")
        assert r.status_code == 200, r.get_json()
        return {run["id"] for run in r.get_json()}

    assert ids("") == {opening.id, closing.id, older.id}
    assert ids("complete=true") == {opening.id}
    assert ids("complete=false") == {closing.id, older.id}
    assert ids(f"template_id={closing.version.template_id}") == {closing.id}
    assert ids("from=2026-11-21") == {opening.id, closing.id}
    assert ids("to=2026-11-20") == {older.id}
    assert c.api("GET", f"{V1}/checklist-runs?from=yesterday").status_code == 422


# --- the document --------------------------------------------------------------------------------

def test_openapi_lists_every_checklist_path_with_tags_and_the_replays_200(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    for path, methods in ENDPOINTS.items():
        assert set(spec["paths"].get(path, {})) & HTTP_METHODS == methods, path
        for method in methods:
            operation = spec["paths"][path][method]
            assert operation["tags"] and "401" in operation["responses"], (path, method)
    assert {"checklists", "checklist runs", "corrective actions"} <= {t["name"] for t in spec["tags"]}
    for path in ("/checklist-runs/{run_id}/answers", "/answers/{answer_id}/amend"):
        responses = spec["paths"][V1 + path]["post"]["responses"]
        assert {"200", "201", "404", "409", "422"} <= set(responses), path
    schemas = spec["components"]["schemas"]
    for name in ("RunInput", "AnswerInput", "AmendInput", "CloseActionInput"):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["AnswerInput"]["properties"]["idempotency_key"]["minLength"] == 8
    assert schemas["RunInput"]["properties"]["idempotency_key"]["pattern"] == "^[A-Za-z0-9_-]{16,64}$"
    assert "409" in spec["paths"][f"{V1}/checklist-runs"]["post"]["responses"]
    params = {p["name"] for p in spec["paths"][f"{V1}/checklist-runs"]["get"]["parameters"]}
    assert {"site_id", "template_id", "complete", "from", "to", "page"} <= params
