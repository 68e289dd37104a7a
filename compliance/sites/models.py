"""Organisation, sites, rooms, people and their training."""
from __future__ import annotations

from datetime import date, datetime

from flask_login import UserMixin
from sqlalchemy import (
    Index,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,

    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..names import keeps_name_key
from ..timeutil import UTCDateTime, utcnow
from .rules import default_locale

ROLES = ("staff", "manager", "admin", "auditor")

user_sites = Table(
    "user_sites",
    db.metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("site_id", ForeignKey("sites.id"), primary_key=True),
)


@keeps_name_key
class Organisation(db.Model):
    __tablename__ = "organisations"
    __table_args__ = (Index("ux_organisations_name_key", "name_key", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    name_key: Mapped[str] = mapped_column(String(200))  # see compliance/names.py
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sites: Mapped[list["Site"]] = relationship(back_populates="organisation", order_by="Site.name")


@keeps_name_key
class Site(db.Model):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),
                      Index("ux_sites_organisation_id_name_key", "organisation_id", "name_key", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    # How dates, times and numbers are written (config.LOCALES); a site added without one gets its default.
    locale: Mapped[str] = mapped_column(String(16), default=lambda ctx: default_locale(
        ctx.get_current_parameters().get("language"), ctx.get_current_parameters().get("timezone")))
    address: Mapped[str] = mapped_column(String(500), default="")
    # Weekly days off, e.g. "sun" or "sat,sun": nothing falls due on them (nor on the site's holidays).
    closed_weekdays: Mapped[str] = mapped_column(String(32), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation] = relationship(back_populates="sites")
    rooms: Mapped[list["Room"]] = relationship(back_populates="site", order_by="Room.name")

    def __repr__(self) -> str:
        return f"<Site {self.id} {self.name}>"


class SiteHoliday(db.Model):
    """A day the site is closed (a public holiday, a closure): daily duties do not fall due."""

    __tablename__ = "site_holidays"
    __table_args__ = (UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@keeps_name_key
class Room(db.Model):
    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("site_id", "name"),
                      Index("ux_rooms_site_id_name_key", "site_id", "name_key", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    name_key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(32), default="treatment")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship(back_populates="rooms")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    locale: Mapped[str | None] = mapped_column(String(16))  # the person's own formats; None: the site's
    password_hash: Mapped[str | None] = mapped_column(String(255))
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    pin_failed_count: Mapped[int] = mapped_column(default=0)
    pin_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active_user: Mapped[bool] = mapped_column("is_active", default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every session's user id ("12.3"): raising it ends every session of the person at their next
    # request (a password reset, a PIN change, deactivation).
    session_version: Mapped[int] = mapped_column(default=0)

    organisation: Mapped[Organisation] = relationship()
    sites: Mapped[list[Site]] = relationship(secondary=user_sites, order_by="Site.name")

    def get_id(self) -> str:  # Flask-Login: what the session cookie holds
        return f"{self.id}.{self.session_version or 0}"

    def end_sessions(self) -> None:
        """Every session of this person ends at its next request (this one too, unless signed in again)."""
        self.session_version = (self.session_version or 0) + 1

    @property
    def is_active(self) -> bool:  # Flask-Login: a deactivated user can't sign in
        return self.is_active_user

    @property
    def site_ids(self) -> set[int]:
        return {s.id for s in self.sites}

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class TrainingRecord(db.Model):
    """A completed course. Corrections replace a record (replaced_by_id); nothing is edited in place."""

    __tablename__ = "training_records"
    __table_args__ = (CheckConstraint("expires_on IS NULL OR expires_on >= completed_on", name="dates"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    course: Mapped[str] = mapped_column(String(64))
    completed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    evidence_ref: Mapped[str] = mapped_column(String(300), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    void_reason: Mapped[str] = mapped_column(Text, default="")
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("training_records.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    recorded_by: Mapped[User | None] = relationship(foreign_keys=[recorded_by_id])


def count(stmt) -> int:
    """Rows a select would return (for pagination)."""
    return db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
