"""The manager dashboard: what needs attention now and how well duties were kept, per site and across sites."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from babel.dates import format_skeleton
from flask import Blueprint, g, render_template, request
from flask_babel import gettext as _
from markupsafe import Markup

from ..checklists.manage_views import in_lang
from ..i18n import babel_locale, local_date, select_timezone
from ..schedule import services as schedule_services
from ..schedule.labels import KIND_LABELS, kind_label
from ..timeutil import to_local, utcnow
from ..web import arg_id, current_actor, requires
from . import charts
from .figures import RECENT_WEEKS, WEEKS, Dashboard, KeyRates, dashboard as build
from .metrics import Rate

bp = Blueprint("dashboard", __name__)

KIND_ORDER = {kind: n for n, kind in enumerate(KIND_LABELS)}


def rate_text(rate: Rate) -> str:
    """ "92 % (23 of 25)", or "nothing fell due"."""
    if rate.rate is None:
        return _("nothing fell due")
    return _("%(percent)s %% (%(met)s of %(total)s)", percent=charts.percent(rate.rate), met=rate.met,
             total=rate.occurrences)


def _short_day(value: date) -> str:
    """A week on the axis: its first day, month and day only ("Nov 19" in English, "19 Nov" in Indonesian)."""
    return format_skeleton("MMMd", value, locale=babel_locale())


def _day(value: date) -> str:
    return local_date(value)


def _weekly(weeks: list[tuple[date, Rate]], title: str) -> Markup | None:
    """The weekly chart, or None when nothing fell due in any week (the page then says so)."""
    if all(r.rate is None for _first, r in weeks):
        return None
    points = [charts.Week(_short_day(first), r.rate,
                          _("week from %(day)s: %(figure)s", day=_day(first), figure=rate_text(r)),
                          recent=i >= len(weeks) - RECENT_WEEKS)
              for i, (first, r) in enumerate(weeks)]
    summary = "; ".join(_("week from %(day)s: %(figure)s", day=_day(first), figure=rate_text(r))
                        for first, r in weeks)
    return charts.weekly_chart(points, title=title, summary=f"{title}. {summary}",
                               recent_label=_("last %(n)s weeks", n=RECENT_WEEKS), gap_text=_("nothing fell due"))


def _bars(rows: list[KeyRates], label, title: str) -> Markup | None:
    if not rows:
        return None
    series = (_("%(n)s weeks", n=RECENT_WEEKS), _("%(n)s weeks", n=WEEKS))
    bar_rows = [charts.BarRow(label(r.key), (r.recent.rate, r.longer.rate), (rate_text(r.recent), rate_text(r.longer)))
                for r in rows]
    summary = "; ".join(f"{b.label}: {series[0]} {b.texts[0]}, {series[1]} {b.texts[1]}" for b in bar_rows)
    return charts.bar_list(bar_rows, series=series, title=title, summary=f"{title}. {summary}")


@dataclass(frozen=True)
class Page:
    since: date                      # the first local day of "the last 7 days"
    weekly: Markup | None
    kinds: Markup | None
    checklists: Markup | None
    oldest_day: date | None          # the local date the oldest open finding fell due
    failed_site_id: int | None       # the logbook shows one site: the chosen one, else the first with a failure
    failed_emails: int               # emails given up after OUTBOX_GIVE_UP_DAYS of trying (an alert)


@bp.get("/dashboard")
@requires("reports.read")
def dashboard():
    """Overdue duties, failed loads, open recalls and actions, overrides; compliance rates by week and by duty."""
    actor = current_actor()
    d: Dashboard = build(actor, arg_id("site"), utcnow(), select_timezone())
    if d.site is not None or len(d.sites) == 1:
        g.site = d.site or d.sites[0]  # dates on the page in the site's zone and language
    finding = d.oldest_finding
    finding_tz = next((s.timezone for s in d.sites if finding and s.id == finding.site_id), d.tz)
    titles = d.checklist_titles
    page = Page(
        since=d.today - timedelta(days=6),
        weekly=_weekly(d.weeks, _("Duties done on time, week by week")),
        kinds=_bars(sorted(d.kinds, key=lambda k: (KIND_ORDER.get(k.key, 99), k.key)), kind_label,
                    _("Duties done on time, by obligation")),
        checklists=_bars(d.checklists, lambda key: in_lang(titles.get(key)) or key,
                         _("Checklists completed, by checklist")),
        oldest_day=to_local(finding.due_at, finding_tz).date() if finding else None,
        failed_site_id=g.site.id if g.get("site") else next((r.site.id for r in d.rows if r.counts.failed_loads),
                                                             None),
        failed_emails=schedule_services.failed_count(actor, d.site.id if d.site else None)
        if actor.can("outbox.read") else 0)
    return render_template("reports/dashboard.html", p=page, d=d, rate_text=rate_text, recent_weeks=RECENT_WEEKS,
                           weeks=WEEKS)
