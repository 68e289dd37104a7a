"""Sign-in events, enrolled tablets and per-site API keys."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..sites.models import Site, User
from ..timeutil import UTCDateTime, utcnow


class AuthEvent(db.Model):
    """One sign-in attempt or lock: appended, never changed; it also drives the throttles."""

    __tablename__ = "auth_events"
    __table_args__ = (
        Index("ix_auth_events_email_at", "email", "at"),
        Index("ix_auth_events_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # password_ok, password_failed, pin_ok, pin_failed, pin_locked, ...
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User | None] = relationship()


class TabletLink(db.Model):
    """A set-up link for one named tablet: spent by the first browser that uses it (claimed by a conditional
    UPDATE of `used_at`, so two browsers at the same moment make one tablet). Only the token's SHA-256 is kept."""

    __tablename__ = "tablet_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the command line or demo
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship()
    created_by: Mapped[User | None] = relationship()


LINK_PURPOSES = ("invitation", "password_reset")


class AccountLink(db.Model):
    """An emailed link to choose a password: an invitation (a new manager, admin or auditor) or a password
    reset. Signed with SECRET_KEY, single-use (claimed by a conditional UPDATE of `used_at`), expiring; only
    the SHA-256 of its random part is kept. A newer link of the same person ends the older ones (`ended_at`)."""

    __tablename__ = "account_links"
    __table_args__ = (CheckConstraint(f"purpose IN {LINK_PURPOSES!r}", name="purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the person asked (reset)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a newer link, or the password was set

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    def is_open(self, now: datetime) -> bool:
        return self.used_at is None and self.ended_at is None and now < self.expires_at


class TabletDevice(db.Model):
    """A browser a manager set up as a site's shared tablet; its cookie holds the token, we keep a hash."""

    __tablename__ = "tablet_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: from the CLI
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The link it was enrolled with (None: a manager set up the browser they were using). Unique: one link,
    # one tablet, even if the claim on the link were bypassed.
    link_id: Mapped[int | None] = mapped_column(ForeignKey("tablet_links.id"), unique=True)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship()
    link: Mapped[TabletLink | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKey(db.Model):
    """A machine's key for one site. Only its SHA-256 is stored; the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship()
