"""Obligations and the outbox over the JSON API: times in UTC and in the site's zone are the same instant, the
list is scoped to the caller's sites, a manager pauses, resumes and snoozes with a reason, refusals name the
field and change nothing, read-only callers and a site's key may not write, a key reads no emails."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from flask_babel import force_locale
from sqlalchemy import select

from compliance.schedule import services
from compliance.schedule.labels import kind_label
from compliance.schedule.models import Obligation, OutboxMessage

V1 = "/api/v1"
NOW = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # 08:00 in Jakarta, a Wednesday: opening due at 09:00
LATER = NOW + timedelta(days=1)  # both of yesterday's checklists are overdue

ENDPOINTS = {
    "/api/v1/obligations": {"get"},
    "/api/v1/obligations/{obligation_id}": {"get"},
    "/api/v1/obligations/{obligation_id}/pause": {"post"},
    "/api/v1/obligations/{obligation_id}/resume": {"post"},
    "/api/v1/obligations/{obligation_id}/snooze": {"post"},
    "/api/v1/outbox": {"get"},
    "/api/v1/rates": {"get"},
}


@pytest.fixture(autouse=True)
def clock():
    """The clock stands at NOW (the services' `now` is the request's utcnow()); clock.move_to(LATER) moves it."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def synced(db):
    """The sites' opening and closing checklist obligations, made at NOW."""

    def sync(*sites) -> dict[tuple[int, str], Obligation]:
        for s in sites:
            services.sync_site(s, NOW)
        db.session.commit()
        return {(o.site_id, o.kind): o for o in db.session.scalars(select(Obligation))}

    return sync


@pytest.fixture
def overdue(db, synced, clock, site, manager, nurse):
    """At LATER the scan found the site's checklists overdue: findings, and emails queued to its people."""

    def make(*sites):
        rows = synced(site, *sites)
        clock.move_to(LATER)
        result = services.scan(LATER)
        db.session.commit()
        assert len(result.findings) == 2 * (1 + len(sites))
        return rows

    return make


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None, text
    return value


# --- reading -------------------------------------------------------------------------------------

def test_the_list_shows_the_callers_sites_only_and_another_sites_obligation_is_404(
        client, login_as, manager, site, other_site, synced):
    rows = synced(site, other_site)
    c = login_as(manager)
    r = c.api("GET", f"{V1}/obligations")
    assert r.status_code == 200, r.get_json()
    listed = r.get_json()
    assert {(o["site_id"], o["kind"]) for o in listed} == {(site.id, "opening-checklist"),
                                                          (site.id, "closing-checklist")}
    assert [o["kind"] for o in listed] == ["opening-checklist", "closing-checklist"]  # the earliest due first
    assert '"total": 2' in r.headers["X-Pagination"]
    theirs = rows[(other_site.id, "opening-checklist")].id
    assert c.api("GET", f"{V1}/obligations/{theirs}").status_code == 404
    assert c.api("GET", f"{V1}/obligations?site_id={other_site.id}").get_json() == []


def test_an_opening_checklist_in_jakarta_is_due_at_the_same_instant_in_utc_and_local_time(
        client, login_as, manager, site, synced):
    opening = synced(site)[(site.id, "opening-checklist")]
    body = login_as(manager).api("GET", f"{V1}/obligations/{opening.id}").get_json()
    assert (body["kind"], body["kind_label"], body["subject_type"], body["subject_id"], body["subject_label"]) == (
        "opening-checklist", "Opening checklist", "site", site.id, "Jakarta")
    assert (body["site_timezone"], body["status"], body["state"], body["next_action"]) == (
        "Asia/Jakarta", "ok", "ok", "overdue")
    due_utc, due_local = _instant(body["next_due_at"]), _instant(body["next_due_local"])
    assert due_utc == due_local == datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    assert body["next_due_at"].endswith(("Z", "+00:00"))
    assert body["next_due_local"] == "2026-11-25T09:00:00+07:00"
    assert _instant(body["overdue_at"]) == _instant(body["overdue_local"]) == due_utc + timedelta(minutes=60)
    assert body["overdue_local"].endswith("+07:00")
    assert _instant(body["next_action_at"]) == _instant(body["overdue_at"])
    assert body["schedule"]["grace_minutes"] == 60 and "cron" in body["schedule"]
    assert body["findings"] == [] and body["history"] == []


def test_the_kind_label_is_in_the_callers_language(app, client, login_as, make_user, site, synced):
    synced(site)
    with app.test_request_context(), force_locale("id"):
        expected = kind_label("opening-checklist")  # the Indonesian words once translated
    c = login_as(make_user("manager", [site], language="id"))
    listed = {o["kind"]: o["kind_label"] for o in c.api("GET", f"{V1}/obligations").get_json()}
    assert listed["opening-checklist"] == expected


def test_overdue_obligations_show_their_finding_and_history_and_the_filters_work(
        client, login_as, manager, site, overdue, db):
    opening = overdue()[(site.id, "opening-checklist")]
    c = login_as(manager)
    body = c.api("GET", f"{V1}/obligations/{opening.id}").get_json()
    assert (body["status"], body["state"], body["next_action"]) == ("overdue", "overdue", "escalation")
    [finding] = body["findings"]
    assert _instant(finding["due_at"]) == _instant(body["next_due_at"]) and finding["resolved_at"] is None
    assert finding["severity"] and finding["guideline_version"] and isinstance(finding["overrides"], dict)
    [change] = body["history"]
    assert (change["to_status"], change["by_id"]) == ("overdue", None)
    assert _instant(change["at"]) == LATER

    assert len(c.api("GET", f"{V1}/obligations?status=overdue").get_json()) == 2
    assert c.api("GET", f"{V1}/obligations?status=paused").get_json() == []
    assert [o["id"] for o in c.api("GET", f"{V1}/obligations?kind=opening-checklist").get_json()] == [opening.id]
    r = c.api("GET", f"{V1}/obligations?status=late")
    assert r.status_code == 422 and list(r.get_json()["errors"]["query"]) == ["status"]


def test_ended_obligations_are_listed_only_when_asked(client, login_as, manager, site, synced, db):
    opening = synced(site)[(site.id, "opening-checklist")]
    services._end(opening, NOW, "test")
    db.session.commit()
    c = login_as(manager)
    assert [o["kind"] for o in c.api("GET", f"{V1}/obligations").get_json()] == ["closing-checklist"]
    ended = c.api("GET", f"{V1}/obligations?status=ended").get_json()
    assert [(o["id"], o["state"]) for o in ended] == [(opening.id, "ended")]
    assert _instant(ended[0]["ended_at"]) == NOW


# --- a manager's pause, resume and snooze --------------------------------------------------------

def test_a_manager_pauses_resumes_and_snoozes_with_a_reason(client, login_as, manager, site, synced, db):
    opening = synced(site)[(site.id, "opening-checklist")]
    c = login_as(manager)
    url = f"{V1}/obligations/{opening.id}"

    r = c.api("POST", f"{url}/pause", {"reason": "clinic closed for renovation"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["state"], body["next_action"], body["next_action_at"]) == (
        "paused", "paused", None, None)
    assert (body["history"][0]["to_status"], body["history"][0]["reason"], body["history"][0]["by_id"]) == (
        "paused", "clinic closed for renovation", manager.id)
    assert c.api("POST", f"{url}/pause", {"reason": "again"}).status_code == 409
    r = c.api("POST", f"{url}/snooze", {"reason": "later", "hours": 2})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["obligation_id"]

    r = c.api("POST", f"{url}/resume", {"reason": "reopened"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["state"], body["next_action"]) == ("ok", "ok", "overdue")
    assert c.api("POST", f"{url}/resume", {"reason": "again"}).status_code == 409

    r = c.api("POST", f"{url}/snooze", {"reason": "fridge engineer on site", "hours": 3})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["state"]) == ("ok", "snoozed")
    assert _instant(body["snoozed_until"]) == NOW + timedelta(hours=3)
    assert _instant(body["next_action_at"]) == NOW + timedelta(hours=3)  # the overdue alert waits for the snooze
    assert (body["history"][0]["to_status"], _instant(body["history"][0]["until"])) == (
        "snoozed", NOW + timedelta(hours=3))
    assert [h["to_status"] for h in body["history"]] == ["snoozed", "ok", "paused"]
    db.session.expire_all()
    assert db.session.get(Obligation, opening.id).snoozed_until == NOW + timedelta(hours=3)


def test_a_pause_without_a_reason_is_422_naming_reason_and_changes_nothing(
        client, login_as, manager, site, synced, snapshot):
    opening = synced(site)[(site.id, "opening-checklist")]
    c = login_as(manager)
    before = snapshot()
    r = c.api("POST", f"{V1}/obligations/{opening.id}/pause", {})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["reason"]
    r = c.api("POST", f"{V1}/obligations/{opening.id}/pause", {"reason": "   "})  # blank: refused by the service
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["reason"], r.get_json()
    r = c.api("POST", f"{V1}/obligations/{opening.id}/snooze", {"reason": "later", "hours": 24 * 8})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["hours"]
    r = c.api("POST", f"{V1}/obligations/{opening.id}/snooze", {"reason": "later", "hours": "2"})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["hours"]
    r = c.api("POST", f"{V1}/obligations/{opening.id}/pause", {"reason": "x", "until": "tomorrow"})
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["until"]
    assert snapshot() == before


def test_an_ended_obligation_cannot_be_paused(client, login_as, manager, site, synced, snapshot, db):
    opening = synced(site)[(site.id, "opening-checklist")]
    services._end(opening, NOW, "test")
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/obligations/{opening.id}/pause", {"reason": "why not"})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["obligation_id"]
    assert snapshot() == before


@pytest.mark.parametrize("action,body", [("pause", {"reason": "x"}), ("resume", {"reason": "x"}),
                                         ("snooze", {"reason": "x", "hours": 1})])
def test_an_auditor_and_a_nurse_get_403_on_every_change_and_nothing_changes(
        client, login_as, auditor, nurse, site, synced, snapshot, action, body):
    opening = synced(site)[(site.id, "opening-checklist")]
    before = snapshot()
    for person in (auditor, nurse):
        r = login_as(person).api("POST", f"{V1}/obligations/{opening.id}/{action}", body)
        assert r.status_code == 403, r.get_json()
    assert snapshot() == before


def test_a_manager_gets_404_for_another_sites_obligation_and_nothing_changes(
        client, login_as, manager, site, other_site, synced, snapshot):
    theirs = synced(site, other_site)[(other_site.id, "opening-checklist")]
    before = snapshot()
    c = login_as(manager)
    for action, body in (("pause", {"reason": "x"}), ("snooze", {"reason": "x", "hours": 1})):
        r = c.api("POST", f"{V1}/obligations/{theirs.id}/{action}", body)
        assert r.status_code == 404 and list(r.get_json()["errors"]) == ["obligation_id"]
    assert snapshot() == before


def test_a_write_with_a_session_needs_the_csrf_header(client, login_as, manager, site, synced, snapshot):
    opening = synced(site)[(site.id, "opening-checklist")]
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/obligations/{opening.id}/pause", {"reason": "x"}, csrf=False)
    assert r.status_code == 400
    assert snapshot() == before


def test_without_credentials_everything_is_401(client, site, synced):
    opening = synced(site)[(site.id, "opening-checklist")]
    assert client.get(f"{V1}/obligations").status_code == 401
    assert client.get(f"{V1}/outbox").status_code == 401
    assert client.post(f"{V1}/obligations/{opening.id}/pause", json={"reason": "x"}).status_code == 401


# --- a site's API key ----------------------------------------------------------------------------

def test_a_site_key_reads_no_obligations_changes_none_and_reads_no_emails(
        client, admin, site, make_site, make_key, synced, overdue, snapshot):
    """A data logger posts tests and cycles; what is due, and whom it was emailed to, is for people."""
    sister = make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")
    rows = overdue(sister)
    key = make_key(site, by=admin)
    assert client.api("GET", f"{V1}/obligations", key=key).status_code == 403
    opening = rows[(site.id, "opening-checklist")].id
    assert client.api("GET", f"{V1}/obligations/{opening}", key=key).status_code == 403
    before = snapshot()
    assert client.api("POST", f"{V1}/obligations/{opening}/pause", {"reason": "x"}, key=key).status_code == 403
    assert client.api("POST", f"{V1}/obligations/{opening}/snooze", {"reason": "x", "hours": 1},
                      key=key).status_code == 403
    assert snapshot() == before
    assert client.api("GET", f"{V1}/outbox", key=key).status_code == 403


# --- the outbox ----------------------------------------------------------------------------------

def test_the_outbox_lists_the_emails_the_scan_queued_without_their_bodies(
        client, login_as, manager, auditor, nurse, outsider, site, other_site, overdue, db):
    rows = overdue(other_site)
    queued = db.session.scalars(select(OutboxMessage).where(OutboxMessage.site_id == site.id)).all()
    assert queued
    c = login_as(manager)
    r = c.api("GET", f"{V1}/outbox")
    assert r.status_code == 200, r.get_json()
    listed = r.get_json()
    assert {m["id"] for m in listed} == {m.id for m in queued}
    assert {m["site_id"] for m in listed} == {site.id}
    first = listed[0]
    assert set(first) == {"id", "kind", "site_id", "obligation_id", "recipient", "language", "subject", "state",
                          "attempts", "next_attempt_at", "last_error", "created_at", "sent_at"}
    assert (first["kind"], first["state"], first["attempts"], first["sent_at"]) == ("overdue", "queued", 0, None)
    assert _instant(first["created_at"]) == LATER
    assert first["obligation_id"] in {rows[(site.id, k)].id for k in ("opening-checklist", "closing-checklist")}
    assert "Overdue at Jakarta" in first["subject"]

    nurse_mail = c.api("GET", f"{V1}/outbox?q=nurse@example").get_json()
    assert nurse_mail and {m["recipient"] for m in nurse_mail} == {"nurse@example.test"}
    assert len(c.api("GET", f"{V1}/outbox?state=queued&kind=overdue").get_json()) == len(queued)
    assert c.api("GET", f"{V1}/outbox?state=sent").get_json() == []
    assert c.api("GET", f"{V1}/outbox?site_id={other_site.id}").get_json() == []
    r = c.api("GET", f"{V1}/outbox?kind=letter")
    assert r.status_code == 422 and list(r.get_json()["errors"]["query"]) == ["kind"]

    assert len(login_as(auditor).api("GET", f"{V1}/outbox").get_json()) == len(queued)
    assert login_as(nurse).api("GET", f"{V1}/outbox").status_code == 403
    theirs = login_as(outsider).api("GET", f"{V1}/outbox").get_json()
    assert theirs and {m["site_id"] for m in theirs} == {other_site.id}


# --- the document --------------------------------------------------------------------------------

def test_the_document_lists_the_obligation_and_outbox_paths_with_their_filters(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    for path, methods in ENDPOINTS.items():
        assert set(spec["paths"][path]) & {"get", "post"} == methods, path
    names = {p["name"] for p in spec["paths"]["/api/v1/obligations"]["get"]["parameters"]}
    assert {"site_id", "status", "kind", "page", "page_size"} <= names
    names = {p["name"] for p in spec["paths"]["/api/v1/outbox"]["get"]["parameters"]}
    assert {"site_id", "state", "kind", "q"} <= names
    schemas = spec["components"]["schemas"]
    assert {"next_due_at", "next_due_local", "overdue_at", "overdue_local", "state", "next_action_at"} <= set(
        schemas["Obligation"]["properties"])
    assert {"history", "findings"} <= set(schemas["ObligationDetail"]["properties"])
    assert not {"text_body", "html_body", "dedupe_key"} & set(schemas["OutboxMessage"]["properties"])
    assert schemas["SnoozeInput"]["properties"]["hours"]["maximum"] == 168
    assert schemas["ReasonInput"]["additionalProperties"] is False


def test_the_detail_lists_its_due_times_and_the_rates_count_them(client, login_as, manager, site, other_site,
                                                                  overdue, clock):
    opening = overdue()[(site.id, "opening-checklist")]
    c = login_as(manager)
    body = c.api("GET", f"{V1}/obligations/{opening.id}").get_json()
    assert [(o["local_day"], o["state"]) for o in body["occurrences"]] == [("2026-11-25", "missed")]
    rates = c.api("GET", f"{V1}/rates?site_id={site.id}&from=2026-11-25&to=2026-11-25").get_json()
    by_key = {r["key"]: r for r in rates["obligations"]}
    assert (by_key["opening-checklist"]["due"], by_key["opening-checklist"]["on_time"],
            by_key["opening-checklist"]["rate"]) == (1, 0, 0.0)
    assert rates["overall"]["due"] == 2 and rates["timezone"] == "Asia/Jakarta"
    assert c.api("GET", f"{V1}/rates?site_id={other_site.id}").status_code == 404
    r = c.api("GET", f"{V1}/rates?site_id={site.id}&from=2026-11-25&to=2026-11-01")
    assert r.status_code == 422
