"""Pages that must not grow with history: the tablet's Now screen and its summaries, the Checklists page and the
dashboard make the same number of SQL statements with 1,000 checklist runs in the last week as with 10, and
stay under a byte budget. Statements are counted with an SQLAlchemy `before_cursor_execute` listener."""
from __future__ import annotations

import itertools
import re
from contextlib import contextmanager
from datetime import datetime, time, timedelta, timezone
from time import perf_counter
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import event, insert, select

from compliance.checklists import services
from compliance.checklists.models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction
from compliance.schedule import services as schedule
from tests.conftest import PIN

# Wednesday 25 November 2026, 10:00 in Jakarta: today's runs were started between 07:00 and 10:00 local.
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
TZ = ZoneInfo("Asia/Jakarta")
HTMX = {"HX-Request": "true"}

# Bytes of each response body, with headroom over what was measured at 1,000 runs (see the README).
BUDGETS = {
    "now": 6_000,
    "now summary": 4_000,
    "decontamination summary": 2_000,
    "checklists": 32_000,           # six checklists with at most RUNS_SHOWN runs listed each
    "dashboard (one site)": 20_000,
    "dashboard (all sites)": 24_000,
}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@contextmanager
def statements(db):
    """Every SQL statement sent while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _value(item, n: int):
    """A plausible answer to an item, and its file for a photo or signature."""
    if item.kind in ("tick", "yes_no"):
        return True, None
    if item.kind == "number":
        low = item.min_value if item.min_value is not None else item.max_value if item.max_value is not None else 1
        return str(low), None
    if item.kind == "choice":
        return str((item.choices or ["x"])[0]), None
    if item.kind in ("photo", "signature"):
        return f"{n:032x}.png", f"{n:032x}.png"
    return f"note {n}", None


_serial = itertools.count(1)


def add_runs(db, site, room, user, count: int) -> None:
    """`count` runs spread over the last 7 local days (today's before now) across every checklist, inserted in
    bulk: two in three complete with every item answered, the others with their first item only; one in fifty
    with a "no" that opened a corrective action since closed."""
    templates = list(db.session.scalars(select(ChecklistTemplate).order_by(ChecklistTemplate.id)))
    versions = [services.current_version(t) for t in templates]
    today = NOW.astimezone(TZ).date()
    runs, plans = [], []
    for i in range(count):
        n = next(_serial)
        version = versions[n % len(versions)]
        day = today - timedelta(days=n % 7)
        started = (datetime.combine(day, time(7), tzinfo=TZ).astimezone(timezone.utc)
                   + timedelta(seconds=(n * 37) % 10_800))
        complete = n % 3 != 0
        items = list(version.items) if complete else list(version.items)[:1]
        runs.append({"site_id": site.id, "room_id": room.id, "version_id": version.id, "day": day,
                     "started_by_id": user.id, "started_at": started,
                     "completed_at": started + timedelta(minutes=5) if complete else None,
                     "idempotency_key": f"bulk-run-{n:08d}"})
        plans.append((n, started, items))
    db.session.execute(insert(ChecklistRun), runs)
    ids = dict(db.session.execute(select(ChecklistRun.idempotency_key, ChecklistRun.id).where(
        ChecklistRun.idempotency_key.in_([r["idempotency_key"] for r in runs]))).all())
    answers = []
    for (n, started, items), run in zip(plans, runs):
        for k, item in enumerate(items):
            value, file_path = _value(item, n * 100 + k)
            answers.append({"run_id": ids[run["idempotency_key"]], "item_id": item.id, "value": value, "note": "",
                            "file_path": file_path, "idempotency_key": f"bulk-answer-{n:08d}-{k:03d}",
                            "amend_reason": "", "answered_by_id": user.id,
                            "answered_at": started + timedelta(seconds=10 * (k + 1))})
    db.session.execute(insert(Answer), answers)
    flagged = [(ids[r["idempotency_key"]], r) for (n, _s, _i), r in zip(plans, runs) if n % 50 == 0]
    if flagged:
        first = {a["run_id"]: a["idempotency_key"] for a in reversed(answers)}
        answer_ids = dict(db.session.execute(select(Answer.idempotency_key, Answer.id).where(
            Answer.idempotency_key.in_([first[run_id] for run_id, _r in flagged]))).all())
        db.session.execute(insert(CorrectiveAction), [
            {"site_id": site.id, "run_id": run_id, "answer_id": answer_ids[first[run_id]], "what": "fridge: no",
             "due_on": r["day"] + timedelta(days=1), "opened_at": r["started_at"],
             "closed_at": r["started_at"] + timedelta(hours=1), "closed_by_id": user.id, "close_note": "done"}
            for run_id, r in flagged])
    db.session.commit()


@pytest.fixture
def clinic(db, client, app, site, make_site, make_user, enrol_tablet):
    """A site with the default checklists and its duties, a second site of the same organisation, the nurse
    signed in on the site's tablet and the admin (who sees both sites) on a browser of her own."""
    services.load_default_templates(site.organisation_id, NOW)
    second = make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")
    for s in (site, second):
        schedule.sync_site(s, NOW)
    nurse = make_user("staff", [site], name="Nur Nurse", pin=PIN)
    admin = make_user("admin", [site, second], name="Ada Admin")
    db.session.commit()
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["_user_id"] = str(admin.id)
        session["_fresh"] = True
    return {"site": site, "room": site.rooms[0], "nurse": nurse, "tablet": client, "browser": browser}


def pages(clinic) -> dict[str, tuple]:
    site = clinic["site"]
    return {
        "now": (clinic["tablet"], "/tablet/home", {}),
        "now summary": (clinic["tablet"], "/tablet/checklists/summary", HTMX),
        "decontamination summary": (clinic["tablet"], "/decontamination/summary", HTMX),
        "checklists": (clinic["tablet"], "/tablet/checklists", {}),
        "dashboard (one site)": (clinic["browser"], f"/dashboard?site={site.id}", {}),
        "dashboard (all sites)": (clinic["browser"], "/dashboard", {}),
    }


def measure(db, clinic) -> dict[str, tuple[int, int, float]]:
    """(statements, body bytes, milliseconds) of each page, each asked for once before to warm caches."""
    out = {}
    for name, (who, url, headers) in pages(clinic).items():
        assert who.get(url, headers=headers).status_code == 200, (name, url)
        db.session.commit()
        with statements(db) as seen:
            started = perf_counter()
            response = who.get(url, headers=headers)
            elapsed = (perf_counter() - started) * 1000
        assert response.status_code == 200, (name, url)
        out[name] = (len(seen), len(response.get_data()), elapsed)
    return out


def test_tablet_pages_and_dashboard_do_not_grow_with_a_week_of_runs(db, clinic, capsys):
    add_runs(db, clinic["site"], clinic["room"], clinic["nurse"], 10)
    few = measure(db, clinic)
    add_runs(db, clinic["site"], clinic["room"], clinic["nurse"], 990)
    assert db.session.scalar(select(ChecklistRun.id).order_by(ChecklistRun.id.desc()).limit(1)) is not None
    many = measure(db, clinic)
    with capsys.disabled():
        print("\n[page bounds] page: statements and bytes at 10 runs -> at 1,000 runs in the last 7 days")
        for name in few:
            print(f"  {name:<24} {few[name][0]:>3} q {few[name][1]:>7} B {few[name][2]:>5.0f} ms  ->  "
                  f"{many[name][0]:>3} q {many[name][1]:>7} B {many[name][2]:>5.0f} ms  (budget {BUDGETS[name]} B)")
    for name in few:
        assert many[name][0] == few[name][0], f"{name}: {few[name][0]} statements at 10 runs, {many[name][0]} at 1,000"
    for name, (_q, size, _ms) in many.items():
        assert size <= BUDGETS[name], f"{name}: {size} B > {BUDGETS[name]} B at 1,000 runs"


def _runs_today(db, clinic, template_key: str, count: int, open_first: bool = True) -> list[int]:
    """`count` runs of one checklist today, oldest first, a minute apart; all complete but (maybe) the oldest."""
    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.key == template_key))
    version = services.current_version(template)
    start = datetime.combine(NOW.astimezone(TZ).date(), time(8), tzinfo=TZ).astimezone(timezone.utc)
    rows = [ChecklistRun(site_id=clinic["site"].id, room_id=clinic["room"].id, version_id=version.id,
                         day=NOW.astimezone(TZ).date(), started_by_id=clinic["nurse"].id,
                         started_at=start + timedelta(minutes=i),
                         completed_at=None if (i == 0 and open_first) else start + timedelta(minutes=i, seconds=30))
            for i in range(count)]
    db.session.add_all(rows)
    db.session.commit()
    return [r.id for r in rows]


def test_checklists_page_lists_todays_newest_runs_and_pages_the_rest(db, clinic):
    ids = _runs_today(db, clinic, "opening", 12)
    template_id = db.session.scalar(select(ChecklistTemplate.id).where(ChecklistTemplate.key == "opening"))
    html = clinic["tablet"].get("/tablet/checklists").get_data(as_text=True)
    card = html[html.index(f'id="checklist-{template_id}"'):]
    card = card[:card.index("</section>")]
    listed = [int(i) for i in re.findall(r'class="row-link" href="/tablet/runs/(\d+)"', card)]
    assert listed == ids[:1:-1]  # the ten newest, newest first
    assert "2 more today" in card and f"/tablet/checklists/{template_id}/today" in card
    # The open run is older than the ten listed, and still the one to continue.
    assert re.search(rf'href="/tablet/runs/{ids[0]}">Continue</a>', card)
    assert "Done ✓" in card

    page = clinic["tablet"].get(f"/tablet/checklists/{template_id}/today?per_page=10").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'href="/tablet/runs/(\d+)"', page)] == ids[:1:-1]
    assert "12 in all · page 1 of 2" in page
    page2 = clinic["tablet"].get(f"/tablet/checklists/{template_id}/today?per_page=10&page=2").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'href="/tablet/runs/(\d+)"', page2)] == [ids[1], ids[0]]
    assert "In progress" in page2 and "0/" in page2

    summary = clinic["tablet"].get("/tablet/checklists/summary", headers=HTMX).get_data(as_text=True)
    row = summary[summary.index(f"checklist-{template_id}"):]
    assert row[:row.index("</li>")].count("in progress") == 1


def test_another_organisations_checklist_has_no_day_page(db, clinic, make_org):
    other = make_org("Other")
    services.load_default_templates(other.id, NOW)
    db.session.commit()
    theirs = db.session.scalar(select(ChecklistTemplate.id).where(ChecklistTemplate.organisation_id == other.id))
    assert clinic["tablet"].get(f"/tablet/checklists/{theirs}/today").status_code == 404


def test_progress_counted_in_sql_matches_the_run_screen(db, clinic):
    """Amended answers count once; a version with no required item counts every item."""
    from compliance.auth.actor import actor_for_user

    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.key == "opening"))
    run_id = _runs_today(db, clinic, "opening", 1)[0]
    actor = actor_for_user(clinic["nurse"])
    items = list(services.current_version(template).items)
    tick = next(i for i in items if i.kind == "tick")
    first = services.answer(actor, run_id, {"item_id": tick.id, "value": "yes", "idempotency_key": "k" * 16}, NOW)
    services.amend(actor, first.id, {"value": "yes", "reason": "again", "idempotency_key": "a" * 16}, NOW)
    db.session.commit()
    run = db.session.get(ChecklistRun, run_id)
    required = [i.id for i in items if i.is_required]
    assert services.progress_of([run]) == {run_id: (1, len(required))}
    for item in items:
        item.is_required = False
    db.session.commit()
    assert services.progress_of([db.session.get(ChecklistRun, run_id)]) == {run_id: (1, len(items))}


def test_dashboard_makes_the_same_statements_for_two_sites_as_for_six(db, clinic, make_site):
    """Each site adds a row to the table by site, not queries: its tiles and rates are grouped by site."""
    from compliance.sites.models import User

    admin = db.session.scalar(select(User).where(User.name == "Ada Admin"))
    browser = clinic["browser"]

    def dashboard() -> tuple[int, str]:
        assert browser.get("/dashboard").status_code == 200
        with statements(db) as seen:
            html = browser.get("/dashboard").get_data(as_text=True)
        return len(seen), html

    two, _html = dashboard()
    for k, zone in enumerate(("Europe/London", "Asia/Makassar", "Australia/Sydney", "Asia/Jakarta")):
        extra = make_site(org=clinic["site"].organisation, name=f"Extra {k}", timezone=zone)
        schedule.sync_site(extra, NOW)
        admin.sites.append(extra)
    db.session.commit()
    six, html = dashboard()
    assert all(f"Extra {k}" in html for k in range(4))
    assert six == two, f"{two} statements with 2 sites, {six} with 6"
