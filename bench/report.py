"""Benchmark of the audit report (page and PDF) on a year of data, for 1 site and for 20 sites.

    .venv/bin/python bench/report.py [DATABASE_URL] [--sites 1 20] [--samples 3]

EMPTIES the database it is given (default: a temporary SQLite file). For each size it fills one organisation
with N sites and a year of each site's life — treatments (8 a day on 300 open days), checklist runs (opening,
closing, before and after each client) with their answers, sterilisation cycles (3 a day), steriliser tests
(two daily, spore and leak weekly), obligations with their "done" history and findings, gate overrides,
recalls and adverse events — then signs a manager in and times GET /reports/audit for one site-year and for
all sites, and the PDF of one site-year. Prints the median of the samples. Targets (issue 7): one site-year
page ≤ 0.5 s, PDF ≤ 3 s; 20 site-years page ≤ 5 s.
"""
from __future__ import annotations

import argparse
import re
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from compliance import create_app  # noqa: E402
from compliance.checklists.models import Answer, ChecklistRun, ChecklistTemplate, TemplateItem, TemplateVersion  # noqa: E402
from compliance.devices.models import Programme, Steriliser  # noqa: E402
from compliance.extensions import db  # noqa: E402
from compliance.schedule.models import Finding, Obligation, ObligationChange  # noqa: E402
from compliance.sites.models import Organisation, Room, Site, TrainingRecord, User  # noqa: E402
from compliance.sterilisation.models import Cycle, SteriliserTest  # noqa: E402
from compliance.treatments.models import ADVERSE_KINDS, SEVERITIES, AdverseEvent, Client, GateAttempt, GateOverride, Treatment  # noqa: E402

END = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)   # a Monday
START = END - timedelta(days=364)
BATCH = 10_000
ADVERSE_KIND, SEVERITY = ADVERSE_KINDS[0], SEVERITIES[0]
PASSWORD = "bench-password-2026"
TEMPLATE_KINDS = (("opening", 8), ("closing", 8), ("before_client", 6), ("after_client", 6))
OBLIGATION_KINDS = (("air-removal-test", "air-removal-test-daily", "steriliser"),
                    ("automatic-control-test", "automatic-control-test-daily", "steriliser"),
                    ("spore-test", "spore-test", "steriliser"), ("leak-test", "weekly-leak-test", "steriliser"),
                    ("opening-checklist", "daily-checks", "site"), ("closing-checklist", "daily-checks", "site"))


def _bulk(model, rows):
    for i in range(0, len(rows), BATCH):
        db.session.execute(insert(model), rows[i:i + BATCH])


def _ids(model, **where):
    stmt = select(model.id).order_by(model.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return list(db.session.scalars(stmt))


def fill(n_sites: int, rng: random.Random) -> dict:
    """One organisation, n sites, a year each. Rows go in with bulk inserts (no audit entries: the report
    does not read the audit log)."""
    t0 = time.perf_counter()
    org = Organisation(name=f"Bench {n_sites}")
    db.session.add(org)
    db.session.flush()
    manager = User(organisation_id=org.id, name="Bench Manager", email=f"manager{n_sites}@bench.test",
                   role="manager", password_hash=generate_password_hash(PASSWORD))
    db.session.add(manager)
    templates = {}
    for kind, n_items in TEMPLATE_KINDS:
        t = ChecklistTemplate(organisation_id=org.id, key=f"{kind}-bench", kind=kind)
        db.session.add(t)
        db.session.flush()
        version = TemplateVersion(template_id=t.id, number=1, title={"en": kind, "id": kind}, is_frozen=True)
        db.session.add(version)
        db.session.flush()
        items = []
        for i in range(n_items):
            item = TemplateItem(version_id=version.id, position=i, key=f"q{i}", kind="tick",
                                label={"en": f"Question {i}", "id": f"Pertanyaan {i}"})
            db.session.add(item)
            items.append(item)
        db.session.flush()
        templates[kind] = (version.id, [i.id for i in items])
    sites = []
    for s in range(n_sites):
        site = Site(organisation_id=org.id, name=f"Site {s + 1:02d}", timezone="Asia/Jakarta", language="en")
        db.session.add(site)
        db.session.flush()
        sites.append(site)
        manager.sites.append(site)
    db.session.flush()
    counts: dict[str, int] = {}
    for site in sites:
        for key, value in _fill_site(site, org, templates, rng).items():
            counts[key] = counts.get(key, 0) + value
    db.session.commit()
    counts["seconds"] = round(time.perf_counter() - t0, 1)
    return {"org_id": org.id, "site_ids": [s.id for s in sites], "manager_email": manager.email, "counts": counts}


def _fill_site(site: Site, org: Organisation, templates: dict, rng: random.Random) -> dict[str, int]:
    room = Room(site_id=site.id, name="Room 1")
    nurses = [User(organisation_id=org.id, name=f"Nurse {site.id}-{i}", email=f"n{site.id}-{i}@bench.test",
                   role="staff") for i in range(3)]
    steriliser = Steriliser(site_id=site.id, name="A1", type="B")
    db.session.add_all([room, steriliser, *nurses])
    db.session.flush()
    for n in nurses:
        n.sites.append(site)
        db.session.add(TrainingRecord(user_id=n.id, course="infection_control", completed_on=date(2026, 1, 5),
                                      expires_on=date(2027, 1, 5)))
    programme = Programme(steriliser_id=steriliser.id, name="134", temperature_c=Decimal("134"),
                          min_holding_seconds=180)
    db.session.add(programme)
    db.session.flush()
    days = [START.date() + timedelta(days=i) for i in range(364)]
    open_days = [d for d in days if d.weekday() != 6]  # closed on Sundays
    clients = [{"organisation_id": org.id, "site_id": site.id, "code": f"C{site.id:02d}{i:05d}", "name": "",
                "phone": "", "consent_note": "", "created_at": START} for i in range(1500)]
    _bulk(Client, clients)
    client_ids = _ids(Client, site_id=site.id)

    def at(day: date, hour: int, minute: int = 0) -> datetime:  # Jakarta local → UTC
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc) - timedelta(hours=7)

    treatments, runs, cycles, tests = [], [], [], []
    for day in open_days:
        tests.append({"site_id": site.id, "steriliser_id": steriliser.id, "kind": "air_removal",
                      "performed_at": at(day, 8), "result": "pass", "result_at": at(day, 8, 20)})
        tests.append({"site_id": site.id, "steriliser_id": steriliser.id, "kind": "automatic_control",
                      "performed_at": at(day, 8, 10), "result": "pass", "result_at": at(day, 8, 30)})
        if day.weekday() == 0:
            for kind in ("spore", "leak"):
                tests.append({"site_id": site.id, "steriliser_id": steriliser.id, "kind": kind,
                              "performed_at": at(day, 8, 40), "result": "fail" if rng.random() < 0.02 else "pass",
                              "result_at": at(day, 9), "indicator_lot": "BI-1"})
        for n in range(3):
            failed = rng.random() < 0.01
            cycles.append({"site_id": site.id, "steriliser_id": steriliser.id, "cycle_number": len(cycles) + 1,
                           "programme_id": programme.id, "started_at": at(day, 9 + 3 * n),
                           "temperature_c": Decimal("133.0" if failed else "134.5"), "holding_seconds": 200,
                           "indicator_passed": True, "is_verdict_pass": not failed,
                           "reasons": [{"rule": "cycle-parameters-met", "message": "temperature low"}] if failed else [],
                           "status": "failed" if failed else "released", "decided_at": at(day, 10 + 3 * n),
                           "guideline_version": "2026.11-1"})
        for kind in ("opening", "closing"):
            runs.append((kind, None, at(day, 9 if kind == "opening" else 20), rng.random() < 0.97))
        for i in range(8):
            start = at(day, 10 + i)
            treatments.append({"site_id": site.id, "room_id": room.id, "client_id": rng.choice(client_ids),
                               "practitioner_id": nurses[i % 3].id, "procedure": "face", "method": "pen", "passes": 8,
                               "status": "finished", "started_at": start, "ended_at": start + timedelta(minutes=45),
                               "products": [], "aftercare": "", "notes": ""})
    _bulk(Treatment, treatments)
    _bulk(Cycle, cycles)
    _bulk(SteriliserTest, tests)
    treatment_rows = list(db.session.execute(select(Treatment.id, Treatment.started_at).where(
        Treatment.site_id == site.id).order_by(Treatment.id)))
    for tid, started in treatment_rows:
        runs.append(("before_client", tid, started - timedelta(minutes=5), rng.random() < 0.99))
        runs.append(("after_client", tid, started + timedelta(minutes=50), rng.random() < 0.98))
    run_rows = [{"site_id": site.id, "room_id": room.id, "version_id": templates[kind][0], "treatment_id": tid,
                 "day": (started + timedelta(hours=7)).date(), "started_at": started,
                 "completed_at": started + timedelta(minutes=4) if complete else None}
                for kind, tid, started, complete in runs]
    _bulk(ChecklistRun, run_rows)
    run_ids = _ids(ChecklistRun, site_id=site.id)
    answers, serial = [], 0
    for run_id, (kind, _tid, started, complete) in zip(run_ids, runs):
        items = templates[kind][1]
        for item_id in (items if complete else items[: len(items) // 2]):
            serial += 1
            answers.append({"run_id": run_id, "item_id": item_id, "value": True, "note": "",
                            "idempotency_key": f"b{site.id}-{serial}", "answered_at": started + timedelta(minutes=1),
                            "amend_reason": ""})
    _bulk(Answer, answers)
    # Obligations with a year of "done" history and the occasional finding.
    changes, findings = [], []
    for kind, rule, subject_type in OBLIGATION_KINDS:
        subject_id = steriliser.id if subject_type == "steriliser" else site.id
        o = Obligation(site_id=site.id, kind=kind, rule_id=rule, subject_type=subject_type, subject_id=subject_id,
                       responsible="staff", schedule={"cron": {"hour": 9}, "grace_minutes": 60},
                       next_due_at=END + timedelta(hours=2), alert_after=END + timedelta(hours=3),
                       next_action="overdue", status="ok")
        db.session.add(o)
        db.session.flush()
        weekly = kind in ("spore-test", "leak-test")
        for day in open_days:
            if weekly and day.weekday() != 0:
                continue
            due = at(day, 9)
            if rng.random() < 0.04:
                findings.append({"site_id": site.id, "obligation_id": o.id, "kind": kind, "rule_id": rule,
                                 "severity": "major", "due_at": due, "guideline_version": "2026.11-1", "overrides": {},
                                 "opened_at": due + timedelta(hours=1), "resolved_at": due + timedelta(hours=3)})
            changes.append({"obligation_id": o.id, "from_status": "ok", "to_status": "ok", "due_at": due,
                            "at": due - timedelta(minutes=30), "reason": "done"})
    _bulk(ObligationChange, changes)
    _bulk(Finding, findings)
    # A few refusals overridden by a manager, and adverse events.
    picks = rng.sample(treatment_rows, 12)
    for tid, started in picks[:8]:
        attempt = GateAttempt(treatment_id=tid, site_id=site.id, subject="pack", scanned="PK-X",
                              reasons=[{"rule": "sterile-storage", "code": "pack_expired", "values": {}}], at=started)
        db.session.add(attempt)
        db.session.flush()
        db.session.add(GateOverride(attempt_id=attempt.id, manager_id=nurses[0].id, reason="bench override", at=started))
    for tid, started in picks[8:]:
        db.session.add(AdverseEvent(treatment_id=tid, site_id=site.id, kind=ADVERSE_KIND, severity=SEVERITY,
                                    is_reportable=False, onset_at=started + timedelta(days=1), description="bench",
                                    recorded_at=started + timedelta(days=1)))
    db.session.flush()
    return {"treatments": len(treatments), "runs": len(run_rows), "answers": len(answers), "cycles": len(cycles),
            "tests": len(tests), "done changes": len(changes), "findings": len(findings)}


def timed(fn, samples: int) -> float:
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--sites", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-report-")
    url = args.database_url or f"sqlite:///{os.path.join(tmp, 'bench.db')}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp,
                      "WTF_CSRF_ENABLED": False}, environ={})
    rng = random.Random(7)
    print(f"database: {url.split('@')[-1]}")
    print(f"{'sites':>5}  {'fill s':>7}  {'treatments':>10}  {'runs':>7}  {'answers':>8}  "
          f"{'one site page s':>15}  {'one site PDF s':>14}  {'all sites page s':>16}")
    # Requests run outside any app context of ours, each in its own (as under gunicorn): a shared one would
    # share `g` (the signed-in actor) between requests.
    with app.app_context():
        db.drop_all()
        db.create_all()
    for n in args.sites:
        with app.app_context():
            data = fill(n, rng)
            db.session.commit()
        client = app.test_client()
        reply = client.post("/login", data={"email": data["manager_email"], "password": PASSWORD})
        assert reply.status_code in (302, 303), reply.status_code
        period = {"from": START.date().isoformat(), "to": (END.date() - timedelta(days=1)).isoformat()}
        one = {**period, "site": data["site_ids"][0]}
        every = {**period, "site": ""}

        def get(path, params):
            reply = client.get(path, query_string=params)
            assert reply.status_code == 200, (path, reply.status_code, re.sub(
                r"\s+", " ", re.sub(r"<[^>]+>", " ", reply.get_data(as_text=True)))[-700:])
            return reply

        page_one = timed(lambda: get("/reports/audit", one), args.samples)
        pdf_one = timed(lambda: get("/reports/audit.pdf", one), args.samples)
        page_all = timed(lambda: get("/reports/audit", every), args.samples)
        c = data["counts"]
        print(f"{n:>5}  {c['seconds']:>7}  {c['treatments']:>10,}  {c['runs']:>7,}  {c['answers']:>8,}  "
              f"{page_one:>15.3f}  {pdf_one:>14.3f}  {page_all:>16.3f}", flush=True)
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()

if __name__ == "__main__":
    main()
