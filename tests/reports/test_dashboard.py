"""The manager dashboard: tiles counted by hand, rates as metrics.py counts them, the charts, who may see it."""
import re
from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine

from compliance.checklists.models import (
    Answer,
    ChecklistRun,
    ChecklistTemplate,
    CorrectiveAction,
    TemplateItem,
    TemplateVersion,
)
from compliance.schedule import services as schedule
from compliance.schedule.models import Finding, Obligation, ObligationChange
from compliance.sterilisation.models import Cycle, Recall
from compliance.treatments.models import Client, GateAttempt, GateOverride, Treatment
from tests.schedule.history import add_done, add_finding
from tests.sterilisation.conftest import make_steriliser  # noqa: F401  (fixture)

# Wednesday 25 November 2026, 10:00 in Jakarta. The last 7 days start on 19 November 00:00 local (17:00 UTC
# on the 18th); the last 4 weeks on 29 October; the last 12 on 3 September.
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
SINCE = datetime(2026, 11, 18, 17, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _obligation(site, kind: str) -> Obligation:
    return Obligation.query.filter_by(site_id=site.id, kind=kind).one()


def _done(o: Obligation, at: datetime) -> None:
    add_done(o, at)


def _finding(o: Obligation, due_at: datetime, resolved_at: datetime | None = None) -> Finding:
    return add_finding(o, due_at, resolved_at)


@pytest.fixture
def duties(db, site, other_site):
    """The opening checklist of `site`: done 3 times in the last 4 weeks and missed once (never done), and
    done late once before that; `other_site` did and missed things that must never count here."""
    schedule.sync_site(site, NOW)
    schedule.sync_site(other_site, NOW)
    o = _obligation(site, "opening-checklist")
    for days in (1, 9, 16):
        _done(o, NOW - timedelta(days=days))
    _finding(o, NOW - timedelta(days=20))                                  # the oldest open finding
    _finding(o, NOW - timedelta(days=30), resolved_at=NOW - timedelta(days=29))  # done a day late
    elsewhere = _obligation(other_site, "opening-checklist")
    _done(elsewhere, NOW - timedelta(days=2))
    _finding(elsewhere, NOW - timedelta(days=60))                          # older, but another organisation's
    _finding(elsewhere, NOW - timedelta(days=3))
    db.session.commit()
    return o


@pytest.fixture
def attention(db, site, other_site, manager, nurse, make_steriliser):  # noqa: F811  (the imported fixture)
    """Rows for each tile, with those just outside the counting and those of another site."""
    for o in Obligation.query.filter_by(site_id=site.id).all():
        o.status = "overdue"                                               # 2 overdue
    _obligation(other_site, "opening-checklist").status = "overdue"

    steriliser, far = make_steriliser(site), make_steriliser(other_site)
    programme, far_programme = steriliser_programme(steriliser), steriliser_programme(far)
    for n, (status, at) in enumerate([("failed", SINCE),                  # counted: the first instant
                                      ("failed", NOW - timedelta(days=2)),  # counted
                                      ("failed", SINCE - timedelta(seconds=1)),
                                      ("released", NOW - timedelta(days=1)),
                                      ("recalled", NOW - timedelta(days=1))]):
        db.session.add(_cycle(steriliser, programme, n + 1, status, at))
    db.session.add(_cycle(far, far_programme, 1, "failed", NOW - timedelta(days=1)))

    db.session.add(Recall(site_id=site.id, steriliser_id=steriliser.id, opened_at=NOW - timedelta(days=40)))
    db.session.add(Recall(site_id=site.id, steriliser_id=steriliser.id, opened_at=NOW - timedelta(days=50),
                          closed_at=NOW - timedelta(days=45)))
    db.session.add(Recall(site_id=other_site.id, steriliser_id=far.id, opened_at=NOW - timedelta(days=5)))

    runs = _runs(db, site, nurse)
    for n, (closed, s) in enumerate([(None, site), (None, site), (NOW - timedelta(days=1), site), (None, other_site)]):
        answer = Answer(run_id=runs[0].id, item_id=runs[0].version.items[0].id, value="no",
                        idempotency_key=f"a{n}", answered_at=NOW - timedelta(days=3))
        db.session.add(answer)
        db.session.flush()
        db.session.add(CorrectiveAction(site_id=s.id, run_id=runs[0].id, answer_id=answer.id, what="Fix it",
                                        due_on=date(2026, 11, 23), opened_at=NOW - timedelta(days=3),
                                        closed_at=closed))             # 2 open at site

    treatment = _treatment(db, site, nurse)
    far_treatment = _treatment(db, other_site, nurse)
    for t, at in ((treatment, NOW - timedelta(days=2)), (treatment, SINCE - timedelta(minutes=1)),
                  (far_treatment, NOW - timedelta(days=1))):
        attempt = GateAttempt(treatment_id=t.id, site_id=t.site_id, subject="pack", reasons=[], at=at)
        db.session.add(attempt)
        db.session.flush()
        db.session.add(GateOverride(attempt_id=attempt.id, manager_id=manager.id, reason="urgent", at=at))
    db.session.commit()


def steriliser_programme(steriliser):
    from compliance.devices.models import Programme

    return Programme.query.filter_by(steriliser_id=steriliser.id).first()


def _cycle(steriliser, programme, number: int, status: str, at: datetime) -> Cycle:
    return Cycle(site_id=steriliser.site_id, steriliser_id=steriliser.id, cycle_number=number,
                 programme_id=programme.id, started_at=at, temperature_c=134, holding_seconds=200,
                 indicator_passed=status != "failed", is_verdict_pass=status != "failed", status=status)


def _runs(db, site, nurse) -> list[ChecklistRun]:
    """An "Opening check" template with 3 runs in the last 4 weeks (2 completed) and 1 completed run before."""
    template = ChecklistTemplate(organisation_id=site.organisation_id, key="opening", kind="opening")
    version = TemplateVersion(number=1, title={"en": "Opening check", "id": "Cek pembukaan"},
                              items=[TemplateItem(position=1, key="clean", kind="yes_no",
                                                  label={"en": "Clean?", "id": "Bersih?"})])
    template.versions.append(version)
    db.session.add(template)
    db.session.flush()
    runs = []
    for days, completed in ((1, True), (2, True), (3, False), (40, True)):
        started = NOW - timedelta(days=days)
        run = ChecklistRun(site_id=site.id, version_id=version.id, day=started.date(), started_by_id=nurse.id,
                           started_at=started, completed_at=started + timedelta(minutes=5) if completed else None)
        db.session.add(run)
        runs.append(run)
    db.session.flush()
    return runs


def _treatment(db, site, nurse) -> Treatment:
    client = Client(organisation_id=site.organisation_id, site_id=site.id, code=f"C-{site.id:06d}")
    db.session.add(client)
    db.session.flush()
    t = Treatment(site_id=site.id, room_id=site.rooms[0].id, client_id=client.id, practitioner_id=nurse.id,
                  procedure="acne_scars", started_at=NOW - timedelta(days=3))
    db.session.add(t)
    db.session.flush()
    return t


def _tile(html: str, name: str) -> str:
    return re.search(rf'<strong id="tile-{name}">([^<]*)</strong>', html).group(1)


def _svg(html: str, cls: str) -> str:
    return re.search(rf'<svg [^>]*class="chart {cls}".*?</svg>', html, re.S).group(0)


def _rate_row(html: str, label: str) -> str:
    return next(g for g in re.findall(r'<g class="rate-row">.*?</g>', html, re.S) if label in g)


# --- the tiles -----------------------------------------------------------------------------------

def test_tiles_count_what_needs_attention_at_the_site(login_as, manager, duties, attention):
    html = login_as(manager).get("/dashboard").get_data(as_text=True)
    assert _tile(html, "overdue") == "2"
    assert _tile(html, "failed") == "2"        # the one a second before the 7 days began does not count
    assert _tile(html, "recalls") == "1"
    assert _tile(html, "actions") == "2"
    assert _tile(html, "overrides") == "1"
    assert _tile(html, "oldest") == "5 Nov 2026"  # due 20 days ago; the other site's older one is not ours


def test_tiles_link_to_the_lists_behind_them(login_as, manager, site, duties, attention):
    html = login_as(manager).get("/dashboard").get_data(as_text=True).replace("&amp;", "&")
    assert "/obligations?status=overdue" in html
    assert f"/logbook?site={site.id}&status=failed&from=2026-11-19" in html
    assert "/recalls?state=open" in html
    assert "/corrective-actions?state=open" in html
    assert "/overrides" in html
    assert f"/obligations/{duties.id}" in html  # the oldest open finding's duty


def test_a_finding_of_another_site_never_counts(login_as, outsider, other_site, duties):
    html = login_as(outsider).get("/dashboard").get_data(as_text=True)
    assert _tile(html, "oldest") == "26 Sept 2026"  # its own: 60 days ago, in London
    # Its own opening checklist: done once, missed once (never done) in the last 4 weeks.
    assert "50 % (1 of 2)" in _rate_row(html, "Opening checklist")
    assert "Jakarta" not in html


# --- the rates -----------------------------------------------------------------------------------

def test_rate_per_obligation_is_counted_as_metrics_counts_it(login_as, manager, duties):
    html = login_as(manager).get("/dashboard").get_data(as_text=True)
    row = _rate_row(html, "Opening checklist")
    # Last 4 weeks: 3 done + 1 missed and never done = 4 occurrences, 1 missed.
    assert ">75 % (3 of 4)</text>" in row
    # Last 12 weeks: also done a day late once (an occurrence and a miss): 5 occurrences, 2 missed.
    assert ">60 % (3 of 5)</text>" in row
    assert 'id="rate-recent">75 % (3 of 4)<' in html
    assert 'id="rate-longer">60 % (3 of 5)<' in html
    assert "Closing checklist" not in _svg(html, "chart-bars")  # nothing of it fell due


def test_weekly_chart_has_a_bar_or_a_gap_for_each_of_12_weeks(login_as, manager, duties):
    svg = _svg(login_as(manager).get("/dashboard").get_data(as_text=True), "chart-weekly")
    assert svg.count('<g class="week">') == 12
    heights = [float(h) for h in re.findall(r'<rect class="bar[^"]*"[^>]*height="([\d.]+)"', svg)]
    # Weeks from 22 Oct (a miss done late: 0 %), 5 Nov (1 of 2), 12 Nov and 19 Nov (all done); the rest: gaps.
    assert heights == [0.0, 80.0, 160.0, 160.0]
    assert svg.count('class="gap"') == 8
    assert ">3 Sept</text>" in svg and ">19 Nov</text>" in svg  # the site's en-GB day and month
    assert svg.count('class="bar recent"') == 3  # the last 4 weeks, one of which had nothing due


def test_checklist_rates_are_runs_completed_of_runs_started(login_as, manager, duties, attention):
    html = login_as(manager).get("/dashboard").get_data(as_text=True)
    row = _rate_row(html, "Opening check<")
    assert ">66 % (2 of 3)</text>" in row and ">75 % (3 of 4)</text>" in row


def test_empty_weeks_say_so(login_as, manager, site):
    schedule.sync_site(site, NOW)
    html = login_as(manager).get("/dashboard").get_data(as_text=True)
    assert "No duty fell due in these weeks." in html
    assert "No checklist was started in these weeks." in html
    assert "<svg" not in html
    assert _tile(html, "oldest") == "—"


# --- across sites --------------------------------------------------------------------------------

def test_all_my_sites_adds_a_row_per_site_and_only_mine(db, login_as, make_site, make_user, site, other_site,
                                                        duties):
    second = make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")
    boss = make_user("manager", [site, second], name="Two Sites")
    html = login_as(boss).get("/dashboard").get_data(as_text=True)
    table = re.search(r'<table class="dash-sites">.*?</table>', html, re.S).group(0)
    assert re.findall(r'<tr id="site-(\d+)">', table) == [str(second.id), str(site.id)]  # by name
    assert "Elsewhere" not in html
    row = re.search(rf'<tr id="site-{site.id}">.*?</tr>', table, re.S).group(0)
    assert "75 % (3 of 4)" in row and "60 % (3 of 5)" in row
    assert "nothing fell due" in re.search(rf'<tr id="site-{second.id}">.*?</tr>', table, re.S).group(0)
    # The picker offers my two sites; choosing one shows that site alone, without the table.
    assert re.findall(r'<option value="(\d+)"', html) == [str(second.id), str(site.id)]
    one = login_as(boss).get(f"/dashboard?site={second.id}").get_data(as_text=True)
    assert 'class="dash-sites"' not in one and "No duty fell due in these weeks." in one


# --- who may see it ------------------------------------------------------------------------------

def test_staff_may_not_see_the_dashboard(login_as, nurse):
    assert login_as(nurse).get("/dashboard").status_code == 403


def test_auditor_and_admin_see_it_and_the_nav_links_to_it(login_as, auditor, admin, site):
    for person in (auditor, admin):
        response = login_as(person).get(f"/dashboard?site={site.id}")
        assert response.status_code == 200
        assert 'href="/dashboard"' in response.get_data(as_text=True)
    assert "Compliance dashboard:" in login_as(admin).get("/overview").get_data(as_text=True)


def test_another_sites_id_is_not_found(login_as, manager, other_site):
    assert login_as(manager).get(f"/dashboard?site={other_site.id}").status_code == 404
