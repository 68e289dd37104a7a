"""The outbox never gives up silently: retries back off to a cap and go on for days; only then is a message
failed, which the dashboard and the Emails page show; an admin sends it again (a button, or the command); every
copy of one message carries the same Message-ID. Against a real SMTP server on loopback (aiosmtpd)."""
import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from compliance.audit.models import AuditEntry
from compliance.auth.actor import actor_for_user
from compliance.errors import Conflict, Forbidden
from compliance.schedule import services
from compliance.schedule.models import OutboxMessage

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def queue(db, site, manager):
    """Queue an email to the manager (as the scan would), at `at`."""
    def make(key: str = "overdue:1:2026-11-25T02:00:00+00:00:0:1", at: datetime = T0,
             recipient: str = "manager@example.test") -> OutboxMessage:
        row = OutboxMessage(dedupe_key=key, kind="overdue", site_id=site.id, user_id=manager.id, recipient=recipient,
                            language="en", subject=f"Overdue at {site.name}: opening checklist", text_body="Do it.",
                            html_body="<p>Do it.</p>", state="queued", next_attempt_at=at, created_at=at)
        db.session.add(row)
        db.session.commit()
        return row

    return make


def _fail_until(db, message, until):
    """Let the sender try at every moment it is due, the SMTP server down, until `until`; the try times."""
    tries = []
    while True:
        db.session.refresh(message)
        if message.state != "queued" or message.next_attempt_at > until:
            return tries
        at = message.next_attempt_at
        tries.append(at)
        services.send_one(message.id, at)


@pytest.fixture
def down(smtp):
    inbox, server = smtp
    server.stop()
    return inbox, server


def test_retries_back_off_to_the_cap_and_go_on_past_two_hours(app, db, queue, down):
    message = queue()
    tries = _fail_until(db, message, T0 + timedelta(hours=3))
    gaps = [(b - a) for a, b in zip(tries, tries[1:])]
    assert gaps[:5] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16)]
    assert max(gaps) == timedelta(minutes=30) == gaps[-1]  # the default cap, OUTBOX_MAX_BACKOFF_MINUTES
    db.session.refresh(message)
    assert message.state == "queued" and message.attempts == len(tries) == 10  # once given up after 8
    assert "ConnectionRefusedError" in message.last_error or "OSError" in message.last_error


def test_the_cap_is_a_setting(app, db, queue, down):
    app.config["OUTBOX_MAX_BACKOFF_MINUTES"] = 5
    try:
        message = queue()
        tries = _fail_until(db, message, T0 + timedelta(hours=1))
    finally:
        app.config["OUTBOX_MAX_BACKOFF_MINUTES"] = 30
    assert max(b - a for a, b in zip(tries, tries[1:])) == timedelta(minutes=5)


def test_failed_only_after_the_give_up_age_then_never_tried_again(app, db, queue, down):
    message = queue()
    _fail_until(db, message, T0 + timedelta(days=7) - timedelta(minutes=1))
    db.session.refresh(message)
    assert message.state == "queued"  # six days and 23 hours of failures: still trying
    assert services.send_due(T0 + timedelta(days=7, minutes=30)) == {"failed": 1}
    db.session.refresh(message)
    assert message.state == "failed" and message.sent_at is None
    down[1].start()
    assert services.send_due(T0 + timedelta(days=30)) == {}  # failed stays failed until someone sends it again
    assert down[0].messages == []


def test_the_give_up_age_is_a_setting(app, db, queue, down):
    app.config["OUTBOX_GIVE_UP_DAYS"] = 1
    try:
        message = queue()
        assert services.send_due(T0 + timedelta(hours=23)) == {"retry": 1}
        assert services.send_due(T0 + timedelta(days=1, hours=1)) == {"failed": 1}
    finally:
        app.config["OUTBOX_GIVE_UP_DAYS"] = 7
    assert message.state == "failed"


def test_a_message_is_tried_at_least_once_however_old(app, db, queue, smtp):
    """Down for longer than the give-up age (the scheduler stopped): it is still tried, and sent."""
    inbox, _server = smtp
    queue()
    assert services.send_due(T0 + timedelta(days=20)) == {"sent": 1}
    assert len(inbox.messages) == 1


# --- Message-ID --------------------------------------------------------------------------------

class RefusingOnce:
    """An SMTP server that keeps the first copy yet answers 451 (as a relay that timed out after taking it):
    the sender tries again, and the receiving side has two copies."""

    def __init__(self, inbox):
        self.inbox, self.calls = inbox, 0

    async def handle_DATA(self, server, session, envelope):
        await self.inbox.handle_DATA(server, session, envelope)
        self.calls += 1
        return "451 try again later" if self.calls == 1 else "250 OK"


def test_every_copy_of_one_message_has_the_same_message_id(app, db, queue, smtp):
    inbox, server = smtp
    server.stop()
    server.controller = None
    from aiosmtpd.controller import Controller

    controller = Controller(RefusingOnce(inbox), hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        message = queue()
        assert services.send_due(T0) == {"retry": 1}
        assert services.send_due(T0 + timedelta(minutes=1)) == {"sent": 1}
    finally:
        controller.stop()
    first, second = inbox.messages
    assert first["Message-ID"] == second["Message-ID"]
    digest = hashlib.sha256(message.dedupe_key.encode()).hexdigest()
    assert first["Message-ID"] == f"<{digest}@localhost.localdomain>"  # the domain of MAIL_FROM's default


def test_message_ids_differ_between_messages_and_follow_mail_from(app, db, queue, smtp):
    inbox, _server = smtp
    queue("overdue:1:2026-11-25T02:00:00+00:00:0:1")
    queue("overdue:1:2026-11-25T02:00:00+00:00:0:2", recipient="nurse@example.test")
    app.config["MAIL_FROM"] = "alerts@clinic.example"
    try:
        assert services.send_due(T0) == {"sent": 2}
    finally:
        app.config["MAIL_FROM"] = "compliance@localhost.localdomain"
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(set(ids)) == 2
    assert all(re.fullmatch(r"<[0-9a-f]{64}@clinic\.example>", i) for i in ids)


# --- failed messages: seen, and sent again ----------------------------------------------------------

@pytest.fixture
def failed(db, queue):
    message = queue()
    message.state, message.attempts, message.last_error = "failed", 340, "ConnectionRefusedError: [Errno 111]"
    db.session.commit()
    return message


def test_the_dashboard_and_the_emails_page_show_a_failed_email(db, login_as, manager, failed):
    client = login_as(manager)
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert 'id="failed-emails-alert"' in dashboard and "1 email could not be sent in 7 days" in dashboard
    emails = client.get("/emails").get_data(as_text=True)
    assert 'id="failed-alert"' in emails and "1 email could not be sent in 7 days" in emails
    assert 'id="resend-failed"' not in emails  # a manager sees it, an admin sends it again
    one = client.get(f"/emails/{failed.id}").get_data(as_text=True)
    assert 'id="failed-alert"' in one and 'id="resend-email"' not in one


def test_no_alert_without_a_failed_email(db, login_as, manager, queue):
    queue()
    client = login_as(manager)
    assert 'failed-emails-alert' not in client.get("/dashboard").get_data(as_text=True)
    assert 'failed-alert' not in client.get("/emails").get_data(as_text=True)


def test_an_admin_sends_a_failed_email_again_from_the_emails_page(app, db, login_as, admin, failed, smtp):
    inbox, _server = smtp
    client = login_as(admin)
    page = client.get("/emails").get_data(as_text=True)
    assert 'id="resend-failed"' in page and "data-confirm" in page
    response = client.form_post("/emails/resend", {})
    assert response.status_code == 302
    db.session.refresh(failed)
    assert failed.state == "queued" and failed.attempts == 340  # the tries so far stay counted
    assert failed.next_attempt_at <= datetime.now(timezone.utc)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "resend"))
    assert entry.entity_id == str(failed.id) and entry.actor_user_id == admin.id
    assert entry.before["state"] == "failed" and entry.before["attempts"] == 340
    assert "ConnectionRefusedError" in entry.before["last_error"]
    assert services.send_due(datetime.now(timezone.utc)) == {"sent": 1}
    assert len(inbox.messages) == 1


def test_an_admin_sends_one_failed_email_again_from_its_page(db, login_as, admin, failed, queue):
    client = login_as(admin)
    assert 'id="resend-email"' in client.get(f"/emails/{failed.id}").get_data(as_text=True)
    assert client.form_post(f"/emails/{failed.id}/resend", {}).status_code == 302
    db.session.refresh(failed)
    assert failed.state == "queued"
    # Only a failed one: refused, saying why.
    refused = client.form_post(f"/emails/{failed.id}/resend", {})
    assert refused.status_code == 409 and "this one is queued" in refused.get_data(as_text=True)
    refused = client.form_post("/emails/resend", {})
    assert refused.status_code == 409 and "no failed email" in refused.get_data(as_text=True)


@pytest.mark.parametrize("role", ["manager", "auditor", "nurse"])
def test_only_an_admin_may_send_failed_emails_again(request, db, login_as, failed, role):
    person = request.getfixturevalue(role)
    client = login_as(person)
    assert client.form_post("/emails/resend", {}).status_code == 403
    assert client.form_post(f"/emails/{failed.id}/resend", {}).status_code == 403
    db.session.refresh(failed)
    assert failed.state == "failed"
    with pytest.raises(Forbidden):
        services.resend(actor_for_user(person), T0)


def test_an_email_of_another_organisation_is_not_found(db, failed, outsider, make_user, other_site):
    from compliance.errors import NotFound

    their_admin = make_user("admin", [other_site], email="their.admin@example.test")
    with pytest.raises(NotFound):
        services.resend(actor_for_user(their_admin), T0, message_id=failed.id)
    with pytest.raises(Conflict):  # none of theirs failed
        services.resend(actor_for_user(their_admin), T0)


def test_sent_again_the_give_up_clock_starts_again(app, db, admin, failed, down):
    later = T0 + timedelta(days=10)
    assert services.resend(actor_for_user(admin), later) == 1
    db.session.commit()
    assert services.trying_since(failed) == later
    assert services.send_due(later) == {"retry": 1}  # ten days old, but tried again for 7 days from now
    assert services.send_due(later + timedelta(days=6)) == {"retry": 1}
    assert services.send_due(later + timedelta(days=7, hours=1)) == {"failed": 1}


def test_the_command_sends_every_failed_email_again(app, db, runner, failed, queue):
    still_queued = queue("digest:1:2026-11-25:1")
    result = runner.invoke(args=["scheduler", "resend", "--failed"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 failed email(s) queued again")
    db.session.refresh(failed)
    db.session.refresh(still_queued)
    assert failed.state == "queued" and still_queued.state == "queued"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "resend"))
    assert entry.actor_label == "scheduler (command line)" and entry.actor_user_id is None
    again = runner.invoke(args=["scheduler", "resend", "--failed"])
    assert again.output.startswith("0 failed email(s)")
    bare = runner.invoke(args=["scheduler", "resend"])
    assert bare.exit_code != 0 and "--failed" in bare.output
