"""The subjects obligations are made for, read from the other domains' tables: which ones a site should have
now (sterilisers in service, open sharps containers, in-date training, sterile packs, open corrective actions)
and a short label for each, for screens and emails."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..checklists.models import CorrectiveAction
from ..devices.models import Steriliser
from ..extensions import db
from ..guidelines import Pack
from ..sites.training import COURSES
from ..sites.models import Site, TrainingRecord, User, user_sites
from ..sterilisation.models import Pack as SterilePack
from ..treatments.models import SharpsContainer


@dataclass(frozen=True)
class Wanted:
    """An obligation a site should have: its kind, subject, who answers for it, and a fixed due time for `once`."""
    kind: str
    subject_type: str
    subject_id: int
    paused: bool = False                 # e.g. the steriliser is out of service
    due_at: datetime | None = None       # `once` obligations: the subject's date
    responsible_user_id: int | None = None


def start_of_day_after(day: date, tz_name: str) -> datetime:
    """Midnight local at the end of `day` (a record valid until `day` is due the moment after it), in UTC."""
    local = datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(tz_name))
    return local.astimezone(ZoneInfo("UTC"))


def wanted_for_site(site: Site, pack: Pack) -> list[Wanted]:
    """Every obligation this site should have now, from the pack's obligation definitions."""
    wanted: list[Wanted] = []
    by_subject: dict[str, list[str]] = {}
    for key, spec in pack.obligations.items():
        by_subject.setdefault(spec["subject"], []).append(key)
    if "steriliser" in by_subject:
        sterilisers = db.session.scalars(select(Steriliser).where(
            Steriliser.site_id == site.id, Steriliser.is_active.is_(True))).all()
        for key in by_subject["steriliser"]:
            types = pack.obligation_value(key, "steriliser_types", ["B", "S", "N"])
            validation = pack.obligations[key].get("test_kind") == "validation"
            wanted += [Wanted(key, "steriliser", s.id, paused=not s.is_in_service,
                              due_at=start_of_day_after(s.validation_due_on - timedelta(days=1), site.timezone)
                              if validation and s.validation_due_on else None)
                       for s in sterilisers if s.type in types]
    for key in by_subject.get("site", []):
        wanted.append(Wanted(key, "site", site.id))
    for key in by_subject.get("sharps_container", []):
        days = pack.obligation_value(key, "once")["after_opened_days"]
        for c in db.session.scalars(select(SharpsContainer).where(
                SharpsContainer.site_id == site.id, SharpsContainer.closed_at.is_(None))):
            wanted.append(Wanted(key, "sharps_container", c.id, due_at=c.opened_at + timedelta(days=days)))
    for key in by_subject.get("training_record", []):
        wanted += [Wanted(key, "training_record", r.id, due_at=start_of_day_after(r.expires_on, site.timezone),
                          responsible_user_id=r.user_id) for r in _training_of_site(site)]
    for key in by_subject.get("pack", []):
        for pack_id, expires_at in db.session.execute(select(SterilePack.id, SterilePack.expires_at).where(
                SterilePack.site_id == site.id, SterilePack.status == "sterile", SterilePack.expires_at.is_not(None))):
            wanted.append(Wanted(key, "pack", pack_id, due_at=expires_at))
    for key in by_subject.get("corrective_action", []):
        for action in db.session.scalars(select(CorrectiveAction).where(
                CorrectiveAction.site_id == site.id, CorrectiveAction.closed_at.is_(None))):
            wanted.append(Wanted(key, "corrective_action", action.id,
                                 due_at=start_of_day_after(action.due_on, site.timezone),
                                 responsible_user_id=action.assigned_to_id))
    return wanted


def _training_of_site(site: Site) -> Iterable[TrainingRecord]:
    """In-force training records with an expiry, of active people whose first site is this one (one
    obligation per record even when the person works at several sites)."""
    first_site = (select(user_sites.c.user_id).group_by(user_sites.c.user_id)
                  .having(db.func.min(user_sites.c.site_id) == site.id))
    return db.session.scalars(select(TrainingRecord).join(User, User.id == TrainingRecord.user_id).where(
        TrainingRecord.user_id.in_(first_site), TrainingRecord.is_active.is_(True),
        TrainingRecord.replaced_by_id.is_(None), TrainingRecord.expires_on.is_not(None),
        User.is_active_user.is_(True))).all()


def labels(rows: Iterable) -> dict[tuple[str, int], str]:
    """A short name for each obligation's subject: {(subject_type, subject_id): label}. Few queries."""
    ids: dict[str, set[int]] = {}
    for row in rows:
        ids.setdefault(row.subject_type, set()).add(row.subject_id)
    out: dict[tuple[str, int], str] = {}

    def fill(subject_type, stmt):
        if ids.get(subject_type):
            for sid, label in db.session.execute(stmt):
                out[(subject_type, sid)] = label

    fill("steriliser", select(Steriliser.id, Steriliser.name).where(Steriliser.id.in_(ids.get("steriliser", ()))))
    fill("site", select(Site.id, Site.name).where(Site.id.in_(ids.get("site", ()))))
    fill("sharps_container", select(SharpsContainer.id, SharpsContainer.label).where(
        SharpsContainer.id.in_(ids.get("sharps_container", ()))))
    fill("pack", select(SterilePack.id, SterilePack.label_code).where(SterilePack.id.in_(ids.get("pack", ()))))
    if ids.get("training_record"):  # the course in the reader's language
        for rid, name, course in db.session.execute(select(TrainingRecord.id, User.name, TrainingRecord.course).join(
                User, User.id == TrainingRecord.user_id).where(TrainingRecord.id.in_(ids["training_record"]))):
            out[("training_record", rid)] = f"{name} — {COURSES.get(course, course)}"
    fill("corrective_action", select(CorrectiveAction.id, CorrectiveAction.what).where(
        CorrectiveAction.id.in_(ids.get("corrective_action", ()))))
    return {k: (v if len(v) <= 80 else v[:79] + "…") for k, v in out.items()}


def is_live(subject_type: str, subject_id: int) -> bool:
    """Whether the subject still has duties: one indexed lookup, for the scan to check before telling."""
    checks = {
        "steriliser": (Steriliser, Steriliser.is_active.is_(True)),
        "site": (Site, Site.is_active.is_(True)),
        "sharps_container": (SharpsContainer, SharpsContainer.closed_at.is_(None)),
        "pack": (SterilePack, SterilePack.status == "sterile"),
        "corrective_action": (CorrectiveAction, CorrectiveAction.closed_at.is_(None)),
        "training_record": (TrainingRecord, TrainingRecord.is_active.is_(True) & TrainingRecord.replaced_by_id.is_(None)),
    }
    model, condition = checks[subject_type]
    return db.session.scalar(select(model.id).where(model.id == subject_id, condition)) is not None


def started_at(subject_type: str, subject_id: int) -> datetime | None:
    """When the subject was added: a record of its duty cannot be dated before that day."""
    models = {"steriliser": Steriliser, "site": Site}
    model = models.get(subject_type)
    if model is None:
        return None
    return db.session.scalar(select(model.created_at).where(model.id == subject_id))
