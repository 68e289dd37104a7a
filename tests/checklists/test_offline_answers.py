"""Answers kept on the tablet offline and sent later (issue 16), on the server's side: the time given and the time
received are both stored; a given time in the future or before the run started is refused and stores nothing; a
replay stores once; the run's history, the manager's run page and the audit report show a large gap. The service
worker, the offline page and the fresh token are served as the tablet needs them. (The browser's side, with
Chromium offline: tests/browser/test_offline.py.)"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.checklists import rules
from compliance.checklists.models import Answer, ChecklistRun
from compliance.reports import services as reports
from compliance.reports.tables import audit_tables
from compliance.timeutil import utcnow
from tests.checklists.test_views import count, forms_of, on_tablet, send, start, templates, text  # noqa: F401
from tests.conftest import PIN

START = utcnow().replace(microsecond=0)


@pytest.fixture
def t0(on_tablet):
    """A moment just after the nurse signed in on the tablet (the clock is then held there or moved on)."""
    return utcnow().replace(microsecond=0) + timedelta(seconds=1)


def back_online(client, nurse):
    """Long offline, the tablet's session has ended (idle): the person signs in again with the PIN, then the
    answers kept on the tablet are sent as theirs."""
    if client.get("/tablet/token").status_code == 200:
        return
    page = client.get(f"/tablet/pin/{nurse.id}").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN, "csrf_token": token}).status_code == 302


def test_a_given_time_is_refused_in_the_future_or_before_the_run_beyond_the_clock_skew():
    started = START
    assert rules.given_time_problem(started + timedelta(minutes=5), started, started + timedelta(minutes=5)) is None
    assert rules.given_time_problem(started + timedelta(minutes=3), started, started) == "future"
    assert rules.given_time_problem(started + timedelta(minutes=1), started, started) is None  # skew allowed
    assert rules.given_time_problem(started - timedelta(minutes=3), started, started) == "before_run"
    assert rules.given_time_problem(started - timedelta(minutes=1), started, started) is None


def _given(client, templates, at, key="surfaces_clean"):
    run_id = start(client, templates["opening"])
    form = forms_of(client, run_id)[key]
    return run_id, form


def test_an_answer_given_offline_keeps_both_times_and_a_replay_stores_it_once(db, on_tablet, templates, t0, nurse):
    START = t0
    with time_machine.travel(START, tick=False):
        run_id, form = _given(on_tablet, templates, START)
    given = START + timedelta(minutes=10)
    with time_machine.travel(START + timedelta(minutes=45), tick=False):
        back_online(on_tablet, nurse)
        first = send(on_tablet, run_id, form, value="yes", given_at=given.isoformat())
        again = send(on_tablet, run_id, form, value="yes", given_at=given.isoformat())
    assert first.status_code == 200 and again.status_code == 200, text(first)
    row = db.session.scalar(select(Answer).where(Answer.run_id == run_id))
    assert count(db, Answer, Answer.run_id == run_id) == 1
    assert (row.answered_at, row.received_at) == (given, START + timedelta(minutes=45))
    assert row.sent_later
    assert "kept on the tablet offline, received" in text(again)  # the item's row says so


@pytest.mark.parametrize("given,message", [
    (lambda: (utcnow() + timedelta(hours=1)).isoformat(), "is in the future"),
    (lambda: (utcnow() - timedelta(hours=1)).isoformat(), "before the checklist was started"),
    (lambda: utcnow().replace(tzinfo=None).isoformat(), "needs a time zone offset"),
    (lambda: "yesterday at ten", "must be a date and time"),
])
def test_a_bad_given_time_is_refused_at_its_field_and_stores_nothing(db, on_tablet, templates, given, message, t0):
    with time_machine.travel(t0, tick=False):
        run_id, form = _given(on_tablet, templates, START)
        refused = send(on_tablet, run_id, form, value="yes", given_at=given())
    assert refused.status_code == 422 and message in text(refused)
    assert count(db, Answer, Answer.run_id == run_id) == 0


def test_the_api_takes_a_given_time_and_answers_both_times(db, client, login_as, nurse, site, templates):
    api = login_as(nurse)
    START = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(START, tick=False):
        run = api.api("POST", "/api/v1/checklist-runs", {"site_id": site.id, "template_id": templates["opening"].id})
        assert run.status_code == 201, run.get_json()
    run_id = run.get_json()["id"]
    item_id = db.session.get(ChecklistRun, run_id).version.items[0].id
    with time_machine.travel(START + timedelta(minutes=30), tick=False):
        r = api.api("POST", f"/api/v1/checklist-runs/{run_id}/answers", {
            "item_id": item_id, "value": "yes", "idempotency_key": "offline-api-1",
            "given_at": (START + timedelta(minutes=2)).isoformat()})
        assert r.status_code == 201, r.get_json()
        late = api.api("POST", f"/api/v1/checklist-runs/{run_id}/answers", {
            "item_id": db.session.get(ChecklistRun, run_id).version.items[1].id, "value": "yes",
            "idempotency_key": "offline-api-2", "given_at": (START + timedelta(hours=2)).isoformat()})
    body = r.get_json()
    assert (body["answered_at"], body["received_at"]) == (
        (START + timedelta(minutes=2)).isoformat(), (START + timedelta(minutes=30)).isoformat())
    assert late.status_code == 422 and "given_at" in str(late.get_json())


def test_the_manager_run_page_and_the_audit_report_show_the_gap(app, db, on_tablet, templates, site, manager,
                                                                login_as, t0, nurse):
    START = t0
    with time_machine.travel(START, tick=False):
        run_id, form = _given(on_tablet, templates, START)
        other = forms_of(on_tablet, run_id)["disinfectant_fresh"]
        assert send(on_tablet, run_id, other, value="yes").status_code == 200  # online: no gap
    with time_machine.travel(START + timedelta(minutes=50), tick=False):
        back_online(on_tablet, nurse)
        assert send(on_tablet, run_id, form, value="yes",
                    given_at=(START + timedelta(minutes=5)).isoformat()).status_code == 200
        page = login_as(manager).get(f"/checklist-runs/{run_id}")
        report = reports.audit_report(actor_for_user(manager), site.id, START.date() - timedelta(days=1),
                                      START.date() + timedelta(days=1), utcnow())
    assert page.status_code == 200 and text(page).count("given offline, received") == 1
    assert [(a.gap_minutes, a.run_id) for a in report.sent_later] == [(45, run_id)]
    assert report.summary["answers_sent_later"] == 1
    with app.test_request_context():
        table = next(t for t in audit_tables(report, "x") if t.name == "sent_later")
    assert len(table.rows) == 1 and table.rows[0][7] == 45


def test_the_service_worker_offline_pages_and_token_are_served_as_the_tablet_needs_them(client, on_tablet):
    worker = client.get("/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert worker.headers["Cache-Control"] == "no-cache" and worker.headers["Service-Worker-Allowed"] == "/"
    body = text(worker)
    release = re.search(r'var RELEASE = "([0-9a-f]{12})"', body)
    assert release and "__PRECACHE__" not in body and '"/static/js/app.js"' in body
    assert '"/tablet/offline?what=gate"' in body
    gate = client.get("/tablet/offline?what=gate")
    assert gate.status_code == 200 and "do not use any item until it has been checked" in text(gate)
    token = on_tablet.get("/tablet/token")
    assert token.status_code == 200 and token.get_json()["csrf_token"]
    assert token.headers["Cache-Control"] == "no-store"


def test_the_token_needs_a_signed_in_person(client):
    assert client.get("/tablet/token").status_code in (302, 401)
