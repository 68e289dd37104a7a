"""Reusable devices, their kinds, sterilisers and their programmes."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..names import keeps_name_key
from ..sites.models import Site, User
from ..timeutil import UTCDateTime, utcnow

SPAULDING_CLASSES = ("critical", "semi-critical", "non-critical")
DEVICE_STATUSES = ("in_service", "dirty", "in_reprocessing", "quarantined", "retired")
STERILISER_TYPES = ("B", "S", "N")


@keeps_name_key
class DeviceType(db.Model):
    """A kind of reusable device (roller handle, pen, forceps …) with its Spaulding class."""

    __tablename__ = "device_types"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        Index("ux_device_types_organisation_id_name_key", "organisation_id", "name_key", unique=True),
        CheckConstraint(f"spaulding_class IN {SPAULDING_CLASSES!r}", name="spaulding_class"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    name_key: Mapped[str] = mapped_column(String(120))  # see compliance/names.py
    spaulding_class: Mapped[str] = mapped_column(String(16), default="critical")
    is_hollow: Mapped[bool] = mapped_column(default=False)
    default_max_cycles: Mapped[int | None] = mapped_column()
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Device(db.Model):
    """One reusable device, by serial. Its status changes are appended to device_events."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("organisation_id", "serial"),
        CheckConstraint(f"status IN {DEVICE_STATUSES!r}", name="status"),
        CheckConstraint("reprocessing_count >= 0", name="count"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    device_type_id: Mapped[int] = mapped_column(ForeignKey("device_types.id"), index=True)
    serial: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="dirty")
    max_cycles: Mapped[int | None] = mapped_column()  # the maker's limit, if any
    reprocessing_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()
    device_type: Mapped[DeviceType] = relationship()


class DeviceEvent(db.Model):
    """A step in a device's life: status change, cleaned, inspected, packed, sterilised, used. Appended only."""

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_device_id_at", "device_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    kind: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    pack_id: Mapped[int | None] = mapped_column(ForeignKey("packs.id"))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    by: Mapped[User | None] = relationship()


@keeps_name_key
class Steriliser(db.Model):
    """A benchtop steriliser (EN 13060 type B, S or N) at a site."""

    __tablename__ = "sterilisers"
    __table_args__ = (
        UniqueConstraint("site_id", "name"),
        Index("ux_sterilisers_site_id_name_key", "site_id", "name_key", unique=True),
        CheckConstraint(f"type IN {STERILISER_TYPES!r}", name="type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    name_key: Mapped[str] = mapped_column(String(120))
    make: Mapped[str] = mapped_column(String(120), default="")
    model: Mapped[str] = mapped_column(String(120), default="")
    serial: Mapped[str] = mapped_column(String(80), default="")
    type: Mapped[str] = mapped_column(String(1))
    # Type S only: validated by the maker for wrapped and hollow loads (EN 13060).
    is_validated_for_wrapped: Mapped[bool] = mapped_column(default=False)
    is_in_service: Mapped[bool] = mapped_column(default=True)
    out_of_service_reason: Mapped[str] = mapped_column(Text, default="")
    validation_due_on: Mapped[date | None] = mapped_column(Date)
    calibration_due_on: Mapped[date | None] = mapped_column(Date)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()
    programmes: Mapped[list["Programme"]] = relationship(back_populates="steriliser", order_by="Programme.id")


@keeps_name_key
class Programme(db.Model):
    """A steriliser's programme: set temperature, minimum holding time, and optional minimum pressure."""

    __tablename__ = "programmes"
    __table_args__ = (
        UniqueConstraint("steriliser_id", "name"),
        Index("ux_programmes_steriliser_id_name_key", "steriliser_id", "name_key", unique=True),
        CheckConstraint("temperature_c > 0 AND temperature_c < 200", name="temperature"),
        CheckConstraint("min_holding_seconds > 0", name="holding"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    steriliser_id: Mapped[int] = mapped_column(ForeignKey("sterilisers.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    name_key: Mapped[str] = mapped_column(String(80))
    temperature_c: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    min_holding_seconds: Mapped[int] = mapped_column()
    min_pressure_kpa: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    is_active: Mapped[bool] = mapped_column(default=True)

    steriliser: Mapped[Steriliser] = relationship(back_populates="programmes")


class SteriliserStatusChange(db.Model):
    """Each time a steriliser goes out of or back into service, and why. Appended only."""

    __tablename__ = "steriliser_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    steriliser_id: Mapped[int] = mapped_column(ForeignKey("sterilisers.id"), index=True)
    is_in_service: Mapped[bool] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    test_id: Mapped[int | None] = mapped_column(ForeignKey("steriliser_tests.id"))
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
