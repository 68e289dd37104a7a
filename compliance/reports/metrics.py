"""Compliance rates, counted the same way on the dashboard and in the audit report.

An obligation's occurrences in a period are its due times in the period whose turn has been decided: done on
time, done late, or missed (one row each in `occurrences`; excused ones — a pause, a closed day — and those
still open within their grace are left out). Rate = done on time / occurrences, so five missed days out of ten
are 50 %. A duty done late counts as due and not on time.

A checklist's rate is the share of its runs started in the period that were completed; a run started in the
last day before the period's end and not yet completed is still under way, and not counted either way."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import and_, case, func, or_, select

from ..checklists.models import ChecklistRun, ChecklistTemplate, TemplateVersion
from ..extensions import db
from ..guidelines import load_pack
from ..schedule.models import Occurrence

DECIDED = ("done_on_time", "done_late", "missed")


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
    rows = db.session.execute(
        select(Occurrence.kind, func.count(), func.count().filter(Occurrence.state == "done_on_time"))
        .where(Occurrence.site_id.in_(list(site_ids)), Occurrence.due_at >= start, Occurrence.due_at < end,
               Occurrence.state.in_(DECIDED))
        .group_by(Occurrence.kind)).all()
    skip = unrated_kinds()
    return {k: Rate(k, due, due - on_time) for k, due, on_time in sorted(rows) if k not in skip}


def obligation_rates_by_period(site_ids: Iterable[int], bounds: list[datetime]) -> list[dict[str, Rate]]:
    """obligation_rates over each of the consecutive periods [bounds[i], bounds[i + 1]), in one grouped query."""
    starts = bounds[:-1]
    period = case(*[(Occurrence.due_at < end, i) for i, end in enumerate(bounds[1:])])
    # Grouped through a subquery: PostgreSQL would not see the CASE in GROUP BY (its parameters bound twice) as
    # the one selected.
    decided = (select(period.label("period"), Occurrence.kind.label("kind"), Occurrence.state.label("state"))
               .where(Occurrence.site_id.in_(list(site_ids)), Occurrence.due_at >= bounds[0],
                      Occurrence.due_at < bounds[-1], Occurrence.state.in_(DECIDED))
               .subquery())
    rows = db.session.execute(
        select(decided.c.period, decided.c.kind, func.count(),
               func.count().filter(decided.c.state == "done_on_time"))
        .group_by(decided.c.period, decided.c.kind)).all()
    skip = unrated_kinds()
    out: list[dict[str, Rate]] = [{} for _start in starts]
    for i, kind, due, on_time in sorted(rows):
        if kind not in skip:
            out[i][kind] = Rate(kind, due, due - on_time)
    return out


def overall_by_site(windows: dict[int, tuple[datetime, datetime, datetime]]) -> dict[int, tuple[Rate, Rate]]:
    """Site id -> (overall obligation rate over [recent_start, end), over [start, end)), each site with its own
    window (given as (recent_start, start, end)), all in one grouped query: overall() of obligation_rates."""
    if not windows:
        return {}
    in_window = or_(*[and_(Occurrence.site_id == site_id, Occurrence.due_at >= start, Occurrence.due_at < end)
                      for site_id, (_recent, start, end) in windows.items()])
    recent = or_(*[and_(Occurrence.site_id == site_id, Occurrence.due_at >= recent_start)
                   for site_id, (recent_start, _start, _end) in windows.items()])
    on_time = Occurrence.state == "done_on_time"
    rows = db.session.execute(
        select(Occurrence.site_id, func.count().filter(recent), func.count().filter(recent & on_time), func.count(),
               func.count().filter(on_time))
        .where(in_window, Occurrence.state.in_(DECIDED), Occurrence.kind.not_in(unrated_kinds()))
        .group_by(Occurrence.site_id)).all()
    found = {site_id: (Rate("all", r_due, r_due - r_on), Rate("all", due, due - on))
             for site_id, r_due, r_on, due, on in rows}
    return {site_id: found.get(site_id, (Rate("all", 0, 0), Rate("all", 0, 0))) for site_id in windows}


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
