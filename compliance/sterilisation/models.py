"""Steriliser tests, cycles (loads), packs, and recalls."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, LargeBinary, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..devices.models import Device, Programme, Steriliser
from ..extensions import db
from ..sites.models import User
from ..timeutil import UTCDateTime, utcnow

TEST_KINDS = ("air_removal", "automatic_control", "spore", "leak", "validation", "calibration")
TEST_RESULTS = ("pending", "pass", "fail")
CYCLE_STATUSES = ("awaiting_release", "released", "failed", "recalled")
CORRECTION_KINDS = ("person", "machine_record")
PACK_STATUSES = ("packed", "loaded", "sterile", "failed", "recalled", "compromised", "used")
PACKAGINGS = ("pouch", "wrap", "unwrapped")
COMPROMISE_REASONS = ("torn", "wet", "dropped", "opened", "other")


class SteriliserTest(db.Model):
    """A daily, weekly or periodic steriliser test. A spore test starts pending and gets its result later."""

    __tablename__ = "steriliser_tests"
    __table_args__ = (
        CheckConstraint(f"kind IN {TEST_KINDS!r}", name="kind"),
        CheckConstraint(f"result IN {TEST_RESULTS!r}", name="result"),
        Index("ix_steriliser_tests_steriliser_id_kind_performed_at", "steriliser_id", "kind", "performed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    steriliser_id: Mapped[int] = mapped_column(ForeignKey("sterilisers.id"))
    kind: Mapped[str] = mapped_column(String(24))
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    performed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    performed_by_name: Mapped[str] = mapped_column(String(200), default="")  # an engineer without an account
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))  # posted by a machine
    result: Mapped[str] = mapped_column(String(8))
    result_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    indicator_lot: Mapped[str] = mapped_column(String(80), default="")
    control_result: Mapped[str | None] = mapped_column(String(8))  # spore test: the unprocessed control must grow
    measured_value: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))  # e.g. leak rate in mbar/min
    certificate_ref: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Made by the client (a data logger's retry, a double tap): one key stores one test. The fingerprint of what
    # was posted tells a replay (the same test) from another use of the key (409).
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    replayed = False  # not a column: True on the row handed back for a replayed key (nothing new stored)

    steriliser: Mapped[Steriliser] = relationship()
    performed_by: Mapped[User | None] = relationship(foreign_keys=[performed_by_id])
    result_by: Mapped[User | None] = relationship(foreign_keys=[result_by_id])


class Cycle(db.Model):
    """One sterilisation load: its figures, the verdict the rules gave, and who released or failed it."""

    __tablename__ = "cycles"
    __table_args__ = (
        UniqueConstraint("steriliser_id", "cycle_number"),
        CheckConstraint(f"status IN {CYCLE_STATUSES!r}", name="status"),
        Index("ix_cycles_steriliser_id_started_at", "steriliser_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    steriliser_id: Mapped[int] = mapped_column(ForeignKey("sterilisers.id"))
    cycle_number: Mapped[int] = mapped_column()
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    temperature_c: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    pressure_kpa: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    holding_seconds: Mapped[int] = mapped_column()
    printout_ref: Mapped[str] = mapped_column(String(200), default="")
    indicator_class: Mapped[int | None] = mapped_column()
    indicator_passed: Mapped[bool] = mapped_column()
    is_verdict_pass: Mapped[bool] = mapped_column()
    reasons: Mapped[list] = mapped_column(JSON, default=list)  # [{"rule": id, "message": text}, ...]
    status: Mapped[str] = mapped_column(String(20))
    loaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))  # posted by a data logger
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    guideline_version: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)  # as for tests
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    replayed = False  # not a column, as for tests

    steriliser: Mapped[Steriliser] = relationship()
    programme: Mapped[Programme] = relationship()
    loaded_by: Mapped[User | None] = relationship(foreign_keys=[loaded_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    packs: Mapped[list["Pack"]] = relationship(back_populates="cycle", order_by="Pack.id")
    corrections: Mapped[list["CycleCorrection"]] = relationship(back_populates="cycle", order_by="CycleCorrection.id")


class CycleCorrection(db.Model):
    """A change of a load's figures, appended with the figures, verdict and status before and after; the load row
    then holds the figures after. Two kinds: a manager's correction of typed figures, with the reason ("person");
    the steriliser's own record of the cycle imported ("machine_record"): its figures win over the typed ones, and
    each typed figure further off than the pack's tolerance is kept in `disagreements` (a finding)."""

    __tablename__ = "cycle_corrections"
    __table_args__ = (
        CheckConstraint(f"kind IN {CORRECTION_KINDS!r}", name="kind"),
        CheckConstraint(f"status_before IN {CYCLE_STATUSES!r}", name="status_before"),
        CheckConstraint(f"status_after IN {CYCLE_STATUSES!r}", name="status_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    temperature_c_before: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    temperature_c_after: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    pressure_kpa_before: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    pressure_kpa_after: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    holding_seconds_before: Mapped[int] = mapped_column()
    holding_seconds_after: Mapped[int] = mapped_column()
    indicator_passed_before: Mapped[bool] = mapped_column()
    indicator_passed_after: Mapped[bool] = mapped_column()
    indicator_class_before: Mapped[int | None] = mapped_column()
    indicator_class_after: Mapped[int | None] = mapped_column()
    printout_ref_before: Mapped[str] = mapped_column(String(200), default="")
    printout_ref_after: Mapped[str] = mapped_column(String(200), default="")
    is_verdict_pass_before: Mapped[bool] = mapped_column()
    is_verdict_pass_after: Mapped[bool] = mapped_column()
    reasons_before: Mapped[list] = mapped_column(JSON, default=list)
    reasons_after: Mapped[list] = mapped_column(JSON, default=list)
    status_before: Mapped[str] = mapped_column(String(20))
    status_after: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: imported with an API key
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    guideline_version: Mapped[str] = mapped_column(String(40), default="")
    kind: Mapped[str] = mapped_column(String(16), default="person", server_default="person")
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    curve_id: Mapped[int | None] = mapped_column(ForeignKey("cycle_curves.id"), index=True)
    # [{"figure", "typed", "machine_low", "machine_high"}]: typed figures off the machine's by more than the tolerance
    disagreements: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")

    cycle: Mapped[Cycle] = relationship(back_populates="corrections")
    corrected_by: Mapped[User | None] = relationship()
    curve: Mapped["CycleCurve | None"] = relationship()


class Pack(db.Model):
    """A pouch or wrap of one or more devices, with a unique label; sterile once its load is released."""

    __tablename__ = "packs"
    __table_args__ = (
        CheckConstraint(f"status IN {PACK_STATUSES!r}", name="status"),
        CheckConstraint(f"packaging IN {PACKAGINGS!r}", name="packaging"),
        Index("ix_packs_site_id_status_expires_at", "site_id", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    label_code: Mapped[str] = mapped_column(String(24), unique=True)
    packaging: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default="packed")
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    packed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    packed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    compromised_reason: Mapped[str | None] = mapped_column(String(12))
    compromised_note: Mapped[str] = mapped_column(Text, default="")
    compromised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    compromised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    cycle: Mapped[Cycle | None] = relationship(back_populates="packs")
    packed_by: Mapped[User | None] = relationship(foreign_keys=[packed_by_id])
    items: Mapped[list["PackItem"]] = relationship(back_populates="pack", order_by="PackItem.device_id")


class PackItem(db.Model):
    __tablename__ = "pack_items"

    pack_id: Mapped[int] = mapped_column(ForeignKey("packs.id"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True, index=True)

    pack: Mapped[Pack] = relationship(back_populates="items")
    device: Mapped[Device] = relationship()


class Recall(db.Model):
    """A failed spore test's recall of every load since the last passing one, with its closing checklist; or a
    released load recalled because the steriliser's own record of its cycle fails (no test: the load's correction
    of kind "machine_record" names the record, see services.recall_trigger_curve)."""

    __tablename__ = "recalls"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    steriliser_id: Mapped[int] = mapped_column(ForeignKey("sterilisers.id"))
    trigger_test_id: Mapped[int | None] = mapped_column(ForeignKey("steriliser_tests.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last passing spore test (None: ever)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    clients_contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clients_contacted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    clients_contacted_note: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_note: Mapped[str] = mapped_column(Text, default="")

    steriliser: Mapped[Steriliser] = relationship()
    trigger_test: Mapped[SteriliserTest | None] = relationship()
    loads: Mapped[list["RecallLoad"]] = relationship(order_by="RecallLoad.cycle_id")


class RecallLoad(db.Model):
    __tablename__ = "recall_loads"

    recall_id: Mapped[int] = mapped_column(ForeignKey("recalls.id"), primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), primary_key=True, index=True)
    previous_status: Mapped[str] = mapped_column(String(20))

    cycle: Mapped[Cycle] = relationship()


class CurveFile(db.Model):
    """A file of cycle records as the steriliser (or its data logger) wrote it, kept whole as evidence with its
    SHA-256. One row per site and content: the same file uploaded again is this row again."""

    __tablename__ = "curve_files"
    __table_args__ = (UniqueConstraint("site_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)  # the audit trail logs its SHA-256, not the bytes
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploaded_by: Mapped[User | None] = relationship()


class CycleCurve(db.Model):
    """One cycle as the steriliser recorded it (its curve), judged from the curve: one per steriliser and machine
    cycle number. The load a person typed with the same number is found by (steriliser, cycle number)."""

    __tablename__ = "cycle_curves"
    __table_args__ = (UniqueConstraint("steriliser_id", "cycle_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    steriliser_id: Mapped[int] = mapped_column(ForeignKey("sterilisers.id"))
    cycle_number: Mapped[int] = mapped_column()
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"))
    programme_text: Mapped[str] = mapped_column(String(80), default="")  # as the machine names it
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_format: Mapped[str] = mapped_column(String(20))
    curve_file_id: Mapped[int] = mapped_column(ForeignKey("curve_files.id"), index=True)
    sample_count: Mapped[int] = mapped_column()
    samples: Mapped[bytes] = mapped_column(LargeBinary)  # JSON [[s, °C, kPa], …], UTF-8; logged by its SHA-256
    samples_sha256: Mapped[str] = mapped_column(String(64))  # of the start, programme and samples: a re-import
    machine_passed: Mapped[bool | None] = mapped_column()
    machine_log: Mapped[str] = mapped_column(Text, default="")
    is_judged: Mapped[bool] = mapped_column()  # False: too sparse to judge (refusal says why)
    refusal: Mapped[dict | None] = mapped_column(JSON)
    holding_seconds: Mapped[Decimal | None] = mapped_column(Numeric(7, 1))
    holding_start_s: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    holding_end_s: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    equilibration_seconds: Mapped[Decimal | None] = mapped_column(Numeric(7, 1))
    max_temperature_c: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    steam_deviation_k: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    min_holding_pressure_kpa: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    is_verdict_pass: Mapped[bool] = mapped_column()
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    guideline_version: Mapped[str] = mapped_column(String(40), default="")
    # The numbers it was judged by (curves.CurveLimits as a dict): the chart and page show these, not today's
    limits: Mapped[dict | None] = mapped_column(JSON)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    steriliser: Mapped[Steriliser] = relationship()
    programme: Mapped[Programme] = relationship()
    curve_file: Mapped[CurveFile] = relationship()
    imported_by: Mapped[User | None] = relationship()
