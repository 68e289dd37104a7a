"""Corrective actions (their due date) as subjects of obligations, registered with the schedule engine."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..schedule.registry import SubjectType, Wanted, register, start_of_day_after
from .models import CorrectiveAction


def _wanted(site, pack, keys: list[str]) -> list[Wanted]:
    actions = db.session.scalars(select(CorrectiveAction).where(
        CorrectiveAction.site_id == site.id, CorrectiveAction.closed_at.is_(None))).all()
    return [Wanted(key, "corrective_action", a.id, due_at=start_of_day_after(a.due_on, site.timezone),
                   responsible_user_id=a.assigned_to_id) for key in keys for a in actions]


def _labels(ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(select(CorrectiveAction.id, CorrectiveAction.what).where(
        CorrectiveAction.id.in_(ids))).all())


def _is_live(subject_id: int) -> bool:
    return db.session.scalar(select(CorrectiveAction.id).where(
        CorrectiveAction.id == subject_id, CorrectiveAction.closed_at.is_(None))) is not None


register(SubjectType("corrective_action", _wanted, _labels, _is_live))
