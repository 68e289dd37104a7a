"""The scheduler process: one leader per database, the jobs, and the operator's commands."""
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from compliance.schedule import runner as runner_module
from compliance.schedule import services
from compliance.schedule.models import Finding, Obligation
from compliance.schedule.runner import LeaderLock, Runner, build_scheduler
from tests.schedule.conftest import wait_until

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # 08:00 in Jakarta


@pytest.fixture
def day_checks(db, site, manager, nurse):
    services.sync_site(site, NOW)
    db.session.commit()


def _wait(predicate, timeout=10.0):
    return wait_until(predicate, timeout)


def test_only_one_process_holds_the_leader_lock(app, db):
    first, second = LeaderLock(app), LeaderLock(app)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        first.release()
        assert second.try_acquire() is True
    finally:
        first.release()
        second.release()


def test_a_second_scheduler_waits_and_takes_over_when_the_first_stops(app, db):
    import threading

    one, two = Runner(app, poll_seconds=0.05), Runner(app, poll_seconds=0.05)
    threads = [threading.Thread(target=r.serve) for r in (one, two)]
    try:
        threads[0].start()
        assert _wait(one.leading.is_set)
        threads[1].start()
        time.sleep(0.3)
        assert not two.leading.is_set()  # a follower: no jobs run twice
        one.stop.set()
        threads[0].join(10)
        assert _wait(two.leading.is_set)
        assert {job.id for job in two.scheduler.get_jobs()} == {"scan", "send", "sync", "anchor"}
    finally:
        one.stop.set()
        two.stop.set()
        for t in threads:
            t.join(10)


def test_the_jobs_run_every_minute_and_sync_every_ten(app):
    scheduler = build_scheduler(app)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert jobs["scan"].trigger.interval == timedelta(minutes=1)
    assert jobs["send"].trigger.interval == timedelta(minutes=1)
    assert jobs["sync"].trigger.interval == timedelta(minutes=10)
    assert jobs["anchor"].trigger.interval == timedelta(minutes=app.config["AUDIT_ANCHOR_MINUTES"]) \
        == timedelta(hours=1)


def test_the_scan_job_flags_what_is_overdue_in_its_own_context(app, db, day_checks, time_machine):
    time_machine.move_to(NOW + timedelta(days=1), tick=False)
    runner_module.scan_job(app)
    assert db.session.scalar(select(func.count()).select_from(Finding)) == 2


def test_dry_run_command_lists_and_changes_nothing(db, runner, day_checks):
    result = runner.invoke(args=["scheduler", "scan", "--dry-run", "--at", "2026-11-25T10:30:00+07:00"])
    assert result.exit_code == 0, result.output
    assert "1 obligation(s) would be acted on" in result.output
    assert "opening-checklist" in result.output and "→ overdue" in result.output
    assert "2026-11-25T02:00:00+00:00 UTC = 2026-11-25T09:00:00+07:00 local" in result.output
    assert db.session.scalar(select(func.count()).select_from(Finding)) == 0
    assert {o.status for o in db.session.scalars(select(Obligation))} == {"ok"}


def test_dry_run_says_how_many_earlier_due_times_would_be_missed(db, runner, day_checks):
    result = runner.invoke(args=["scheduler", "scan", "--dry-run", "--at", "2026-11-28T10:30:00+07:00"])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if "opening-checklist" in l)
    assert "3 earlier due time(s) missed" in line and "2026-11-28T09:00:00+07:00 local" in line  # 25, 26, 27
    assert db.session.scalar(select(func.count()).select_from(Finding)) == 0


def test_scan_command_at_a_time_flags_once(db, runner, day_checks):
    first = runner.invoke(args=["scheduler", "scan", "--at", "2026-11-26T00:00:00Z"])
    second = runner.invoke(args=["scheduler", "scan", "--at", "2026-11-26T00:01:00Z"])
    assert ", 2 finding(s)" in first.output and ", 0 finding(s)" in second.output


def test_a_bad_time_is_refused_with_a_clear_message(db, runner):
    result = runner.invoke(args=["scheduler", "scan", "--dry-run", "--at", "tomorrow"])
    assert result.exit_code != 0 and "not an ISO 8601 time" in result.output
    result = runner.invoke(args=["scheduler", "scan", "--dry-run", "--at", "2026-11-26T10:00"])
    assert result.exit_code != 0 and "offset" in result.output
