"""The demo command is idempotent and gives what the README promises."""
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from compliance.extensions import db as _db
from compliance.sites.models import Organisation, Room, Site, TrainingRecord, User


def _counts():
    return {model.__name__: _db.session.scalar(select(func.count()).select_from(model))
            for model in (Organisation, Site, Room, User, TrainingRecord)}


def test_demo_twice_gives_the_same_data(runner, db):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    counts = _counts()
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert "0 rows created" in second.output
    assert _counts() == counts


def test_demo_has_two_sites_in_their_zones_and_languages(runner, db):
    runner.invoke(args=["demo"])
    sites = {s.name: (s.timezone, s.language) for s in _db.session.scalars(select(Site))}
    assert sites == {"Jakarta Kemang": ("Asia/Jakarta", "id"), "London Shoreditch": ("Europe/London", "en")}
    roles = set(_db.session.scalars(select(User.role)))
    assert roles == {"admin", "manager", "auditor", "staff"}


def test_demo_training_has_one_expiring_soon_and_one_expired(runner, db):
    from datetime import timedelta

    from compliance.timeutil import utcnow

    runner.invoke(args=["demo"])
    today = utcnow().date()
    expiries = list(_db.session.scalars(select(TrainingRecord.expires_on)))
    assert any(today < e <= today + timedelta(days=30) for e in expiries)
    assert any(e < today for e in expiries)


def test_demo_prints_how_to_sign_in(runner, db):
    output = runner.invoke(args=["demo"]).output
    assert "manager@demo.clinic" in output and "/tablet/enrol/" in output and "1234" in output


def test_demo_manager_and_tablet_sign_in_work(runner, client, db):
    from compliance.demo import DEMO_PASSWORD

    output = runner.invoke(args=["demo"]).output
    assert client.form_post("/login", {"email": "manager@demo.clinic", "password": DEMO_PASSWORD}).status_code == 302
    client.form_post("/logout")
    link = next(line.split(": ", 1)[1] for line in output.splitlines() if "Jakarta Kemang: http" in line)
    assert client.form_post(link.replace("http://localhost", "")).status_code == 302
    sari = _db.session.scalar(select(User).where(User.email == "sari@demo.clinic"))
    assert client.form_post(f"/tablet/pin/{sari.id}", {"pin": "1234"}).status_code == 302
    page = client.get("/tablet/home").get_data(as_text=True)
    assert "Sari Wulandari" in page


def test_demo_has_sterilisation_history_a_failed_load_and_an_open_recall(runner, db):
    from compliance.devices.models import Steriliser
    from compliance.sterilisation.models import Cycle, Pack, Recall

    runner.invoke(args=["demo"])
    assert _db.session.scalar(select(func.count()).select_from(Steriliser)) == 2
    statuses = list(_db.session.scalars(select(Cycle.status)))
    assert statuses.count("failed") == 2  # one at each site
    assert "released" in statuses and "recalled" in statuses
    recall = _db.session.scalar(select(Recall))
    assert recall is not None and recall.closed_at is None
    assert _db.session.scalar(select(func.count()).select_from(Pack).where(Pack.status == "sterile")) > 0
    london = _db.session.scalar(select(Steriliser).join(Site).where(Site.name == "London Shoreditch"))
    assert not london.is_in_service


def test_demo_has_treatments_an_override_and_an_infection_with_its_look_back(runner, db):
    from compliance.treatments.models import AdverseEvent, GateAttempt, GateOverride, LookBack, Treatment

    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert _db.session.scalar(select(func.count()).select_from(Treatment).where(Treatment.status == "finished")) == 4
    override = _db.session.scalars(select(GateOverride)).one()
    # The one override kept is one still allowed: a practitioner's missing course, with the manager supervising.
    assert {r["code"] for r in override.attempt.reasons} == {"training_missing"}
    supervised = _db.session.scalars(select(Treatment).where(Treatment.supervised_by_id.is_not(None))).one()
    assert supervised.supervised_by_id == override.manager_id
    # A unit of the quarantined lot was refused and never overridden.
    refusals = _db.session.scalars(select(GateAttempt)).all()
    assert any(r["code"] == "lot_quarantined" and r["override"] == "never" for a in refusals for r in a.reasons)
    assert _db.session.scalar(select(AdverseEvent.kind)) == "infection"
    assert _db.session.scalar(select(func.count()).select_from(LookBack)) == 1


def test_demo_has_todays_checklists_at_jakarta_and_a_corrective_action_twice_the_same(runner, db):
    from compliance.checklists.models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction
    from compliance.timeutil import local_today, utcnow

    def counts():
        return [_db.session.scalar(select(func.count()).select_from(model))
                for model in (ChecklistTemplate, ChecklistRun, Answer, CorrectiveAction)]

    assert runner.invoke(args=["demo"]).exit_code == 0
    first = counts()
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert counts() == first and first[0] == 6  # the default checklists, loaded once
    jakarta = _db.session.scalar(select(Site).where(Site.name == "Jakarta Kemang"))
    today = local_today(jakarta.timezone, utcnow())
    runs = {run.version.template.key: run for run in _db.session.scalars(
        select(ChecklistRun).where(ChecklistRun.site_id == jakarta.id, ChecklistRun.day == today))}
    assert set(runs) == {"opening", "before_client"}
    assert runs["opening"].day == today and runs["opening"].completed_at is not None
    assert runs["before_client"].day == today and runs["before_client"].completed_at is None
    action = _db.session.scalar(select(CorrectiveAction))
    assert action.run_id == runs["opening"].id and action.closed_at is None
    assert action.answer.item.key == "fridge_temp" and action.answer.value == "11" and action.answer.note
    assert _db.session.scalar(select(func.count()).select_from(Answer).where(Answer.amends_id.is_not(None))) == 1


def test_demo_shows_londons_five_missed_mornings_as_five_findings_and_an_honest_rate(runner, db):
    from datetime import timedelta

    from compliance.reports import metrics
    from compliance.schedule.models import Finding, Obligation, Occurrence
    from compliance.timeutil import local_today, utcnow

    assert runner.invoke(args=["demo"]).exit_code == 0
    london = _db.session.scalar(select(Site).where(Site.name == "London Shoreditch"))
    today = local_today(london.timezone, utcnow())
    opening = _db.session.scalar(select(Obligation).where(Obligation.site_id == london.id,
                                                          Obligation.kind == "opening-checklist"))
    missed = sorted(f.due_at.astimezone(ZoneInfo(london.timezone)).date() for f in _db.session.scalars(
        select(Finding).where(Finding.obligation_id == opening.id)))
    past = [d for d in missed if d < today]   # today's, after 10:00 London time, is missed too
    assert past == [today - timedelta(days=d) for d in range(5, 0, -1)] and len(missed) - len(past) <= 1
    states = dict(_db.session.execute(select(Occurrence.local_day, Occurrence.state).where(
        Occurrence.obligation_id == opening.id, Occurrence.local_day < today)).all())
    assert sorted(states.values()).count("missed") == 5 and len(states) == 14
    start = datetime.combine(today - timedelta(days=14), time(0), ZoneInfo(london.timezone))
    rate = metrics.obligation_rates([london.id], start, datetime.combine(today, time(0), ZoneInfo(london.timezone)))
    assert (rate["opening-checklist"].occurrences, rate["opening-checklist"].met) == (14, 9)
