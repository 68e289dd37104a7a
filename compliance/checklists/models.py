"""Checklist templates (versioned), their items, runs, answers (appended, never edited) and corrective actions."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..sites.models import User
from ..timeutil import UTCDateTime, utcnow

TEMPLATE_KINDS = ("opening", "before_client", "after_client", "decontamination", "closing", "weekly")
ITEM_KINDS = ("tick", "yes_no", "number", "choice", "text", "photo", "signature", "scan")
NOTE_WHEN = ("never", "no", "out_of_limits")


class ChecklistTemplate(db.Model):
    """A checklist of an organisation (opening, before a client …); its content lives in versions."""

    __tablename__ = "checklist_templates"
    __table_args__ = (UniqueConstraint("organisation_id", "key"),
                      CheckConstraint(f"kind IN {TEMPLATE_KINDS!r}", name="kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list["TemplateVersion"]] = relationship(back_populates="template",
                                                             order_by="TemplateVersion.number")


class TemplateVersion(db.Model):
    """One version of a template. Frozen once a run uses it: an edit then makes a new version."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("checklist_templates.id"))
    number: Mapped[int] = mapped_column()
    title: Mapped[dict] = mapped_column(JSON)  # {"en": …, "id": …}
    is_frozen: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    template: Mapped[ChecklistTemplate] = relationship(back_populates="versions")
    items: Mapped[list["TemplateItem"]] = relationship(back_populates="version", order_by="TemplateItem.position")


class TemplateItem(db.Model):
    """A question of a version: its kind, label in both languages, limits, and the guideline it serves."""

    __tablename__ = "template_items"
    __table_args__ = (UniqueConstraint("version_id", "key"),
                      CheckConstraint(f"kind IN {ITEM_KINDS!r}", name="kind"),
                      CheckConstraint(f"note_when IN {NOTE_WHEN!r}", name="note_when"))

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("template_versions.id"), index=True)
    position: Mapped[int] = mapped_column()
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))
    label: Mapped[dict] = mapped_column(JSON)  # {"en": …, "id": …}
    rule_id: Mapped[str | None] = mapped_column(String(64))
    is_required: Mapped[bool] = mapped_column(default=True)
    note_when: Mapped[str] = mapped_column(String(16), default="never")
    min_value: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    max_value: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    unit: Mapped[str] = mapped_column(String(16), default="")
    choices: Mapped[list | None] = mapped_column(JSON)  # [{"value": …, "en": …, "id": …}]

    version: Mapped[TemplateVersion] = relationship(back_populates="items")


class ChecklistRun(db.Model):
    """One filling-in of a version: for a site, room and local day, or for a treatment."""

    __tablename__ = "checklist_runs"
    __table_args__ = (Index("ix_checklist_runs_site_id_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("template_versions.id"))
    treatment_id: Mapped[int | None] = mapped_column(ForeignKey("treatments.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)  # a replayed start makes one run

    version: Mapped[TemplateVersion] = relationship()
    answers: Mapped[list["Answer"]] = relationship(back_populates="run", order_by="Answer.id")


class Answer(db.Model):
    """An answer, appended. A correction is a new answer pointing at the one it amends, with a reason."""

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_run_id_item_id", "run_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("checklist_runs.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("template_items.id"))
    value: Mapped[object] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    file_path: Mapped[str | None] = mapped_column(String(300))  # photo or signature, under the upload folder
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)  # made on the tablet: a retry stores once
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("answers.id"), unique=True)
    amend_reason: Mapped[str] = mapped_column(Text, default="")
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was given (on the tablet, maybe offline)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it reached the server

    @property
    def sent_later(self) -> bool:
        """Given offline and sent when the connection came back: more than a minute between the two."""
        return self.received_at is not None and (self.received_at - self.answered_at).total_seconds() > 60

    run: Mapped[ChecklistRun] = relationship(back_populates="answers")
    item: Mapped[TemplateItem] = relationship()
    answered_by: Mapped[User | None] = relationship()


class CorrectiveAction(db.Model):
    """Opened by a "no" or out-of-limit answer on an item that demands it: what, who, by when; a manager closes it."""

    __tablename__ = "corrective_actions"
    __table_args__ = (Index("ix_corrective_actions_site_id_closed_at", "site_id", "closed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("checklist_runs.id"))
    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id"), unique=True)
    rule_id: Mapped[str | None] = mapped_column(String(64))
    what: Mapped[str] = mapped_column(Text)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_on: Mapped[date] = mapped_column(Date)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_note: Mapped[str] = mapped_column(Text, default="")

    answer: Mapped[Answer] = relationship()
