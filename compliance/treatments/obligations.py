"""Sharps containers (their change) as subjects of obligations, registered with the schedule engine."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ..extensions import db
from ..schedule.registry import SubjectType, Wanted, register
from .models import SharpsContainer


def _wanted(site, pack, keys: list[str]) -> list[Wanted]:
    containers = db.session.scalars(select(SharpsContainer).where(
        SharpsContainer.site_id == site.id, SharpsContainer.closed_at.is_(None))).all()
    wanted = []
    for key in keys:
        days = pack.obligation_value(key, "once")["after_opened_days"]
        wanted += [Wanted(key, "sharps_container", c.id, due_at=c.opened_at + timedelta(days=days))
                   for c in containers]
    return wanted


def _labels(ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(select(SharpsContainer.id, SharpsContainer.label).where(
        SharpsContainer.id.in_(ids))).all())


def _is_live(subject_id: int) -> bool:
    return db.session.scalar(select(SharpsContainer.id).where(
        SharpsContainer.id == subject_id, SharpsContainer.closed_at.is_(None))) is not None


register(SubjectType("sharps_container", _wanted, _labels, _is_live))
