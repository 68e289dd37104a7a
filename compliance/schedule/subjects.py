"""The subjects obligations are made for, through the registry the domains fill (registry.py): which ones a
site should have now, a short label for each (screens and emails), whether one is still live, since when it
exists."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from ..guidelines import Pack
from ..sites.models import Site
from .registry import Wanted, registered, start_of_day_after, subject_type  # noqa: F401  (Wanted, start_of_day_after: re-exported)


def wanted_for_site(site: Site, pack: Pack) -> list[Wanted]:
    """Every obligation this site should have now, from the pack's obligation definitions."""
    by_subject: dict[str, list[str]] = {}
    for key, spec in pack.obligations.items():
        by_subject.setdefault(spec["subject"], []).append(key)
    wanted: list[Wanted] = []
    for name, keys in by_subject.items():
        wanted += subject_type(name).wanted(site, pack, keys)
    return wanted


def labels(rows: Iterable) -> dict[tuple[str, int], str]:
    """A short name for each obligation's subject: {(subject_type, subject_id): label}. Few queries."""
    ids: dict[str, set[int]] = {}
    for row in rows:
        ids.setdefault(row.subject_type, set()).add(row.subject_id)
    out: dict[tuple[str, int], str] = {}
    for name, subject_ids in ids.items():
        for sid, label in subject_type(name).labels(subject_ids).items():
            out[(name, sid)] = label if len(label) <= 80 else label[:79] + "…"
    return out


def is_live(name: str, subject_id: int) -> bool:
    """Whether the subject still has duties: one indexed lookup, for the scan to check before telling."""
    return subject_type(name).is_live(subject_id)


def started_at(name: str, subject_id: int) -> datetime | None:
    """When the subject was added: a record of its duty cannot be dated before that day."""
    return subject_type(name).started_at(subject_id)
