"""The manager dashboard's figures: what needs attention now, per site, and the compliance rates by week.

Weeks are seven local days ending with today, in the site's own zone (so a week starts at local midnight,
also across a clock change); rates are the ones of metrics.py, counted the same way as in the audit report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from ..auth.actor import Actor
from ..checklists.models import ChecklistTemplate, CorrectiveAction
from ..extensions import db
from ..schedule.models import Finding, Obligation
from ..sites.models import Site
from ..sterilisation.models import Cycle, Recall
from ..timeutil import local_today
from ..treatments.models import GateAttempt, GateOverride, Treatment
from ..treatments.services import unchecked_clause
from . import metrics
from .metrics import Rate

WEEKS = 12
RECENT_WEEKS = 4


def local_midnight(day: date, tz: str) -> datetime:
    """The UTC instant a local calendar day begins in the zone."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def week_starts(today: date, weeks: int) -> list[date]:
    """The first days of the `weeks` seven-day weeks that end with `today`, oldest first."""
    return [today - timedelta(days=7 * i - 1) for i in range(weeks, 0, -1)]


def period(today: date, tz: str, weeks: int) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the `weeks` weeks ending with local `today`."""
    return local_midnight(week_starts(today, weeks)[0], tz), local_midnight(today + timedelta(days=1), tz)


def by_week(site_ids: Iterable[int], today: date, tz: str, weeks: int) -> list[tuple[date, dict[str, Rate]]]:
    """Obligation rates week by week, weeks starting at local midnight: [(first local day, {kind: Rate})],
    oldest first, in one query whatever the number of weeks."""
    firsts = week_starts(today, weeks)
    bounds = [local_midnight(first, tz) for first in firsts] + [local_midnight(firsts[-1] + timedelta(days=7), tz)]
    return list(zip(firsts, metrics.obligation_rates_by_period(site_ids, bounds)))


@dataclass(frozen=True)
class Counts:
    """What needs attention at one site (or several, added up)."""
    overdue: int = 0           # obligations overdue now
    failed_loads: int = 0      # loads failed, started in the last 7 local days
    open_recalls: int = 0
    open_actions: int = 0      # corrective actions not closed
    overrides: int = 0         # manager overrides of the point-of-use gate in the last 7 local days
    unchecked: int = 0         # treatments ever finished without a gate-checked needle (a standing finding)

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.overdue + other.overdue, self.failed_loads + other.failed_loads,
                      self.open_recalls + other.open_recalls, self.open_actions + other.open_actions,
                      self.overrides + other.overrides, self.unchecked + other.unchecked)


def _since_clause(column, site_column, sites: list[Site], now: datetime):
    """`column` within the last 7 local days of its site (today and the six days before), for sites in any
    zones: one condition per zone, so one query covers every site."""
    zones: dict[str, list[int]] = {}
    for s in sites:
        zones.setdefault(s.timezone, []).append(s.id)
    return or_(*[and_(site_column.in_(ids), column >= local_midnight(local_today(tz, now) - timedelta(days=6), tz))
                 for tz, ids in zones.items()])


def sites_counts(sites: list[Site], now: datetime) -> dict[int, Counts]:
    """The tiles of each site, six grouped queries whatever the number of sites; "the last 7 days" are today
    and the six local days before it, in each site's zone."""
    if not sites:
        return {}
    ids = [s.id for s in sites]

    def by_site(stmt) -> dict[int, int]:
        return dict(db.session.execute(stmt).all())

    overdue = by_site(select(Obligation.site_id, func.count()).where(
        Obligation.site_id.in_(ids), Obligation.status == "overdue").group_by(Obligation.site_id))
    failed = by_site(select(Cycle.site_id, func.count()).where(
        Cycle.site_id.in_(ids), Cycle.status == "failed", _since_clause(Cycle.started_at, Cycle.site_id, sites, now),
        Cycle.started_at <= now).group_by(Cycle.site_id))
    recalls = by_site(select(Recall.site_id, func.count()).where(
        Recall.site_id.in_(ids), Recall.closed_at.is_(None)).group_by(Recall.site_id))
    actions = by_site(select(CorrectiveAction.site_id, func.count()).where(
        CorrectiveAction.site_id.in_(ids), CorrectiveAction.closed_at.is_(None)).group_by(CorrectiveAction.site_id))
    overrides = by_site(select(GateAttempt.site_id, func.count()).select_from(GateOverride)
                        .join(GateAttempt, GateAttempt.id == GateOverride.attempt_id)
                        .where(GateAttempt.site_id.in_(ids),
                               _since_clause(GateOverride.at, GateAttempt.site_id, sites, now), GateOverride.at <= now)
                        .group_by(GateAttempt.site_id))
    unchecked = by_site(select(Treatment.site_id, func.count()).where(
        Treatment.site_id.in_(ids), unchecked_clause()).group_by(Treatment.site_id))
    return {i: Counts(overdue.get(i, 0), failed.get(i, 0), recalls.get(i, 0), actions.get(i, 0), overrides.get(i, 0),
                      unchecked.get(i, 0)) for i in ids}


def site_counts(site: Site, now: datetime) -> Counts:
    """The tiles of one site."""
    return sites_counts([site], now)[site.id]


def oldest_open_finding(site_ids: Iterable[int]) -> Finding | None:
    """The open finding (an overdue duty not yet done) that fell due first."""
    return db.session.scalar(select(Finding).where(Finding.site_id.in_(list(site_ids)), Finding.resolved_at.is_(None))
                             .order_by(Finding.due_at, Finding.id).limit(1))


@dataclass(frozen=True)
class KeyRates:
    key: str            # obligation kind or checklist template key
    recent: Rate        # the last RECENT_WEEKS weeks
    longer: Rate        # the last WEEKS weeks


@dataclass(frozen=True)
class SiteRow:
    site: Site
    since: date         # the first local day of its "last 7 days"
    counts: Counts
    recent: Rate
    longer: Rate


@dataclass
class Dashboard:
    sites: list[Site]                  # every site in reach, for the picker
    site: Site | None                  # the one chosen, or None: all of them
    tz: str                            # the zone the weeks are counted in
    today: date
    counts: Counts
    oldest_finding: Finding | None
    weeks: list[tuple[date, Rate]]                 # obligations, all kinds together, week by week
    recent: Rate                                   # obligations over the last 4 weeks
    longer: Rate                                   # … and the last 12
    kinds: list[KeyRates] = field(default_factory=list)
    checklists: list[KeyRates] = field(default_factory=list)
    checklist_titles: dict[str, dict] = field(default_factory=dict)   # template key -> {"en", "id"} title
    rows: list[SiteRow] = field(default_factory=list)                 # one per site, when all are shown


def _key_rates(of: Callable, site_ids: list[int], today: date, tz: str) -> list[KeyRates]:
    recent = of(site_ids, *period(today, tz, RECENT_WEEKS))
    longer = of(site_ids, *period(today, tz, WEEKS))
    return [KeyRates(k, recent.get(k, Rate(k, 0, 0)), longer[k]) for k in sorted(longer)]


def _titles(actor: Actor, keys: Iterable[str]) -> dict[str, dict]:
    keys = set(keys)
    if not keys:
        return {}
    templates = db.session.scalars(select(ChecklistTemplate).where(
        ChecklistTemplate.organisation_id == actor.organisation_id, ChecklistTemplate.key.in_(keys))
        .options(selectinload(ChecklistTemplate.versions)))
    return {t.key: t.versions[-1].title for t in templates if t.versions}


def _site_rows(sites: list[Site], counts: dict[int, Counts], now: datetime) -> list[SiteRow]:
    """The table by site, each site's weeks in its own zone: one query for every site's rates."""
    windows = {}
    for s in sites:
        today = local_today(s.timezone, now)
        start, end = period(today, s.timezone, WEEKS)
        windows[s.id] = (period(today, s.timezone, RECENT_WEEKS)[0], start, end)
    rates = metrics.overall_by_site(windows)
    return [SiteRow(s, local_today(s.timezone, now) - timedelta(days=6), counts[s.id], *rates[s.id]) for s in sites]


def dashboard(actor: Actor, site_id: int | None, now: datetime, tz: str) -> Dashboard:
    """The dashboard of one site in reach (another's: NotFound), or of all of them with a row per site.
    `tz` is the zone to count weeks in when all sites are shown (one site's own zone otherwise)."""
    actor.require("reports.read")
    sites = list(db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name, Site.id)))
    site = None
    if site_id is not None:
        actor.require_site(site_id)
        site = next(s for s in sites if s.id == site_id)
        tz = site.timezone
    shown = [site] if site else sites
    site_ids = [s.id for s in shown]
    today = local_today(tz, now)
    per_site = sites_counts(shown, now)
    weeks = [(first, metrics.overall(rates)) for first, rates in by_week(site_ids, today, tz, WEEKS)]
    kinds = _key_rates(metrics.obligation_rates, site_ids, today, tz)
    checklists = _key_rates(metrics.checklist_rates, site_ids, today, tz)
    rows = _site_rows(sites, per_site, now) if site is None and len(sites) > 1 else []
    return Dashboard(
        sites=sites, site=site, tz=tz, today=today, counts=sum(per_site.values(), Counts()),
        oldest_finding=oldest_open_finding(site_ids), weeks=weeks,
        recent=metrics.overall({k.key: k.recent for k in kinds}),
        longer=metrics.overall({k.key: k.longer for k in kinds}),
        kinds=kinds, checklists=checklists, checklist_titles=_titles(actor, (c.key for c in checklists)), rows=rows)
