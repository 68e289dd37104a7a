"""Obligations (what must be done, when, by whom), their status changes, findings, and the email outbox."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..sites.models import Site, User
from ..timeutil import UTCDateTime, utcnow

OBLIGATION_STATUSES = ("ok", "overdue", "paused", "ended")
ACTIONS = ("reminder", "overdue", "escalation", "repeat")
OCCURRENCE_STATES = ("due", "done_on_time", "done_late", "missed", "excused")
OUTBOX_STATES = ("queued", "sent", "failed")
MESSAGE_KINDS = ("reminder", "overdue", "escalation", "repeat", "digest", "invitation", "password_reset")
# Their bodies hold a personal link to choose a password: never shown on the Emails page or in the API.
PRIVATE_KINDS = frozenset({"invitation", "password_reset"})


class Obligation(db.Model):
    """A duty of a subject (a steriliser's daily test, a site's opening checklist, a person's training renewal).

    `next_due_at` is the current due time: the one whose turn it is (it has come and the next has not), or the
    coming one. `next_action` is what the scan tells people next (a reminder, the overdue alert, an escalation,
    a repeat) at `action_at`. `alert_after` is the next moment the scan has anything to do for it: the action,
    the due time coming (its occurrence is made), or the next due time coming (the current one's turn ends);
    NULL when there is nothing (paused, ended). It is kept in the same transaction as every change, with an
    index, so that the scan reads only the rows whose time has come (as Healthchecks does).
    """

    __tablename__ = "obligations"
    __table_args__ = (
        UniqueConstraint("kind", "subject_type", "subject_id"),
        CheckConstraint(f"status IN {OBLIGATION_STATUSES!r}", name="status"),
        CheckConstraint(f"next_action IS NULL OR next_action IN {ACTIONS!r}", name="next_action"),
        Index("ix_obligations_alert_after", "alert_after"),
        Index("ix_obligations_site_id_status", "site_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(String(40))      # the pack's obligation key, e.g. air-removal-test
    rule_id: Mapped[str] = mapped_column(String(64))   # the guideline rule it serves
    subject_type: Mapped[str] = mapped_column(String(24))  # steriliser, site, pack, training_record …
    subject_id: Mapped[int] = mapped_column()
    responsible: Mapped[str] = mapped_column(String(8))  # staff, manager, person
    responsible_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # {"cron": {...}} or {"every_days": n} or {"once": true}; "grace_minutes"; "closed_days"
    schedule: Mapped[dict] = mapped_column(JSON)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    alert_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_action: Mapped[str | None] = mapped_column(String(12))
    action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when next_action is due
    status: Mapped[str] = mapped_column(String(8), default="ok")
    # What has been told for the current due time; cleared when it is done.
    reminded: Mapped[bool] = mapped_column(default=False)
    overdue_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated: Mapped[bool] = mapped_column(default=False)
    repeats_sent: Mapped[int] = mapped_column(default=0)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped["Site"] = relationship()
    responsible_user: Mapped["User | None"] = relationship()


class ObligationChange(db.Model):
    """One change of an obligation (status, pause, snooze, done), appended; who and why when a person did it."""

    __tablename__ = "obligation_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(8))
    to_status: Mapped[str] = mapped_column(String(8))  # ok, overdue, paused, ended, snoozed
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a snooze's end

    by: Mapped["User | None"] = relationship()


class Occurrence(db.Model):
    """One due time of an obligation and what became of it: due (its turn has come), done on time, done late,
    missed (not done by the end of its grace, with a finding; done later in its turn it becomes done late), or
    excused (a pause, a closed day, the subject out of service). One row per obligation and due time; the
    compliance rates are counted from these rows."""

    __tablename__ = "occurrences"
    __table_args__ = (
        UniqueConstraint("obligation_id", "due_at"),
        CheckConstraint(f"state IN {OCCURRENCE_STATES!r}", name="state"),
        Index("ix_occurrences_site_id_due_at", "site_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    local_day: Mapped[date] = mapped_column(Date)          # the due time's day in the site's zone
    state: Mapped[str] = mapped_column(String(12), default="due")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    record: Mapped[str] = mapped_column(String(80), default="")   # what did it, e.g. "steriliser_test:12"
    note: Mapped[str] = mapped_column(Text, default="")           # why it was excused
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    obligation: Mapped[Obligation] = relationship()
    done_by: Mapped["User | None"] = relationship()


class Finding(db.Model):
    """An overdue obligation (one per obligation and due time), with the guideline version in force. A finding
    with `gap_until` says the scheduler was not running: due times from `due_at` to `gap_until` were beyond
    the look-back and were not checked one by one."""

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("obligation_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"))
    kind: Mapped[str] = mapped_column(String(40))
    rule_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    guideline_version: Mapped[str] = mapped_column(String(40))
    overrides: Mapped[dict] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gap_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    obligation: Mapped[Obligation] = relationship()


class OutboxMessage(db.Model):
    """An email to send, at least once (a copy sent again after a crash carries the same Message-ID); queued
    once per key (kind, obligation, due time, repeat, recipient)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),
        CheckConstraint(f"kind IN {MESSAGE_KINDS!r}", name="kind"),
        Index("ix_outbox_messages_site_id_created_at", "site_id", "created_at"),
        Index("ix_outbox_messages_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(String(16))
    obligation_id: Mapped[int | None] = mapped_column(ForeignKey("obligations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
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
