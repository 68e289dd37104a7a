"""Single-use items: their types, the lots received, and the units (by the maker's serial or our label)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..sites.models import Site, User
from ..timeutil import UTCDateTime, utcnow

ITEM_KINDS = ("needle_cartridge", "single_use_roller", "lancet", "blade", "other")
LOT_STATUSES = ("available", "quarantined", "recalled")


class ItemType(db.Model):
    """A single-use product: a 12- or 36-pin cartridge, a 0.5 mm single-use roller, a lancet, a blade."""

    __tablename__ = "item_types"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        UniqueConstraint("organisation_id", "gtin"),
        CheckConstraint(f"kind IN {ITEM_KINDS!r}", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(24))
    maker: Mapped[str] = mapped_column(String(160), default="")
    product_code: Mapped[str] = mapped_column(String(80), default="")
    gtin: Mapped[str | None] = mapped_column(String(14))
    pins: Mapped[int | None] = mapped_column()
    needle_length_mm: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lot(db.Model):
    """A lot received at a site: number, expiry, quantity; it can be quarantined or recalled."""

    __tablename__ = "lots"
    __table_args__ = (
        UniqueConstraint("site_id", "item_type_id", "lot_number"),
        CheckConstraint(f"status IN {LOT_STATUSES!r}", name="status"),
        CheckConstraint("quantity > 0", name="quantity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    item_type_id: Mapped[int] = mapped_column(ForeignKey("item_types.id"), index=True)
    lot_number: Mapped[str] = mapped_column(String(40))
    expires_on: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column()
    supplier_ref: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[str] = mapped_column(String(12), default="available")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()
    item_type: Mapped[ItemType] = relationship()
    received_by: Mapped[User | None] = relationship()


class Unit(db.Model):
    """One single-use unit, known by the maker's serial (GS1 AI 21) or a label we generate.

    A unit is unique in the organisation by (item type, serial); its one allowed use is a row in
    treatment_units, whose unique unit_id makes a second use impossible, whichever tablet tries.
    """

    __tablename__ = "units"
    __table_args__ = (
        UniqueConstraint("organisation_id", "item_type_id", "serial"),
        Index("ix_units_lot_id", "lot_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    item_type_id: Mapped[int] = mapped_column(ForeignKey("item_types.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    serial: Mapped[str] = mapped_column(String(40))
    is_generated_label: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lot: Mapped[Lot] = relationship()
    item_type: Mapped[ItemType] = relationship()
