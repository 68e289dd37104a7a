"""Sterile packs (their expiry) as subjects of obligations, registered with the schedule engine."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..schedule.registry import SubjectType, Wanted, register
from .models import Pack


def _wanted(site, pack, keys: list[str]) -> list[Wanted]:
    rows = db.session.execute(select(Pack.id, Pack.expires_at).where(
        Pack.site_id == site.id, Pack.status == "sterile", Pack.expires_at.is_not(None))).all()
    return [Wanted(key, "pack", pack_id, due_at=expires_at) for key in keys for pack_id, expires_at in rows]


def _labels(ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(select(Pack.id, Pack.label_code).where(Pack.id.in_(ids))).all())


def _is_live(subject_id: int) -> bool:
    return db.session.scalar(select(Pack.id).where(Pack.id == subject_id, Pack.status == "sterile")) is not None


register(SubjectType("pack", _wanted, _labels, _is_live))
