"""Pure schedule rules: when an obligation is next due, in the site's local time, and its state at `now`.

Next due times come from APScheduler's own triggers (no cron code of our own), computed in the site's
zone and then held in UTC, so "09:00 every day" stays 09:00 local across a clock change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Schedule:
    """Either a cron-like rule in local time (e.g. hour=9, day_of_week="mon-sat") or an interval."""
    cron: dict | None = None           # fields of APScheduler's CronTrigger: hour, minute, day_of_week, day …
    every: timedelta | None = None     # an interval from the last time it was done
    grace: timedelta = timedelta(hours=1)
    closed_weekdays: frozenset[str] = frozenset()   # e.g. {"sun"}: nothing is due on those local days
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self):
        if (self.cron is None) == (self.every is None):
            raise ValueError("a schedule has either cron fields or an interval")
        if not self.closed_weekdays <= set(WEEKDAYS):
            raise ValueError(f"closed days must be among {WEEKDAYS}")
        if len(self.closed_weekdays) == 7:
            raise ValueError("a site cannot be closed every day")


def _is_closed(moment: datetime, schedule: Schedule, tz: ZoneInfo) -> bool:
    local = moment.astimezone(tz)
    return WEEKDAYS[local.weekday()] in schedule.closed_weekdays or local.date() in schedule.holidays


def next_due_at(schedule: Schedule, tz_name: str, after: datetime) -> datetime:
    """The first due time strictly after `after` that falls on an open day, as an aware UTC datetime."""
    tz = ZoneInfo(tz_name)
    if schedule.every is not None:
        due = after + schedule.every
        # An interval that lands on a closed day moves to the same local time of the next open day.
        for _ in range(400):
            if not _is_closed(due, schedule, tz):
                return due.astimezone(ZoneInfo("UTC"))
            due = (due.astimezone(tz) + timedelta(days=1)).astimezone(ZoneInfo("UTC"))
        raise ValueError("no open day within 400 days")
    trigger = CronTrigger(timezone=tz, **schedule.cron)
    previous, moment = None, after
    for _ in range(800):
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            raise ValueError("the cron fields never fire")
        if fire > after and not _is_closed(fire, schedule, tz):
            return fire.astimezone(ZoneInfo("UTC"))
        previous, moment = fire, fire + timedelta(seconds=1)
    raise ValueError("no open day within the search window")


def alert_after(due_at: datetime, schedule: Schedule) -> datetime:
    """The earliest moment the obligation can be overdue: its due time plus the grace."""
    return due_at + schedule.grace


def state_at(due_at: datetime, schedule: Schedule, now: datetime, paused: bool = False,
             snoozed_until: datetime | None = None) -> str:
    """ok before the due time, due from it, overdue after the grace; paused, or snoozed until it ends."""
    return state_for(due_at, schedule.grace, now, paused, snoozed_until)


def state_for(due_at: datetime, grace: timedelta, now: datetime, paused: bool = False,
              snoozed_until: datetime | None = None) -> str:
    """state_at for a due time and a grace (a one-off obligation has no schedule, only a grace)."""
    if paused:
        return "paused"
    if snoozed_until is not None and now < snoozed_until:
        return "snoozed"
    if now < due_at:
        return "ok"
    if now <= due_at + grace:
        return "due"
    return "overdue"


def next_due_after_done(schedule: Schedule, tz_name: str, done_at: datetime) -> datetime:
    """The next due time once the duty was done at `done_at`.

    A cron duty done at any time of a local day counts for that day's due time (a test at 07:00 covers the
    08:30 due time; a late one at 11:00 covers it too), so the next one is the first after that local day.
    An interval runs from the moment it was done."""
    if schedule.every is not None:
        return next_due_at(schedule, tz_name, done_at)
    tz = ZoneInfo(tz_name)
    local = done_at.astimezone(tz)
    end_of_day = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz) - timedelta(microseconds=1)
    return next_due_at(schedule, tz_name, end_of_day)


@dataclass(frozen=True)
class Notices:
    """When people are told; a zero timedelta means never."""
    reminder_lead: timedelta = timedelta(0)
    escalate_after: timedelta = timedelta(0)
    repeat_every: timedelta = timedelta(0)


@dataclass(frozen=True)
class Progress:
    """What has happened for the current due time."""
    status: str = "ok"                       # ok, overdue, paused, ended
    reminded: bool = False
    overdue_since: datetime | None = None
    escalated: bool = False
    repeats_sent: int = 0
    snoozed_until: datetime | None = None


def plan(due_at: datetime, grace: timedelta, notices: Notices, progress: Progress,
         now: datetime) -> tuple[str | None, datetime | None]:
    """The next thing to do for an obligation and when: (action, at), or (None, None) when nothing is left.

    Before the due time: a reminder `reminder_lead` ahead (skipped once the grace is over: too late to remind),
    then the overdue alert when the grace ends. Once overdue: the escalation `escalate_after` later, then a
    repeat every `repeat_every`; repeats missed while nothing ran are not sent one by one, the next one is
    the first after `now`. A snooze moves whatever comes next to its end."""
    if progress.status in ("paused", "ended"):
        return None, None
    overdue_at = due_at + grace
    action: str | None
    if progress.status != "overdue":
        if notices.reminder_lead and not progress.reminded and now <= overdue_at:
            action, at = "reminder", due_at - notices.reminder_lead
        else:
            action, at = "overdue", overdue_at
    else:
        since = progress.overdue_since or overdue_at
        if notices.escalate_after and not progress.escalated:
            action, at = "escalation", since + notices.escalate_after
        elif notices.repeat_every:
            step = notices.repeat_every
            k = max(progress.repeats_sent + 1, int((now - since) / step) + 1)
            action, at = "repeat", since + k * step
        else:
            return None, None
    if progress.snoozed_until is not None and at < progress.snoozed_until:
        at = progress.snoozed_until
    return action, at
