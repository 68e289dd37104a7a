"""Benchmark of the tick: tablet sessions answering checklist items against gunicorn, next to the same number of
clients posting to a minimal route (one ORM INSERT and COMMIT, bench/tick_app.py) in the same run.

    source scripts/pg-throwaway && pg_start
    .venv/bin/python bench/tick.py "$PG_URL" [--clients 16] [--seconds 20] [--workers 4] [--threads 4]
    pg_stop

Fills the (emptied) database with one organisation, one site, `--clients` members of staff with PINs and the
default checklists; starts gunicorn (`--workers` × `--threads`) on bench.tick_app:app; each client enrols a tablet
through its own single-use link, signs in with its PIN and then, for `--seconds`, answers the yes/no and tick
items of before-client runs one tap at a time (POST /tablet/runs/<id>/answers with an idempotency key, as htmx
sends it), starting a new run when one is done. Then the same number of clients post to /bench/insert for the
same time. Prints, for both, the requests answered per second of waiting (a tablet's change to a new run between
ticks is neither counted nor timed), p50 and p99 latency, errors, and the ratios
(target of issue 15: tick throughput ≥ 0.5 × the minimal route's, tick p99 ≤ 2 ×)."""
from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PIN = "2468"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(url: str, clients: int, instance: str) -> tuple[list[tuple[int, str]], int]:
    """Empty the database, make the organisation, site, people and checklists; return (user id, link) pairs and
    the before-client checklist's id."""
    from sqlalchemy import select
    from werkzeug.security import generate_password_hash

    from compliance import create_app
    from compliance.auth.services import create_tablet_link
    from compliance.checklists.models import ChecklistTemplate
    from compliance.checklists.services import load_default_templates
    from compliance.extensions import db
    from compliance.sites.models import Organisation, Site, User
    from compliance.timeutil import utcnow

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": instance}, environ={})
    with app.app_context():
        db.drop_all()
        db.create_all()
        now = utcnow()
        org = Organisation(name="Bench clinic")
        site = Site(organisation=org, name="Bench", timezone="Asia/Jakarta", language="en", locale="en-GB")
        db.session.add_all([org, site])
        db.session.flush()
        pin_hash = generate_password_hash(PIN)
        people = [User(organisation_id=org.id, name=f"Staff {n:02d}", email=f"staff{n}@bench.test", role="staff",
                       pin_hash=pin_hash, sites=[site]) for n in range(clients)]
        db.session.add_all(people)
        db.session.flush()
        load_default_templates(org.id, now)
        links = [(p.id, create_tablet_link(None, site.id, f"Tablet {n:02d}", now)[1]) for n, p in enumerate(people)]
        template_id = db.session.scalar(select(ChecklistTemplate.id).where(ChecklistTemplate.key == "before_client"))
        db.session.commit()
        db.engine.dispose()
    return links, template_id


CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class Tablet:
    def __init__(self, base: str, user_id: int, token: str, template_id: int):
        self.base, self.template_id = base, template_id
        self.http = requests.Session()
        page = self.http.get(f"{base}/tablet/enrol/{token}")
        self.http.post(f"{base}/tablet/enrol/{token}", data={"csrf_token": CSRF.search(page.text).group(1)})
        page = self.http.get(f"{base}/tablet/pin/{user_id}")
        signed = self.http.post(f"{base}/tablet/pin/{user_id}",
                                data={"pin": PIN, "csrf_token": CSRF.search(page.text).group(1)})
        assert signed.url.endswith("/tablet/home"), signed.url
        self.items: list[str] = []

    def new_run(self) -> None:
        page = self.http.get(f"{self.base}/tablet/checklists")
        run = self.http.post(f"{self.base}/tablet/checklists/start", data={
            "template_id": self.template_id, "idempotency_key": uuid.uuid4().hex,
            "csrf_token": CSRF.search(page.text).group(1)})
        self.run_url, self.csrf = run.url, CSRF.search(run.text).group(1)
        # The yes/no and tick items: their forms carry item_id and a value="yes" button.
        self.items = re.findall(r'<form[^>]*class="checklist-item kind-(?:yes_no|tick)[^"]*"[^>]*>\s*'
                                r'(?:<[^>]*>\s*)*?<input type="hidden" name="item_id" value="(\d+)">', run.text)

    def tick(self) -> tuple[float, bool]:
        if not self.items:
            self.new_run()
        item_id = self.items.pop(0)
        started = time.perf_counter()
        r = self.http.post(f"{self.run_url}/answers", data={
            "item_id": item_id, "value": "yes", "idempotency_key": uuid.uuid4().hex, "csrf_token": self.csrf},
            headers={"HX-Request": "true"})
        return time.perf_counter() - started, r.status_code == 200


def _drive(make_call, clients: int, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def work(n: int):
        call = make_call(n)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            took, ok = call()
            latencies[n].append(took)
            errors[n] += not ok

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    return [x for per in latencies for x in per], sum(errors), time.perf_counter() - began


class LockSampler:
    """Every 50 ms, on PostgreSQL: how many of the database's other sessions are running a statement, and how
    many of those wait on a lock (pg_stat_activity.wait_event_type = 'Lock'); sampled while the tick runs."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(url) if url.startswith("postgresql") else None
        self.samples: list[tuple[int, int]] = []
        self.events: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        if self.engine is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.engine is not None:
            self._thread.join()
            self.engine.dispose()

    def _run(self) -> None:
        from sqlalchemy import text

        query = text("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        with self.engine.connect() as connection:
            while not self._stop.wait(0.05):
                rows = connection.execute(query).all()
                active = [r for r in rows if r.state == "active"]
                waiting = [r for r in active if r.wait_event_type == "Lock"]
                for r in waiting:
                    self.events[r.wait_event] = self.events.get(r.wait_event, 0) + 1
                self.samples.append((len(active), len(waiting)))
                connection.rollback()

    def report(self) -> str:
        if not self.samples:
            return "lock waits: not sampled (PostgreSQL only)"
        any_waiting = sum(1 for _a, w in self.samples if w)
        active = sum(a for a, _w in self.samples)
        waiting = sum(w for _a, w in self.samples)
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items(), key=lambda kv: -kv[1])) or "none"
        return (f"lock waits: {100 * any_waiting / len(self.samples):.1f} % of {len(self.samples)} samples had a "
                f"session waiting on a lock; {100 * waiting / max(active, 1):.1f} % of busy sessions' samples "
                f"(by wait event: {kinds})")


def _figures(name: str, latencies: list[float], errors: int, elapsed: float, clients: int) -> dict:
    """Throughput per second of time spent waiting for these requests (a tablet's run changes between ticks —
    the checklists page, the start, the run page — are not counted, neither as requests nor as time)."""
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    busy = sum(ordered) / clients
    out = {"rps": len(ordered) / busy, "p50": statistics.median(ordered) * 1000, "p99": p99 * 1000}
    print(f"{name:<14} {len(ordered):>7} requests {out['rps']:>8.1f}/s  p50 {out['p50']:>7.1f} ms  "
          f"p99 {out['p99']:>7.1f} ms  errors {errors}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    instance = tempfile.mkdtemp(prefix="bench-tick-")
    links, template_id = _prepare(args.database_url, args.clients, instance)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": args.database_url, "SECRET_KEY": "bench", "INSTANCE_PATH": instance,
           "RUN_SCHEDULER": "false", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "--workers", str(args.workers), "--threads",
                               str(args.threads), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                               "bench.tick_app:app"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        tablets = [Tablet(base, uid, token, template_id) for uid, token in links]
        print(f"{args.clients} clients, {args.seconds:.0f} s each, gunicorn {args.workers} workers × "
              f"{args.threads} threads, {args.database_url.split('@')[-1]}")
        with LockSampler(args.database_url) as locks:
            tick = _figures("tick", *_drive(lambda n: tablets[n].tick, args.clients, args.seconds), args.clients)
        print(locks.report())

        def insert_call(n):
            http = requests.Session()

            def call():
                started = time.perf_counter()
                r = http.post(f"{base}/bench/insert")
                return time.perf_counter() - started, r.status_code == 204
            return call

        floor = _figures("minimal route", *_drive(insert_call, args.clients, args.seconds), args.clients)
        print(f"tick / minimal route: throughput {tick['rps'] / floor['rps']:.2f}× (target ≥ 0.5), "
              f"p99 {tick['p99'] / floor['p99']:.2f}× (target ≤ 2)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
