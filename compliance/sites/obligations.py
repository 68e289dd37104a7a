"""Sites (their opening and closing checklists) and people's training records (their renewal) as subjects of
obligations, registered with the schedule engine."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select

from ..extensions import db
from ..schedule.registry import SubjectType, Wanted, register, start_of_day_after
from .models import Site, TrainingRecord, User, user_sites
from .training import COURSES


def _site_wanted(site, pack, keys: list[str]) -> list[Wanted]:
    return [Wanted(key, "site", site.id) for key in keys]


def _site_labels(ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(select(Site.id, Site.name).where(Site.id.in_(ids))).all())


def _site_live(subject_id: int) -> bool:
    return db.session.scalar(select(Site.id).where(Site.id == subject_id, Site.is_active.is_(True))) is not None


def _site_started(subject_id: int):
    return db.session.scalar(select(Site.created_at).where(Site.id == subject_id))


def _training_of_site(site: Site) -> Iterable[TrainingRecord]:
    """In-force training records with an expiry, of active people whose first site is this one (one
    obligation per record even when the person works at several sites)."""
    first_site = (select(user_sites.c.user_id).group_by(user_sites.c.user_id)
                  .having(db.func.min(user_sites.c.site_id) == site.id))
    return db.session.scalars(select(TrainingRecord).join(User, User.id == TrainingRecord.user_id).where(
        TrainingRecord.user_id.in_(first_site), TrainingRecord.is_active.is_(True),
        TrainingRecord.replaced_by_id.is_(None), TrainingRecord.expires_on.is_not(None),
        User.is_active_user.is_(True))).all()


def _training_wanted(site, pack, keys: list[str]) -> list[Wanted]:
    records = list(_training_of_site(site))
    return [Wanted(key, "training_record", r.id, due_at=start_of_day_after(r.expires_on, site.timezone),
                   responsible_user_id=r.user_id) for key in keys for r in records]


def _training_labels(ids: set[int]) -> dict[int, str]:
    """The person and the course, in the reader's language."""
    return {rid: f"{name} — {COURSES.get(course, course)}" for rid, name, course in db.session.execute(
        select(TrainingRecord.id, User.name, TrainingRecord.course).join(User, User.id == TrainingRecord.user_id)
        .where(TrainingRecord.id.in_(ids)))}


def _training_live(subject_id: int) -> bool:
    return db.session.scalar(select(TrainingRecord.id).where(
        TrainingRecord.id == subject_id, TrainingRecord.is_active.is_(True),
        TrainingRecord.replaced_by_id.is_(None))) is not None


register(SubjectType("site", _site_wanted, _site_labels, _site_live, _site_started))
register(SubjectType("training_record", _training_wanted, _training_labels, _training_live))
