"""Obligations, the overdue scan and the email outbox. Every step is safe if two processes run it at once:
rows are claimed with a conditional UPDATE and acted on only when exactly one row changed."""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..extensions import db
from ..guidelines.services import pack_for_site
from ..sites.models import Site, User, user_sites
from . import rules
from .models import Finding, Obligation, ObligationChange, OutboxMessage

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8


def schedule_from_json(data: dict) -> rules.Schedule:
    """The stored form of a schedule: {"cron": {...}} or {"every_days": n}, with "grace_minutes"."""
    grace = timedelta(minutes=int(data.get("grace_minutes", 60)))
    if data.get("cron"):
        return rules.Schedule(cron=dict(data["cron"]), grace=grace)
    return rules.Schedule(every=timedelta(days=int(data["every_days"])), grace=grace)


def ensure_obligation(site_id: int, rule_id: str, subject_type: str, subject_id: int, schedule: dict,
                      now: datetime) -> Obligation:
    """Create the obligation if it does not exist yet, first due at the schedule's next time after now."""
    row = db.session.scalar(select(Obligation).where(
        Obligation.site_id == site_id, Obligation.rule_id == rule_id, Obligation.subject_type == subject_type,
        Obligation.subject_id == subject_id))
    if row is not None:
        return row
    site = db.session.get(Site, site_id)
    spec = schedule_from_json(schedule)
    due = rules.next_due_at(spec, site.timezone, now)
    row = Obligation(site_id=site_id, rule_id=rule_id, subject_type=subject_type, subject_id=subject_id,
                     schedule=schedule, next_due_at=due, alert_after=rules.alert_after(due, spec), status="ok",
                     created_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def mark_done(obligation: Obligation, done_at: datetime) -> None:
    """Doing the thing advances the obligation in the same transaction as the record that did it."""
    site = db.session.get(Site, obligation.site_id)
    spec = schedule_from_json(obligation.schedule)
    # Done before its due time counts for that due time: the next one is the one after it.
    due = rules.next_due_at(spec, site.timezone, max(done_at, obligation.next_due_at) if spec.cron else done_at)
    old = obligation.status
    obligation.next_due_at, obligation.alert_after = due, rules.alert_after(due, spec)
    obligation.last_done_at, obligation.status = done_at, "ok"
    if old != "ok":
        db.session.add(ObligationChange(obligation_id=obligation.id, from_status=old, to_status="ok",
                                        due_at=due, at=done_at))
    for finding in db.session.scalars(select(Finding).where(Finding.obligation_id == obligation.id,
                                                            Finding.resolved_at.is_(None))):
        finding.resolved_at = done_at
    db.session.flush()


@dataclass
class ScanResult:
    findings: list[int]
    skipped: list[int]


def candidates(now: datetime, limit: int = 500) -> list[Obligation]:
    """Obligations that may have become overdue, through the alert_after index, most overdue first."""
    return list(db.session.scalars(select(Obligation).where(
        Obligation.alert_after <= now, Obligation.status.in_(("ok", "due"))).order_by(
        Obligation.alert_after).limit(limit)))


def scan(now: datetime, limit: int = 500) -> ScanResult:
    """Flag every obligation overdue at `now` once: a status change, a finding and its emails.

    After downtime each missed obligation is flagged once (its due time does not move until it is done).
    One bad row is logged and skipped; it never stops the loop."""
    result = ScanResult([], [])
    for obligation in candidates(now, limit):
        try:
            with db.session.begin_nested():
                finding = _flag(obligation, now)
        except (SQLAlchemyError, ValueError, KeyError) as exc:  # one bad row must not stop the others
            log.exception("scan: obligation %s skipped: %s", obligation.id, exc)
            result.skipped.append(obligation.id)
            continue
        if finding is not None:
            result.findings.append(finding.id)
    return result


def _flag(obligation: Obligation, now: datetime) -> Finding | None:
    spec = schedule_from_json(obligation.schedule)
    state = rules.state_at(obligation.next_due_at, spec, now, snoozed_until=obligation.snoozed_until)
    if state != "overdue":
        return None
    old, due = obligation.status, obligation.next_due_at
    claimed = db.session.execute(update(Obligation).where(
        Obligation.id == obligation.id, Obligation.status == old, Obligation.next_due_at == due).values(
        status="overdue"))
    if claimed.rowcount != 1:
        return None  # another scan got it first
    db.session.add(ObligationChange(obligation_id=obligation.id, from_status=old, to_status="overdue",
                                    due_at=due, at=now))
    pack = pack_for_site(obligation.site_id)
    rule = pack.rule(obligation.rule_id)
    finding = Finding(site_id=obligation.site_id, obligation_id=obligation.id, rule_id=rule.id,
                      severity=rule.severity, due_at=due, guideline_version=pack.version,
                      overrides={f"{r}.{k}": v for (r, k), v in pack.overrides.items()}, opened_at=now)
    db.session.add(finding)
    db.session.flush()
    for manager in site_managers(obligation.site_id):
        queue_overdue_email(obligation, finding, manager, now)
    db.session.expire(obligation)
    return finding


def site_managers(site_id: int) -> list[User]:
    return list(db.session.scalars(select(User).join(user_sites, user_sites.c.user_id == User.id).where(
        user_sites.c.site_id == site_id, User.role.in_(("manager", "admin")), User.is_active_user.is_(True))
        .order_by(User.id)))


def queue_overdue_email(obligation: Obligation, finding: Finding, person: User, now: datetime) -> OutboxMessage | None:
    """One overdue alert per (obligation, due time, person), in the person's language, with a link."""
    site = db.session.get(Site, obligation.site_id)
    language = person.language or site.language
    key = f"overdue:{obligation.id}:{finding.due_at.isoformat()}:{person.id}"
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
        return None
    rule = pack_for_site(site.id).rule(obligation.rule_id)
    link = f"{current_app.config['BASE_URL']}/overview"
    with force_locale(language):
        subject = _("Overdue at %(site)s: %(rule)s", site=site.name, rule=rule.title_in(language))
        context = {"site": site, "rule_title": rule.title_in(language), "due_at": finding.due_at,
                   "severity": rule.severity, "link": link, "person": person}
        text = render_template("email/overdue.txt", **context)
        html = render_template("email/overdue.html", **context)
    row = OutboxMessage(dedupe_key=key, site_id=site.id, recipient=person.email, language=language,
                        subject=subject, text_body=text, html_body=html, state="queued", next_attempt_at=now,
                        created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return None  # queued by another process a moment ago
    return row


# --- sending -----------------------------------------------------------------------------------

def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes between tries, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def _smtp_send(message: OutboxMessage) -> None:
    config = current_app.config
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = config["MAIL_FROM"], message.recipient, message.subject
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    email["Content-Language"] = message.language  # after the body: set_content replaces Content-* headers
    security = config["SMTP_SECURITY"]
    if security == "tls":
        smtp = smtplib.SMTP_SSL(config["SMTP_HOST"], config["SMTP_PORT"], timeout=20,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=20)
    with smtp:
        if security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
        smtp.send_message(email)


def send_one(message_id: int, now: datetime) -> str:
    """Claim a queued message (conditional UPDATE), send it, record the outcome. Commits: it runs as a job."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.state != "queued" or message.next_attempt_at > now:
        return "skipped"
    attempts = message.attempts
    claimed = db.session.execute(update(OutboxMessage).where(
        OutboxMessage.id == message.id, OutboxMessage.state == "queued", OutboxMessage.attempts == attempts).values(
        attempts=attempts + 1, next_attempt_at=now + backoff(attempts + 1)))
    db.session.commit()  # the claim is visible to other senders before the slow part
    if claimed.rowcount != 1:
        return "skipped"
    db.session.refresh(message)
    try:
        _smtp_send(message)
    except (OSError, smtplib.SMTPException) as exc:
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if message.attempts >= MAX_ATTEMPTS:
            message.state = "failed"
        db.session.commit()
        return "retry" if message.state == "queued" else "failed"
    message.state, message.sent_at, message.last_error = "sent", now, ""
    db.session.commit()
    return "sent"


def send_due(now: datetime, limit: int = 100) -> dict[str, int]:
    """Send every queued message whose time has come; returns counts by outcome."""
    ids = list(db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.state == "queued", OutboxMessage.next_attempt_at <= now).order_by(OutboxMessage.id)
        .limit(limit)))
    db.session.commit()
    counts: dict[str, int] = {}
    for message_id in ids:
        outcome = send_one(message_id, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
