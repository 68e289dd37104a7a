"""The scheduler process: APScheduler jobs (scan, send, sync, anchor) run by exactly one process at a time.

Embedded default: started inside the single server process (RUN_SCHEDULER=true, as scripts/dev does).
Production: its own process, `flask --app wsgi scheduler`, never once per gunicorn worker. Either way a
leader lock is taken first: on PostgreSQL `pg_try_advisory_lock` on a connection held for the process's
life (the lock goes when the process dies); on SQLite a non-blocking `fcntl.flock` on a file in the instance
folder (app.instance_path). A second scheduler waits as a follower and takes over when the first one stops.
The leader checks before every job that it still holds the lock; one that lost it (its lock connection ended)
runs nothing more, stops its jobs and waits as a follower again.

Jobs live in a memory job store: they are fixed, and their state is in our own tables."""
from __future__ import annotations

import fcntl
from datetime import timedelta
import functools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import text

from ..audit.services import system_actor
from ..extensions import db
from ..timeutil import utcnow
from . import services

log = logging.getLogger(__name__)
LOCK_KEY = 0x5C4ED01E  # the advisory lock's number: any fixed 64-bit value unique to this product
SCAN_SECONDS, SEND_SECONDS, SYNC_MINUTES = 60, 60, 10


# --- the jobs (module-level functions taking the app: no pickling needed with a memory store) ---------

def scan_job(app: Flask) -> None:
    """Every minute: reminders, overdue alerts, escalations, repeats; the daily digests."""
    system_actor.set("scheduler")
    with app.app_context():
        try:
            now = utcnow()
            result = services.scan(now)
            digests = services.queue_digests(now)
            db.session.commit()
            if result.findings or result.notices or digests:
                log.info("scan: %d findings, notices %s, %d digests", len(result.findings), result.notices, digests)
        except Exception:  # a job must never kill the scheduler; the next minute tries again
            db.session.rollback()
            log.exception("scan job failed")
        finally:
            db.session.remove()


def send_job(app: Flask) -> None:
    """Every minute: send the queued emails whose time has come."""
    system_actor.set("scheduler")
    with app.app_context():
        try:
            counts = services.send_due(utcnow())
            if counts:
                log.info("send: %s", counts)
        except Exception:
            db.session.rollback()
            log.exception("send job failed")
        finally:
            db.session.remove()


def sync_job(app: Flask) -> None:
    """Every ten minutes (and at start): obligations follow their subjects (new packs, retired sterilisers)."""
    system_actor.set("scheduler")
    with app.app_context():
        try:
            result = services.sync(utcnow())
            db.session.commit()
            log.info("sync: %s", result)
        except Exception:
            db.session.rollback()
            log.exception("sync job failed")
        finally:
            db.session.remove()


def anchor_job(app: Flask) -> None:
    """Every AUDIT_ANCHOR_MINUTES (and at start): append each organisation's audit chain head to the anchor
    file, outside the database."""
    from ..audit.anchors import append_anchors

    with app.app_context():
        try:
            anchors = append_anchors(utcnow())
            log.info("anchor: %d audit chain head(s) appended to %s", len(anchors), app.config["AUDIT_ANCHOR_FILE"])
        except Exception:  # an unwritable file must not stop the other jobs; it is logged every time
            log.exception("anchor job failed")
        finally:
            db.session.remove()


def _guarded(job: Callable[[Flask], None], before: Callable[[], bool] | None) -> Callable[[Flask], None]:
    """The job, run only when `before()` says so (the leader still holds its lock)."""
    if before is None:
        return job

    @functools.wraps(job)
    def run(app: Flask) -> None:
        if before():
            job(app)

    return run


def build_scheduler(app: Flask, before_job: Callable[[], bool] | None = None) -> BackgroundScheduler:
    """The jobs with fixed ids; one run of each at a time; a late run is not repeated (coalesce).
    Each also runs once at start (sync: subjects may have changed while stopped; scan, a few seconds later:
    what fell due while stopped is recorded at once; send: mail queued while stopped goes out at once). `before_job` is asked before every run: False runs nothing."""
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(2)}, timezone="UTC",
                                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 50})
    now = utcnow()
    scheduler.add_job(_guarded(scan_job, before_job), "interval", seconds=SCAN_SECONDS, args=[app], id="scan",
                      replace_existing=True, next_run_time=now + timedelta(seconds=5))
    scheduler.add_job(_guarded(send_job, before_job), "interval", seconds=SEND_SECONDS, args=[app], id="send",
                      replace_existing=True, next_run_time=now)
    scheduler.add_job(_guarded(sync_job, before_job), "interval", minutes=SYNC_MINUTES, args=[app], id="sync",
                      replace_existing=True, next_run_time=now)
    scheduler.add_job(_guarded(anchor_job, before_job), "interval", minutes=app.config["AUDIT_ANCHOR_MINUTES"],
                      args=[app], id="anchor", replace_existing=True, next_run_time=now + timedelta(seconds=10))
    return scheduler


# --- the leader lock ------------------------------------------------------------------------------------

class LeaderLock:
    """Held by at most one scheduler process per database.

    PostgreSQL: a session advisory lock on a connection kept for as long as it is held. SQLite: an exclusive
    `flock` on `scheduler.lock` in the instance folder (app.instance_path, the same folder as the database
    file by default). `still_held()` checks that it has not been lost since: the lock connection ended (a
    network blip, a failover, pg_terminate_backend) or the lock file removed or replaced."""

    def __init__(self, app: Flask):
        self.app = app
        self._conn = None
        self._file = None
        self._inode: tuple[int, int] | None = None
        self._mutex = threading.Lock()  # the jobs' threads and the runner's loop share the lock connection

    @property
    def path(self) -> Path:
        return Path(self.app.instance_path) / "scheduler.lock"

    @property
    def held(self) -> bool:
        return self._conn is not None or self._file is not None

    def try_acquire(self) -> bool:
        with self._mutex:
            if self.held:
                return True
            with self.app.app_context():
                if db.engine.dialect.name == "postgresql":
                    return self._acquire_advisory()
            return self._acquire_file()

    def _acquire_advisory(self) -> bool:
        conn = db.engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
            conn.commit()  # the lock is the session's, not the transaction's: it stays
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return bool(got)

    def _acquire_file(self) -> bool:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        status = os.fstat(handle.fileno())
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file, self._inode = handle, (status.st_dev, status.st_ino)
        return True

    def still_held(self) -> bool:
        """True while the lock is certainly ours; any doubt (an error included) is False."""
        with self._mutex:
            if self._conn is not None:
                try:
                    mine = self._conn.execute(text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND pid = pg_backend_pid() AND classid::bigint = :high AND objid::bigint = :low"
                        " AND objsubid = 1)"), {"high": LOCK_KEY >> 32, "low": LOCK_KEY & 0xFFFFFFFF}).scalar()
                    self._conn.commit()
                    return bool(mine)
                except Exception:
                    log.warning("the leader lock's connection failed", exc_info=True)
                    return False
            if self._file is not None:
                # flock cannot be taken from an open descriptor; the danger is a lock file removed (or replaced)
                # after we locked it, so that another scheduler locks a new file at the same path.
                try:
                    status = os.stat(self.path)
                    os.fstat(self._file.fileno())
                except OSError:
                    return False
                return (status.st_dev, status.st_ino) == self._inode
            return False

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                    conn.commit()
                except Exception:  # a lost connection holds nothing: throw it away, never back to the pool
                    conn.invalidate()
                finally:
                    conn.close()
            if self._file is not None:
                handle, self._file, self._inode = self._file, None, None
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                finally:
                    handle.close()


@dataclass
class Runner:
    """One scheduler process's life: wait for the lock, run the jobs while it is held, let the lock go.

    Before every job (and every `poll_seconds` between them) the leader checks that it still holds the lock.
    When it does not, it runs nothing more, stops its APScheduler and waits as a follower again; it leads again
    once it can take the lock."""
    app: Flask
    poll_seconds: float = 15
    stop: threading.Event = field(default_factory=threading.Event)
    leading: threading.Event = field(default_factory=threading.Event)
    scheduler: BackgroundScheduler | None = None
    terms: int = 0  # how many times it became the leader
    # After losing the lock it steps back this long (default three polls) before asking again, so that a
    # scheduler that was waiting takes over; when none does, it leads again.
    step_back_seconds: float | None = None
    _lost: threading.Event = field(default_factory=threading.Event)
    _lock: LeaderLock | None = None

    def _still_leader(self) -> bool:
        """Asked before each job: False (and nothing runs) once the lock is lost or the runner is stopping."""
        if self._lost.is_set() or self.stop.is_set():
            return False
        if self._lock is None or not self._lock.still_held():
            self._lost.set()
            log.error("scheduler (pid %s) lost the leader lock: no job runs here until it leads again",
                      os.getpid())
            return False
        return True

    def _wait_for_lock(self, lock: LeaderLock) -> bool:
        waiting_logged = False
        while not self.stop.is_set():
            try:
                if lock.try_acquire():
                    return True
            except Exception:  # the database is away: try again later
                log.warning("could not ask for the leader lock; trying again in %s s", self.poll_seconds,
                            exc_info=True)
            else:
                if not waiting_logged:
                    log.info("another scheduler holds the lock; waiting as a follower")
                    waiting_logged = True
            self.stop.wait(self.poll_seconds)
        return False

    def _lead(self, lock: LeaderLock) -> None:
        self._lost.clear()
        self.terms += 1
        log.info("scheduler started (pid %s)", os.getpid())
        self.scheduler = build_scheduler(self.app, before_job=self._still_leader)
        self.scheduler.start()
        self.leading.set()
        try:
            checked = time.monotonic()
            # A job that found the lock lost stops the jobs within a second; between jobs the lock is checked
            # every poll_seconds.
            while not self.stop.wait(min(self.poll_seconds, 1.0)) and not self._lost.is_set():
                if time.monotonic() - checked >= self.poll_seconds:
                    checked = time.monotonic()
                    if not self._still_leader():
                        break
        finally:
            self.scheduler.shutdown(wait=True)
            self.leading.clear()
        if self._lost.is_set():
            log.warning("scheduler (pid %s) stopped its jobs after losing the leader lock; waiting as a follower",
                        os.getpid())
        else:
            log.info("scheduler stopped")

    def serve(self) -> None:
        lock = self._lock = LeaderLock(self.app)
        try:
            while self._wait_for_lock(lock):
                self._lead(lock)
                lock.release()  # stopped, or lost: what is left of it goes
                if self._lost.is_set():
                    self.stop.wait(self.poll_seconds * 3 if self.step_back_seconds is None
                                   else self.step_back_seconds)
        finally:
            self.leading.clear()
            lock.release()


def start_in_process(app: Flask) -> Runner:
    """The embedded default: the scheduler runs in a thread of the one server process."""
    runner = Runner(app, poll_seconds=30)
    threading.Thread(target=runner.serve, name="scheduler", daemon=True).start()
    return runner
