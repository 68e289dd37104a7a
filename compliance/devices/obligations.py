"""Sterilisers as subjects of obligations (their daily and weekly tests, their validation), registered with the
schedule engine."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ..extensions import db
from ..schedule.registry import SubjectType, Wanted, register, start_of_day_after
from .models import Steriliser


def _wanted(site, pack, keys: list[str]) -> list[Wanted]:
    sterilisers = db.session.scalars(select(Steriliser).where(
        Steriliser.site_id == site.id, Steriliser.is_active.is_(True))).all()
    wanted = []
    for key in keys:
        types = pack.obligation_value(key, "steriliser_types", ["B", "S", "N"])
        validation = pack.obligations[key].get("test_kind") == "validation"
        wanted += [Wanted(key, "steriliser", s.id, paused=not s.is_in_service,
                          due_at=start_of_day_after(s.validation_due_on - timedelta(days=1), site.timezone)
                          if validation and s.validation_due_on else None)
                   for s in sterilisers if s.type in types]
    return wanted


def _labels(ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(select(Steriliser.id, Steriliser.name).where(Steriliser.id.in_(ids))).all())


def _is_live(subject_id: int) -> bool:
    return db.session.scalar(select(Steriliser.id).where(Steriliser.id == subject_id,
                                                         Steriliser.is_active.is_(True))) is not None


def _started_at(subject_id: int):
    return db.session.scalar(select(Steriliser.created_at).where(Steriliser.id == subject_id))


register(SubjectType("steriliser", _wanted, _labels, _is_live, _started_at))
