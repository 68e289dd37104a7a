"""Obligations (what must be done, when, by whom), their status changes, findings, and the email outbox."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import UTCDateTime, utcnow

OBLIGATION_STATUSES = ("ok", "due", "overdue", "paused")
OUTBOX_STATES = ("queued", "sent", "failed")


class Obligation(db.Model):
    """A periodic duty of a subject (a steriliser's daily test, a site's opening checklist, a person's training).

    `alert_after` is the earliest moment it can become overdue, kept in the same transaction as every change,
    with an index, so that the scan finds candidates without looking at the rest (as Healthchecks does).
    """

    __tablename__ = "obligations"
    __table_args__ = (
        UniqueConstraint("site_id", "rule_id", "subject_type", "subject_id"),
        CheckConstraint(f"status IN {OBLIGATION_STATUSES!r}", name="status"),
        Index("ix_obligations_alert_after", "alert_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(24))  # steriliser, site, user, pack
    subject_id: Mapped[int] = mapped_column()
    schedule: Mapped[dict] = mapped_column(JSON)  # {"cron": {...}} or {"every_days": n}, grace_minutes
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    alert_after: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8), default="ok")
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ObligationChange(db.Model):
    """One change of an obligation's status, appended by whoever claimed it."""

    __tablename__ = "obligation_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(8))
    to_status: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Finding(db.Model):
    """An overdue obligation (one per obligation and due time), with the guideline version in force."""

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("obligation_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"))
    rule_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    guideline_version: Mapped[str] = mapped_column(String(40))
    overrides: Mapped[dict] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxMessage(db.Model):
    """An email to send, at least once and never twice for the same key (obligation, due time, kind, recipient)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),
        Index("ix_outbox_messages_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
