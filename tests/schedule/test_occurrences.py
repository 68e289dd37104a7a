"""Every due time is a record (an occurrence): missed days are counted one by one, late records fill their own
day and never move a duty backwards, pauses and closed days excuse, and the rates are counted from them."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.errors import Invalid
from compliance.reports import metrics
from compliance.schedule import services
from compliance.schedule.models import Finding, Obligation, Occurrence
from compliance.sterilisation import services as sterilisation

LONDON = ZoneInfo("Europe/London")


def local(day: date, hour: int, minute: int = 0, tz=LONDON) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(timezone.utc)


def _get(db, site, kind, subject_id=None):
    stmt = select(Obligation).where(Obligation.site_id == site.id, Obligation.kind == kind)
    if subject_id is not None:
        stmt = stmt.where(Obligation.subject_id == subject_id)
    return db.session.scalar(stmt)


def _occurrences(db, o):
    return {r.local_day: r.state for r in db.session.scalars(
        select(Occurrence).where(Occurrence.obligation_id == o.id).order_by(Occurrence.due_at))}


def _findings(db, o):
    return sorted(f.due_at for f in db.session.scalars(select(Finding).where(Finding.obligation_id == o.id)))


@pytest.fixture
def london(make_site, site):
    return make_site(org=site.organisation, name="London", timezone="Europe/London")


@pytest.fixture
def march(db, london):
    """London's opening checklist (09:00 local, an hour's grace), made on 21 March, done 22–26 March before
    nine, then not done 27–31 March. 29 March is the spring clock change."""
    services.sync_site(london, local(date(2026, 3, 21), 12))
    db.session.commit()
    o = _get(db, london, "opening-checklist")
    for d in range(22, 27):
        services.checklist_completed(london.id, "opening", local(date(2026, 3, d), 8, 40))
        db.session.commit()
    return o


def _rate(db, site, start: date, end: date):
    rates = metrics.obligation_rates([site.id], local(start, 0), local(end, 0))
    return rates["opening-checklist"]


def test_five_missed_days_are_five_findings_and_a_rate_of_half(db, london, march):
    result = services.scan(local(date(2026, 4, 1), 8))  # the scheduler ran nothing from the 26th until now
    db.session.commit()
    assert _findings(db, march) == [local(date(2026, 3, d), 9) for d in range(27, 32)]
    assert len([f for f in result.findings if db.session.get(Finding, f).obligation_id == march.id]) == 5
    states = _occurrences(db, march)
    assert [states[date(2026, 3, d)] for d in range(22, 32)] == ["done_on_time"] * 5 + ["missed"] * 5
    rate = _rate(db, london, date(2026, 3, 22), date(2026, 4, 1))
    assert (rate.occurrences, rate.met, rate.rate) == (10, 5, 0.5)


def test_scanning_every_half_hour_counts_the_same(db, london, march):
    at = local(date(2026, 3, 26), 10)
    while at < local(date(2026, 4, 1), 8):
        services.scan(at)
        db.session.commit()
        at += timedelta(minutes=30)
    assert _findings(db, march) == [local(date(2026, 3, d), 9) for d in range(27, 32)]
    assert _rate(db, london, date(2026, 3, 22), date(2026, 4, 1)).rate == 0.5
    # on the clock-change day the due time is 09:00 summer time, once
    assert db.session.scalar(select(func.count()).select_from(Occurrence).where(
        Occurrence.obligation_id == march.id, Occurrence.local_day == date(2026, 3, 29))) == 1


def test_done_late_in_its_turn_is_done_late_and_resolves_its_finding(db, london, march):
    services.scan(local(date(2026, 3, 27), 10, 30))
    db.session.commit()
    assert _occurrences(db, march)[date(2026, 3, 27)] == "missed"
    services.checklist_completed(london.id, "opening", local(date(2026, 3, 27), 11))
    db.session.commit()
    assert _occurrences(db, march)[date(2026, 3, 27)] == "done_late"
    assert db.session.scalar(select(Finding).where(Finding.obligation_id == march.id)).resolved_at is not None
    assert _rate(db, london, date(2026, 3, 22), date(2026, 3, 28)).rate == pytest.approx(5 / 6)


def test_a_record_for_a_later_day_closes_the_days_before_as_missed(db, london, march):
    services.checklist_completed(london.id, "opening", local(date(2026, 3, 30), 8, 30))  # no scan ran meanwhile
    db.session.commit()
    states = _occurrences(db, march)
    assert [states[date(2026, 3, d)] for d in range(27, 31)] == ["missed", "missed", "missed", "done_on_time"]
    assert march.next_due_at == local(date(2026, 3, 31), 9)


def test_the_scan_makes_each_occurrence_when_its_due_time_comes(db, london, march):
    services.scan(local(date(2026, 3, 27), 9, 1))
    db.session.commit()
    assert _occurrences(db, march)[date(2026, 3, 27)] == "due"
    assert march.alert_after == local(date(2026, 3, 27), 10)  # the overdue alert, when its grace ends


def test_the_look_back_bounds_the_catch_up_with_one_gap_finding(app, db, london, march):
    before = app.config["SCAN_LOOKBACK_DAYS"]
    app.config["SCAN_LOOKBACK_DAYS"] = 3
    try:
        services.scan(local(date(2026, 4, 10), 12))
        db.session.commit()
    finally:
        app.config["SCAN_LOOKBACK_DAYS"] = before
    findings = list(db.session.scalars(select(Finding).where(Finding.obligation_id == march.id)
                                       .order_by(Finding.due_at)))
    gap = [f for f in findings if f.gap_until is not None]
    # 27 March was its current due time: missed; 28 March to 7 April are one gap; the due times since
    # 10 April 12:00 minus three days (8, 9 and 10 April) one by one
    assert len(gap) == 1 and gap[0].due_at == local(date(2026, 3, 28), 9)
    assert gap[0].gap_until == local(date(2026, 4, 8), 9)   # the first due time within the look-back
    assert [f.due_at for f in findings if f.gap_until is None] == [local(date(2026, 3, 27), 9)] + [
        local(date(2026, 4, d), 9) for d in (8, 9, 10)]


# --- late records never move a duty backwards --------------------------------------------------

@pytest.fixture
def autoclave(db, site, make_steriliser, manager):
    steriliser = make_steriliser(site)
    services.sync_site(site, datetime(2026, 11, 20, tzinfo=timezone.utc))
    db.session.commit()
    return steriliser


JAKARTA = ZoneInfo("Asia/Jakarta")


def _control(db, manager, steriliser, at, now):
    test = sterilisation.record_test(actor_for_user(manager), {
        "steriliser_id": steriliser.id, "kind": "automatic_control", "result": "pass",
        "performed_at": at.isoformat()}, now)
    db.session.commit()
    return test


def test_yesterdays_test_posted_after_todays_fills_yesterday_and_moves_nothing(db, site, manager, autoclave):
    o = _get(db, site, "automatic-control-test", autoclave.id)
    yesterday, today = date(2026, 11, 24), date(2026, 11, 25)
    services.scan(local(yesterday, 12, tz=JAKARTA))          # yesterday's control test is overdue
    db.session.commit()
    now = local(today, 8, tz=JAKARTA)
    _control(db, manager, autoclave, local(today, 7, 30, tz=JAKARTA), now)
    next_due = o.next_due_at
    assert next_due == local(date(2026, 11, 26), 8, 30, tz=JAKARTA)
    _control(db, manager, autoclave, local(yesterday, 7, 45, tz=JAKARTA), now)   # arrives late
    db.session.refresh(o)
    assert o.next_due_at == next_due and o.status == "ok"
    states = _occurrences(db, o)
    assert states[yesterday] == "done_on_time" and states[today] == "done_on_time"   # done in time, told late


def test_an_old_record_with_no_open_occurrence_changes_nothing(db, site, manager, autoclave):
    o = _get(db, site, "automatic-control-test", autoclave.id)
    now = local(date(2026, 11, 25), 8, tz=JAKARTA)
    _control(db, manager, autoclave, local(date(2026, 11, 25), 7, tz=JAKARTA), now)
    before = (o.next_due_at, _occurrences(db, o))
    _control(db, manager, autoclave, local(date(2026, 11, 10), 7, tz=JAKARTA), now)  # before any occurrence
    db.session.refresh(o)
    assert (o.next_due_at, _occurrences(db, o)) == before


@pytest.mark.parametrize("performed_at, why", [
    ("1970-01-01T00:00:00+00:00", "must be between 2000-01-01 and"),   # outside every record's window
    ("2024-12-30T12:00:00+00:00", "before this steriliser was added"),
])
def test_a_record_before_its_steriliser_existed_is_refused(db, site, manager, autoclave, performed_at, why):
    o = _get(db, site, "automatic-control-test", autoclave.id)
    before = (o.next_due_at, o.alert_after)
    with pytest.raises(Invalid) as refused:
        _control(db, manager, autoclave, datetime.fromisoformat(performed_at), local(date(2026, 11, 25), 8, tz=JAKARTA))
    db.session.rollback()
    assert refused.value.field == "performed_at" and why in str(refused.value)
    db.session.refresh(o)
    assert (o.next_due_at, o.alert_after) == before


def test_a_record_in_the_future_is_refused_by_the_engine_too(db, site, autoclave):
    o = _get(db, site, "automatic-control-test", autoclave.id)
    now = local(date(2026, 11, 25), 8, tz=JAKARTA)
    with pytest.raises(Invalid):
        services.mark_done(o, now + timedelta(days=1), now)
    with pytest.raises(Invalid):   # before the subject was added (its first local day)
        services.mark_done(o, datetime(1970, 1, 2, tzinfo=timezone.utc), now)


def test_a_missed_weekly_spore_test_is_one_finding_per_week(db, site, autoclave):
    o = _get(db, site, "spore-test", autoclave.id)
    first = o.next_due_at
    services.scan(first + timedelta(days=22))
    db.session.commit()
    assert _findings(db, o) == [first, first + timedelta(days=7), first + timedelta(days=14)]
    assert o.next_due_at == first + timedelta(days=21)


# --- excused: a pause, a closed day -------------------------------------------------------------

def test_a_pause_excuses_the_current_due_time_and_the_rate_leaves_it_out(db, london, march, manager):
    services.scan(local(date(2026, 3, 27), 9, 30))
    db.session.commit()
    actor = actor_for_user(manager)
    manager.sites.append(london)
    db.session.commit()
    services.pause(actor_for_user(manager), march.id, {"reason": "flooded, closed for repairs"},
                   local(date(2026, 3, 27), 9, 40))
    db.session.commit()
    assert _occurrences(db, march)[date(2026, 3, 27)] == "excused"
    services.scan(local(date(2026, 3, 28), 12))
    db.session.commit()
    rate = _rate(db, london, date(2026, 3, 22), date(2026, 3, 29))
    assert (rate.occurrences, rate.met) == (5, 5)
    assert actor is not None


def test_declaring_today_closed_excuses_its_due_time(db, london, march, manager):
    manager.sites.append(london)
    db.session.commit()
    services.scan(local(date(2026, 3, 27), 9, 30))
    db.session.commit()
    services.set_closing_days(actor_for_user(manager), london.id, {"holidays": "2026-03-27 Burst pipe"},
                              local(date(2026, 3, 27), 9, 45))
    db.session.commit()
    assert _occurrences(db, march)[date(2026, 3, 27)] == "excused"
    assert march.next_due_at == local(date(2026, 3, 28), 9)
    services.scan(local(date(2026, 3, 27), 12))
    db.session.commit()
    assert _findings(db, march) == []


def test_the_api_counts_the_rate_as_the_dashboard_and_the_report_do(app, db, london, march, manager):
    from compliance.reports import services as reports

    manager.sites.append(london)
    db.session.commit()
    services.scan(local(date(2026, 4, 1), 8))
    db.session.commit()
    report = reports.audit_report(actor_for_user(manager), london.id, date(2026, 3, 22), date(2026, 3, 31),
                                  local(date(2026, 4, 1), 8))
    row = next(r for r in report.obligation_rates if r.key == "opening-checklist")
    assert (row.occurrences, row.met, row.rate) == (10, 5, 0.5)
    api = reports.rates_for_site(actor_for_user(manager), london.id, date(2026, 3, 22), date(2026, 3, 31),
                                 local(date(2026, 4, 1), 8))
    opening = next(r for r in api["obligations"] if r.key == "opening-checklist")
    assert (opening.occurrences, opening.met, opening.rate) == (10, 5, 0.5)


# --- clock changes, through the scan ------------------------------------------------------------

@pytest.mark.parametrize("zone, hour, day, expect", [
    ("Europe/London", 1, date(2026, 10, 25), (1, 30)),        # 01:30 happens twice: due once, at the first
    ("America/New_York", 1, date(2026, 11, 1), (1, 30)),
    ("Europe/London", 1, date(2026, 3, 29), (2, 0)),          # 01:30 does not exist: due at 02:00
    ("America/New_York", 2, date(2026, 3, 8), (3, 0)),        # 02:30 does not exist: due at 03:00
])
def test_a_daily_duty_falls_due_once_on_a_clock_change_day(db, make_site, site, manager, zone, hour, day, expect):
    from compliance.guidelines.services import set_site_number

    tz = ZoneInfo(zone)
    there = make_site(org=site.organisation, name=zone, timezone=zone)
    manager.sites.append(there)
    db.session.commit()
    start = local(day - timedelta(days=2), 12, tz=tz)
    actor = actor_for_user(manager)
    set_site_number(actor, there.id, "daily-checks", "opening_hour", hour, "early shift", start)
    set_site_number(actor, there.id, "daily-checks", "opening_minute", 30, "early shift", start)
    services.sync_site(there, start)
    db.session.commit()
    o = _get(db, there, "opening-checklist")
    at = start
    while at < local(day + timedelta(days=2), 12, tz=tz):
        services.scan(at)
        db.session.commit()
        at += timedelta(minutes=15)
    rows = list(db.session.scalars(select(Occurrence).where(Occurrence.obligation_id == o.id)
                                   .order_by(Occurrence.due_at)))
    days = [r.local_day for r in rows]
    assert days == sorted(set(days)) and day in days                  # one due time a local day
    on_the_day = next(r for r in rows if r.local_day == day).due_at.astimezone(tz)
    assert (on_the_day.hour, on_the_day.minute) == expect
    assert len(_findings(db, o)) == len(rows) == 4                    # each missed, once
