"""Pure schedule rules: when an obligation is next due, in the site's local time, and its state at `now`.

Next due times come from APScheduler's own triggers (no cron code of our own), computed in the site's
zone and then held in UTC, so "09:00 every day" stays 09:00 local across a clock change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

UTC = timezone.utc
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


def local_moment(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall time as an aware UTC moment. In a repeated hour (autumn) the first of the two; in a
    skipped hour (spring) the next valid local time, the end of the gap (01:30 on London's spring day is 02:00)."""
    aware = wall.replace(tzinfo=tz, fold=0)
    moment = aware.astimezone(UTC)
    if moment.astimezone(tz).replace(tzinfo=None) == wall:
        return moment
    # A skipped wall time: walk from just before the gap to its end (gaps end on a whole minute).
    start = wall.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    for minutes in range(0, 24 * 60):
        candidate = start + timedelta(minutes=minutes)
        if candidate.astimezone(tz).replace(tzinfo=None) >= wall:
            return candidate
    raise ValueError(f"no valid local time near {wall}")


def next_due_at(schedule: Schedule, tz_name: str, after: datetime) -> datetime:
    """The first due time strictly after `after` that falls on an open day, as an aware UTC datetime.

    Cron fields are matched against the local wall clock (APScheduler's CronTrigger run on naive wall time),
    then placed in the zone: a daily duty falls due once on the autumn clock-change day, even in the repeated
    hour, and in spring's skipped hour it falls due at the end of the gap."""
    tz = ZoneInfo(tz_name)
    if schedule.every is not None:
        due = after + schedule.every
        # An interval that lands on a closed day moves to the same local time of the next open day.
        for _ in range(400):
            if not _is_closed(due, schedule, tz):
                return due.astimezone(UTC)
            due = (due.astimezone(tz) + timedelta(days=1)).astimezone(UTC)
        raise ValueError("no open day within 400 days")
    trigger = CronTrigger(timezone=UTC, **schedule.cron)   # on the wall clock: no zone, no DST
    wall_after = after.astimezone(tz).replace(tzinfo=None)
    previous, moment = None, wall_after.replace(tzinfo=UTC)
    for _ in range(800):
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            raise ValueError("the cron fields never fire")
        due = local_moment(fire.replace(tzinfo=None), tz)
        if due > after and not _is_closed(due, schedule, tz):
            return due
        previous, moment = fire, fire + timedelta(seconds=1)
    raise ValueError("no open day within the search window")


def start_of_local_day(day: date, tz_name: str) -> datetime:
    """Local midnight starting `day` (or the first valid time after it), in UTC."""
    return local_moment(datetime.combine(day, time(0)), ZoneInfo(tz_name))


def local_day(moment: datetime, tz_name: str) -> date:
    return moment.astimezone(ZoneInfo(tz_name)).date()


def due_on_day(schedule: Schedule, tz_name: str, day: date) -> datetime | None:
    """A cron duty's due time on local `day`, or None (a closed day, or a day the rule does not fire)."""
    due = next_due_at(schedule, tz_name, start_of_local_day(day, tz_name) - timedelta(microseconds=1))
    return due if local_day(due, tz_name) == day else None


@dataclass(frozen=True)
class CatchUp:
    """Where a duty's due times stand at `now`: the earlier due times whose turn has passed (each one an
    occurrence, missed unless it was done), a gap the look-back skipped, and the current due time."""
    passed: tuple[datetime, ...]
    current: datetime
    gap: tuple[datetime, datetime] | None = None


def catch_up(due_at: datetime, schedule: Schedule, tz_name: str, now: datetime, lookback: timedelta) -> CatchUp:
    """Move from `due_at` to the latest due time that has come by `now` (a due time's turn ends when the next
    one comes). Each one passed on the way is listed, so five missed days are five occurrences; due times
    older than `now - lookback` are not listed one by one but returned as one gap (the scheduler was not
    running)."""
    passed: list[datetime] = []
    gap = None
    current = due_at
    following = next_due_at(schedule, tz_name, current)
    if following > now:
        return CatchUp((), current)
    passed.append(current)
    current = following
    horizon = now - lookback
    if current < horizon:  # beyond the look-back: one gap, up to the first due time within it
        start = current
        while current < horizon and (following := next_due_at(schedule, tz_name, current)) <= now:
            current = following
        if current > start:
            gap = (start, current)
    while (following := next_due_at(schedule, tz_name, current)) <= now:
        passed.append(current)
        current = following
    return CatchUp(tuple(passed), current, gap)


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
    end_of_day = start_of_local_day(local_day(done_at, tz_name) + timedelta(days=1), tz_name) - timedelta(microseconds=1)
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
