"""Obligations, the scan that finds what is due and overdue, and the email outbox.

Every step is safe if two processes run it at once: rows are claimed with a conditional UPDATE (only if still
in the state they were read in) and acted on only when exactly one row changed; emails carry a unique key.
Services never touch the request: they take an Actor and `now`."""
from __future__ import annotations

import hashlib
import logging
from contextvars import ContextVar
import smtplib
import ssl
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import validation as v
from ..audit.anchors import current_heads
from ..audit.models import AuditEntry
from ..audit.services import record_event
from ..auth.actor import Actor
from ..errors import Conflict, Invalid, NotFound
from ..i18n import force_format_locale
from ..extensions import db
from ..guidelines import Pack, PackError
from ..guidelines.services import pack_for_site
from ..sites.models import Site, SiteHoliday, User, user_sites
from . import rules, subjects
from .labels import kind_label
from .models import Finding, Obligation, ObligationChange, Occurrence, OutboxMessage

log = logging.getLogger(__name__)
# During one scan each site's pack (with its overrides) is read once; None outside a scan (always fresh).
_scan_packs: ContextVar[dict | None] = ContextVar("scan_packs", default=None)
_scan_calendars: ContextVar[dict | None] = ContextVar("scan_calendars", default=None)


def _pack(site_id: int) -> Pack:
    cache = _scan_packs.get()
    if cache is None:
        return pack_for_site(site_id)
    if site_id not in cache:
        cache[site_id] = pack_for_site(site_id)
    return cache[site_id]


def _calendar(site_id: int) -> "Calendar":
    cache = _scan_calendars.get()
    if cache is None:
        return site_calendar(db.session.get(Site, site_id))
    if site_id not in cache:
        cache[site_id] = site_calendar(db.session.get(Site, site_id))
    return cache[site_id]


def lookback() -> timedelta:
    """How far back a scan makes the occurrences it missed one by one (SCAN_LOOKBACK_DAYS)."""
    return timedelta(days=int(current_app.config.get("SCAN_LOOKBACK_DAYS", 14)))


MAX_SNOOZE = timedelta(days=7)  # a product limit, not a guideline: a longer break is a pause with a reason
NOTICE_NAMES = ("reminder_lead_minutes", "escalate_after_minutes", "repeat_every_minutes")


# --- schedules -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Calendar:
    """A site's zone, weekly days off and holidays."""
    timezone: str
    closed_weekdays: frozenset[str] = frozenset()
    holidays: frozenset[date] = frozenset()


def site_calendar(site: Site) -> Calendar:
    days = frozenset(d for d in (site.closed_weekdays or "").split(",") if d)
    holidays = frozenset(db.session.scalars(select(SiteHoliday.day).where(SiteHoliday.site_id == site.id)))
    return Calendar(site.timezone, days, holidays)


def schedule_json(pack: Pack, kind: str) -> dict:
    """The stored form of an obligation's schedule, with the pack's (and the site's) numbers resolved."""
    spec = pack.obligations[kind]
    data: dict = {"grace_minutes": int(pack.obligation_value(kind, "grace_minutes", 60)),
                  "closed_days": bool(spec.get("closed_days", False))}
    if spec.get("once"):
        data["once"] = True
    else:
        data.update(pack.obligation_value(kind, "schedule"))
    return data


def schedule_from_json(data: dict, calendar: Calendar | None = None) -> rules.Schedule | None:
    """The rule form of a stored schedule; None for a `once` obligation (its due time is fixed)."""
    if data.get("once"):
        return None
    grace = timedelta(minutes=int(data.get("grace_minutes", 60)))
    closed = {}
    if calendar is not None and data.get("closed_days"):
        closed = {"closed_weekdays": calendar.closed_weekdays, "holidays": calendar.holidays}
    if data.get("cron"):
        return rules.Schedule(cron=dict(data["cron"]), grace=grace, **closed)
    return rules.Schedule(every=timedelta(days=int(data["every_days"])), grace=grace, **closed)


def grace_of(obligation: Obligation) -> timedelta:
    return timedelta(minutes=int(obligation.schedule.get("grace_minutes", 60)))


def notices_for(pack: Pack, kind: str) -> rules.Notices:
    lead, escalate, repeat = (timedelta(minutes=pack.notice_minutes(kind, n)) for n in NOTICE_NAMES)
    return rules.Notices(reminder_lead=lead, escalate_after=escalate, repeat_every=repeat)


def _progress(o: Obligation) -> rules.Progress:
    return rules.Progress(status=o.status, reminded=o.reminded, overdue_since=o.overdue_since,
                          escalated=o.escalated, repeats_sent=o.repeats_sent, snoozed_until=o.snoozed_until)


def _wake(due_at: datetime, action_at: datetime | None, spec: rules.Schedule | None, tz: str,
          now: datetime) -> datetime | None:
    """The next moment the scan has anything to do: the action, the due time coming, the next one coming."""
    times = [action_at] if action_at is not None else []
    if due_at > now:
        times.append(due_at)
    if spec is not None:
        times.append(rules.next_due_at(spec, tz, due_at))
    return min(times) if times else None


def _replan(o: Obligation, pack: Pack, now: datetime) -> None:
    """Set next_action / action_at / alert_after from the obligation's state (same transaction as the change)."""
    if o.status in ("paused", "ended"):
        o.next_action, o.action_at, o.alert_after = None, None, None
        return
    o.next_action, o.action_at = rules.plan(o.next_due_at, grace_of(o), notices_for(pack, o.kind), _progress(o), now)
    calendar = _calendar(o.site_id)
    o.alert_after = _wake(o.next_due_at, o.action_at, schedule_from_json(o.schedule, calendar), calendar.timezone,
                          now)


def _reset_progress(o: Obligation) -> None:
    o.reminded, o.overdue_since, o.escalated, o.repeats_sent, o.snoozed_until = False, None, False, 0, None


def state_of(o: Obligation, now: datetime) -> str:
    """ok, due, overdue, paused, snoozed or ended, as a person would read it at `now`."""
    if o.status in ("ended", "paused"):
        return o.status
    if o.status == "overdue":  # flagged: overdue until done, whatever the clock says
        return "snoozed" if o.snoozed_until and now < o.snoozed_until else "overdue"
    return rules.state_for(o.next_due_at, grace_of(o), now, snoozed_until=o.snoozed_until)


# --- making obligations from the pack ------------------------------------------------------------

@dataclass
class SyncResult:
    created: int = 0
    ended: int = 0
    paused: int = 0
    resumed: int = 0
    rescheduled: int = 0


def _rescheduled_due(o: Obligation, spec: rules.Schedule, calendar: Calendar, now: datetime) -> datetime:
    """A recurring duty's coming due time under new numbers or closed days: from its last record, never
    before `now` (nothing becomes owed backwards)."""
    tz = calendar.timezone
    if spec.every is not None:
        if o.last_done_at is None:
            return rules.next_due_at(spec, tz, now)
        return max(rules.next_due_at(spec, tz, o.last_done_at), now)
    after = now
    if o.last_done_at is not None:
        after = max(now, rules.start_of_local_day(rules.local_day(o.last_done_at, tz) + timedelta(days=1), tz)
                    - timedelta(microseconds=1))
    return rules.next_due_at(spec, tz, after)


def _first_due(o: Obligation, wanted: subjects.Wanted | None, calendar: Calendar, now: datetime) -> datetime:
    if o.schedule.get("once"):
        return wanted.due_at
    spec = schedule_from_json(o.schedule, calendar)
    if o.last_done_at is None and wanted is not None and wanted.due_at is not None:
        return wanted.due_at  # e.g. a steriliser's validation: the date on its record
    if o.last_done_at is not None:
        return rules.next_due_after_done(spec, calendar.timezone, o.last_done_at)
    return rules.next_due_at(spec, calendar.timezone, now)


def _change(o: Obligation, to_status: str, at: datetime, by_id: int | None = None, reason: str = "",
            until: datetime | None = None, from_status: str | None = None) -> None:
    db.session.add(ObligationChange(obligation_id=o.id, from_status=from_status or o.status, to_status=to_status,
                                    due_at=o.next_due_at, at=at, by_id=by_id, reason=reason, until=until))


def _create(site: Site, pack: Pack, calendar: Calendar, wanted: subjects.Wanted, now: datetime) -> Obligation | None:
    spec = pack.obligations[wanted.kind]
    o = Obligation(site_id=site.id, kind=wanted.kind, rule_id=spec["rule"], subject_type=wanted.subject_type,
                   subject_id=wanted.subject_id, responsible=spec["responsible"],
                   responsible_user_id=wanted.responsible_user_id, schedule=schedule_json(pack, wanted.kind),
                   status="ok", created_at=now)
    o.next_due_at = _first_due(o, wanted, calendar, now)
    _replan(o, pack, now)
    try:
        with db.session.begin_nested():
            db.session.add(o)
    except IntegrityError:
        return None  # made a moment ago by another process
    if wanted.paused:
        _set_paused(o, now, None, "subject out of service")
    return o


def _set_paused(o: Obligation, now: datetime, by_id: int | None, reason: str) -> None:
    """Nothing falls due while paused; the current due time, if its turn has come and it is not done, is excused."""
    _change(o, "paused", now, by_id, reason)
    if o.next_due_at <= now:
        _excuse(o, o.next_due_at, reason or "paused")
    o.status, o.alert_after, o.next_action, o.action_at = "paused", None, None, None


def _end(o: Obligation, now: datetime, reason: str, done: bool = False, record: str = "",
         by_id: int | None = None) -> None:
    """The subject is gone or its one-off duty is done: nothing more falls due; open findings are resolved.
    A one-off duty done (a container changed, an action closed) counts for its due time."""
    _change(o, "ended", now, reason=reason)
    if done and reason == "done" and o.schedule.get("once"):
        _satisfy(o, o.next_due_at, now, now, record, by_id)
    elif o.next_due_at <= now:
        _excuse(o, o.next_due_at, reason)
    o.status, o.alert_after, o.next_action, o.action_at, o.ended_at = "ended", None, None, None, now
    if done:
        o.last_done_at = now
    _resolve_findings(o, now)


def _resolve_findings(o: Obligation, at: datetime) -> None:
    for finding in db.session.scalars(select(Finding).where(Finding.obligation_id == o.id,
                                                            Finding.resolved_at.is_(None))):
        finding.resolved_at = at  # through the ORM: the audit trail records it


def _paused_by_system(o: Obligation) -> bool:
    last = db.session.scalar(select(ObligationChange).where(
        ObligationChange.obligation_id == o.id, ObligationChange.to_status == "paused")
        .order_by(ObligationChange.id.desc()).limit(1))
    return last is not None and last.by_id is None


def sync_site(site: Site, now: datetime) -> SyncResult:
    """Make the site's obligations match its subjects and the pack in force: create the missing ones, end
    those whose subject has gone, pause and resume with the steriliser's service, and reschedule when a
    site's number changed (e.g. a monthly spore test)."""
    result = SyncResult()
    pack, calendar = pack_for_site(site.id), site_calendar(site)
    wanted = {(w.kind, w.subject_type, w.subject_id): w for w in subjects.wanted_for_site(site, pack)}
    existing = {(o.kind, o.subject_type, o.subject_id): o for o in db.session.scalars(
        select(Obligation).where(Obligation.site_id == site.id))}
    for key, w in wanted.items():
        o = existing.get(key)
        if o is None:
            result.created += _create(site, pack, calendar, w, now) is not None
            continue
        if o.status == "ended":  # a steriliser back from retirement: its duties start again
            _change(o, "ok", now, reason="subject back")
            o.status, o.ended_at = "ok", None
            _reset_progress(o)
            due = _first_due(o, w, calendar, now)
            spec = schedule_from_json(o.schedule, calendar)
            if spec is not None and due < now:  # nothing is owed for the time it was gone
                due = rules.next_due_at(spec, calendar.timezone, now)
            o.next_due_at = due
            _replan(o, pack, now)
            result.created += 1
            continue
        new_schedule = schedule_json(pack, o.kind)
        if new_schedule != o.schedule or (o.schedule.get("once") and w.due_at != o.next_due_at):
            o.schedule = new_schedule
            if o.schedule.get("once"):
                if o.status == "ok" and o.next_due_at > now:
                    o.next_due_at = w.due_at
            elif o.status == "ok" and o.next_due_at > now:  # new numbers from the next due time on
                o.next_due_at = _rescheduled_due(o, schedule_from_json(o.schedule, calendar), calendar, now)
            if o.status != "paused":
                _replan(o, pack, now)
            result.rescheduled += 1
        if w.paused and o.status != "paused":
            _set_paused(o, now, None, "subject out of service")
            result.paused += 1
        elif not w.paused and o.status == "paused" and _paused_by_system(o):
            _resume(o, pack, calendar, now, None, "subject back in service")
            result.resumed += 1
    for key, o in existing.items():
        if key not in wanted and o.status != "ended":
            _end(o, now, "subject closed, used or gone", done=o.schedule.get("once", False))
            result.ended += 1
    db.session.flush()
    return result


def sync(now: datetime, site_id: int | None = None) -> SyncResult:
    """sync_site for every active site (or one)."""
    total = SyncResult()
    stmt = select(Site).where(Site.is_active.is_(True)).order_by(Site.id)
    if site_id is not None:
        stmt = stmt.where(Site.id == site_id)
    for site in db.session.scalars(stmt).all():
        r = sync_site(site, now)
        for name in ("created", "ended", "paused", "resumed", "rescheduled"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    return total


# --- doing the thing -----------------------------------------------------------------------------

def _occurrence(o: Obligation, due_at: datetime, now: datetime, state: str = "due") -> Occurrence:
    """The row for one due time of an obligation, made when first needed (unique per obligation and due time),
    in `state` when it is made now."""
    row = db.session.scalar(select(Occurrence).where(Occurrence.obligation_id == o.id, Occurrence.due_at == due_at))
    if row is not None:
        return row
    row = Occurrence(obligation_id=o.id, site_id=o.site_id, kind=o.kind, due_at=due_at, state=state,
                     local_day=rules.local_day(due_at, _calendar(o.site_id).timezone), created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # made a moment ago by another process
        return db.session.scalar(select(Occurrence).where(Occurrence.obligation_id == o.id,
                                                          Occurrence.due_at == due_at))
    return row


def _satisfy(o: Obligation, due_at: datetime, at: datetime, now: datetime, record: str = "",
             by_id: int | None = None) -> Occurrence:
    """A record done at `at` does the due time `due_at`: on time up to the end of its grace, late after it."""
    row = _occurrence(o, due_at, now)
    if row.state in ("due", "missed"):
        row.state = "done_on_time" if at <= due_at + grace_of(o) else "done_late"
        row.done_at, row.done_by_id, row.record = at, by_id, (record or "")[:80]
        for finding in db.session.scalars(select(Finding).where(
                Finding.obligation_id == o.id, Finding.due_at == due_at, Finding.resolved_at.is_(None))):
            finding.resolved_at = now
    return row


def _excuse(o: Obligation, due_at: datetime, note: str) -> None:
    row = db.session.scalar(select(Occurrence).where(Occurrence.obligation_id == o.id, Occurrence.due_at == due_at))
    if row is None:
        row = _occurrence(o, due_at, due_at)
    if row.state == "due":
        row.state, row.note = "excused", (note or "")[:500]


def _open_finding(o: Obligation, pack: Pack, due_at: datetime, now: datetime,
                  gap_until: datetime | None = None) -> Finding | None:
    """A finding for a missed due time (or a gap the look-back skipped), once per obligation and due time."""
    if db.session.scalar(select(Finding.id).where(Finding.obligation_id == o.id, Finding.due_at == due_at)):
        return None
    rule = pack.rule(o.rule_id)
    finding = Finding(site_id=o.site_id, obligation_id=o.id, kind=o.kind, rule_id=rule.id, severity=rule.severity,
                      due_at=due_at, guideline_version=pack.version, gap_until=gap_until,
                      overrides={f"{r}.{k}": val for (r, k), val in pack.overrides.items()}, opened_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(finding)
    except IntegrityError:
        return None
    return finding


def _miss(o: Obligation, pack: Pack, due_at: datetime, now: datetime) -> Finding | None:
    """A due time whose grace ended without a record: its occurrence is missed, with one finding."""
    row = _occurrence(o, due_at, now, state="missed")
    if row.state == "due":
        row.state = "missed"
    if row.state != "missed":
        return None
    return _open_finding(o, pack, due_at, now)


def check_done_time(o: Obligation, at: datetime, now: datetime) -> None:
    """A record's time must be real: not in the future, not before its subject existed (its first local day)."""
    if at > now + timedelta(minutes=5):
        raise Invalid(_l("a record cannot be dated in the future"), field="performed_at")
    started = subjects.started_at(o.subject_type, o.subject_id)
    if started is not None:
        tz = _calendar(o.site_id).timezone
        if at < rules.start_of_local_day(rules.local_day(started, tz), tz):
            raise Invalid(_l("a record cannot be dated before its subject was added (%(day)s)",
                             day=rules.local_day(started, tz).isoformat()), field="performed_at")


def _record_missed(o: Obligation, pack: Pack, catch: rules.CatchUp, now: datetime) -> list[int]:
    """The due times a catch-up passed are missed occurrences (one finding each); a gap is one finding."""
    found = []
    for due in catch.passed:
        finding = _miss(o, pack, due, now)
        if finding is not None:
            db.session.flush()
            found.append(finding.id)
    if catch.gap is not None:
        finding = _open_finding(o, pack, catch.gap[0], now, gap_until=catch.gap[1])
        if finding is not None:
            db.session.flush()
            found.append(finding.id)
    return found


def mark_done(o: Obligation, done_at: datetime, now: datetime | None = None, record: str = "",
              by_id: int | None = None, day: date | None = None) -> Occurrence | None:
    """Doing the thing, in the same transaction as the record that did it. The record does the due time it
    belongs to: a daily duty's due time on the record's local day, an interval duty's current due time.

    The newest record moves the obligation on (due times passed before it are missed, one finding each) and
    resolves its open findings. A record older than the last one fills a past open occurrence if there is
    one, and otherwise nothing: the next due time never moves backwards. A one-off obligation ends.
    `day` names the local day a daily record is for when it is not the day it was done on."""
    now = done_at if now is None else now
    check_done_time(o, done_at, now)
    if o.schedule.get("once"):
        _end(o, done_at, "done", done=True, record=record, by_id=by_id)
        db.session.flush()
        return None
    calendar = _calendar(o.site_id)
    tz = calendar.timezone
    spec = schedule_from_json(o.schedule, calendar)
    newest = o.last_done_at is None or done_at >= o.last_done_at
    if o.status == "paused":  # done while paused: remembered, the pause stays
        if newest:
            o.last_done_at = done_at
            o.next_due_at = max(o.next_due_at, rules.next_due_after_done(spec, tz, done_at))
        db.session.flush()
        return None
    pack = _pack(o.site_id)
    if spec.cron is not None:
        target = rules.due_on_day(spec, tz, day or rules.local_day(done_at, tz))
    else:
        target = o.next_due_at if newest else None
        if newest and rules.next_due_at(spec, tz, o.next_due_at) <= done_at:  # its turn passed: the latest one
            target = rules.catch_up(o.next_due_at, spec, tz, done_at, lookback()).current
    if newest and target is not None and target >= o.next_due_at:
        if target > o.next_due_at:  # the due times before this record's one passed without a record
            catch = rules.catch_up(o.next_due_at, spec, tz, target, lookback())
            _record_missed(o, pack, catch, now)
        row = _satisfy(o, target, done_at, now, record, by_id)
        due = rules.next_due_after_done(spec, tz, target if spec.cron is not None else done_at)
        if due <= target:
            due = rules.next_due_at(spec, tz, target)
        old = o.status
        o.next_due_at = target
        _change(o, "ok", done_at, by_id=None, reason="done", from_status=old)
        o.next_due_at, o.last_done_at, o.status = due, done_at, "ok"
        _reset_progress(o)
        _replan(o, pack, now)
        _resolve_findings(o, now)
        db.session.flush()
        return row
    row = _past_open(o, spec, done_at, target)
    if row is not None:
        row = _satisfy(o, row.due_at, done_at, now, record, by_id)
    if newest:
        o.last_done_at = done_at
    db.session.flush()
    return row


def _past_open(o: Obligation, spec: rules.Schedule, at: datetime, target: datetime | None) -> Occurrence | None:
    """The past occurrence a late-arriving record belongs to, if it is still open (due or missed)."""
    stmt = select(Occurrence).where(Occurrence.obligation_id == o.id, Occurrence.state.in_(("due", "missed")))
    if spec.cron is not None:
        if target is None:
            return None
        return db.session.scalar(stmt.where(Occurrence.due_at == target))
    # an interval duty: the latest open due time within one interval after the record
    return db.session.scalar(stmt.where(Occurrence.due_at > at - spec.every, Occurrence.due_at <= at + spec.every)
                             .order_by(Occurrence.due_at.desc()).limit(1))


def record_done(site_id: int, kind: str, subject_type: str, subject_id: int, done_at: datetime,
                now: datetime | None = None, record: str = "", by_id: int | None = None,
                day: date | None = None) -> Obligation | None:
    """The hook the other domains call when a record does a duty (a test, a completed checklist): the
    obligation is made first if the scheduler has not made it yet. Kinds the pack does not have are ignored."""
    now = done_at if now is None else now
    pack = pack_for_site(site_id)
    if kind not in pack.obligations:
        return None
    o = db.session.scalar(select(Obligation).where(Obligation.kind == kind, Obligation.subject_type == subject_type,
                                                   Obligation.subject_id == subject_id))
    if o is None:
        site = db.session.get(Site, site_id)
        o = _create(site, pack, site_calendar(site), subjects.Wanted(kind, subject_type, subject_id),
                    min(done_at, now))
        if o is None:
            return None
    if o.status != "ended":
        mark_done(o, done_at, now, record, by_id, day=day)
    return o


def subject_closed(subject_type: str, subject_id: int, at: datetime, record: str = "",
                   by_id: int | None = None) -> None:
    """The hook for a subject whose duties are over (a sharps container closed, a corrective action closed,
    a training record replaced): its obligations end, counted as done."""
    for o in db.session.scalars(select(Obligation).where(
            Obligation.subject_type == subject_type, Obligation.subject_id == subject_id,
            Obligation.status != "ended")):
        _end(o, at, "done", done=True, record=record, by_id=by_id)
    db.session.flush()


# --- a manager's pause, resume and snooze ---------------------------------------------------------

def obligations_query(actor: Actor, site_id: int | None = None, status: str | None = None,
                      kind: str | None = None, include_ended: bool = False) -> Select:
    actor.require("obligations.read")
    stmt = select(Obligation).where(Obligation.site_id.in_(actor.site_ids))
    if site_id is not None:
        stmt = stmt.where(Obligation.site_id == site_id)
    if status:
        stmt = stmt.where(Obligation.status == status)
    elif not include_ended:
        stmt = stmt.where(Obligation.status != "ended")
    if kind:
        stmt = stmt.where(Obligation.kind == kind)
    return stmt


def get_obligation(actor: Actor, obligation_id: int) -> Obligation:
    actor.require("obligations.read")
    o = db.session.get(Obligation, obligation_id)
    if o is None or o.site_id not in actor.site_ids:
        raise NotFound(_l("no such obligation"), field="obligation_id")
    return o


def history(o: Obligation, limit: int = 200) -> list[ObligationChange]:
    return list(db.session.scalars(select(ObligationChange).where(ObligationChange.obligation_id == o.id)
                                   .order_by(ObligationChange.id.desc()).limit(limit)))


def occurrences_of(o: Obligation, limit: int = 30) -> list[Occurrence]:
    """Its latest due times and what became of each, newest first."""
    return list(db.session.scalars(select(Occurrence).where(Occurrence.obligation_id == o.id)
                                   .order_by(Occurrence.due_at.desc()).limit(limit)))


def findings_of(o: Obligation, limit: int = 50) -> list[Finding]:
    return list(db.session.scalars(select(Finding).where(Finding.obligation_id == o.id)
                                   .order_by(Finding.due_at.desc()).limit(limit)))


def _managed(actor: Actor, obligation_id: int, data: dict) -> tuple[Obligation, str]:
    actor.require("obligations.manage")
    o = get_obligation(actor, obligation_id)
    reason = v.text(data, "reason", 500)
    if o.status == "ended":
        raise Conflict(_l("this obligation has ended; nothing falls due"), field="obligation_id")
    return o, reason


def pause(actor: Actor, obligation_id: int, data: dict, now: datetime) -> Obligation:
    """Nothing falls due and nobody is told until it is resumed (e.g. a steriliser away for repair)."""
    o, reason = _managed(actor, obligation_id, data)
    if o.status == "paused":
        raise Conflict(_l("this obligation is already paused"), field="obligation_id")
    _set_paused(o, now, actor.user_id, reason)
    db.session.flush()
    return o


def _resume(o: Obligation, pack: Pack, calendar: Calendar, now: datetime, by_id: int | None, reason: str) -> None:
    _change(o, "ok", now, by_id, reason)
    spec = schedule_from_json(o.schedule, calendar)
    if spec is not None and spec.cron is not None and o.next_due_at < now:
        o.next_due_at = rules.next_due_at(spec, calendar.timezone, now)  # daily duties missed while paused are not owed
    elif spec is not None and o.next_due_at <= now:
        excused = db.session.scalar(select(Occurrence.id).where(
            Occurrence.obligation_id == o.id, Occurrence.due_at == o.next_due_at, Occurrence.state == "excused"))
        if excused:  # its turn was excused by the pause; an interval duty is owed from now
            o.next_due_at = now
    o.status = "ok"
    _reset_progress(o)
    if o.next_due_at <= now:
        _occurrence(o, o.next_due_at, now)
    _replan(o, pack, now)


def resume(actor: Actor, obligation_id: int, data: dict, now: datetime) -> Obligation:
    o, reason = _managed(actor, obligation_id, data)
    if o.status != "paused":
        raise Conflict(_l("this obligation is not paused"), field="obligation_id")
    site = db.session.get(Site, o.site_id)
    _resume(o, pack_for_site(o.site_id), site_calendar(site), now, actor.user_id, reason)
    db.session.flush()
    return o


def snooze(actor: Actor, obligation_id: int, data: dict, now: datetime) -> Obligation:
    """Nobody is told until `until` (at most a week); the snooze ends by itself and the alerts resume."""
    o, reason = _managed(actor, obligation_id, data)
    if o.status == "paused":
        raise Conflict(_l("a paused obligation cannot be snoozed; resume it first"), field="obligation_id")
    hours = v.integer(data, "hours", 1, int(MAX_SNOOZE.total_seconds() // 3600))
    until = now + timedelta(hours=hours)
    _change(o, "snoozed", now, actor.user_id, reason, until=until)
    o.snoozed_until = until
    _replan(o, pack_for_site(o.site_id), now)
    db.session.flush()
    return o


# --- the scan ------------------------------------------------------------------------------------

@dataclass
class ScanResult:
    findings: list[int] = field(default_factory=list)
    notices: dict[str, int] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    occurrences: int = 0     # occurrences whose turn came in this scan (made or closed)


def candidates(now: datetime, limit: int | None = 500) -> list[Obligation]:
    """Obligations with something to do at `now`, through the alert_after index, the longest waiting first."""
    stmt = select(Obligation).where(Obligation.alert_after <= now, Obligation.status.in_(("ok", "overdue"))) \
        .order_by(Obligation.alert_after, Obligation.id)
    return list(db.session.scalars(stmt.limit(limit) if limit else stmt))


@dataclass(frozen=True)
class Step:
    """What the scan does for one obligation at `now`: the action and the obligation's state after it."""
    action: str
    progress: rules.Progress


def _step(action: str | None, at: datetime | None, due_at: datetime, grace: timedelta, p: rules.Progress,
          now: datetime) -> Step | None:
    """The action due at `now`, or None (nothing planned yet, or exactly at the end of the grace)."""
    if action is None or at is None or at > now:
        return None
    if action == "reminder" and now > due_at + grace:
        action = "overdue"  # too late to remind (the scheduler was down): say it is overdue
    if action == "overdue":
        if now <= due_at + grace:
            return None
        return Step(action, replace(p, status="overdue", overdue_since=now, escalated=False, repeats_sent=0))
    if action == "reminder":
        return Step(action, replace(p, reminded=True))
    if action == "escalation":
        return Step(action, replace(p, escalated=True))
    return Step(action, replace(p, repeats_sent=p.repeats_sent + 1))


@dataclass(frozen=True)
class Visit:
    """Everything the scan does for one obligation at `now`, worked out before anything is written."""
    catch: rules.CatchUp           # due times whose turn passed (missed unless done), a gap, the current one
    step: Step | None              # the notice due for the current due time
    progress: rules.Progress       # the state after it
    next_action: str | None
    action_at: datetime | None
    alert_after: datetime | None


def plan_visit(o: Obligation, now: datetime, pack: Pack, calendar: Calendar, back: timedelta) -> Visit:
    """Pure given the row, the pack and the calendar."""
    spec = schedule_from_json(o.schedule, calendar)
    grace, notices = grace_of(o), notices_for(pack, o.kind)
    progress, action, at = _progress(o), o.next_action, o.action_at
    catch = rules.CatchUp((), o.next_due_at)
    if spec is not None:
        catch = rules.catch_up(o.next_due_at, spec, calendar.timezone, now, back)
        if catch.passed or catch.gap:  # a new due time's turn: its own notices from the start
            progress = rules.Progress(snoozed_until=o.snoozed_until)
            action, at = rules.plan(catch.current, grace, notices, progress, now)
    step = _step(action, at, catch.current, grace, progress, now)
    if step is not None:
        progress = step.progress
        action, at = rules.plan(catch.current, grace, notices, progress, now)
    return Visit(catch, step, progress, action, at, _wake(catch.current, at, spec, calendar.timezone, now))


def scan(now: datetime, limit: int = 500) -> ScanResult:
    """Do what is due at `now` for every obligation whose alert_after has come: make the occurrences whose
    turn came (each one that fell due while nothing ran, back to the look-back, missed with its own finding),
    send reminders, overdue alerts (with a finding), escalations and repeats, each once. Missed repeats are
    not sent one by one. One bad row is logged and skipped; it never stops the loop."""
    result = ScanResult()
    tokens = _scan_packs.set({}), _scan_calendars.set({})
    back = lookback()
    try:
        for o in candidates(now, limit):
            try:
                with db.session.begin_nested():
                    _act(o, now, result, back)
            except (SQLAlchemyError, ValueError, KeyError, PackError) as exc:  # one bad row must not stop the others
                log.exception("scan: obligation %s skipped: %s", o.id, exc)
                result.skipped.append(o.id)
    finally:
        _scan_packs.reset(tokens[0])
        _scan_calendars.reset(tokens[1])
    return result


def _act(o: Obligation, now: datetime, result: ScanResult, back: timedelta) -> None:
    pack = _pack(o.site_id)
    visit = plan_visit(o, now, pack, _calendar(o.site_id), back)
    catch, step, p = visit.catch, visit.step, visit.progress
    if (catch.passed or step is not None) and not subjects.is_live(o.subject_type, o.subject_id):
        _end(o, now, "subject closed, used or gone", done=True)  # e.g. a pack used since the last sync
        result.ended.append(o.id)
        return
    old_status, old_due = o.status, o.next_due_at
    claimed = db.session.execute(update(Obligation).where(
        Obligation.id == o.id, Obligation.status == o.status, Obligation.next_due_at == o.next_due_at,
        Obligation.alert_after == o.alert_after).values(
        next_due_at=catch.current, status=p.status, reminded=p.reminded, overdue_since=p.overdue_since,
        escalated=p.escalated, repeats_sent=p.repeats_sent, next_action=visit.next_action,
        action_at=visit.action_at, alert_after=visit.alert_after)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        return  # another scan got it first
    if catch.passed or catch.gap:
        if old_status == "overdue":
            db.session.add(ObligationChange(obligation_id=o.id, from_status="overdue", to_status="ok",
                                            due_at=old_due, at=now, reason="next due time"))
        result.findings += _record_missed(o, pack, catch, now)
        result.occurrences += len(catch.passed)
    due = catch.current
    if due <= now:
        row = _occurrence(o, due, now)
        result.occurrences += row.created_at == now
    if step is not None and step.action == "overdue":
        db.session.add(ObligationChange(obligation_id=o.id, from_status="ok" if catch.passed else old_status,
                                        to_status="overdue", due_at=due, at=now))
        finding = _miss(o, pack, due, now)
        if finding is not None:
            db.session.flush()
            result.findings.append(finding.id)
    if step is not None:
        people = site_managers(o.site_id) if step.action == "escalation" else responsible_people(o)
        n = p.repeats_sent if step.action == "repeat" else 0
        for person in people:
            if queue_notice(o, step.action, due, person, now, n=n) is not None:
                result.notices[step.action] = result.notices.get(step.action, 0) + 1
    db.session.expire(o)


def dry_run(at: datetime) -> list[dict]:
    """What the scan would do at `at`, changing nothing: one row per obligation with a notice due, or with
    due times that would be recorded as missed (how many)."""
    rows = []
    obligations = candidates(at, limit=None)
    names = subjects.labels(obligations)
    back = lookback()
    for o in obligations:
        site = db.session.get(Site, o.site_id)
        visit = plan_visit(o, at, pack_for_site(o.site_id), site_calendar(site), back)
        if visit.step is None and not visit.catch.passed:
            continue
        action = visit.step.action if visit.step is not None else "missed"
        people = [] if visit.step is None else (
            site_managers(o.site_id) if action == "escalation" else responsible_people(o))
        rows.append({"obligation_id": o.id, "site": site.name, "kind": o.kind,
                     "subject": names.get((o.subject_type, o.subject_id), f"{o.subject_type} {o.subject_id}"),
                     "action": action, "due_at": visit.catch.current, "missed": len(visit.catch.passed),
                     "due_local": visit.catch.current.astimezone(ZoneInfo(site.timezone)),
                     "recipients": [p.email for p in people]})
    db.session.rollback()
    return rows


# --- who is told -----------------------------------------------------------------------------------

def _site_people(site_id: int, roles: tuple[str, ...]) -> list[User]:
    return list(db.session.scalars(select(User).join(user_sites, user_sites.c.user_id == User.id).where(
        user_sites.c.site_id == site_id, User.role.in_(roles), User.is_active_user.is_(True)).order_by(User.id)))


def site_managers(site_id: int) -> list[User]:
    """The site's managers, and the organisation's admins who work at it."""
    return _site_people(site_id, ("manager", "admin"))


def responsible_people(o: Obligation) -> list[User]:
    """The person named (a practitioner's training, an assigned action), else the role responsible; the
    managers when nobody of that role works at the site."""
    if o.responsible_user_id is not None:
        person = db.session.get(User, o.responsible_user_id)
        if person is not None and person.is_active_user:
            return [person]
    if o.responsible == "staff":
        return _site_people(o.site_id, ("staff",)) or site_managers(o.site_id)
    return site_managers(o.site_id)


SUBJECT_LINES = {
    "reminder": _l("Due soon at %(site)s: %(what)s"),
    "overdue": _l("Overdue at %(site)s: %(what)s"),
    "escalation": _l("Still overdue at %(site)s: %(what)s"),
    "repeat": _l("Reminder, still overdue at %(site)s: %(what)s"),
}


def _link(o: Obligation | None, person: User) -> str:
    base = current_app.config["BASE_URL"]
    if person.role in ("manager", "admin", "auditor"):
        return f"{base}/obligations/{o.id}" if o is not None else f"{base}/obligations?status=overdue"
    return f"{base}/tablet/checklists"


def queue_notice(o: Obligation, kind: str, due_at: datetime, person: User, now: datetime,
                 n: int = 0) -> OutboxMessage | None:
    """One email per (kind, obligation, due time, repeat number, person), in the person's language."""
    key = f"{kind}:{o.id}:{due_at.isoformat()}:{n}:{person.id}"
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
        return None
    site = db.session.get(Site, o.site_id)
    language = person.language or site.language
    rule = _pack(site.id).rule(o.rule_id)
    with force_locale(language), force_format_locale(person.locale or site.locale):
        # Inside the reader's language: a subject's label holds translated words (a training record's course).
        subject_name = subjects.labels([o]).get((o.subject_type, o.subject_id), "")
        what = f"{kind_label(o.kind)} — {subject_name}" if subject_name else str(kind_label(o.kind))
        context = {"kind": kind, "site": site, "what": what, "rule_title": rule.title_in(language),
                   "rule_id": rule.id, "due_at": due_at, "severity": rule.severity, "link": _link(o, person),
                   "person": person, "overdue_since": o.overdue_since}
        return _queue(key, kind, site, person, language, str(SUBJECT_LINES[kind]) % {"site": site.name, "what": what},
                      "email/notice", context, now, o.id)


def _queue(key: str, kind: str, site: Site | None, person: User, language: str, subject: str, template: str,
           context: dict, now: datetime, obligation_id: int | None) -> OutboxMessage | None:
    row = OutboxMessage(dedupe_key=key, kind=kind, site_id=site.id if site else None, obligation_id=obligation_id,
                        user_id=person.id,
                        recipient=person.email, language=language, subject=subject[:300],
                        text_body=render_template(f"{template}.txt", **context),
                        html_body=render_template(f"{template}.html", **context),
                        state="queued", next_attempt_at=now, created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return None  # queued by another process a moment ago
    return row


def queue_to_person(key: str, kind: str, person: User, site: Site | None, subject, template: str, context: dict,
                    now: datetime) -> OutboxMessage | None:
    """One email to one person through the outbox (retries apply), written in their language and formats (their
    own, else their site's); `subject` (a lazy string) is translated here. Once per `key`."""
    language = person.language or (site.language if site else current_app.config["BABEL_DEFAULT_LOCALE"])
    with force_locale(language), force_format_locale(person.locale or (site.locale if site else None)):
        return _queue(key, kind, site, person, language, str(subject), template,
                      {"person": person, "site": site, **context}, now, None)


def queue_digests(now: datetime) -> int:
    """A daily digest for each site's managers at the pack's local hour: what is overdue and what falls due
    today. Sent only when there is something to tell; once per site, local day and person."""
    queued = 0
    for site in db.session.scalars(select(Site).where(Site.is_active.is_(True)).order_by(Site.id)).all():
        tz = ZoneInfo(site.timezone)
        local = now.astimezone(tz)
        if local.hour < int(pack_for_site(site.id).number("notices", "digest_local_hour")):
            continue
        managers = site_managers(site.id)
        keys = {m.id: f"digest:{site.id}:{local.date().isoformat()}:{m.id}" for m in managers}
        done = set(db.session.scalars(select(OutboxMessage.dedupe_key).where(
            OutboxMessage.dedupe_key.in_(list(keys.values())))))
        if not managers or len(done) == len(keys):
            continue
        end_of_day = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz)
        rows = list(db.session.scalars(select(Obligation).where(
            Obligation.site_id == site.id, or_(Obligation.status == "overdue", (Obligation.status == "ok") & (
                Obligation.next_due_at < end_of_day))).order_by(Obligation.next_due_at)))
        if not rows:
            continue
        [anchor] = current_heads(now, site.organisation_id) or [None]  # the chain's head, outside the database
        for m in managers:
            if keys[m.id] in done:
                continue
            language = m.language or site.language
            with force_locale(language), force_format_locale(m.locale or site.locale):
                names = subjects.labels(rows)  # in the reader's language (a course's name)
                items = [{"what": f"{kind_label(o.kind)} — {names.get((o.subject_type, o.subject_id), '')}",
                          "state": state_of(o, now), "due_at": o.next_due_at} for o in rows]
                overdue = sum(1 for i in items if i["state"] == "overdue")
                subject = _("Daily digest for %(site)s: %(overdue)s overdue, %(total)s to do",
                            site=site.name, overdue=overdue, total=len(items))
                context = {"site": site, "items": items, "person": m, "link": _link(None, m), "kind": "digest",
                           "day": local.date(), "anchor": anchor}
                queued += _queue(keys[m.id], "digest", site, m, language, subject, "email/digest", context, now,
                                 None) is not None
    return queued


def outbox_query(actor: Actor, site_id: int | None = None, state: str | None = None,
                 kind: str | None = None, search: str = "") -> Select:
    actor.require("outbox.read")
    stmt = select(OutboxMessage).where(OutboxMessage.site_id.in_(actor.site_ids))
    if site_id is not None:
        stmt = stmt.where(OutboxMessage.site_id == site_id)
    if state:
        stmt = stmt.where(OutboxMessage.state == state)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    if search.strip():
        like = f"%{search.strip()}%"
        stmt = stmt.where(or_(OutboxMessage.recipient.ilike(like), OutboxMessage.subject.ilike(like)))
    return stmt


def due_for_tablet(site_id: int, now: datetime, user_id: int | None = None, limit: int = 20) -> list[Obligation]:
    """What the tablet's Now screen shows: the site's staff duties (and the person's own) overdue or falling
    due before the end of the local day, most urgent first."""
    site = db.session.get(Site, site_id)
    tz = ZoneInfo(site.timezone)
    end_of_day = datetime.combine(now.astimezone(tz).date() + timedelta(days=1), datetime.min.time(), tz)
    mine = (Obligation.responsible == "staff") | (Obligation.responsible_user_id == user_id) if user_id \
        else Obligation.responsible == "staff"
    return list(db.session.scalars(select(Obligation).where(
        Obligation.site_id == site_id, Obligation.status.in_(("ok", "overdue")), mine,
        or_(Obligation.status == "overdue", Obligation.next_due_at < end_of_day))
        .order_by(Obligation.next_due_at).limit(limit)))


def counts_by_state(actor: Actor, site_id: int | None, now: datetime) -> dict[str, int]:
    """For the overview: how many obligations are overdue, paused and in order."""
    stmt = select(Obligation.status, func.count()).where(Obligation.site_id.in_(actor.site_ids),
                                                         Obligation.status != "ended")
    if site_id is not None:
        stmt = stmt.where(Obligation.site_id == site_id)
    return dict(db.session.execute(stmt.group_by(Obligation.status)).all())


# --- sending -----------------------------------------------------------------------------------
# At least once: a message is claimed (attempts + 1, next try set) and committed before it is sent, and marked
# sent after; a crash in between sends it again at its next try. Every copy carries the same Message-ID (made
# from the dedupe key), so the receiving side can tell a duplicate. A message that cannot be sent is tried
# again, backing off to OUTBOX_MAX_BACKOFF_MINUTES, until it is OUTBOX_GIVE_UP_DAYS old; only then is it
# `failed` (shown on the dashboard and the Emails page). An admin can queue failed messages again.

RESEND_EVENT = "resend"  # the audit event of a message queued again (the outbox's own changes are not audited)


def backoff(attempts: int, cap_minutes: int | None = None) -> timedelta:
    """1, 2, 4 … minutes between tries, at most OUTBOX_MAX_BACKOFF_MINUTES (default 30)."""
    cap = int(current_app.config["OUTBOX_MAX_BACKOFF_MINUTES"] if cap_minutes is None else cap_minutes)
    return timedelta(minutes=min(cap, 2 ** min(max(0, attempts - 1), 20)))


def give_up_after() -> timedelta:
    return timedelta(days=int(current_app.config["OUTBOX_GIVE_UP_DAYS"]))


def message_id_for(dedupe_key: str, mail_from: str) -> str:
    """The Message-ID of every copy of one outbox message: `<sha256 of the dedupe key @ the sender's domain>`."""
    domain = mail_from.rpartition("@")[2] or "localhost"
    return f"<{hashlib.sha256(dedupe_key.encode()).hexdigest()}@{domain}>"


def _smtp_send(message: OutboxMessage) -> None:
    config = current_app.config
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = config["MAIL_FROM"], message.recipient, message.subject
    email["Message-ID"] = message_id_for(message.dedupe_key, config["MAIL_FROM"])
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    email["Content-Language"] = message.language  # after the body: set_content replaces Content-* headers
    security = config["SMTP_SECURITY"]
    if security == "tls":
        smtp = smtplib.SMTP_SSL(config["SMTP_HOST"], config["SMTP_PORT"], timeout=20,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=20)
    with smtp:
        if security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
        smtp.send_message(email)


def trying_since(message: OutboxMessage) -> datetime:
    """When the give-up clock started: when it was queued, or last queued again by a person."""
    resent = db.session.scalar(select(func.max(AuditEntry.at)).where(
        AuditEntry.entity_type == OutboxMessage.__tablename__, AuditEntry.entity_id == str(message.id),
        AuditEntry.action == RESEND_EVENT))
    return max(message.created_at, resent) if resent else message.created_at


def _gives_up(message: OutboxMessage, now: datetime) -> bool:
    limit = give_up_after()
    if now - message.created_at < limit:  # the common case, without reading the audit trail
        return False
    return now - trying_since(message) >= limit


def send_one(message_id: int, now: datetime) -> str:
    """Claim a queued message (conditional UPDATE), send it, record the outcome. Commits: it runs as a job."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.state != "queued" or message.next_attempt_at > now:
        return "skipped"
    attempts = message.attempts
    claimed = db.session.execute(update(OutboxMessage).where(
        OutboxMessage.id == message.id, OutboxMessage.state == "queued", OutboxMessage.attempts == attempts).values(
        attempts=attempts + 1, next_attempt_at=now + backoff(attempts + 1)))
    db.session.commit()  # the claim is visible to other senders before the slow part
    if claimed.rowcount != 1:
        return "skipped"
    db.session.refresh(message)
    try:
        _smtp_send(message)
    except (OSError, smtplib.SMTPException) as exc:
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if _gives_up(message, now):
            message.state = "failed"
            log.warning("email %s to %s failed for good after %s tries: %s", message.id, message.recipient,
                        message.attempts, message.last_error)
        db.session.commit()
        return "retry" if message.state == "queued" else "failed"
    message.state, message.sent_at, message.last_error = "sent", now, ""
    db.session.commit()
    return "sent"


def send_due(now: datetime, limit: int = 100) -> dict[str, int]:
    """Send every queued message whose time has come; returns counts by outcome."""
    ids = list(db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.state == "queued", OutboxMessage.next_attempt_at <= now).order_by(OutboxMessage.id)
        .limit(limit)))
    db.session.commit()
    counts: dict[str, int] = {}
    for message_id in ids:
        outcome = send_one(message_id, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def failed_count(actor: Actor, site_id: int | None = None) -> int:
    """How many emails of the actor's sites were given up (for the dashboard's and the Emails page's alert)."""
    stmt = outbox_query(actor, site_id=site_id, state="failed")
    return db.session.scalar(select(func.count()).select_from(stmt.subquery()))


def _requeue(messages: list[OutboxMessage], now: datetime, actor: Actor | None) -> int:
    """Queue failed messages again: next try now, the give-up clock from now. The tries so far stay counted;
    the audit trail keeps who queued it again, when, and its state, tries and last error before."""
    organisation_of = dict(db.session.execute(select(Site.id, Site.organisation_id)).all())
    queued = 0
    for message in messages:
        before = {"state": message.state, "attempts": message.attempts, "last_error": message.last_error,
                  "next_attempt_at": message.next_attempt_at}
        claimed = db.session.execute(update(OutboxMessage).where(
            OutboxMessage.id == message.id, OutboxMessage.state == "failed").values(
            state="queued", next_attempt_at=now))
        if claimed.rowcount != 1:  # queued again by someone else a moment ago
            continue
        organisation_id = organisation_of.get(message.site_id) or (actor.organisation_id if actor else None)
        if organisation_id is not None:
            record_event(RESEND_EVENT, OutboxMessage.__tablename__, message.id, organisation_id=organisation_id,
                         site_id=message.site_id, before=before, after={"state": "queued", "next_attempt_at": now},
                         actor=actor, at=now)
        queued += 1
    db.session.expire_all()
    return queued


def resend(actor: Actor, now: datetime, message_id: int | None = None, site_id: int | None = None) -> int:
    """An admin queues failed emails again: one (message_id) or every failed one of its sites (or of one site).
    Returns how many; refused (saying why) when there is none to send again."""
    actor.require("outbox.resend")
    if site_id is not None:
        actor.require_site(site_id)
    stmt = outbox_query(actor, site_id=site_id)
    if message_id is not None:
        message = db.session.scalar(stmt.where(OutboxMessage.id == message_id))
        if message is None:
            raise NotFound(_l("no such email"))
        if message.state != "failed":
            raise Conflict(_l("Only an email that failed can be sent again; this one is %(state)s.",
                              state=_OUTBOX_STATE_WORDS.get(message.state, message.state)))
        messages = [message]
    else:
        messages = list(db.session.scalars(stmt.where(OutboxMessage.state == "failed").order_by(OutboxMessage.id)))
        if not messages:
            raise Conflict(_l("There is no failed email to send again."))
    return _requeue(messages, now, actor)


def resend_failed(now: datetime) -> int:
    """The operator's command (`flask scheduler resend --failed`): every failed email, of every organisation."""
    messages = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.state == "failed")
                                       .order_by(OutboxMessage.id)))
    return _requeue(messages, now, None)


_OUTBOX_STATE_WORDS = {"queued": _l("queued"), "sent": _l("sent"), "failed": _l("failed")}


# --- hooks for the other domains ---------------------------------------------------------------

def steriliser_test_recorded(site_id: int, steriliser_id: int, test_kind: str, result: str, at: datetime,
                             now: datetime | None = None, record: str = "", by_id: int | None = None) -> None:
    """A steriliser test was recorded: the obligations it does advance (a failed test does not do the duty;
    it takes the steriliser out of service, which pauses them)."""
    if result == "fail":
        return
    for kind, spec in pack_for_site(site_id).obligations.items():
        if spec.get("test_kind") == test_kind:
            record_done(site_id, kind, "steriliser", steriliser_id, at, now, record, by_id)


def checklist_completed(site_id: int, checklist_kind: str, at: datetime, record: str = "",
                        by_id: int | None = None, day: date | None = None) -> None:
    """A site's day checklist (opening, closing) was completed at `at`; it does the due time of its own
    local `day` (a run of yesterday finished after midnight does yesterday's)."""
    for kind, spec in pack_for_site(site_id).obligations.items():
        if spec.get("checklist_kind") == checklist_kind and spec["subject"] == "site":
            record_done(site_id, kind, "site", site_id, at, at, record, by_id, day=day)


def refresh_site(site_id: int, now: datetime) -> None:
    """A subject was added or changed service (a steriliser, a container opened, training recorded)."""
    site = db.session.get(Site, site_id)
    if site is not None and site.is_active:
        sync_site(site, now)


def reschedule_site(site_id: int, now: datetime) -> int:
    """The site's closed days changed: duties that skip closed days get their coming due time again; a due
    time whose turn has come on a day now closed is excused."""
    site = db.session.get(Site, site_id)
    calendar, count = site_calendar(site), 0
    pack = pack_for_site(site_id)
    for o in db.session.scalars(select(Obligation).where(Obligation.site_id == site_id, Obligation.status == "ok")):
        if not o.schedule.get("closed_days") or o.schedule.get("once"):
            continue
        spec = schedule_from_json(o.schedule, calendar)
        if o.next_due_at <= now:
            day = rules.local_day(o.next_due_at, calendar.timezone)
            if not (day in calendar.holidays or rules.WEEKDAYS[day.weekday()] in calendar.closed_weekdays):
                continue  # its turn has come on an open day: it stays
            _excuse(o, o.next_due_at, "closed day")
        due = _rescheduled_due(o, spec, calendar, now)
        if due != o.next_due_at:
            o.next_due_at = due
            _reset_progress(o)
            _replan(o, pack, now)
            count += 1
    db.session.flush()
    return count


def set_closing_days(actor: Actor, site_id: int, data: dict, now: datetime) -> Site:
    """A manager sets the site's weekly days off and holidays; the daily duties move accordingly."""
    actor.require("sites.closing_days")
    actor.require_site(site_id)
    site = db.session.get(Site, site_id)
    raw_days = data.get("closed_weekdays") or []
    if isinstance(raw_days, str):
        raw_days = [d.strip() for d in raw_days.split(",") if d.strip()]
    days = [d for d in rules.WEEKDAYS if d in set(raw_days)]
    if set(raw_days) - set(rules.WEEKDAYS):
        raise Invalid(_l("unknown weekday; use mon, tue, wed, thu, fri, sat, sun"), field="closed_weekdays")
    if len(days) == 7:
        raise Invalid(_l("a site cannot be closed every day"), field="closed_weekdays")
    holidays: dict[date, str] = {}
    for line in str(data.get("holidays") or "").splitlines():
        line = line.strip()
        if not line:
            continue
        day_text, _sep, name = line.partition(" ")
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise Invalid(_l("each holiday line starts with a date such as 2026-12-25, then its name: %(line)s",
                             line=line[:60]), field="holidays") from None
        v.check_day(day, "holidays", now.date())
        holidays[day] = name.strip()[:120]
    site.closed_weekdays = ",".join(days)
    existing = {h.day: h for h in db.session.scalars(select(SiteHoliday).where(SiteHoliday.site_id == site_id))}
    for day, row in existing.items():  # through the ORM: the audit trail records what was removed
        if day not in holidays:
            db.session.delete(row)
        elif row.name != holidays[day]:
            row.name = holidays[day]
    db.session.flush()
    for day, name in sorted(holidays.items()):
        if day not in existing:
            db.session.add(SiteHoliday(site_id=site_id, day=day, name=name, created_at=now))
    db.session.flush()
    reschedule_site(site_id, now)
    return site


def holidays_of(site_id: int) -> list[SiteHoliday]:
    return list(db.session.scalars(select(SiteHoliday).where(SiteHoliday.site_id == site_id).order_by(SiteHoliday.day)))
