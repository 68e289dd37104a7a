"""The manager's obligation and email screens, a site's closing days, and the tablet's due list."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.schedule import services
from compliance.schedule.models import Obligation, ObligationChange, OutboxMessage
from compliance.schedule.views import duration_text, schedule_text
from compliance.sites.models import Site, SiteHoliday

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # Wednesday 08:00 in Jakarta
YESTERDAY = NOW - timedelta(days=1)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def rows(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def text(response) -> str:
    return response.get_data(as_text=True)


def field_error(page: str, field: str) -> str:
    match = re.search(rf'<small class="error" id="{field}-error">([^<]*)</small>', page)
    return match.group(1) if match else ""


def fresh(db, obligation_id: int) -> Obligation:
    db.session.expire_all()
    return db.session.get(Obligation, obligation_id)


def get(db, site, kind: str) -> Obligation:
    return db.session.scalar(select(Obligation).where(Obligation.site_id == site.id, Obligation.kind == kind))


@pytest.fixture
def obligations(db, site, manager, nurse):
    """The site's opening and closing checklist obligations, made yesterday: nothing done since, so both are
    overdue by now and emails were queued for the nurse (staff answer for them)."""
    services.sync_site(site, YESTERDAY)
    db.session.commit()
    for _ in range(3):  # each scan takes one step per obligation (reminder, overdue …)
        services.scan(NOW)
        db.session.commit()
    return get(db, site, "opening-checklist")


@pytest.fixture
def elsewhere(db, other_site, outsider):
    """Another organisation's site with its own obligations and emails."""
    services.sync_site(other_site, YESTERDAY)
    db.session.commit()
    for _ in range(3):
        services.scan(NOW)
        db.session.commit()
    return get(db, other_site, "opening-checklist")


# --- words ---------------------------------------------------------------------------------------

def test_schedules_and_durations_read_as_words(app):
    with app.test_request_context():
        daily = Obligation(schedule={"cron": {"hour": 9, "minute": 0}, "grace_minutes": 60, "closed_days": True},
                           next_due_at=NOW)
        words = schedule_text(daily, "Asia/Jakarta")
        assert words.startswith("every day at 09:00") and "AM" not in words  # the site's en-GB clock
        assert words.endswith("local time, except on the site's closed days")
        every = Obligation(schedule={"every_days": 7, "grace_minutes": 1440}, next_due_at=NOW)
        assert schedule_text(every, "Asia/Jakarta") == "every 7 days after the last time it was done"
        once = Obligation(schedule={"once": True, "grace_minutes": 0}, next_due_at=NOW)
        assert schedule_text(once, "Asia/Jakarta").startswith("once, at 25/11/2026")
        odd = Obligation(schedule={"cron": {"hour": "*/2"}}, next_due_at=NOW)
        assert schedule_text(odd, "UTC") == "hour=*/2"
        assert [duration_text(m) for m in (0, 45, 60, 90, 1440, 2880)] == [
            "none", "45 minutes", "1 hour", "1 h 30 min", "1 day", "2 days"]


# --- the list and the detail ---------------------------------------------------------------------

def test_list_shows_the_sites_obligations_and_not_another_sites(client, login_as, manager, obligations, elsewhere):
    login_as(manager)
    page = text(client.get("/obligations"))
    assert f'id="obligation-{obligations.id}"' in page
    assert f'id="obligation-{elsewhere.id}"' not in page
    assert "Opening checklist" in page and "Closing checklist" in page
    assert "Staff" in page  # who answers for it
    assert 'class="pill pill-bad">overdue' in page
    # Counts at the top are the manager's sites' only.
    assert re.search(r'<strong>2</strong> Overdue', page)
    # Filters: the kind, the status (ended ones are hidden unless asked for).
    page = text(client.get("/obligations?kind=closing-checklist"))
    assert f'id="obligation-{obligations.id}"' not in page and "Closing checklist" in page
    assert "No obligation matches" in text(client.get("/obligations?status=paused"))
    # Another organisation's site as a filter is not found, not an empty list.
    assert client.get(f"/obligations?site={elsewhere.site_id}").status_code == 404
    # Sorting by an unknown key falls back to the default; by state and kind works.
    for sort in ("-due", "kind", "-status", "nonsense"):
        assert client.get(f"/obligations?sort={sort}").status_code == 200


def test_detail_tells_the_schedule_times_findings_and_history(client, login_as, manager, obligations):
    login_as(manager)
    page = text(client.get(f"/obligations/{obligations.id}"))
    assert "daily-checks" in page  # the guideline rule
    assert "every day at" in page and "local time" in page
    assert "1 hour" in page  # the grace
    assert "UTC" in page  # the due time in UTC too
    assert 'id="findings"' in page and "Never found overdue" not in page  # the overdue finding
    assert "scheduler" in page  # the history's overdue change, made by the scan
    assert 'action="/obligations/%d/pause' % obligations.id in page
    assert "data-confirm=" in page  # pausing asks first


def test_another_sites_obligation_is_not_found(db, client, login_as, manager, obligations, elsewhere):
    login_as(manager)
    assert client.get(f"/obligations/{elsewhere.id}").status_code == 404
    assert client.form_post(f"/obligations/{elsewhere.id}/pause", {"reason": "x"}).status_code == 404
    assert fresh(db, elsewhere.id).status != "paused"


# --- pause, resume, snooze -----------------------------------------------------------------------

def test_pause_without_a_reason_is_refused_at_the_field_and_changes_nothing(db, client, login_as, manager,
                                                                            obligations):
    login_as(manager)
    before = rows(db, ObligationChange, ObligationChange.obligation_id == obligations.id)
    status = obligations.status
    response = client.form_post(f"/obligations/{obligations.id}/pause", {"reason": "  "})
    assert response.status_code == 422
    assert field_error(text(response), "pause-reason") == "Reason is required"
    assert fresh(db, obligations.id).status == status
    assert rows(db, ObligationChange, ObligationChange.obligation_id == obligations.id) == before


def test_pause_with_a_reason_then_resume(db, client, login_as, manager, obligations):
    login_as(manager)
    response = client.form_post(f"/obligations/{obligations.id}/pause", {"reason": "renovation this week"})
    assert response.status_code == 302 and response.headers["Location"] == f"/obligations/{obligations.id}"
    o = fresh(db, obligations.id)
    assert o.status == "paused" and o.alert_after is None
    change = db.session.scalar(select(ObligationChange).where(ObligationChange.obligation_id == o.id)
                               .order_by(ObligationChange.id.desc()).limit(1))
    assert (change.to_status, change.by_id, change.reason) == ("paused", manager.id, "renovation this week")
    page = text(client.get(response.headers["Location"]))
    assert "Paused: nothing falls due" in page  # the flash
    assert "Mira Manager" in page and "renovation this week" in page
    assert 'action="/obligations/%d/resume' % o.id in page and "/pause" not in page
    # Pausing again: refused (a conflict), shown, nothing changes.
    response = client.form_post(f"/obligations/{o.id}/pause", {"reason": "again"})
    assert response.status_code == 409 and "already paused" in text(response)
    # Resume needs a reason too, then it is due again from its schedule.
    response = client.form_post(f"/obligations/{o.id}/resume", {"reason": ""})
    assert response.status_code == 422 and field_error(text(response), "resume-reason") == "Reason is required"
    assert fresh(db, o.id).status == "paused"
    response = client.form_post(f"/obligations/{o.id}/resume", {"reason": "open again"})
    assert response.status_code == 302
    o = fresh(db, o.id)
    assert o.status == "ok" and o.next_due_at > NOW
    assert "Resumed: next due" in text(client.get(f"/obligations/{o.id}"))


def test_snooze_for_four_hours(db, client, login_as, manager, obligations):
    login_as(manager)
    response = client.form_post(f"/obligations/{obligations.id}/snooze", {"hours": "4", "reason": "busy morning"})
    assert response.status_code == 302
    o = fresh(db, obligations.id)
    assert o.snoozed_until == NOW + timedelta(hours=4)
    change = db.session.scalar(select(ObligationChange).where(ObligationChange.to_status == "snoozed"))
    assert (change.by_id, change.reason, change.until) == (manager.id, "busy morning", NOW + timedelta(hours=4))
    page = text(client.get(f"/obligations/{o.id}"))
    assert "snoozed" in page and "busy morning" in page
    # More than a week is refused at the field.
    response = client.form_post(f"/obligations/{o.id}/snooze", {"hours": "500", "reason": "long"})
    assert response.status_code == 422 and field_error(text(response), "hours")
    assert fresh(db, o.id).snoozed_until == NOW + timedelta(hours=4)


def test_an_auditor_reads_but_may_not_change(db, client, login_as, auditor, obligations):
    login_as(auditor)
    assert f'id="obligation-{obligations.id}"' in text(client.get("/obligations"))
    page = text(client.get(f"/obligations/{obligations.id}"))
    assert "/pause" not in page and "/snooze" not in page
    assert client.get("/emails").status_code == 200
    for step in ("pause", "resume", "snooze"):
        assert client.form_post(f"/obligations/{obligations.id}/{step}", {"reason": "x", "hours": "4"}).status_code == 403
    assert fresh(db, obligations.id).status == "overdue"
    assert client.get(f"/sites/{obligations.site_id}/closing-days").status_code == 403


def test_the_nav_shows_the_new_screens_to_managers_not_staff(client, login_as, manager, nurse, site):
    login_as(manager)
    page = text(client.get("/overview"))
    assert 'href="/obligations"' in page and 'href="/emails"' in page
    login_as(nurse)
    page = text(client.get("/tablet/checklists"))
    assert 'href="/obligations"' not in page and 'href="/emails"' not in page


# --- the outbox ----------------------------------------------------------------------------------

def test_outbox_lists_the_sites_emails_and_filters_them(db, client, login_as, manager, nurse, obligations, elsewhere):
    mine = db.session.scalar(select(OutboxMessage).where(OutboxMessage.site_id == obligations.site_id,
                                                         OutboxMessage.recipient == nurse.email)
                             .order_by(OutboxMessage.id).limit(1))
    theirs = db.session.scalar(select(OutboxMessage).where(OutboxMessage.site_id == elsewhere.site_id).limit(1))
    assert mine is not None and mine.state == "queued" and theirs is not None
    login_as(manager)
    page = text(client.get("/emails"))
    assert f'id="email-{mine.id}"' in page and f'id="email-{theirs.id}"' not in page
    assert "nurse@example.test" in page and "queued" in page
    assert f'id="email-{mine.id}"' in text(client.get("/emails?state=queued"))
    assert "No email matches" in text(client.get("/emails?state=sent"))
    assert f'id="email-{mine.id}"' in text(client.get("/emails?q=nurse@"))
    assert "No email matches" in text(client.get("/emails?q=nobody-by-that-name"))
    assert f'id="email-{mine.id}"' in text(client.get(f"/emails?kind={mine.kind}"))
    # Newest first; one message with its text.
    page = text(client.get(f"/emails/{mine.id}"))
    assert '<pre class="email-text" lang="en">' in page and mine.subject in page and "nurse@example.test" in page
    assert client.get(f"/emails/{theirs.id}").status_code == 404


def test_a_failed_email_shows_its_error(db, client, login_as, manager, obligations):
    message = db.session.scalar(select(OutboxMessage).limit(1))
    message.state, message.attempts, message.last_error = "failed", 8, "SMTPServerDisconnected: gone " + "x" * 200
    db.session.commit()
    login_as(manager)
    page = text(client.get("/emails?state=failed"))
    assert f'id="email-{message.id}"' in page and "SMTPServerDisconnected: gone" in page
    assert "x" * 200 not in page.split('title="')[0]  # truncated in the cell


# --- closing days --------------------------------------------------------------------------------

def test_closing_days_are_stored_and_shown_again(db, client, login_as, manager, site, obligations):
    login_as(manager)
    page = text(client.get(f"/sites/{site.id}/closing-days"))
    assert 'value="sun"' in page and "Sunday" in page
    response = client.form_post(f"/sites/{site.id}/closing-days",
                                {"closed_weekdays": ["sun"], "holidays": "2026-12-25 Christmas Day\n\n"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Site, site.id).closed_weekdays == "sun"
    assert [(h.day, h.name) for h in services.holidays_of(site.id)] == [(date(2026, 12, 25), "Christmas Day")]
    page = text(client.get(response.headers["Location"]))
    assert "Closing days of Jakarta saved" in page
    assert re.search(r'<input[^>]*checked[^>]*value="sun"|<input[^>]*value="sun"[^>]*checked', page)
    assert "2026-12-25 Christmas Day" in page


def test_a_malformed_holiday_is_refused_and_nothing_is_stored(db, client, login_as, manager, site):
    login_as(manager)
    response = client.form_post(f"/sites/{site.id}/closing-days",
                                {"closed_weekdays": ["sun"], "holidays": "2026-12-25 Christmas\n25/12 Boxing Day"})
    assert response.status_code == 422
    assert "25/12 Boxing Day" in field_error(text(response), "holidays")
    db.session.expire_all()
    assert db.session.get(Site, site.id).closed_weekdays == ""
    assert rows(db, SiteHoliday) == 0
    # Closed every day: refused at the weekdays.
    response = client.form_post(f"/sites/{site.id}/closing-days",
                                {"closed_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})
    assert response.status_code == 422 and "cannot be closed every day" in text(response)


def test_another_sites_closing_days_are_not_found(client, login_as, manager, other_site):
    login_as(manager)
    assert client.get(f"/sites/{other_site.id}/closing-days").status_code == 404
    assert client.form_post(f"/sites/{other_site.id}/closing-days", {"closed_weekdays": ["sun"]}).status_code == 404


def test_the_sites_list_links_to_closing_days(client, login_as, admin, site):
    login_as(admin)
    assert f'href="/sites/{site.id}/closing-days"' in text(client.get("/sites"))


# --- the tablet ----------------------------------------------------------------------------------

def test_the_tablet_shows_what_is_due_and_overdue(client, login_as, nurse, obligations):
    login_as(nurse)
    for url in ("/tablet/checklists/summary", "/tablet/checklists"):
        page = text(client.get(url))
        assert "Due and overdue" in page
        assert re.search(r'class="row row-bad"><span><strong>Opening checklist</strong>', page)
        assert 'class="pill pill-bad">overdue since' in page


def test_the_tablet_says_when_nothing_is_due(client, login_as, nurse, site):
    login_as(nurse)
    assert "Nothing overdue, and nothing more due today." in text(client.get("/tablet/checklists/summary"))
