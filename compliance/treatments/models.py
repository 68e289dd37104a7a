"""Clients, treatments with the packs and single-use units used, gate refusals and overrides,
sharps containers, adverse events and look-backs."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..sites.models import Room, Site, User
from ..sterilisation.models import Pack
from ..stock.models import Unit
from ..timeutil import UTCDateTime, utcnow

PROCEDURES = ("face", "acne_scars", "surgical_scars", "stretch_marks", "scalp", "other")
TREATMENT_STATUSES = ("open", "finished", "abandoned")
ADVERSE_KINDS = ("redness", "swelling", "pain", "infection", "herpes_flare", "granuloma", "hyperpigmentation",
                 "scarring", "heavy_bleeding", "bruising", "needlestick_injury", "other")
SEVERITIES = ("mild", "moderate", "severe")


class Client(db.Model):
    """A client by pseudonymous code; name, phone and consent are for managers only."""

    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("organisation_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)  # registered at
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SharpsContainer(db.Model):
    """A named sharps container in a room, from opening to closing at its fill line."""

    __tablename__ = "sharps_containers"
    __table_args__ = (UniqueConstraint("site_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"))
    label: Mapped[str] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disposal_ref: Mapped[str] = mapped_column(String(120), default="")

    room: Mapped[Room | None] = relationship()


class Treatment(db.Model):
    """A treatment: the join that makes look-back possible (client, practitioner, packs, units, loads)."""

    __tablename__ = "treatments"
    __table_args__ = (
        CheckConstraint(f"status IN {TREATMENT_STATUSES!r}", name="status"),
        CheckConstraint(f"procedure IN {PROCEDURES!r}", name="procedure"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="times"),
        Index("ix_treatments_site_id_started_at", "site_id", "started_at"),
        Index("ix_treatments_client_id_started_at", "client_id", "started_at"),
        Index("ix_treatments_practitioner_id_started_at", "practitioner_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    procedure: Mapped[str] = mapped_column(String(24))
    # How the needles reach the skin (a key of the guideline pack's gate methods: pen, roller): which needle
    # items the gate must accept before the treatment can be finished. None for treatments recorded before.
    method: Mapped[str | None] = mapped_column(String(24))
    needle_depth_mm: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    passes: Mapped[int | None] = mapped_column()
    passes_confirmed: Mapped[bool] = mapped_column(default=False)  # outside 6–10, the practitioner confirmed
    screening: Mapped[dict | None] = mapped_column(JSON)  # answers; None = not recorded
    screening_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    products: Mapped[list] = mapped_column(JSON, default=list)  # anaesthetic and topical products with lots
    aftercare: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="open")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sharps_container_id: Mapped[int | None] = mapped_column(ForeignKey("sharps_containers.id"))
    abandoned_reason: Mapped[str] = mapped_column(Text, default="")  # why it stopped; ended_at is when
    abandoned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A manager who overrode the practitioner's missing training supervises the treatment (trained-practitioner).
    supervised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()
    room: Mapped[Room] = relationship()
    client: Mapped[Client] = relationship()
    practitioner: Mapped[User] = relationship(foreign_keys=[practitioner_id])
    supervised_by: Mapped[User | None] = relationship(foreign_keys=[supervised_by_id])
    packs: Mapped[list["TreatmentPack"]] = relationship(back_populates="treatment", order_by="TreatmentPack.added_at")
    units: Mapped[list["TreatmentUnit"]] = relationship(back_populates="treatment", order_by="TreatmentUnit.added_at")


class TreatmentPack(db.Model):
    """A sterile pack opened for a treatment. A pack is used once: pack_id is unique."""

    __tablename__ = "treatment_packs"

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id"), index=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("packs.id"), unique=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    override_id: Mapped[int | None] = mapped_column(ForeignKey("gate_overrides.id"))

    treatment: Mapped[Treatment] = relationship(back_populates="packs")
    pack: Mapped[Pack] = relationship()


class TreatmentUnit(db.Model):
    """A single-use unit used in a treatment. unit_id is unique: the database refuses a second use."""

    __tablename__ = "treatment_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), unique=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sharps_container_id: Mapped[int | None] = mapped_column(ForeignKey("sharps_containers.id"))
    override_id: Mapped[int | None] = mapped_column(ForeignKey("gate_overrides.id"))

    treatment: Mapped[Treatment] = relationship(back_populates="units")
    unit: Mapped[Unit] = relationship()


class GateAttempt(db.Model):
    """A refused point-of-use check: who tried what, which rule refused it and why. Stored, never a usage."""

    __tablename__ = "gate_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    subject: Mapped[str] = mapped_column(String(12))  # pack, unit, practitioner, screening
    scanned: Mapped[str] = mapped_column(String(200), default="")
    pack_id: Mapped[int | None] = mapped_column(ForeignKey("packs.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    reasons: Mapped[list] = mapped_column(JSON)  # [{"rule", "code", "values"}]
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class GateOverride(db.Model):
    """A manager's written override of a refusal; it is a finding on the reports."""

    __tablename__ = "gate_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("gate_attempts.id"), unique=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    attempt: Mapped[GateAttempt] = relationship()
    manager: Mapped[User] = relationship()


class AdverseEvent(db.Model):
    """An effect after a treatment; reportable kinds are findings, an infection opens a look-back."""

    __tablename__ = "adverse_events"
    __table_args__ = (
        CheckConstraint(f"kind IN {ADVERSE_KINDS!r}", name="kind"),
        CheckConstraint(f"severity IN {SEVERITIES!r}", name="severity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(12))
    is_reportable: Mapped[bool] = mapped_column()
    onset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text, default="")
    follow_up: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    treatment: Mapped[Treatment] = relationship()


class LookBack(db.Model):
    """A look-back started by an infection: the other clients exposed to the same devices and loads."""

    __tablename__ = "look_backs"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    adverse_event_id: Mapped[int] = mapped_column(ForeignKey("adverse_events.id"), unique=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_days: Mapped[int] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_note: Mapped[str] = mapped_column(Text, default="")

    adverse_event: Mapped[AdverseEvent] = relationship()
