"""Benchmark of the overdue scan: its cost should follow the rows that are due, not the size of the table.

    .venv/bin/python bench/scan.py [DATABASE_URL] [--small 1000] [--large 100000] [--due 100] [--repeats 5] [--verbose]

Fills an empty database (a SQLite file by default; the URL's database is emptied first, as bench/gate.py does)
with one organisation, 10 sites (Asia/Jakarta and Europe/London) with a manager each and 10 sterilisers each, and
`--small` obligations of which `--due` are due: their overdue alert (alert_after = next_due_at + grace) fell one to
five minutes before NOW. The others fall due later (a few are paused or ended: no alert_after). Then times, at
--small obligations and again after adding rows up to --large (the same due rows):

  select      the bare indexed SELECT of the due rows (ORM objects, as the scan loads them);
  candidates  services.candidates(NOW), the scan's own query;
  scan        services.scan(NOW) + commit: per due obligation a claim (conditional UPDATE), a status change, a
              finding, an email rendered in two formats and queued for the site's manager.

Each figure is the median of --repeats runs after one warm-up run; between scans the due rows, findings, changes
and emails are put back as they were (not timed), so every run does the same work. Prints the query plan of the
candidates query (EXPLAIN QUERY PLAN on SQLite; EXPLAIN on PostgreSQL, where the tables are vacuumed and analysed
after each load and reset, untimed, as autovacuum would). About 15 s on SQLite, 30 s on PostgreSQL (2 cores).
On the throwaway server of scripts/pg-throwaway (fsync off) a commit costs less than on a real one:

    source scripts/pg-throwaway && pg_start && .venv/bin/python bench/scan.py "$PG_URL"; pg_stop

The due rows are air-removal, automatic-control, spore and leak tests of real sterilisers (the scan checks each
subject is still live); the other rows name sterilisers that do not exist, which only the scan would notice,
and it never reads them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, func, insert, select, update  # noqa: E402
from sqlalchemy.ext.compiler import compiles  # noqa: E402
from sqlalchemy.sql.expression import ClauseElement, Executable  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from compliance import create_app  # noqa: E402
from compliance.devices.models import Steriliser  # noqa: E402
from compliance.extensions import db  # noqa: E402
from compliance.guidelines.services import pack_for_site  # noqa: E402
from compliance.schedule import services  # noqa: E402
from compliance.schedule.models import Finding, Obligation, ObligationChange, OutboxMessage  # noqa: E402
from compliance.sites.models import Organisation, Site, User  # noqa: E402

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
BATCH = 10_000
ZONES = ("Asia/Jakarta", "Europe/London")
DUE_KINDS = ("air-removal-test", "automatic-control-test", "spore-test", "leak-test")
LATER_KINDS = ("air-removal-test", "automatic-control-test", "spore-test", "leak-test", "validation")
FAKE_SUBJECTS = 1_000_000  # subject ids of the rows that are not due (no such steriliser)


class Explain(Executable, ClauseElement):
    """EXPLAIN (or EXPLAIN QUERY PLAN) of a statement, its parameters bound as in the real query."""

    inherit_cache = False

    def __init__(self, statement, prefix: str):
        self.statement, self.prefix = statement, prefix


@compiles(Explain)
def _explain(element, compiler, **kw):
    return f"{element.prefix} {compiler.process(element.statement, **kw)}"


def candidates_stmt(now: datetime, limit: int = 500):
    """The statement of services.candidates (kept in step with it by hand)."""
    return select(Obligation).where(Obligation.alert_after <= now, Obligation.status.in_(("ok", "overdue"))) \
        .order_by(Obligation.alert_after, Obligation.id).limit(limit)


def bare_select(now: datetime):
    return select(Obligation).where(Obligation.alert_after <= now, Obligation.status.in_(("ok", "overdue"))) \
        .order_by(Obligation.alert_after)


def _bulk(model, rows):
    for i in range(0, len(rows), BATCH):
        db.session.execute(insert(model), rows[i:i + BATCH])


def _row(site_id: int, kind: str, subject_id: int, schedule: dict, rule_id: str, due: datetime, **extra) -> dict:
    grace = timedelta(minutes=schedule["grace_minutes"])
    return {"site_id": site_id, "kind": kind, "rule_id": rule_id, "subject_type": "steriliser",
            "subject_id": subject_id, "responsible": "staff", "responsible_user_id": None, "schedule": schedule,
            "next_due_at": due, "alert_after": due + grace, "next_action": "overdue", "status": "ok",
            "reminded": False, "overdue_since": None, "escalated": False, "repeats_sent": 0, "snoozed_until": None,
            "last_done_at": None, "created_at": NOW - timedelta(days=30), "ended_at": None, **extra}


def fill_base(n_sites: int, n_due: int) -> dict:
    """Sites, managers, sterilisers and the due obligations; returns what the later steps need."""
    org = Organisation(name="Bench org")
    db.session.add(org)
    password = generate_password_hash("x" * 12)
    sites = []
    for i in range(n_sites):
        site = Site(organisation=org, name=f"Bench site {i + 1}", timezone=ZONES[i % len(ZONES)], language="en")
        manager = User(organisation=org, name=f"Manager {i + 1}", email=f"manager{i + 1}@bench.test",
                       role="manager", password_hash=password)
        manager.sites = [site]
        db.session.add_all([site, manager])
        sites.append(site)
    db.session.flush()
    per_site = max(1, -(-n_due // n_sites))
    _bulk(Steriliser, [{"site_id": s.id, "name": f"B{j + 1}", "type": "B", "created_at": NOW}
                       for s in sites for j in range(per_site)])
    sterilisers = list(db.session.execute(select(Steriliser.id, Steriliser.site_id).order_by(Steriliser.id)))
    pack = pack_for_site(sites[0].id)
    specs = {kind: (services.schedule_json(pack, kind), pack.obligations[kind]["rule"]) for kind in LATER_KINDS}
    due_rows = []
    for i in range(n_due):
        steriliser_id, site_id = sterilisers[i]
        kind = DUE_KINDS[i % len(DUE_KINDS)]
        schedule, rule_id = specs[kind]
        alert_after = NOW - timedelta(minutes=1 + i % 5, seconds=i)
        due_rows.append(_row(site_id, kind, steriliser_id, schedule, rule_id,
                             alert_after - timedelta(minutes=schedule["grace_minutes"])))
    _bulk(Obligation, due_rows)
    db.session.commit()
    due = {o_id: alert for o_id, alert in db.session.execute(
        select(Obligation.id, Obligation.alert_after).where(Obligation.alert_after <= NOW))}
    assert len(due) == n_due
    return {"site_ids": [s.id for s in sites], "specs": specs, "due": due, "later": 0}


def fill_later(info: dict, count: int) -> None:
    """Add `count` obligations that are not due: most fall due in the next 30 days, 1 in 20 is paused, 1 in 20
    has ended."""
    rows = []
    site_ids, specs = info["site_ids"], info["specs"]
    for n in range(info["later"], info["later"] + count):
        kind = LATER_KINDS[n % len(LATER_KINDS)]
        schedule, rule_id = specs[kind]
        due = NOW + timedelta(minutes=5 + (n * 7919) % (60 * 24 * 30))
        row = _row(site_ids[n % len(site_ids)], kind, FAKE_SUBJECTS + n // len(LATER_KINDS), schedule, rule_id, due)
        if n % 20 == 7:
            row.update(status="paused", alert_after=None, next_action=None)
        elif n % 20 == 13:
            row.update(status="ended", alert_after=None, next_action=None, ended_at=NOW - timedelta(days=1))
        rows.append(row)
    _bulk(Obligation, rows)
    db.session.commit()
    info["later"] += count


def reset(info: dict) -> None:
    """Put the due rows back as they were before the scan; remove what it wrote."""
    db.session.rollback()
    for model in (Finding, ObligationChange, OutboxMessage):
        db.session.execute(delete(model))
    db.session.execute(update(Obligation), [
        {"id": o_id, "status": "ok", "next_action": "overdue", "alert_after": alert, "reminded": False,
         "overdue_since": None, "escalated": False, "repeats_sent": 0, "snoozed_until": None}
        for o_id, alert in info["due"].items()])
    db.session.commit()
    db.session.expunge_all()
    analyse()


def timed(action) -> tuple[float, object]:
    db.session.expunge_all()  # nothing read before helps the next run
    t0 = time.perf_counter()
    result = action()
    return (time.perf_counter() - t0) * 1000, result


def measure(info: dict, n_due: int, repeats: int, verbose: bool = False) -> dict[str, float]:
    def run_select():
        rows = db.session.scalars(bare_select(NOW)).all()
        assert len(rows) == n_due, len(rows)
        return rows

    def run_candidates():
        rows = services.candidates(NOW)
        assert len(rows) == n_due, len(rows)
        return rows

    def run_scan():
        result = services.scan(NOW)
        db.session.commit()
        return result

    figures: dict[str, list[float]] = {"select": [], "candidates": [], "scan": []}
    for attempt in range(repeats + 1):  # the first is a warm-up
        for name, action in (("select", run_select), ("candidates", run_candidates)):
            ms, _rows = timed(action)
            db.session.rollback()
            if attempt:
                figures[name].append(ms)
        ms, result = timed(run_scan)
        assert len(result.findings) == n_due and not result.skipped, result
        assert sum(result.notices.values()) == n_due, result.notices  # one manager per site is told
        if attempt:
            figures["scan"].append(ms)
        reset(info)
    if verbose:
        print("  samples (ms):", {name: [round(v, 1) for v in values] for name, values in figures.items()})
    return {name: statistics.median(values) for name, values in figures.items()}


def query_plan() -> list[str]:
    dialect = db.engine.dialect.name
    prefix = "EXPLAIN QUERY PLAN" if dialect == "sqlite" else "EXPLAIN"
    rows = db.session.execute(Explain(candidates_stmt(NOW), prefix)).all()
    db.session.rollback()
    if dialect == "sqlite":  # (id, parent, notused, detail)
        return [("  " if row[1] else "") + row[3] for row in rows]
    return [row[0] for row in rows]


def analyse() -> None:
    """On PostgreSQL: VACUUM (ANALYZE), as autovacuum would after a bulk load or the deletes of a reset, here at a
    moment that is not timed. (SQLite keeps no statistics unless ANALYZE is run, which the product does not do.)"""
    if db.engine.dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) obligations, findings, obligation_changes, outbox_messages")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="print every sample, not only the medians")
    args = parser.parse_args()
    if not args.due < args.small <= args.large:
        parser.error("need --due < --small <= --large")
    tmp = tempfile.mkdtemp()
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp,
                      "BASE_URL": "https://bench.example"}, environ={})
    results: dict[int, dict[str, float]] = {}
    with app.app_context():
        db.drop_all()
        db.create_all()
        t0 = time.perf_counter()
        info = fill_base(args.sites, args.due)
        fill_later(info, args.small - args.due)
        analyse()
        print(f"database: {db.engine.url.get_backend_name()}  sites: {args.sites}  due: {args.due}  "
              f"repeats: {args.repeats} (median, after one warm-up)")
        print(f"filled {args.small:,} obligations in {time.perf_counter() - t0:.1f} s")
        results[args.small] = measure(info, args.due, args.repeats, args.verbose)
        if args.large > args.small:
            t0 = time.perf_counter()
            fill_later(info, args.large - args.small)
            analyse()
            print(f"added up to {args.large:,} obligations in {time.perf_counter() - t0:.1f} s")
            results[args.large] = measure(info, args.due, args.repeats, args.verbose)
        total = db.session.scalar(select(func.count()).select_from(Obligation))
        assert total == args.large, total
        plan = query_plan()
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    if not args.database_url:
        os.remove(f"{tmp}/bench.db")

    print()
    print(f"{'obligations':>12} {'select ms':>10} {'candidates ms':>14} {'scan+commit ms':>15} "
          f"{'ms per flagged':>15} {'scan/select':>12}")
    for n, r in results.items():
        print(f"{n:>12,} {r['select']:>10.2f} {r['candidates']:>14.2f} {r['scan']:>15.1f} "
              f"{r['scan'] / args.due:>15.2f} {r['scan'] / r['select']:>11.0f}x")
    if len(results) == 2:
        small, large = results[args.small], results[args.large]
        print(f"\n{args.large:,} vs {args.small:,} obligations: scan {large['scan'] / small['scan']:.2f}x, "
              f"select {large['select'] / small['select']:.2f}x, candidates "
              f"{large['candidates'] / small['candidates']:.2f}x")
    print(f"\nquery plan of the candidates query at {args.large:,} obligations:")
    for line in plan:
        print(f"  {line}")


if __name__ == "__main__":
    main()
