"""Schedule rules at their boundaries, across clock changes, with closed days; no app."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from compliance.schedule.rules import Schedule, alert_after, next_due_at, state_at

DAILY_9 = Schedule(cron={"hour": 9, "minute": 0}, grace=timedelta(hours=1))


def local(tz, *args):
    return datetime(*args, tzinfo=ZoneInfo(tz))


@pytest.mark.parametrize("tz,before,after", [
    ("Europe/London", (2026, 3, 28), (2026, 3, 30)),       # clocks go forward on 29 March 2026
    ("Europe/London", (2026, 10, 24), (2026, 10, 26)),     # and back on 25 October 2026
    ("America/New_York", (2026, 3, 7), (2026, 3, 9)),      # forward on 8 March 2026
    ("America/New_York", (2026, 10, 31), (2026, 11, 2)),   # back on 1 November 2026
    ("Asia/Jakarta", (2026, 3, 28), (2026, 3, 30)),        # no clock change
])
def test_daily_nine_oclock_stays_nine_local_across_clock_changes(tz, before, after):
    moment = local(tz, *before, 10, 0) - timedelta(days=1)  # dues: the day before, the change day, the day after
    seen = []
    for _ in range(3):
        moment = next_due_at(DAILY_9, tz, moment)
        seen.append(moment.astimezone(ZoneInfo(tz)))
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert [(d.hour, d.minute) for d in seen] == [(9, 0)] * 3
    assert seen[0].date() == date(*before) and seen[-1].date() == date(*after)
    # The same 09:00 local is a different hour in UTC once the clocks have changed (none in Jakarta).
    assert len({d.utcoffset() for d in seen}) == (1 if tz == "Asia/Jakarta" else 2)


def test_due_boundaries_one_second_either_side_and_after_grace():
    due = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    second = timedelta(seconds=1)
    assert state_at(due, DAILY_9, due - second) == "ok"
    assert state_at(due, DAILY_9, due) == "due"
    assert state_at(due, DAILY_9, alert_after(due, DAILY_9)) == "due"
    assert state_at(due, DAILY_9, alert_after(due, DAILY_9) + second) == "overdue"


def test_paused_and_snoozed():
    due = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    late = due + timedelta(hours=5)
    assert state_at(due, DAILY_9, late, paused=True) == "paused"
    assert state_at(due, DAILY_9, late, snoozed_until=late + timedelta(minutes=1)) == "snoozed"
    assert state_at(due, DAILY_9, late, snoozed_until=late) == "overdue"  # a snooze ends by itself


def test_closed_weekdays_and_holidays_are_skipped():
    schedule = Schedule(cron={"hour": 9, "minute": 0}, closed_weekdays=frozenset({"sun"}),
                        holidays=frozenset({date(2026, 11, 30)}))
    saturday = local("Asia/Jakarta", 2026, 11, 28, 10, 0)
    nxt = next_due_at(schedule, "Asia/Jakarta", saturday).astimezone(ZoneInfo("Asia/Jakarta"))
    assert nxt.date() == date(2026, 12, 1)  # Sunday closed, Monday 30 November a holiday


def test_weekly_interval_lands_on_the_next_open_day():
    schedule = Schedule(every=timedelta(days=7), closed_weekdays=frozenset({"sun"}))
    done = local("Europe/London", 2026, 11, 22, 8, 30).astimezone(timezone.utc)  # a Sunday (worked anyway)
    nxt = next_due_at(schedule, "Europe/London", done).astimezone(ZoneInfo("Europe/London"))
    assert nxt.date() == date(2026, 11, 30) and (nxt.hour, nxt.minute) == (8, 30)


def test_a_schedule_is_either_cron_or_interval():
    with pytest.raises(ValueError):
        Schedule()
    with pytest.raises(ValueError):
        Schedule(cron={"hour": 9}, every=timedelta(days=1))
    with pytest.raises(ValueError):
        Schedule(every=timedelta(days=1), closed_weekdays=frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"}))


# --- what to do next: reminder, overdue, escalation, repeat ------------------------------------------

from compliance.schedule.rules import Notices, Progress, next_due_after_done, plan  # noqa: E402

DUE = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
TELL = Notices(reminder_lead=HOUR, escalate_after=4 * HOUR, repeat_every=24 * HOUR)


def test_plan_reminds_before_the_due_time_then_alerts_when_the_grace_ends():
    assert plan(DUE, HOUR, TELL, Progress(), DUE - 3 * HOUR) == ("reminder", DUE - HOUR)
    assert plan(DUE, HOUR, TELL, Progress(reminded=True), DUE - HOUR) == ("overdue", DUE + HOUR)
    # Too late to remind (the scheduler was down past the grace): straight to the overdue alert.
    assert plan(DUE, HOUR, TELL, Progress(), DUE + HOUR + timedelta(seconds=1)) == ("overdue", DUE + HOUR)
    assert plan(DUE, HOUR, Notices(), Progress(), DUE - 3 * HOUR) == ("overdue", DUE + HOUR)  # no reminder set


def test_plan_escalates_then_repeats_and_skips_repeats_missed_while_down():
    since = DUE + HOUR
    overdue = Progress(status="overdue", overdue_since=since)
    assert plan(DUE, HOUR, TELL, overdue, since) == ("escalation", since + 4 * HOUR)
    escalated = Progress(status="overdue", overdue_since=since, escalated=True)
    assert plan(DUE, HOUR, TELL, escalated, since + 4 * HOUR) == ("repeat", since + 24 * HOUR)
    # After three days down the next repeat is the first one after now, not the three missed ones.
    assert plan(DUE, HOUR, TELL, escalated, since + 72 * HOUR + HOUR) == ("repeat", since + 96 * HOUR)
    assert plan(DUE, HOUR, Notices(), overdue, since) == (None, None)  # nothing more to tell


def test_plan_waits_for_a_snooze_and_nothing_while_paused_or_ended():
    snoozed = Progress(reminded=True, snoozed_until=DUE + 5 * HOUR)
    assert plan(DUE, HOUR, TELL, snoozed, DUE) == ("overdue", DUE + 5 * HOUR)
    assert plan(DUE, HOUR, TELL, Progress(status="paused"), DUE) == (None, None)
    assert plan(DUE, HOUR, TELL, Progress(status="ended"), DUE) == (None, None)


def test_done_any_time_of_a_local_day_counts_for_that_days_due_time():
    jakarta = "Asia/Jakarta"
    early = local(jakarta, 2026, 11, 25, 7, 0)   # before 09:00
    late = local(jakarta, 2026, 11, 25, 23, 30)  # after it
    for done in (early, late):
        nxt = next_due_after_done(DAILY_9, jakarta, done).astimezone(ZoneInfo(jakarta))
        assert (nxt.date(), nxt.hour) == (date(2026, 11, 26), 9)
    weekly = Schedule(every=timedelta(days=7))
    assert next_due_after_done(weekly, jakarta, early) == early + timedelta(days=7)


# --- clock changes: a daily duty falls due once a local day ------------------------------------

def _dues(tz: str, hour: int, minute: int, start: datetime, days: int) -> list[datetime]:
    from zoneinfo import ZoneInfo

    schedule, out, after = Schedule(cron={"hour": hour, "minute": minute}), [], start
    for _ in range(days):
        after = next_due_at(schedule, tz, after)
        out.append(after.astimezone(ZoneInfo(tz)))
    return out


@pytest.mark.parametrize("tz, day", [("Europe/London", 25), ("America/New_York", 1)])
def test_a_duty_in_the_repeated_autumn_hour_falls_due_once_that_day(tz, day):
    month = 10 if tz == "Europe/London" else 11
    start = datetime(2026, month, day, tzinfo=timezone.utc) - timedelta(days=2)
    dues = _dues(tz, 1, 30, start, 5)
    days = [d.date() for d in dues]
    assert len(days) == len(set(days)) == 5                      # one a day, none twice
    assert all((d.hour, d.minute) == (1, 30) for d in dues)        # 01:30 local each day
    change = [d for d in dues if d.day == day and d.month == month][0]
    assert change.fold == 0 and change.utcoffset() == change.replace(fold=0).utcoffset()  # the first 01:30


@pytest.mark.parametrize("tz, month, day, hour, expect", [
    ("Europe/London", 3, 29, 1, (2, 0)),        # 01:00–02:00 does not exist: at 02:00 summer time
    ("America/New_York", 3, 8, 2, (3, 0)),      # 02:00–03:00 does not exist: at 03:00 daylight time
])
def test_a_duty_in_the_skipped_spring_hour_falls_due_at_the_next_valid_local_time(tz, month, day, hour, expect):
    dues = _dues(tz, hour, 30, datetime(2026, month, day - 2, tzinfo=timezone.utc), 4)
    on_the_day = [d for d in dues if (d.month, d.day) == (month, day)]
    assert len(on_the_day) == 1 and (on_the_day[0].hour, on_the_day[0].minute) == expect
    assert [(d.hour, d.minute) for d in dues if (d.month, d.day) != (month, day)] == [(hour, 30)] * 3


def test_catch_up_lists_each_passed_due_time_and_bounds_them_by_the_look_back():
    from compliance.schedule.rules import catch_up

    daily = Schedule(cron={"hour": 9, "minute": 0})
    first = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    now = datetime(2026, 3, 6, 8, tzinfo=timezone.utc)
    result = catch_up(first, daily, "UTC", now, timedelta(days=30))
    assert result.passed == tuple(first + timedelta(days=d) for d in range(3)) and result.gap is None
    assert result.current == first + timedelta(days=3)
    assert catch_up(result.current, daily, "UTC", now, timedelta(days=30)).passed == ()   # idempotent
    bounded = catch_up(first, daily, "UTC", now, timedelta(days=1))   # look back to 5 March 08:00
    assert bounded.passed == (first,)                                  # its current due time
    assert bounded.gap == (first + timedelta(days=1), first + timedelta(days=3))   # 3 and 4 March
    assert bounded.current == first + timedelta(days=3)
