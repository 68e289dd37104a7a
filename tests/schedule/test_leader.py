"""A leader that lost its lock stops: it checks the lock before every job, and a follower takes over.

The jobs are replaced by functions that count their runs per app (one app per scheduler process, as two
processes would have), and run every 50 ms instead of every minute. The lock is real: a PostgreSQL advisory
lock ended from another connection (pg_terminate_backend, as a failover or a network blip does), or the SQLite
lock file removed while held (so that another scheduler locks a new file at the same path).
"""
import logging
import os
import threading
import time
from collections import defaultdict

import pytest
from sqlalchemy import text

from compliance import create_app
from compliance.extensions import db as _db
from compliance.schedule import runner as runner_module
from compliance.schedule.runner import LOCK_KEY, LeaderLock, Runner
from tests.schedule.conftest import wait_until


def _wait(predicate, timeout=20.0):
    return wait_until(predicate, timeout)


def _dialect(app) -> str:
    with app.app_context():
        return _db.engine.dialect.name


@pytest.fixture
def second_app(app):
    """Another scheduler process's app: the same database and instance folder, an engine of its own."""
    other = create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                        "INSTANCE_PATH": app.instance_path, "BASE_URL": "http://localhost"}, environ={})
    yield other
    with other.app_context():
        _db.engine.dispose()


@pytest.fixture
def job_runs(monkeypatch):
    """Every job run, counted by the app it ran for; jobs every 50 ms."""
    runs: dict[int, int] = defaultdict(int)
    mutex = threading.Lock()

    def fake_job(app):
        with mutex:
            runs[id(app)] += 1

    for name in ("scan_job", "send_job", "sync_job"):
        monkeypatch.setattr(runner_module, name, fake_job)
    monkeypatch.setattr(runner_module, "SCAN_SECONDS", 0.05)
    monkeypatch.setattr(runner_module, "SEND_SECONDS", 0.05)
    monkeypatch.setattr(runner_module, "SYNC_MINUTES", 0.05 / 60)

    def count(app) -> int:
        with mutex:
            return runs[id(app)]

    return count


@pytest.fixture
def two_runners(app, second_app):
    # The old leader steps back for a second after losing its lock: long enough, even on a busy machine,
    # for the waiting one (asking every 50 ms) to take over first.
    one, two = (Runner(app, poll_seconds=0.05, step_back_seconds=1.0),
                Runner(second_app, poll_seconds=0.05, step_back_seconds=1.0))
    threads = [threading.Thread(target=r.serve, daemon=True) for r in (one, two)]
    yield one, two, threads
    for r in (one, two):
        r.stop.set()
    for t in threads:
        if t.is_alive() or t.ident:
            t.join(20)


def _end_the_lock_connection(app) -> int:
    """From another connection: end the backend that holds the scheduler's advisory lock; how many ended."""
    with app.app_context():
        with _db.engine.connect() as conn:
            ended = conn.execute(text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"),
                {"high": LOCK_KEY >> 32, "low": LOCK_KEY & 0xFFFFFFFF}).scalar()
            conn.commit()
    return ended


def _remove_the_lock_file(app) -> int:
    os.remove(os.path.join(app.instance_path, "scheduler.lock"))
    return 1


def _takeover(app, second_app, job_runs, two_runners, caplog, lose_the_lock):
    one, two, threads = two_runners
    caplog.set_level(logging.INFO, logger="compliance.schedule.runner")
    threads[0].start()
    assert _wait(one.leading.is_set)
    assert _wait(lambda: job_runs(app) >= 5)
    threads[1].start()
    time.sleep(0.3)
    assert not two.leading.is_set() and job_runs(second_app) == 0  # a follower runs nothing

    assert lose_the_lock(app) == 1

    assert _wait(two.leading.is_set), "the follower did not take the lock over"
    assert _wait(lambda: not one.leading.is_set()), "the old leader kept leading after it lost its lock"
    stopped_at = job_runs(app)
    taken_over_at = job_runs(second_app)
    assert _wait(lambda: job_runs(second_app) >= taken_over_at + 10)
    assert job_runs(app) == stopped_at, "the old leader still ran jobs after it lost its lock"
    assert threads[0].is_alive() and one.terms == 1  # waiting as a follower, not gone
    assert any("lost the leader lock" in r.getMessage() for r in caplog.records)

    # When the new leader stops, the old one leads again.
    two.stop.set()
    threads[1].join(20)
    assert _wait(one.leading.is_set) and one.terms == 2
    assert _wait(lambda: job_runs(app) >= stopped_at + 3)


def test_postgresql_a_leader_whose_lock_connection_ended_stops_and_the_follower_takes_over(
        app, db, second_app, job_runs, two_runners, caplog):
    if _dialect(app) != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's (this run is on SQLite; scripts/test runs both)")
    _takeover(app, second_app, job_runs, two_runners, caplog, _end_the_lock_connection)


def test_sqlite_a_leader_whose_lock_file_was_replaced_stops_and_the_follower_takes_over(
        app, db, second_app, job_runs, two_runners, caplog):
    if _dialect(app) != "sqlite":
        pytest.skip("the lock file is SQLite's (this run is on PostgreSQL; scripts/test runs both)")
    _takeover(app, second_app, job_runs, two_runners, caplog, _remove_the_lock_file)


def test_the_lock_knows_when_it_is_lost(app, db):
    lock = LeaderLock(app)
    try:
        assert lock.still_held() is False  # not taken yet
        assert lock.try_acquire() and lock.still_held()
        if _dialect(app) == "postgresql":
            assert _end_the_lock_connection(app) == 1
        else:
            _remove_the_lock_file(app)
        assert lock.still_held() is False
        lock.release()  # a lost lock lets go without an error
        assert not lock.held and lock.try_acquire() and lock.still_held()
    finally:
        lock.release()


def test_the_check_before_a_job_notices_at_once_and_the_lock_is_taken_again(app, db, job_runs, caplog):
    """Its own loop would not look again for an hour: the check before the next job finds the lock lost, the
    jobs stop, and (nobody else holding it) the scheduler takes the lock again and leads a second term."""
    caplog.set_level(logging.INFO, logger="compliance.schedule.runner")
    one = Runner(app, poll_seconds=3600, step_back_seconds=0.5)
    thread = threading.Thread(target=one.serve, daemon=True)
    thread.start()
    try:
        assert _wait(one.leading.is_set)
        assert _wait(lambda: job_runs(app) >= 3)
        if _dialect(app) == "postgresql":
            assert _end_the_lock_connection(app) == 1
        else:
            _remove_the_lock_file(app)
        assert _wait(lambda: one.terms == 2), "the jobs ran on without asking"
        assert _wait(one.leading.is_set)
        assert any("lost the leader lock" in r.getMessage() for r in caplog.records)
        assert LeaderLock(app).try_acquire() is False  # held again, by it
    finally:
        one.stop.set()
        thread.join(20)
    assert not thread.is_alive()
