"""The scheduler process: APScheduler jobs (scan, send, sync) run by exactly one process at a time.

Embedded default: started inside the single server process (RUN_SCHEDULER=true, as scripts/dev does).
Production: its own process, `flask --app wsgi scheduler`, never once per gunicorn worker. Either way a
leader lock is taken first: on PostgreSQL `pg_try_advisory_lock` on a connection held for the process's
life (the lock goes when the process dies); on SQLite a non-blocking `fcntl.flock` on a file in the instance
folder. A second scheduler waits as a follower and takes over when the first one stops.

Jobs live in a memory job store: they are fixed, and their state is in our own tables."""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

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


def build_scheduler(app: Flask) -> BackgroundScheduler:
    """The three jobs with fixed ids; one run of each at a time; a late run is not repeated (coalesce)."""
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(2)}, timezone="UTC",
                                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 50})
    scheduler.add_job(scan_job, "interval", seconds=SCAN_SECONDS, args=[app], id="scan", replace_existing=True)
    scheduler.add_job(send_job, "interval", seconds=SEND_SECONDS, args=[app], id="send", replace_existing=True)
    scheduler.add_job(sync_job, "interval", minutes=SYNC_MINUTES, args=[app], id="sync", replace_existing=True,
                      next_run_time=utcnow())
    return scheduler


# --- the leader lock ------------------------------------------------------------------------------------

class LeaderLock:
    """Held by at most one scheduler process per database."""

    def __init__(self, app: Flask):
        self.app = app
        self._conn = None
        self._file = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._file is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        with self.app.app_context():
            if db.engine.dialect.name == "postgresql":
                conn = db.engine.connect()
                got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
                conn.commit()  # the lock is the session's, not the transaction's: it stays
                if got:
                    self._conn = conn
                else:
                    conn.close()
                return bool(got)
            path = Path(self.app.config["INSTANCE_PATH"]) / "scheduler.lock"
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle
            return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@dataclass
class Runner:
    """One scheduler process's life: wait for the lock, run the jobs until stopped, let the lock go."""
    app: Flask
    poll_seconds: float = 15
    stop: threading.Event = field(default_factory=threading.Event)
    leading: threading.Event = field(default_factory=threading.Event)
    scheduler: BackgroundScheduler | None = None

    def serve(self) -> None:
        lock = LeaderLock(self.app)
        try:
            waiting_logged = False
            while not self.stop.is_set():
                if lock.try_acquire():
                    break
                if not waiting_logged:
                    log.info("another scheduler holds the lock; waiting as a follower")
                    waiting_logged = True
                self.stop.wait(self.poll_seconds)
            else:
                return
            log.info("scheduler started (pid %s)", os.getpid())
            self.scheduler = build_scheduler(self.app)
            self.scheduler.start()
            self.leading.set()
            self.stop.wait()
            self.scheduler.shutdown(wait=True)
            log.info("scheduler stopped")
        finally:
            self.leading.clear()
            lock.release()


def start_in_process(app: Flask) -> Runner:
    """The embedded default: the scheduler runs in a thread of the one server process."""
    runner = Runner(app, poll_seconds=30)
    threading.Thread(target=runner.serve, name="scheduler", daemon=True).start()
    return runner
