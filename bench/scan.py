"""Benchmark of the scan: its cost should follow the rows that are due, not the size of the table; and what
making an occurrence costs, next to a bare INSERT of the same rows.

    .venv/bin/python bench/scan.py [DATABASE_URL] [--small 1000] [--large 100000] [--due 100]
        [--occurrences 2000] [--missed-days 4] [--repeats 5] [--occurrence-repeats 3] [--sites 10] [--verbose]

Fills an empty database (a SQLite file by default; the URL's database is emptied first, as bench/gate.py does)
with one organisation, `--sites` sites (Asia/Jakarta and Europe/London; no reminder ahead of a due time, a site
override of notices.reminder_lead_minutes = 0) with a manager each, and measures two things.

1. Overdue alerts. `--small` obligations of which `--due` are overdue: their due time came and its grace ended
   one to five minutes before NOW (next_action = overdue, action_at = alert_after = due time + grace; a daily
   test's schedule is the pack's moved to the local minute of that due time, so no later due time has come).
   The others fall due later (alert_after = their due time; a few are paused or ended: no alert_after). Then
   times, at --small obligations and again after adding rows up to --large (the same overdue rows):

     select      the bare indexed SELECT of the due rows (ORM objects, as the scan loads them);
     candidates  services.candidates(NOW), the scan's own query;
     scan        services.scan(NOW) + commit: per overdue obligation a claim (conditional UPDATE), its due
                 time's occurrence (made, then missed), a finding, a status change, an email rendered in two
                 formats and queued for the site's manager.

2. Occurrences, at --large obligations: `--occurrences` of them (added with the --large rows) are daily tests
   of real sterilisers (air-removal and automatic-control, two per steriliser), the pack's test moved to a
   local minute one to five minutes before NOW. While part 2 runs the overdue rows of part 1 are a day later
   (not due), so the scan sees only these. Times:

     due         one scan (services.scan(NOW, limit=None) + commit: the scheduler's job takes 500 rows a
                 minute; this is the same work in one call) over rows whose due time has just come
                 (next_due_at = alert_after a few minutes ago, the overdue alert 90 minutes away): a claim and
                 one `due` occurrence each, no finding, no email; --occurrences occurrences;
     catch-up    (unless --missed-days 0) the scheduler was down: --occurrences / (days + 1) of the rows last
                 fell due --missed-days days ago (the others fall due tomorrow), so the scan makes for each the
                 missed days' occurrences (missed, one finding each; the steriliser is checked first) and
                 today's (due): again --occurrences occurrences, with --occurrences x days / (days + 1) findings;
     insert      a bare INSERT of as many occurrence rows as the scan made (executemany through SQLAlchemy Core
                 insert(Occurrence), one transaction, committed) on the same database, deleted after;

   and prints per scenario the obligations acted on, occurrences and findings made, the scan's total ms, ms per
   occurrence (and this process's CPU per occurrence), the bare insert's total and per row, the ratio
   scan / insert, and the SQL statements per occurrence (counted in the first scan; --verbose lists them).

Part 1's figures are medians of --repeats runs after one warm-up run; part 2's of --occurrence-repeats runs (the
scans warmed up by part 1, which runs the same code; the inserts after one warm-up insert). Between runs the
scan's rows are put back as they were and what it wrote (occurrences, findings, changes, emails, audit entries)
is removed, not timed, so every run does the same work. Prints the query plan of the candidates query (EXPLAIN
QUERY PLAN on SQLite; EXPLAIN on PostgreSQL, where the tables are vacuumed and analysed after each load and
reset, untimed, as autovacuum would). With the defaults about 3 minutes on SQLite and 5 to 10 on PostgreSQL
(2 cores, shared). Issue 12's figures, `--occurrences 10000`, took 8 minutes on SQLite; on PostgreSQL its due
scans take about 4 minutes each, and one catch-up scan ran over 11 minutes (its audit entries all update one
chain-head row in one transaction; see the README), so there run `--missed-days 0` or fewer occurrences. On
the throwaway server of scripts/pg-throwaway (fsync off) a commit costs less than on a real one:

    source scripts/pg-throwaway && pg_start && .venv/bin/python bench/scan.py "$PG_URL"; pg_stop

The overdue rows and the occurrence rows are duties of real sterilisers (the scan checks each subject is still
live before it tells anyone or records a miss); the other rows name sterilisers that do not exist, which only
the scan would notice, and it never reads them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, event, func, insert, select, update  # noqa: E402
from sqlalchemy.ext.compiler import compiles  # noqa: E402
from sqlalchemy.sql.expression import ClauseElement, Executable  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from compliance import create_app  # noqa: E402
from compliance.audit.models import AuditEntry, AuditHead  # noqa: E402
from compliance.devices.models import Steriliser  # noqa: E402
from compliance.extensions import db  # noqa: E402
from compliance.guidelines.models import SiteRuleOverride  # noqa: E402
from compliance.guidelines.services import pack_for_site  # noqa: E402
from compliance.schedule import rules, services  # noqa: E402
from compliance.schedule.models import Finding, Obligation, ObligationChange, Occurrence, OutboxMessage  # noqa: E402
from compliance.sites.models import Organisation, Site, User  # noqa: E402

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
BATCH = 10_000
ZONES = ("Asia/Jakarta", "Europe/London")
DUE_KINDS = ("air-removal-test", "automatic-control-test", "spore-test", "leak-test")
LATER_KINDS = ("air-removal-test", "automatic-control-test", "spore-test", "leak-test", "validation")
OCCURRENCE_KINDS = ("air-removal-test", "automatic-control-test")  # daily, at a local time
FAKE_SUBJECTS = 1_000_000  # subject ids of the rows that are not due (no such steriliser)
WRITTEN = (Occurrence, Finding, ObligationChange, OutboxMessage)  # what a scan writes (and the audit trail)


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


def _grace(schedule: dict) -> timedelta:
    return timedelta(minutes=schedule["grace_minutes"])


def _at_local_minute(schedule: dict, due: datetime, zone: str) -> dict:
    """A daily (cron) schedule moved to the local time of `due`, so that `due` is one of its due times (the
    scan's catch-up would otherwise see the pack's own due time come between `due` and NOW)."""
    if "cron" not in schedule:
        return schedule  # an interval: any moment is a due time
    local = due.astimezone(ZoneInfo(zone))
    assert local.second == 0 and local.microsecond == 0, due
    return {**schedule, "cron": {"hour": local.hour, "minute": local.minute}}


def _row(site_id: int, kind: str, subject_id: int, schedule: dict, rule_id: str, due: datetime,
         alert_after: datetime, **extra) -> dict:
    """An obligation in state ok whose next notice is the overdue alert at the end of the grace."""
    return {"site_id": site_id, "kind": kind, "rule_id": rule_id, "subject_type": "steriliser",
            "subject_id": subject_id, "responsible": "staff", "responsible_user_id": None, "schedule": schedule,
            "next_due_at": due, "alert_after": alert_after, "next_action": "overdue",
            "action_at": due + _grace(schedule), "status": "ok", "reminded": False, "overdue_since": None,
            "escalated": False, "repeats_sent": 0, "snoozed_until": None, "last_done_at": None,
            "created_at": NOW - timedelta(days=30), "ended_at": None, **extra}


def _sterilisers(site_ids: list[int], count: int, prefix: str) -> list[tuple[int, int]]:
    """`count` new sterilisers, round-robin over the sites; (id, site_id) in order."""
    first = db.session.scalar(select(func.coalesce(func.max(Steriliser.id), 0)))
    _bulk(Steriliser, [{"site_id": site_ids[j % len(site_ids)], "name": f"{prefix}{j + 1}", "type": "B",
                        "created_at": NOW - timedelta(days=60)} for j in range(count)])
    return list(db.session.execute(select(Steriliser.id, Steriliser.site_id).where(Steriliser.id > first)
                                   .order_by(Steriliser.id)))


def fill_base(n_sites: int, n_due: int) -> dict:
    """Sites, managers, sterilisers and the overdue obligations; returns what the later steps need."""
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
    for site in sites:  # no reminder ahead of a due time: a scan after a gap tells nobody about today's yet
        db.session.add(SiteRuleOverride(site_id=site.id, rule_id="notices", key="reminder_lead_minutes", value=0,
                                        reason="bench", set_at=NOW - timedelta(days=60)))
    db.session.flush()
    zones = {s.id: s.timezone for s in sites}
    site_ids = [s.id for s in sites]
    sterilisers = _sterilisers(site_ids, n_due, "B")
    pack = pack_for_site(sites[0].id)
    specs = {kind: (services.schedule_json(pack, kind), pack.obligations[kind]["rule"]) for kind in LATER_KINDS}
    due_rows, due = [], {}
    for i in range(n_due):
        steriliser_id, site_id = sterilisers[i]
        kind = DUE_KINDS[i % len(DUE_KINDS)]
        schedule, rule_id = specs[kind]
        alert_after = NOW - timedelta(minutes=1 + i % 5)
        when = alert_after - _grace(schedule)
        due_rows.append(_row(site_id, kind, steriliser_id, _at_local_minute(schedule, when, zones[site_id]),
                             rule_id, when, alert_after))
    _bulk(Obligation, due_rows)
    db.session.commit()
    due = {o_id: (when, alert) for o_id, when, alert in db.session.execute(
        select(Obligation.id, Obligation.next_due_at, Obligation.alert_after).where(Obligation.alert_after <= NOW))}
    assert len(due) == n_due
    return {"site_ids": site_ids, "zones": zones, "specs": specs, "due": due, "later": 0, "occurrence_rows": {}}


def fill_later(info: dict, count: int) -> None:
    """Add `count` obligations that are not due: most fall due in the next 30 days (alert_after = their due
    time), 1 in 20 is paused, 1 in 20 has ended."""
    rows = []
    site_ids, specs = info["site_ids"], info["specs"]
    for n in range(info["later"], info["later"] + count):
        kind = LATER_KINDS[n % len(LATER_KINDS)]
        schedule, rule_id = specs[kind]
        due = NOW + timedelta(minutes=5 + (n * 7919) % (60 * 24 * 30))
        row = _row(site_ids[n % len(site_ids)], kind, FAKE_SUBJECTS + n // len(LATER_KINDS), schedule, rule_id,
                   due, due)
        if n % 20 == 7:
            row.update(status="paused", alert_after=None, next_action=None, action_at=None)
        elif n % 20 == 13:
            row.update(status="ended", alert_after=None, next_action=None, action_at=None,
                       ended_at=NOW - timedelta(days=1))
        rows.append(row)
    _bulk(Obligation, rows)
    db.session.commit()
    info["later"] += count


def fill_occurrence_rows(info: dict, count: int) -> None:
    """`count` daily tests of real sterilisers (two kinds each), each due at a local minute one to five minutes
    before NOW. Added as they stand the day before (due tomorrow at that minute), so that no scan reads them
    until a scenario arms them."""
    site_ids, zones, specs = info["site_ids"], info["zones"], info["specs"]
    sterilisers = _sterilisers(site_ids, -(-count // len(OCCURRENCE_KINDS)), "D")
    first = db.session.scalar(select(func.coalesce(func.max(Obligation.id), 0)))
    rows, today = [], []
    for i in range(count):
        steriliser_id, site_id = sterilisers[i // len(OCCURRENCE_KINDS)]
        kind = OCCURRENCE_KINDS[i % len(OCCURRENCE_KINDS)]
        schedule, rule_id = specs[kind]
        when = NOW - timedelta(minutes=1 + (i // len(OCCURRENCE_KINDS)) % 5)
        tomorrow = when + timedelta(days=1)
        rows.append(_row(site_id, kind, steriliser_id, _at_local_minute(schedule, when, zones[site_id]), rule_id,
                         tomorrow, tomorrow))
        today.append((when, _grace(schedule)))
    _bulk(Obligation, rows)
    db.session.commit()
    ids = list(db.session.scalars(select(Obligation.id).where(Obligation.id > first).order_by(Obligation.id)))
    info["occurrence_rows"] = dict(zip(ids, today, strict=True))
    assert len(info["occurrence_rows"]) == count


def save_audit(info: dict) -> None:
    """Remember where the audit chains stand, so that a reset can take them back there."""
    info["audit_last_id"] = db.session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))
    info["audit_heads"] = [{"organisation_id": o, "seq": s, "hash": h} for o, s, h in db.session.execute(
        select(AuditHead.organisation_id, AuditHead.seq, AuditHead.hash))]


def remove_written(info: dict) -> None:
    """Remove what a scan (or a bare insert) wrote: occurrences, findings, changes, emails, audit entries."""
    db.session.rollback()
    for model in WRITTEN:
        db.session.execute(delete(model))
    db.session.execute(delete(AuditEntry).where(AuditEntry.id > info["audit_last_id"]))
    db.session.execute(delete(AuditHead))
    if info["audit_heads"]:
        db.session.execute(insert(AuditHead), info["audit_heads"])


def _state(o_id: int, due: datetime, alert_after: datetime, grace: timedelta) -> dict:
    return {"id": o_id, "status": "ok", "next_due_at": due, "next_action": "overdue", "action_at": due + grace,
            "alert_after": alert_after, "reminded": False, "overdue_since": None, "escalated": False,
            "repeats_sent": 0, "snoozed_until": None}


def overdue_rows(info: dict, days_on: int = 0) -> list[dict]:
    """The overdue rows as they were before any scan (or `days_on` days later: not due yet)."""
    shift = timedelta(days=days_on)
    return [_state(o_id, due + shift, alert + shift, alert - due) for o_id, (due, alert) in info["due"].items()]


def reset(info: dict, rows: list[dict]) -> None:
    """Put `rows` back as given and remove what the scan wrote (not timed)."""
    remove_written(info)
    db.session.execute(update(Obligation), rows)
    db.session.commit()
    db.session.expunge_all()
    analyse()


def occurrence_state(info: dict, missed_days: int | None) -> tuple[list[dict], int]:
    """The occurrence rows armed for a scenario: None = every row due a few minutes ago; n = the first
    len / (n + 1) rows last due n days before that (the scheduler was down), the others due tomorrow.
    Returns the rows and how many obligations the scan acts on."""
    items = list(info["occurrence_rows"].items())
    if missed_days is None:
        return [_state(o_id, due, due, grace) for o_id, (due, grace) in items], len(items)
    acting = len(items) // (missed_days + 1)
    rows = []
    for k, (o_id, (due, grace)) in enumerate(items):
        when = due - timedelta(days=missed_days) if k < acting else due + timedelta(days=1)
        rows.append(_state(o_id, when, when, grace))
    return rows, acting


def timed(action) -> tuple[float, object]:
    db.session.expunge_all()  # nothing read before helps the next run
    t0 = time.perf_counter()
    result = action()
    return (time.perf_counter() - t0) * 1000, result


class StatementCount:
    """Counts the SQL statements sent while active, by their first words (e.g. INSERT INTO audit_entries)."""

    def __init__(self, counting: bool = True):
        self.counts: Counter = Counter()
        self.counting = counting

    def _count(self, _conn, _cursor, statement, parameters, _context, executemany):
        words = statement.split()
        head = " ".join(words[:3] if words[0] in ("INSERT", "DELETE") else words[:1])
        if words[0] == "UPDATE":
            head = f"UPDATE {words[1]}"
        elif words[0] == "SELECT" and "FROM" in words:
            head = f"SELECT … FROM {words[words.index('FROM') + 1]}"
        self.counts[head.strip('"')] += len(parameters) if executemany and isinstance(parameters, list) else 1

    def __enter__(self):
        if self.counting:
            event.listen(db.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        if self.counting:
            event.remove(db.engine, "before_cursor_execute", self._count)


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
        assert len(result.findings) == n_due and not result.skipped and not result.ended, result
        assert sum(result.notices.values()) == n_due, result.notices  # one manager per site is told
        assert result.occurrences == n_due, result.occurrences
        if attempt:
            figures["scan"].append(ms)
        reset(info, overdue_rows(info))
    if verbose:
        print("  samples (ms):", {name: [round(v, 1) for v in values] for name, values in figures.items()})
    return {name: statistics.median(values) for name, values in figures.items()}


def measure_occurrences(info: dict, missed_days: int | None, repeats: int, verbose: bool) -> dict:
    """One scenario of part 2: the scan's median, then a bare insert's median of the same number of rows."""
    rows, acting = occurrence_state(info, missed_days)
    days = 0 if missed_days is None else missed_days
    expected = acting * (days + 1)
    reset(info, rows)
    scans, cpu, statements = [], [], Counter()
    for attempt in range(repeats):  # no warm-up of its own: part 1's scans ran the same code paths
        def run_scan():
            result = services.scan(NOW, limit=None)
            db.session.commit()
            return result
        with StatementCount(counting=attempt == 0) as counter:
            cpu0 = time.process_time()
            ms, result = timed(run_scan)
            cpu.append((time.process_time() - cpu0) * 1000)
        scans.append(ms)
        statements = statements or counter.counts
        assert result.occurrences == expected, (result.occurrences, expected)
        assert len(result.findings) == acting * days and not result.notices, (len(result.findings), result.notices)
        assert not result.skipped and not result.ended, result
        made = db.session.scalar(select(func.count()).select_from(Occurrence))
        assert made == expected, made
        reset(info, rows)
    # The same rows, bare: what the scan made, as one executemany.
    plain = []
    for o_id, site_id, kind, due in db.session.execute(
            select(Obligation.id, Obligation.site_id, Obligation.kind, Obligation.next_due_at)
            .where(Obligation.id.in_(list(info["occurrence_rows"])), Obligation.next_due_at <= NOW)):
        zone = info["zones"][site_id]
        for d in range(days + 1):
            when = due + timedelta(days=d)
            plain.append({"obligation_id": o_id, "site_id": site_id, "kind": kind, "due_at": when,
                          "local_day": rules.local_day(when, zone), "state": "missed" if d < days else "due",
                          "done_at": None, "done_by_id": None, "record": "", "note": "", "created_at": NOW})
    assert len(plain) == expected, len(plain)
    inserts = []
    for attempt in range(repeats + 1):
        def run_insert():
            db.session.execute(insert(Occurrence), plain)
            db.session.commit()
        ms, _ = timed(run_insert)
        if attempt:
            inserts.append(ms)
        assert db.session.scalar(select(func.count()).select_from(Occurrence)) == expected
        remove_written(info)
        db.session.commit()
        analyse()
    if verbose:
        print(f"  samples (ms): scan {[round(v) for v in scans]} (CPU of this process {[round(v) for v in cpu]}), "
              f"insert {[round(v, 1) for v in inserts]}")
        print(f"  statements of one scan ({expected:,} occurrences):")
        for head, n in statements.most_common():
            print(f"    {n:>8,}  {n / expected:6.2f} per occurrence  {head}")
    return {"obligations": acting, "occurrences": expected, "findings": acting * days,
            "scan": statistics.median(scans), "cpu": statistics.median(cpu), "insert": statistics.median(inserts),
            "statements": sum(statements.values())}


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
            conn.exec_driver_sql("VACUUM (ANALYZE) obligations, occurrences, findings, obligation_changes, "
                                 "outbox_messages, audit_entries, audit_heads")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--small", type=int, default=1_000, help="obligations in the first overdue-alert run")
    parser.add_argument("--large", type=int, default=100_000, help="obligations in the second run and part 2")
    parser.add_argument("--due", type=int, default=100, help="overdue obligations (part 1)")
    parser.add_argument("--occurrences", type=int, default=2_000,
                        help="occurrences one scan makes (part 2), among the --large obligations; 0: no part 2")
    parser.add_argument("--missed-days", type=int, default=4,
                        help="days missed in the catch-up scenario of part 2; 0: no catch-up scenario")
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of part 1 (after one warm-up)")
    parser.add_argument("--occurrence-repeats", type=int, default=3,
                        help="timed runs of part 2 (warmed up by part 1; the bare inserts after one warm-up)")
    parser.add_argument("--verbose", action="store_true",
                        help="print every sample, and the statements of an occurrence scan by kind")
    args = parser.parse_args()
    if not args.due < args.small <= args.large:
        parser.error("need --due < --small <= --large")
    if args.occurrences and args.small + args.occurrences > args.large:
        parser.error("need --small + --occurrences <= --large (the occurrence rows are added with --large)")
    if args.missed_days and args.occurrences // (args.missed_days + 1) == 0:
        parser.error("need --occurrences >= --missed-days + 1")
    tmp = tempfile.mkdtemp()
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp,
                      "BASE_URL": "https://bench.example"}, environ={})
    if args.missed_days >= int(app.config.get("SCAN_LOOKBACK_DAYS", 14)):
        parser.error("--missed-days must stay within SCAN_LOOKBACK_DAYS")
    results: dict[int, dict[str, float]] = {}
    occurrence_results: dict[str, dict] = {}
    with app.app_context():
        db.drop_all()
        db.create_all()
        t0 = time.perf_counter()
        info = fill_base(args.sites, args.due)
        fill_later(info, args.small - args.due)
        save_audit(info)
        analyse()
        print(f"database: {db.engine.url.get_backend_name()}  sites: {args.sites}  due: {args.due}  "
              f"repeats: {args.repeats} / {args.occurrence_repeats} (median, after one warm-up)")
        print(f"filled {args.small:,} obligations in {time.perf_counter() - t0:.1f} s")
        results[args.small] = measure(info, args.due, args.repeats, args.verbose)
        if args.large > args.small:
            t0 = time.perf_counter()
            fill_later(info, args.large - args.small - args.occurrences)
            if args.occurrences:
                fill_occurrence_rows(info, args.occurrences)
            analyse()
            print(f"added up to {args.large:,} obligations in {time.perf_counter() - t0:.1f} s")
            results[args.large] = measure(info, args.due, args.repeats, args.verbose)
        total = db.session.scalar(select(func.count()).select_from(Obligation))
        assert total == args.large, total
        plan = query_plan()
        if args.occurrences:
            reset(info, overdue_rows(info, days_on=1))  # the overdue rows are not due while part 2 runs
            scenarios = [("due", None)] + ([("catch-up", args.missed_days)] if args.missed_days else [])
            for name, missed in scenarios:
                t0 = time.perf_counter()
                occurrence_results[name] = measure_occurrences(info, missed, args.occurrence_repeats, args.verbose)
                print(f"occurrences, {name}: measured in {time.perf_counter() - t0:.0f} s")
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
    if occurrence_results:
        print(f"\noccurrences made by one scan among {args.large:,} obligations (scan = services.scan + commit; "
              f"insert = bare executemany INSERT + commit of as many occurrence rows):")
        print(f"{'scenario':>10} {'acting on':>10} {'occurrences':>12} {'findings':>9} {'scan ms':>9} "
              f"{'ms/occ':>7} {'CPU ms/occ':>11} {'insert ms':>10} {'ms/row':>7} {'scan/insert':>12} {'SQL/occ':>8}")
        for name, r in occurrence_results.items():
            n = r["occurrences"]
            print(f"{name:>10} {r['obligations']:>10,} {n:>12,} {r['findings']:>9,} {r['scan']:>9,.0f} "
                  f"{r['scan'] / n:>7.2f} {r['cpu'] / n:>11.2f} {r['insert']:>10,.1f} {r['insert'] / n:>7.4f} "
                  f"{r['scan'] / r['insert']:>11.0f}x {r['statements'] / n:>8.1f}")
        print("(CPU: this process's, i.e. Python and SQLite, not a PostgreSQL server's; SQL/occ: statements sent "
              "by the first scan, per occurrence)")
    print(f"\nquery plan of the candidates query at {args.large:,} obligations:")
    for line in plan:
        print(f"  {line}")


if __name__ == "__main__":
    main()
