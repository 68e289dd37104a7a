"""Compliance rates, counted the same way on the dashboard and in the audit report.

An obligation's occurrences in a period are the times it was done in the period (its "done" changes) plus
the times it was found overdue and still not done at the end of the period; the missed ones are the
findings whose due time falls in the period. Rate = (occurrences − missed) / occurrences. A duty done late
counts once as an occurrence and once as a miss; a duty never done counts once as both.

A checklist's rate is the share of its runs started in the period that were completed; a run started in the
last day before the period's end and not yet completed is still under way, and not counted either way."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import func, or_, select

from ..checklists.models import ChecklistRun, ChecklistTemplate, TemplateVersion
from ..extensions import db
from ..guidelines import load_pack
from ..schedule.models import Finding, Obligation, ObligationChange



def unrated_kinds() -> frozenset[str]:
    """Obligation kinds the pack leaves out of the rates (`rated: false`: a sterile pack is used, not
    "done"; its findings are still listed)."""
    return frozenset(k for k, spec in load_pack().obligations.items() if spec.get("rated") is False)


@dataclass(frozen=True)
class Rate:
    key: str            # obligation kind or checklist template key
    occurrences: int
    missed: int

    @property
    def met(self) -> int:
        return max(0, self.occurrences - self.missed)

    @property
    def rate(self) -> float | None:
        """0.0–1.0, or None when nothing fell due."""
        return None if self.occurrences == 0 else self.met / self.occurrences


def obligation_rates(site_ids: Iterable[int], start: datetime, end: datetime) -> dict[str, Rate]:
    """Per obligation kind, over [start, end)."""
    site_ids = list(site_ids)
    done = dict(db.session.execute(
        select(Obligation.kind, func.count()).join(ObligationChange, ObligationChange.obligation_id == Obligation.id)
        .where(Obligation.site_id.in_(site_ids), ObligationChange.reason == "done",
               ObligationChange.at >= start, ObligationChange.at < end)
        .group_by(Obligation.kind)).all())
    missed = dict(db.session.execute(
        select(Finding.kind, func.count()).where(Finding.site_id.in_(site_ids), Finding.due_at >= start,
                                                 Finding.due_at < end).group_by(Finding.kind)).all())
    never_done = dict(db.session.execute(
        select(Finding.kind, func.count()).where(
            Finding.site_id.in_(site_ids), Finding.due_at >= start, Finding.due_at < end,
            or_(Finding.resolved_at.is_(None), Finding.resolved_at >= end)).group_by(Finding.kind)).all())
    kinds = (set(done) | set(missed)) - unrated_kinds()
    return {k: Rate(k, done.get(k, 0) + never_done.get(k, 0), missed.get(k, 0)) for k in sorted(kinds)}


def checklist_rates(site_ids: Iterable[int], start: datetime, end: datetime) -> dict[str, Rate]:
    """Per checklist template key, over runs started in [start, end): completed / started."""
    under_way = (ChecklistRun.completed_at.is_(None)) & (ChecklistRun.started_at >= end - timedelta(days=1))
    rows = db.session.execute(
        select(ChecklistTemplate.key, func.count(), func.count(ChecklistRun.completed_at))
        .join(TemplateVersion, TemplateVersion.id == ChecklistRun.version_id)
        .join(ChecklistTemplate, ChecklistTemplate.id == TemplateVersion.template_id)
        .where(ChecklistRun.site_id.in_(list(site_ids)), ChecklistRun.started_at >= start,
               ChecklistRun.started_at < end, ~under_way)
        .group_by(ChecklistTemplate.key)).all()
    return {key: Rate(key, started, started - completed) for key, started, completed in sorted(rows)}


def weekly(site_ids: Iterable[int], end: datetime, weeks: int, of=obligation_rates) -> list[tuple[datetime, dict[str, Rate]]]:
    """The rates for each of the `weeks` weeks before `end`, oldest first: [(week start, {key: Rate})]."""
    site_ids = list(site_ids)
    out = []
    for i in range(weeks, 0, -1):
        start = end - timedelta(weeks=i)
        out.append((start, of(site_ids, start, start + timedelta(weeks=1))))
    return out


def overall(rates: dict[str, Rate]) -> Rate:
    """All keys together."""
    return Rate("all", sum(r.occurrences for r in rates.values()), sum(r.missed for r in rates.values()))
