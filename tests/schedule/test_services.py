"""The overdue scan and the outbox against a real database and a real SMTP server on loopback (aiosmtpd)."""
import email
import email.policy
import socket
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from compliance.schedule import services
from compliance.schedule.models import Finding, Obligation, OutboxMessage

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # 08:00 in Jakarta
DAILY_9 = {"cron": {"hour": 9, "minute": 0}, "grace_minutes": 60}


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real SMTP server on a loopback port that can be stopped and started again (a new controller each time)."""

    def __init__(self):
        self.inbox, self.port, self.controller = Inbox(), _free_port(), None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(app):
    server = Server()
    server.start()
    old = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USER")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_SECURITY="none", SMTP_USER="")
    yield server.inbox, server
    server.stop()
    app.config.update(old)


@pytest.fixture
def obligation(db, site, manager):
    row = services.ensure_obligation(site.id, "air-removal-test-daily", "steriliser", 1, DAILY_9, NOW)
    db.session.commit()
    return row


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_obligation_is_first_due_at_nine_local(obligation):
    assert obligation.next_due_at == datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 09:00 Jakarta
    assert obligation.alert_after == obligation.next_due_at + timedelta(hours=1)


def test_nothing_is_flagged_before_the_grace_ends(db, obligation):
    assert services.scan(obligation.alert_after).findings == []
    assert services.scan(obligation.alert_after + timedelta(seconds=1)).findings != []


def test_two_scans_give_one_finding_and_one_email(db, obligation, manager):
    late = obligation.alert_after + timedelta(minutes=5)
    first = services.scan(late)
    db.session.commit()
    second = services.scan(late + timedelta(minutes=1))
    db.session.commit()
    assert len(first.findings) == 1 and second.findings == []
    assert _count(db, Finding) == 1 and _count(db, OutboxMessage) == 1


def test_a_three_day_gap_gives_one_finding_per_missed_obligation(db, obligation, site):
    other = services.ensure_obligation(site.id, "automatic-control-test-daily", "steriliser", 1, DAILY_9, NOW)
    db.session.commit()
    result = services.scan(NOW + timedelta(days=3))
    db.session.commit()
    assert sorted(db.session.get(Finding, f).obligation_id for f in result.findings) == sorted([obligation.id, other.id])
    assert services.scan(NOW + timedelta(days=3, minutes=1)).findings == []


def test_doing_the_thing_advances_and_resolves(db, obligation):
    services.scan(obligation.alert_after + timedelta(minutes=1))
    services.mark_done(obligation, obligation.alert_after + timedelta(minutes=30))
    db.session.commit()
    assert obligation.status == "ok"
    assert obligation.next_due_at == datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
    assert db.session.scalar(select(Finding)).resolved_at is not None


def test_one_bad_row_is_skipped_and_the_others_are_flagged(db, obligation, site):
    bad = services.ensure_obligation(site.id, "spore-test", "steriliser", 1, {"every_days": 7}, NOW)
    bad.rule_id = "no-such-rule"
    db.session.commit()
    result = services.scan(NOW + timedelta(days=8))
    assert result.skipped == [bad.id] and len(result.findings) == 1


def test_the_email_arrives_in_the_managers_language_with_a_link(app, db, obligation, manager, smtp, site):
    inbox, _controller = smtp
    manager.language = "id"
    db.session.commit()
    services.scan(obligation.alert_after + timedelta(minutes=1))
    db.session.commit()
    assert services.send_due(obligation.alert_after + timedelta(minutes=2)) == {"sent": 1}
    [message] = inbox.messages
    assert message["To"] == manager.email
    assert message["Content-Language"] == "id"
    assert "Jakarta" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert f"{app.config['BASE_URL']}/overview" in text
    assert message.get_body(("html",)) is not None


def test_smtp_down_the_email_waits_then_is_delivered_once(app, db, obligation, manager, smtp):
    inbox, controller = smtp
    services.scan(obligation.alert_after + timedelta(minutes=1))
    db.session.commit()
    controller.stop()
    t = obligation.alert_after + timedelta(minutes=2)
    assert services.send_due(t) == {"retry": 1}
    assert services.send_due(t) == {}  # backing off: not before its next attempt
    controller.start()
    later = t + timedelta(minutes=5)
    assert services.send_due(later) == {"sent": 1}
    assert services.send_due(later + timedelta(hours=1)) == {}
    assert len(inbox.messages) == 1
    row = db.session.scalar(select(OutboxMessage))
    assert row.state == "sent" and row.attempts == 2
