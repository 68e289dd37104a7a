"""Audit entries, appended only, each with the SHA-256 of its content and of the entry before it in the
organisation's chain; the chain's head (last sequence number and hash) is kept in a row of its own."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import UTCDateTime


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("organisation_id", "seq"),
        Index("ix_audit_entries_organisation_id_at", "organisation_id", "at"),
        Index("ix_audit_entries_entity", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    seq: Mapped[int] = mapped_column()                       # 1, 2, 3 … within the organisation
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)  # chained: as recorded
    # The site the entry belongs to, for the log's site filter and a site-scoped reader: the same as site_id,
    # and filled by migration 5e7e0c1d0020 for entries recorded before every row knew its site (answers
    # were recorded with none). Not part of the chained content, so those entries' hashes and anchors hold.
    owner_site_id: Mapped[int | None] = mapped_column(index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    actor_label: Mapped[str] = mapped_column(String(200))   # "Mira Manager (manager)", "scheduler", "API key …"
    action: Mapped[str] = mapped_column(String(40))         # create, update, delete, sign_in, export …
    entity_type: Mapped[str] = mapped_column(String(64))    # the table, or e.g. "report"
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(db.Model):
    """The last entry of an organisation's chain: taken with a row lock (PostgreSQL) or under SQLite's write
    lock before appending, so appends are serialised; a deleted last entry no longer matches it."""

    __tablename__ = "audit_heads"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditPendingEntry(db.Model):
    """An entry committed with its transaction on PostgreSQL but not yet in its chain: the sealer moves it into
    audit_entries, in order, moments later (right after that commit), so that no request holds the chain's head
    through its own commit. Empty but for those moments (or after a crash, until the next seal)."""

    __tablename__ = "audit_pending_entries"
    __table_args__ = (Index("ix_audit_pending_entries_organisation_id_id", "organisation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    site_id: Mapped[int | None] = mapped_column()
    actor_user_id: Mapped[int | None] = mapped_column()
    actor_api_key_id: Mapped[int | None] = mapped_column()
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
