"""The audit report: what an inspector asks for over a range of local days, gathered once into one dataclass
that the page, the CSV zip and the PDF all render, so that the three say the same thing.

Local days: each site's range is its own local days, from the first midnight to the midnight after the
last day, converted to UTC in the site's time zone. "All sites" gathers each site over its own local days
(a London and a Jakarta site cover different UTC hours for the same dates) and adds the counts up."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select

from ..auth.actor import Actor
from ..checklists.models import Answer, ChecklistRun, ChecklistTemplate, TemplateItem, TemplateVersion
from ..devices.models import Steriliser
from ..errors import Invalid
from ..extensions import db
from ..guidelines.models import SiteRuleOverride
from ..guidelines.services import pack_for_site
from ..schedule import subjects
from ..schedule.models import Finding, Obligation
from ..sites.models import Site, TrainingRecord, User, user_sites
from ..sites.rules import current_expiries, training_status
from ..sterilisation.curve_services import number_gaps
from ..sterilisation.models import Cycle, CycleCorrection, CycleCurve, Pack, Recall, RecallLoad, SteriliserTest
from ..timeutil import local_today
from ..treatments.models import AdverseEvent, Client, GateAttempt, GateOverride, Treatment, TreatmentPack
from ..treatments.services import unchecked_clause
from . import metrics

MAX_DAYS = 400  # a longer range is refused: the report is read, not mined


# --- the report's rows ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SiteWindow:
    site_id: int
    site: str
    timezone: str
    start: datetime  # UTC, the first local midnight
    end: datetime    # UTC, the local midnight after the last day (exclusive)


@dataclass(frozen=True)
class RateRow:
    source: str                     # obligation or checklist
    key: str                        # obligation kind, or checklist template key
    titles: dict[str, str] | None   # a checklist's title by language (obligation kinds have labels in code)
    occurrences: int
    missed: int
    met: int
    rate: float | None              # met / occurrences; None when nothing fell due


@dataclass(frozen=True)
class FindingRow:
    finding_id: int
    obligation_id: int
    site_id: int
    site: str
    timezone: str
    kind: str
    rule_id: str
    severity: str
    subject_type: str
    subject: str
    due_at: datetime
    opened_at: datetime
    resolved_at: datetime | None    # None: still open


@dataclass(frozen=True)
class FailedLoadRow:
    cycle_id: int
    site_id: int
    site: str
    timezone: str
    steriliser_id: int
    steriliser: str
    cycle_number: int
    started_at: datetime
    reasons: tuple[dict, ...]       # as stored: {rule, code, values}
    decided_by: str
    decided_at: datetime | None
    next_release_cycle_id: int | None   # the steriliser's next load that passed and was released
    next_released_at: datetime | None


@dataclass(frozen=True)
class FailedTestRow:
    test_id: int
    site_id: int
    site: str
    timezone: str
    steriliser_id: int
    steriliser: str
    kind: str
    performed_at: datetime
    performed_by: str
    resolved_by_test_id: int | None     # the next passing test of the same kind on the same steriliser
    resolved_at: datetime | None


@dataclass(frozen=True)
class OverrideRow:
    override_id: int
    site_id: int
    site: str
    timezone: str
    at: datetime
    manager: str
    subject: str                    # pack, unit, practitioner, screening
    rules: tuple[str, ...]          # the guideline rules that refused
    refusals: tuple[dict, ...]      # as stored: {rule, code, values}
    reason: str
    treatment_id: int


@dataclass(frozen=True)
class UncheckedRow:
    """A treatment finished without the gate accepting a needle item (recorded before finishing required it)."""
    treatment_id: int
    site_id: int
    site: str
    timezone: str
    started_at: datetime
    practitioner: str
    client_code: str


@dataclass(frozen=True)
class RecallRow:
    recall_id: int
    site_id: int
    site: str
    timezone: str
    steriliser: str
    opened_at: datetime
    closed_at: datetime | None
    loads: int
    clients_reached: int
    clients_contacted_at: datetime | None


@dataclass(frozen=True)
class AdverseEventRow:
    event_id: int
    site_id: int
    site: str
    timezone: str
    kind: str
    severity: str
    is_reportable: bool
    onset_at: datetime
    treatment_id: int
    client_code: str                # the pseudonymous code only: never a name


@dataclass(frozen=True)
class TrainingRow:
    site_id: int
    site: str
    user_id: int
    person: str
    course: str
    expires_on: date | None
    status: str                     # valid, expiring, expired (on the site's local date now)


@dataclass(frozen=True)
class GuidelineRow:
    site_id: int
    site: str
    timezone: str
    pack: str
    version: str
    rule_id: str                    # "" for a site that sets no number of its own
    key: str
    value: Any
    reason: str
    set_by: str
    set_at: datetime | None
    replaced_at: datetime | None    # when a later number replaced it (None: still in force)


@dataclass(frozen=True)
class SentLaterRow:
    """A checklist answer given on the tablet without a connection and received later (over a minute)."""
    answer_id: int
    site_id: int
    site: str
    timezone: str
    checklist: dict                 # the run's title {"en": …, "id": …}
    item: dict                      # the item's label
    person: str
    given_at: datetime
    received_at: datetime
    run_id: int

    @property
    def gap_minutes(self) -> int:
        return int((self.received_at - self.given_at).total_seconds() // 60)


@dataclass(frozen=True)
class DisagreementRow:
    """A load whose figures typed from the printout disagree with the steriliser's own record of the cycle by more
    than the pack's tolerance (the machine's figures won; the typed ones are kept in its correction)."""
    cycle_id: int
    site_id: int
    site: str
    timezone: str
    steriliser: str
    cycle_number: int
    started_at: datetime
    figures: tuple                  # ({"figure", "typed", "machine_low", "machine_high"}, ...)
    curve_id: int | None


@dataclass(frozen=True)
class CycleGapRow:
    """Machine cycle numbers with neither a record from the steriliser nor a load typed: cycles the clinic never
    recorded, between two numbers it has (dated by the record after the gap)."""
    site_id: int
    site: str
    timezone: str
    steriliser_id: int
    steriliser: str
    first: int
    last: int
    after_at: datetime              # the start of the cycle recorded just after the gap

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class AuditReport:
    site_id: int | None             # None: every site in reach
    day_from: date
    day_to: date
    generated_at: datetime
    generated_by: str
    timezone: str                   # the zone the export time is shown in (the site's, or the first site's)
    windows: tuple[SiteWindow, ...]
    obligation_rates: tuple[RateRow, ...]
    checklist_rates: tuple[RateRow, ...]
    findings: tuple[FindingRow, ...]
    failed_loads: tuple[FailedLoadRow, ...]
    failed_tests: tuple[FailedTestRow, ...]
    overrides: tuple[OverrideRow, ...]
    unchecked: tuple[UncheckedRow, ...]
    recalls: tuple[RecallRow, ...]
    adverse_events: tuple[AdverseEventRow, ...]
    training: tuple[TrainingRow, ...]
    guidelines: tuple[GuidelineRow, ...]
    sent_later: tuple[SentLaterRow, ...] = ()
    disagreements: tuple[DisagreementRow, ...] = ()
    cycle_gaps: tuple[CycleGapRow, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return (self.day_to - self.day_from).days + 1


# --- helpers -------------------------------------------------------------------------------------

def _in_windows(site_column, time_column, windows: tuple[SiteWindow, ...]):
    """Rows of each site within that site's own UTC bounds."""
    return or_(*[and_(site_column == w.site_id, time_column >= w.start, time_column < w.end) for w in windows])


def _rate_row(source: str, rate: metrics.Rate, titles: dict | None = None) -> RateRow:
    return RateRow(source, rate.key, titles, rate.occurrences, rate.missed, rate.met, rate.rate)


def _merged(per_site: list[dict[str, metrics.Rate]]) -> dict[str, metrics.Rate]:
    """Rates of several sites (each over its own local days) added up per key."""
    keys = sorted({k for rates in per_site for k in rates})
    out = {}
    for k in keys:
        total = metrics.overall({str(i): r[k] for i, r in enumerate(per_site) if k in r})
        out[k] = metrics.Rate(k, total.occurrences, total.missed)
    return out


def _names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def local_midnight(day: date, tz_name: str) -> datetime:
    """The UTC instant a site's local calendar day begins (as the logbook's date filters)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz_name)).astimezone(timezone.utc)


def check_range(day_from: date, day_to: date) -> None:
    """The last day is not before the first, and the range is at most MAX_DAYS days (inclusive)."""
    if day_to < day_from:
        raise Invalid(_l("the last day is before the first"), field="to")
    if (day_to - day_from).days + 1 > MAX_DAYS:
        raise Invalid(_l("choose at most %(n)s days", n=MAX_DAYS), field="to")


# --- the sections --------------------------------------------------------------------------------

def _rates(windows, organisation_id: int) -> tuple[tuple[RateRow, ...], tuple[RateRow, ...]]:
    obligation = _merged([metrics.obligation_rates([w.site_id], w.start, w.end) for w in windows])
    checklist = _merged([metrics.checklist_rates([w.site_id], w.start, w.end) for w in windows])
    titles: dict[str, dict] = {}
    if checklist:
        # The newest version's title of each template key (keys are per organisation; one title per key).
        for key, number, title in db.session.execute(
                select(ChecklistTemplate.key, TemplateVersion.number, TemplateVersion.title)
                .join(TemplateVersion, TemplateVersion.template_id == ChecklistTemplate.id)
                .where(ChecklistTemplate.organisation_id == organisation_id,
                       ChecklistTemplate.key.in_(list(checklist))).order_by(TemplateVersion.number)):
            titles[key] = title
    return (tuple(_rate_row("obligation", r) for r in obligation.values()),
            tuple(_rate_row("checklist", r, titles.get(k)) for k, r in checklist.items()))


def _findings(windows, sites) -> tuple[FindingRow, ...]:
    rows = list(db.session.execute(
        select(Finding, Obligation).join(Obligation, Obligation.id == Finding.obligation_id)
        .where(_in_windows(Finding.site_id, Finding.due_at, windows))
        .order_by(Finding.due_at, Finding.id)).all())
    labels = subjects.labels(o for _f, o in rows)
    return tuple(FindingRow(
        f.id, o.id, f.site_id, sites[f.site_id].name, sites[f.site_id].timezone, f.kind, f.rule_id, f.severity,
        o.subject_type, labels.get((o.subject_type, o.subject_id), ""), f.due_at, f.opened_at, f.resolved_at)
        for f, o in rows)


def _failed_loads(windows, sites) -> tuple[FailedLoadRow, ...]:
    cycles = list(db.session.scalars(
        select(Cycle).where(Cycle.status == "failed", _in_windows(Cycle.site_id, Cycle.started_at, windows))
        .order_by(Cycle.started_at, Cycle.id)))
    names = _names(c.decided_by_id for c in cycles)
    sterilisers = _steriliser_names(c.steriliser_id for c in cycles)
    released: dict[int, list[tuple[datetime, int, datetime | None]]] = {}
    if cycles:
        for sid, started, cid, decided in db.session.execute(
                select(Cycle.steriliser_id, Cycle.started_at, Cycle.id, Cycle.decided_at).where(
                    Cycle.steriliser_id.in_({c.steriliser_id for c in cycles}), Cycle.status == "released",
                    Cycle.started_at > min(c.started_at for c in cycles)).order_by(Cycle.started_at, Cycle.id)):
            released.setdefault(sid, []).append((started, cid, decided))
    out = []
    for c in cycles:
        after = next((r for r in released.get(c.steriliser_id, []) if r[0] > c.started_at), None)
        out.append(FailedLoadRow(
            c.id, c.site_id, sites[c.site_id].name, sites[c.site_id].timezone, c.steriliser_id,
            sterilisers.get(c.steriliser_id, ""), c.cycle_number, c.started_at, tuple(c.reasons or ()),
            names.get(c.decided_by_id, ""), c.decided_at, after[1] if after else None, after[2] if after else None))
    return tuple(out)


def _steriliser_names(ids) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(Steriliser.id, Steriliser.name).where(Steriliser.id.in_(ids))).all())


def _failed_tests(windows, sites) -> tuple[FailedTestRow, ...]:
    tests = list(db.session.scalars(
        select(SteriliserTest).where(SteriliserTest.result == "fail",
                                     _in_windows(SteriliserTest.site_id, SteriliserTest.performed_at, windows))
        .order_by(SteriliserTest.performed_at, SteriliserTest.id)))
    names = _names(t.performed_by_id for t in tests)
    sterilisers = _steriliser_names(t.steriliser_id for t in tests)
    passes: dict[tuple[int, str], list[SteriliserTest]] = {}
    if tests:
        for p in db.session.scalars(select(SteriliserTest).where(
                SteriliserTest.steriliser_id.in_({t.steriliser_id for t in tests}),
                SteriliserTest.kind.in_({t.kind for t in tests}), SteriliserTest.result == "pass",
                SteriliserTest.performed_at > min(t.performed_at for t in tests))
                .order_by(SteriliserTest.performed_at, SteriliserTest.id)):
            passes.setdefault((p.steriliser_id, p.kind), []).append(p)
    out = []
    for t in tests:
        # Resolved once a test of the same kind passed (failed-test-recall); a spore test's pass is known
        # when it is read, not when it was started.
        fix = next((p for p in passes.get((t.steriliser_id, t.kind), []) if p.performed_at > t.performed_at), None)
        out.append(FailedTestRow(
            t.id, t.site_id, sites[t.site_id].name, sites[t.site_id].timezone, t.steriliser_id,
            sterilisers.get(t.steriliser_id, ""), t.kind, t.performed_at,
            names.get(t.performed_by_id) or t.performed_by_name or "", fix.id if fix else None,
            (fix.result_at or fix.performed_at) if fix else None))
    return tuple(out)


def _overrides(windows, sites) -> tuple[OverrideRow, ...]:
    rows = list(db.session.execute(
        select(GateOverride, GateAttempt).join(GateAttempt, GateAttempt.id == GateOverride.attempt_id)
        .where(_in_windows(GateAttempt.site_id, GateOverride.at, windows))
        .order_by(GateOverride.at, GateOverride.id)).all())
    names = _names(o.manager_id for o, _a in rows)
    return tuple(OverrideRow(
        o.id, a.site_id, sites[a.site_id].name, sites[a.site_id].timezone, o.at, names.get(o.manager_id, ""),
        a.subject, tuple(dict.fromkeys(r.get("rule", "") for r in a.reasons or () if r.get("rule"))),
        tuple(a.reasons or ()), o.reason, a.treatment_id) for o, a in rows)


def _unchecked(windows, sites) -> tuple[UncheckedRow, ...]:
    rows = db.session.execute(
        select(Treatment, Client.code).join(Client, Client.id == Treatment.client_id)
        .where(_in_windows(Treatment.site_id, Treatment.started_at, windows), unchecked_clause())
        .order_by(Treatment.started_at, Treatment.id)).all()
    names = _names(t.practitioner_id for t, _c in rows)
    return tuple(UncheckedRow(t.id, t.site_id, sites[t.site_id].name, sites[t.site_id].timezone, t.started_at,
                              names.get(t.practitioner_id, ""), code) for t, code in rows)


def _sent_later(windows, sites) -> tuple[SentLaterRow, ...]:
    """Answers given offline and received more than a minute later, by when they were given."""
    rows = db.session.execute(
        select(Answer, ChecklistRun.site_id, TemplateVersion.title, TemplateItem.label)
        .join(ChecklistRun, ChecklistRun.id == Answer.run_id)
        .join(TemplateVersion, TemplateVersion.id == ChecklistRun.version_id)
        .join(TemplateItem, TemplateItem.id == Answer.item_id)
        .where(_in_windows(ChecklistRun.site_id, Answer.answered_at, windows),
               Answer.received_at > Answer.answered_at)
        .order_by(Answer.answered_at, Answer.id)).all()
    rows = [r for r in rows if r[0].sent_later]
    names = _names(a.answered_by_id for a, *_rest in rows)
    return tuple(SentLaterRow(a.id, site_id, sites[site_id].name, sites[site_id].timezone, dict(title), dict(label),
                              names.get(a.answered_by_id, ""), a.answered_at, a.received_at, a.run_id)
                 for a, site_id, title, label in rows)


def _disagreements(windows, sites) -> tuple[DisagreementRow, ...]:
    """Loads started in the period whose typed figures the steriliser's record contradicted."""
    rows = [(c, k) for c, k in db.session.execute(
        select(Cycle, CycleCorrection).join(CycleCorrection, CycleCorrection.cycle_id == Cycle.id)
        .where(CycleCorrection.kind == "machine_record", _in_windows(Cycle.site_id, Cycle.started_at, windows))
        .order_by(Cycle.started_at, Cycle.id)).all() if k.disagreements]
    sterilisers = _steriliser_names(c.steriliser_id for c, _k in rows)
    return tuple(DisagreementRow(c.id, c.site_id, sites[c.site_id].name, sites[c.site_id].timezone,
                                 sterilisers.get(c.steriliser_id, ""), c.cycle_number, c.started_at,
                                 tuple(k.disagreements), k.curve_id) for c, k in rows)


def _cycle_gaps(windows, sites) -> tuple[CycleGapRow, ...]:
    """Per steriliser with records from the machine: the runs of numbers missing between its lowest and highest
    imported ones (neither imported nor typed), in the period of the record after each run."""
    out: list[CycleGapRow] = []
    by_site = {w.site_id: w for w in windows}
    site_of = dict(db.session.execute(select(CycleCurve.steriliser_id, CycleCurve.site_id)
                                      .where(CycleCurve.site_id.in_(by_site)).distinct()).all())
    names = _steriliser_names(site_of)
    for sid, runs in number_gaps(sorted(site_of), list(by_site)).items():
        window = by_site[site_of[sid]]
        out += [CycleGapRow(window.site_id, sites[window.site_id].name, sites[window.site_id].timezone, sid,
                            names.get(sid, ""), g.first, g.last, g.after_at)
                for g in runs if window.start <= g.after_at < window.end]
    return tuple(sorted(out, key=lambda g: (g.site, g.steriliser, g.steriliser_id, g.first)))


def _recalls(windows, sites) -> tuple[RecallRow, ...]:
    # A recall belongs to the range when it was open at some moment of it.
    overlap = or_(*[and_(Recall.site_id == w.site_id, Recall.opened_at < w.end,
                         or_(Recall.closed_at.is_(None), Recall.closed_at >= w.start)) for w in windows])
    recalls = list(db.session.scalars(select(Recall).where(overlap).order_by(Recall.opened_at, Recall.id)))
    ids = [r.id for r in recalls]
    loads, reached = {}, {}
    if ids:
        loads = dict(db.session.execute(select(RecallLoad.recall_id, func.count()).where(
            RecallLoad.recall_id.in_(ids)).group_by(RecallLoad.recall_id)).all())
        reached = dict(db.session.execute(
            select(RecallLoad.recall_id, func.count(func.distinct(Treatment.client_id)))
            .join(Pack, Pack.cycle_id == RecallLoad.cycle_id)
            .join(TreatmentPack, TreatmentPack.pack_id == Pack.id)
            .join(Treatment, Treatment.id == TreatmentPack.treatment_id)
            .where(RecallLoad.recall_id.in_(ids)).group_by(RecallLoad.recall_id)).all())
    sterilisers = _steriliser_names(r.steriliser_id for r in recalls)
    return tuple(RecallRow(
        r.id, r.site_id, sites[r.site_id].name, sites[r.site_id].timezone, sterilisers.get(r.steriliser_id, ""),
        r.opened_at, r.closed_at, loads.get(r.id, 0), reached.get(r.id, 0), r.clients_contacted_at)
        for r in recalls)


def _adverse_events(windows, sites) -> tuple[AdverseEventRow, ...]:
    rows = db.session.execute(
        select(AdverseEvent, Client.code).join(Treatment, Treatment.id == AdverseEvent.treatment_id)
        .join(Client, Client.id == Treatment.client_id)
        .where(_in_windows(AdverseEvent.site_id, AdverseEvent.onset_at, windows))
        .order_by(AdverseEvent.onset_at, AdverseEvent.id)).all()
    return tuple(AdverseEventRow(
        e.id, e.site_id, sites[e.site_id].name, sites[e.site_id].timezone, e.kind, e.severity, e.is_reportable,
        e.onset_at, e.treatment_id, code) for e, code in rows)


def _training(site_list: list[Site], now: datetime) -> tuple[TrainingRow, ...]:
    """Each active person of each site, each course they hold: in date, expiring or expired on the site's
    local date now (a renewal supersedes the record it renews)."""
    out = []
    for site in site_list:
        people = dict(db.session.execute(
            select(User.id, User.name).join(user_sites, user_sites.c.user_id == User.id)
            .where(user_sites.c.site_id == site.id, User.is_active_user.is_(True))).all())
        if not people:
            continue
        records = db.session.execute(select(TrainingRecord.user_id, TrainingRecord.course, TrainingRecord.expires_on)
                                     .where(TrainingRecord.user_id.in_(list(people)),
                                            TrainingRecord.is_active.is_(True))).all()
        warn = int(pack_for_site(site.id).number("trained-practitioner", "expiring_warning_days"))
        today = local_today(site.timezone, now)
        for (user_id, course), expires_on in sorted(current_expiries(records).items(),
                                                    key=lambda kv: (people[kv[0][0]], kv[0][0], kv[0][1])):
            out.append(TrainingRow(site.id, site.name, user_id, people[user_id], course, expires_on,
                                   training_status(expires_on, today, warn)))
    return tuple(out)


def _guidelines(windows) -> tuple[GuidelineRow, ...]:
    """The pack each site runs and every number a site set for itself that was in force during the range."""
    out = []
    for w in windows:
        pack = pack_for_site(w.site_id)
        rows = list(db.session.scalars(select(SiteRuleOverride).where(
            SiteRuleOverride.site_id == w.site_id, SiteRuleOverride.set_at < w.end,
            or_(SiteRuleOverride.replaced_at.is_(None), SiteRuleOverride.replaced_at >= w.start))
            .order_by(SiteRuleOverride.rule_id, SiteRuleOverride.key, SiteRuleOverride.set_at)))
        names = _names(r.set_by_id for r in rows)
        if not rows:
            out.append(GuidelineRow(w.site_id, w.site, w.timezone, pack.name, pack.version, "", "", None, "", "",
                                    None, None))
        out += [GuidelineRow(w.site_id, w.site, w.timezone, pack.name, pack.version, r.rule_id, r.key, r.value,
                             r.reason, names.get(r.set_by_id, ""), r.set_at, r.replaced_at) for r in rows]
    return tuple(out)


def _summary(report: AuditReport) -> dict[str, Any]:
    obligations = metrics.overall({r.key: metrics.Rate(r.key, r.occurrences, r.missed)
                                   for r in report.obligation_rates})
    checklists = metrics.overall({r.key: metrics.Rate(r.key, r.occurrences, r.missed)
                                  for r in report.checklist_rates})
    training = {s: sum(1 for t in report.training if t.status == s) for s in ("valid", "expiring", "expired")}
    return {
        "days": report.days,
        "obligation_occurrences": obligations.occurrences,
        "obligation_missed": obligations.missed,
        "obligation_rate": obligations.rate,
        "checklist_runs": checklists.occurrences,
        "checklist_incomplete": checklists.missed,
        "checklist_rate": checklists.rate,
        "findings": len(report.findings),
        "findings_open": sum(1 for f in report.findings if f.resolved_at is None),
        "failed_loads": len(report.failed_loads),
        "failed_tests": len(report.failed_tests),
        "failed_tests_unresolved": sum(1 for t in report.failed_tests if t.resolved_at is None),
        "overrides": len(report.overrides),
        "unchecked_treatments": len(report.unchecked),
        "answers_sent_later": len(report.sent_later),
        "typed_figures_disagreeing": len(report.disagreements),
        "cycle_numbers_missing": sum(g.count for g in report.cycle_gaps),
        "recalls": len(report.recalls),
        "recalls_open": sum(1 for r in report.recalls if r.closed_at is None),
        "adverse_events": len(report.adverse_events),
        "adverse_events_reportable": sum(1 for e in report.adverse_events if e.is_reportable),
        "training_valid": training["valid"],
        "training_expiring": training["expiring"],
        "training_expired": training["expired"],
        "site_overrides": sum(1 for g in report.guidelines if g.rule_id),
    }


# --- the service ---------------------------------------------------------------------------------

def audit_report(actor: Actor, site_id: int | None, day_from: date, day_to: date, now: datetime) -> AuditReport:
    """The audit report of one site (or every site in reach) over local days day_from..day_to inclusive."""
    actor.require("reports.read")
    if site_id is not None:
        actor.require_site(site_id)
    check_range(day_from, day_to)
    ids = [site_id] if site_id is not None else list(actor.site_ids)
    site_list = list(db.session.scalars(select(Site).where(Site.id.in_(ids)).order_by(Site.name, Site.id)))
    sites = {s.id: s for s in site_list}
    windows = tuple(SiteWindow(s.id, s.name, s.timezone, local_midnight(day_from, s.timezone),
                               local_midnight(day_to + timedelta(days=1), s.timezone)) for s in site_list)
    who = db.session.get(User, actor.user_id) if actor.user_id else None
    obligation_rates, checklist_rates = _rates(windows, actor.organisation_id) if windows else ((), ())
    report = AuditReport(
        site_id=site_id, day_from=day_from, day_to=day_to, generated_at=now,
        generated_by=who.name if who else "", timezone=site_list[0].timezone if site_list else "UTC",
        windows=windows, obligation_rates=obligation_rates, checklist_rates=checklist_rates,
        findings=_findings(windows, sites) if windows else (),
        failed_loads=_failed_loads(windows, sites) if windows else (),
        failed_tests=_failed_tests(windows, sites) if windows else (),
        overrides=_overrides(windows, sites) if windows else (),
        unchecked=_unchecked(windows, sites) if windows else (),
        recalls=_recalls(windows, sites) if windows else (),
        adverse_events=_adverse_events(windows, sites) if windows else (),
        training=_training(site_list, now), guidelines=_guidelines(windows),
        sent_later=_sent_later(windows, sites) if windows else (),
        disagreements=_disagreements(windows, sites) if windows else (),
        cycle_gaps=_cycle_gaps(windows, sites) if windows else ())
    report.summary.update(_summary(report))
    return report


# --- its fingerprint -----------------------------------------------------------------------------

def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def canonical_json(report: AuditReport) -> bytes:
    """The report's content as canonical JSON (sorted keys, no spaces, UTC times, no labels, which depend on
    the reader's language): the same data gives the same bytes, whoever exports it and when."""
    data = asdict(report)
    for volatile in ("generated_at", "generated_by", "timezone"):
        data.pop(volatile)
    return json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_sha256(report: AuditReport) -> str:
    """SHA-256 of canonical_json(report), printed on the PDF and written to the zip's summary."""
    return hashlib.sha256(canonical_json(report)).hexdigest()


def rates_for_site(actor: Actor, site_id: int, day_from: date | None, day_to: date | None,
                   now: datetime) -> dict[str, Any]:
    """One site's rates over local days [day_from, day_to] (default: the 28 days before today), counted by
    metrics.py exactly as the dashboard and the audit report count them."""
    actor.require("reports.read")
    actor.require_site(site_id)
    site = db.session.get(Site, site_id)
    day_to = day_to or local_today(site.timezone, now) - timedelta(days=1)
    day_from = day_from or day_to - timedelta(days=27)
    check_range(day_from, day_to)
    start, end = local_midnight(day_from, site.timezone), local_midnight(day_to + timedelta(days=1), site.timezone)
    return {"site_id": site.id, "timezone": site.timezone, "start": day_from, "end": day_to,
            "obligations": list(metrics.obligation_rates([site.id], start, end).values()),
            "checklists": list(metrics.checklist_rates([site.id], start, end).values())}
