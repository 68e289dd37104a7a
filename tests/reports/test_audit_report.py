"""The audit report: its numbers on a small fixed data set, counted by hand; the same numbers in the page, the
CSV zip and the PDF; every export in the audit log; no client name or phone for an auditor; refusals."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine
from pypdf import PdfReader
from sqlalchemy import select

from compliance.audit.models import AuditEntry
from compliance.auth.actor import actor_for_user
from compliance.checklists.models import ChecklistRun, ChecklistTemplate, TemplateItem, TemplateVersion
from compliance.devices.models import Programme
from compliance.errors import Invalid, NotFound
from compliance.guidelines.models import SiteRuleOverride
from compliance.reports import services
from compliance.schedule.models import Finding, Obligation, ObligationChange
from compliance.sites.models import TrainingRecord
from compliance.sterilisation.models import Cycle, Pack, Recall, RecallLoad, SteriliserTest
from compliance.treatments.models import (AdverseEvent, Client, GateAttempt, GateOverride, Treatment,
                                          TreatmentPack)
from tests.schedule.history import add_done, add_finding
from tests.sterilisation.conftest import make_steriliser  # noqa: F401  (fixture)

# Wednesday 25 November 2026, 10:00 in Jakarta (UTC+7, no daylight saving).
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
# The report covers the local days Monday 2 to Sunday 15 November 2026: from 2 Nov 00:00 WIB (1 Nov 17:00 UTC)
# to 16 Nov 00:00 WIB (15 Nov 17:00 UTC), exclusive.
FROM, TO = date(2026, 11, 2), date(2026, 11, 15)
ARGS = {"from": "2026-11-02", "to": "2026-11-15"}
CLIENT_NAME, CLIENT_PHONE = "Siti Rahmawati", "+62 812 5550 1234"
OVERRIDE_REASON = "Seal intact; the supplier misprinted the use-by date"


def utc(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _obligation(db, site, kind: str, rule_id: str, subject_id: int) -> Obligation:
    o = Obligation(site_id=site.id, kind=kind, rule_id=rule_id, subject_type="steriliser", subject_id=subject_id,
                   responsible="staff", schedule={"every_days": 1}, next_due_at=NOW)
    db.session.add(o)
    db.session.flush()
    return o


def _done(db, o: Obligation, at: datetime) -> None:
    add_done(o, at)


def _finding(db, o: Obligation, due_at: datetime, resolved_at: datetime | None) -> Finding:
    return add_finding(o, due_at, resolved_at, guideline_version="2026.11-1")


def _cycle(db, steriliser, number: int, status: str, started: datetime, **kw) -> Cycle:
    programme = Programme.query.filter_by(steriliser_id=steriliser.id).first()
    c = Cycle(site_id=steriliser.site_id, steriliser_id=steriliser.id, cycle_number=number, programme_id=programme.id,
              started_at=started, temperature_c=134, holding_seconds=200, indicator_passed=status != "failed",
              is_verdict_pass=status != "failed", status=status, **kw)
    db.session.add(c)
    db.session.flush()
    return c


@pytest.fixture
def data(db, site, other_site, manager, nurse, make_steriliser):  # noqa: F811  (the imported fixture)
    """One site, one fortnight. Counted by hand:

    air-removal-test: due 10 times in the range: done on time 8 times (one at 23:59 local on the last day),
      done late once (F1, resolved in the range) and never done once (F2); not counted: done at 23:59 local
      the day before and at 00:00 local the day after (both inside the range in UTC terms), and a finding due
      00:30 local the day after. Occurrences 10, not on time 2, met 8, rate 0.8.
    spore-test: done on time twice; F3 due in the range, done only after it: occurrences 3, missed 1,
      met 2, rate 2/3 = 0.6667.
    Together: 13 due, 3 missed, 10 met, rate 10/13 = 0.7692.
    Checklist "Site opening": 2 runs started in the range, 1 completed (and 1 before the range): rate 0.5.
    """
    autoclave = make_steriliser(site, name="Autoclave A")
    air = _obligation(db, site, "air-removal-test", "air-removal-test-daily", autoclave.id)
    spore = _obligation(db, site, "spore-test", "spore-test", autoclave.id)
    for at in (utc(2, 1), utc(4, 1), utc(5, 1), utc(6, 1), utc(9, 1), utc(10, 1), utc(11, 1),
               utc(15, 16, 59)):
        _done(db, air, at)
    _done(db, air, utc(1, 16, 59))   # 23:59 on 1 Nov in Jakarta: before the range
    _done(db, air, utc(15, 17, 0))   # 00:00 on 16 Nov in Jakarta: after it
    f1 = _finding(db, air, utc(3, 1), resolved_at=utc(3, 5))
    f2 = _finding(db, air, utc(12, 1), resolved_at=None)
    _finding(db, air, utc(15, 17, 30), resolved_at=None)  # 00:30 on 16 Nov: not in the range
    _done(db, spore, utc(3, 2))
    _done(db, spore, utc(10, 2))
    f3 = _finding(db, spore, utc(14, 2), resolved_at=utc(17, 2))
    # Another organisation's site: nothing of it may count.
    far = make_steriliser(other_site, name="Far autoclave")
    far_air = _obligation(db, other_site, "air-removal-test", "air-removal-test-daily", far.id)
    for day in (3, 4, 5):
        _done(db, far_air, utc(day, 9))
    _finding(db, far_air, utc(6, 9), resolved_at=None)

    template = ChecklistTemplate(organisation_id=site.organisation_id, key="site-opening", kind="opening")
    version = TemplateVersion(number=1, title={"en": "Site opening", "id": "Pembukaan"},
                              items=[TemplateItem(position=1, key="clean", kind="yes_no",
                                                  label={"en": "Clean?", "id": "Bersih?"})])
    template.versions.append(version)
    db.session.add(template)
    db.session.flush()
    for started, completed in ((utc(2, 0, 30), True), (utc(3, 0, 30), False), (utc(1, 16), True)):
        db.session.add(ChecklistRun(site_id=site.id, version_id=version.id, day=(started + timedelta(hours=7)).date(),
                                    started_by_id=nurse.id, started_at=started,
                                    completed_at=started + timedelta(minutes=20) if completed else None))

    failed = _cycle(db, autoclave, 101, "failed", utc(5, 2), decided_by_id=manager.id, decided_at=utc(5, 2, 30),
                    reasons=[{"rule": "cycle-parameters-met", "code": "holding_short",
                              "values": {"reached": 150, "required": 210}}])
    next_load = _cycle(db, autoclave, 102, "released", utc(5, 4), decided_by_id=manager.id, decided_at=utc(5, 5))
    recalled = _cycle(db, autoclave, 103, "recalled", utc(8, 2))
    failed_test = SteriliserTest(site_id=site.id, steriliser_id=autoclave.id, kind="air_removal", result="fail",
                                 performed_at=utc(9, 0, 30), performed_by_id=nurse.id)
    fixed_by = SteriliserTest(site_id=site.id, steriliser_id=autoclave.id, kind="air_removal", result="pass",
                              performed_at=utc(9, 1, 30), performed_by_id=nurse.id)
    db.session.add_all([failed_test, fixed_by])

    client = Client(organisation_id=site.organisation_id, site_id=site.id, code="C-AUD123", name=CLIENT_NAME,
                    phone=CLIENT_PHONE)
    db.session.add(client)
    db.session.flush()
    treatment = Treatment(site_id=site.id, room_id=site.rooms[0].id, client_id=client.id, practitioner_id=nurse.id,
                          procedure="acne_scars", started_at=utc(8, 3), status="finished", ended_at=utc(8, 4))
    db.session.add(treatment)
    db.session.flush()
    pack = Pack(site_id=site.id, label_code="PK-AUD00001", packaging="pouch", status="recalled", cycle_id=recalled.id,
                packed_at=utc(8, 1))
    db.session.add(pack)
    db.session.flush()
    db.session.add(TreatmentPack(treatment_id=treatment.id, pack_id=pack.id, added_by_id=nurse.id, added_at=utc(8, 3)))
    attempt = GateAttempt(treatment_id=treatment.id, site_id=site.id, subject="pack", scanned="PK-AUD00001",
                          pack_id=pack.id, reasons=[{"rule": "sterile-storage", "code": "pack_expired",
                                                     "values": {"code": "PK-AUD00001"}}],
                          by_id=nurse.id, at=utc(8, 3, 5))
    db.session.add(attempt)
    db.session.flush()
    override = GateOverride(attempt_id=attempt.id, manager_id=manager.id, reason=OVERRIDE_REASON, at=utc(8, 3, 10))
    recall = Recall(site_id=site.id, steriliser_id=autoclave.id, reason="spore test failed", opened_at=utc(10, 2),
                    clients_contacted_at=utc(11, 3), closed_at=utc(14, 8))
    db.session.add_all([override, recall])
    db.session.flush()
    db.session.add(RecallLoad(recall_id=recall.id, cycle_id=recalled.id, previous_status="released"))
    event = AdverseEvent(treatment_id=treatment.id, site_id=site.id, kind="infection", severity="moderate",
                         is_reportable=True, onset_at=utc(12, 1), recorded_at=utc(12, 2), recorded_by_id=manager.id,
                         description=f"{CLIENT_NAME} called")

    # Training now (25 Nov in Jakarta, 30 days' warning): the nurse's lapsed on 20 Nov, the manager's holds.
    nurse_course = TrainingRecord(user_id=nurse.id, course="infection_control", completed_on=date(2025, 11, 20),
                                  expires_on=date(2026, 11, 20))
    manager_course = TrainingRecord(user_id=manager.id, course="microneedling", completed_on=date(2026, 1, 10),
                                    expires_on=date(2027, 12, 31))
    rule = SiteRuleOverride(site_id=site.id, rule_id="sterile-storage", key="shelf_life_days", value=30,
                            reason="The local health office allows 30 days", set_by_id=manager.id,
                            set_at=utc(1, 2, month=10))
    db.session.add_all([event, nurse_course, manager_course, rule])
    db.session.commit()
    return {"air": air, "spore": spore, "f1": f1, "f2": f2, "f3": f3, "failed": failed, "next_load": next_load,
            "failed_test": failed_test, "fixed_by": fixed_by, "treatment": treatment, "recall": recall,
            "event": event, "client": client, "autoclave": autoclave}


def _export_entries(db) -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.seq)))


def _pdf_text(body: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    return re.sub(r"\s+", " ", text)


def _csvs(body: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name[:-4]: list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
                for name in archive.namelist()}


# --- the numbers ---------------------------------------------------------------------------------

def test_rates_and_counts_are_the_ones_counted_by_hand(db, site, manager, data):
    report = services.audit_report(actor_for_user(manager), site.id, FROM, TO, NOW)
    rates = {(r.source, r.key): (r.occurrences, r.missed, r.met, r.rate) for r in report.obligation_rates
             + report.checklist_rates}
    assert rates == {("obligation", "air-removal-test"): (10, 2, 8, 0.8),
                     ("obligation", "spore-test"): (3, 1, 2, pytest.approx(0.6667, abs=1e-4)),
                     ("checklist", "site-opening"): (2, 1, 1, 0.5)}
    assert report.summary == {
        "days": 14, "obligation_occurrences": 13, "obligation_missed": 3,
        "obligation_rate": pytest.approx(0.7692, abs=1e-4), "checklist_runs": 2, "checklist_incomplete": 1,
        "checklist_rate": 0.5, "findings": 3, "findings_open": 1, "failed_loads": 1, "failed_tests": 1,
        "failed_tests_unresolved": 0, "overrides": 1, "unchecked_treatments": 1, "answers_sent_later": 0,
        "typed_figures_disagreeing": 0, "cycle_numbers_missing": 0, "recalls": 1, "recalls_open": 0, "adverse_events": 1,
        "adverse_events_reportable": 1, "training_valid": 1, "training_expiring": 0, "training_expired": 1,
        "site_overrides": 1}


def test_rows_name_what_happened_and_when_it_was_resolved(db, site, manager, nurse, data):
    report = services.audit_report(actor_for_user(manager), None, FROM, TO, NOW)
    assert [(f.kind, f.due_at, f.resolved_at) for f in report.findings] == [
        ("air-removal-test", utc(3, 1), utc(3, 5)), ("air-removal-test", utc(12, 1), None),
        ("spore-test", utc(14, 2), utc(17, 2))]
    assert report.findings[0].subject == "Autoclave A"
    (load,) = report.failed_loads
    assert (load.cycle_number, load.steriliser, load.decided_by, load.next_release_cycle_id, load.next_released_at) \
        == (101, "Autoclave A", "Mira Manager", data["next_load"].id, utc(5, 5))
    (test,) = report.failed_tests
    assert (test.kind, test.performed_by, test.resolved_by_test_id, test.resolved_at) == (
        "air_removal", "Nur Nurse", data["fixed_by"].id, utc(9, 1, 30))
    (override,) = report.overrides
    assert (override.manager, override.rules, override.reason, override.treatment_id) == (
        "Mira Manager", ("sterile-storage",), OVERRIDE_REASON, data["treatment"].id)
    (recall,) = report.recalls
    assert (recall.loads, recall.clients_reached, recall.clients_contacted_at, recall.closed_at) == (
        1, 1, utc(11, 3), utc(14, 8))
    (event,) = report.adverse_events
    assert (event.kind, event.client_code, event.is_reportable) == ("infection", "C-AUD123", True)
    assert [(t.person, t.course, t.status) for t in report.training] == [
        ("Mira Manager", "microneedling", "valid"), ("Nur Nurse", "infection_control", "expired")]
    assert [(g.version, g.rule_id, g.key, g.value, g.set_by) for g in report.guidelines] == [
        ("2026.12-1", "sterile-storage", "shelf_life_days", 30, "Mira Manager")]


def test_the_content_sha256_depends_on_the_data_not_on_who_exports_or_when(db, site, manager, auditor, data):
    first = services.audit_report(actor_for_user(manager), site.id, FROM, TO, NOW)
    again = services.audit_report(actor_for_user(auditor), site.id, FROM, TO, NOW + timedelta(minutes=5))
    assert services.content_sha256(first) == services.content_sha256(again)
    db.session.add(SteriliserTest(site_id=site.id, steriliser_id=data["autoclave"].id, kind="leak", result="fail",
                                  performed_at=utc(13, 1)))
    db.session.flush()
    changed = services.audit_report(actor_for_user(manager), site.id, FROM, TO, NOW)
    assert services.content_sha256(changed) != services.content_sha256(first)


def test_the_service_refuses_a_bad_range_and_a_site_out_of_reach(db, site, other_site, manager):
    actor = actor_for_user(manager)
    with pytest.raises(Invalid) as exc:
        services.audit_report(actor, site.id, TO, FROM, NOW)
    assert exc.value.field == "to"
    with pytest.raises(Invalid):
        services.audit_report(actor, site.id, FROM, FROM + timedelta(days=400), NOW)
    assert services.audit_report(actor, site.id, FROM, FROM + timedelta(days=399), NOW).days == 400
    with pytest.raises(NotFound):
        services.audit_report(actor, other_site.id, FROM, TO, NOW)


# --- the page ------------------------------------------------------------------------------------

def test_the_page_shows_each_section_with_links_to_the_evidence(db, site, manager, login_as, data):
    response = login_as(manager).get("/reports/audit", query_string={**ARGS, "site": site.id})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for title in ("Compliance rates", "Overdue findings", "Failed loads", "Failed steriliser tests", "Gate overrides",
                  "Recalls", "Adverse events", "Training now", "Guideline pack and site overrides"):
        assert title in html
    assert "Air-removal test (Bowie-Dick / Helix)" in html and "80.0 %" in html and "66.7 %" in html
    assert OVERRIDE_REASON in html and "The local health office allows 30 days" in html
    assert f'href="/obligations/{data["air"].id}"' in html
    assert f'href="/loads/{data["failed"].id}"' in html and f'href="/loads/{data["next_load"].id}"' in html
    assert f'href="/treatments/{data["treatment"].id}"' in html
    assert f'href="/recalls/{data["recall"].id}"' in html
    assert "/logbook?tab=tests" in html
    assert f"/reports/audit.pdf?site={site.id}&amp;from=2026-11-02&amp;to=2026-11-15" in html
    assert f"/reports/audit.zip?site={site.id}&amp;from=2026-11-02&amp;to=2026-11-15" in html
    assert _export_entries(db) == []  # reading the page is not an export


def test_the_page_defaults_to_the_last_four_weeks_of_every_site(db, site, manager, login_as, data):
    html = login_as(manager).get("/reports/audit").get_data(as_text=True)
    assert 'value="2026-10-29"' in html and 'value="2026-11-25"' in html
    assert not re.search(r"\b2 Nov 2026", html) and "29 Oct 2026" in html


def test_the_nav_links_to_reports_for_readers_only(db, site, manager, nurse, login_as):
    assert 'href="/reports/audit"' in login_as(manager).get("/overview").get_data(as_text=True)
    assert login_as(nurse).get("/reports/audit").status_code == 403


# --- the CSV zip ---------------------------------------------------------------------------------

def test_the_zip_parses_back_to_the_same_numbers_and_is_logged(db, site, manager, login_as, data):
    response = login_as(manager).get("/reports/audit.zip", query_string={**ARGS, "site": site.id})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    body = response.data
    assert response.headers["X-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    tables = _csvs(body)
    assert sorted(tables) == sorted(["summary", "rates", "findings", "failed_loads", "failed_tests", "overrides",
                                     "unchecked", "recalls", "adverse_events", "training", "guidelines",
                                     "sent_later", "disagreements", "cycle_gaps"])
    rates = {row["Key"]: (int(row["Due"]), int(row["Missed"]), int(row["Met"]), float(row["Rate"]))
             for row in tables["rates"]}
    assert rates == {"air-removal-test": (10, 2, 8, 0.8), "spore-test": (3, 1, 2, 0.6667),
                     "site-opening": (2, 1, 1, 0.5)}
    summary = {row["Key"]: row["Value"] for row in tables["summary"]}
    assert (summary["obligation_occurrences"], summary["obligation_missed"], summary["obligation_rate"]) == (
        "13", "3", "0.7692")
    assert (summary["findings"], summary["findings_open"], summary["failed_loads"], summary["failed_tests"],
            summary["overrides"], summary["recalls"], summary["adverse_events"], summary["training_expired"]) == (
        "3", "1", "1", "1", "1", "1", "1", "1")
    # The hand-made treatment was finished with no pack and no unit through the gate: a finding of its own.
    assert len(tables["unchecked"]) == 1 and summary["unchecked_treatments"] == "1"
    assert [(r["What"], r["Due"], r["Resolved"]) for r in tables["findings"]] == [
        ("Air-removal test (Bowie-Dick / Helix)", "2026-11-03 08:00", "2026-11-03 12:00"),
        ("Air-removal test (Bowie-Dick / Helix)", "2026-11-12 08:00", "still open"),
        ("Spore test", "2026-11-14 09:00", "2026-11-17 09:00")]
    assert [(r["Load"], r["Started"], r["Failed by"]) for r in tables["failed_loads"]] == [
        ("101", "2026-11-05 09:00", "Mira Manager")]
    assert "Holding time was 150 s" in tables["failed_loads"][0]["Reasons"]
    assert [(r["Done at"], r["Next pass of this test"]) for r in tables["failed_tests"]] == [
        ("2026-11-09 07:30", "2026-11-09 08:30")]
    assert [(r["When"], r["Reason given"]) for r in tables["overrides"]] == [("2026-11-08 10:10", OVERRIDE_REASON)]
    assert [(r["Loads"], r["Clients reached"]) for r in tables["recalls"]] == [("1", "1")]
    assert [(r["Client code"], r["Reportable"]) for r in tables["adverse_events"]] == [("C-AUD123", "yes")]
    assert [(r["Person"], r["Status key"]) for r in tables["training"]] == [
        ("Mira Manager", "valid"), ("Nur Nurse", "expired")]
    assert [(r["Rule"], r["Number"], r["Value"]) for r in tables["guidelines"]] == [
        ("sterile-storage", "shelf_life_days", "30")]
    (entry,) = _export_entries(db)
    assert (entry.entity_type, entry.entity_id, entry.site_id) == ("report", "audit", site.id)
    assert entry.after == {"format": "zip", "from": "2026-11-02", "to": "2026-11-15", "site_id": site.id,
                           "sha256": hashlib.sha256(body).hexdigest(), "content_sha256": summary["content_sha256"]}
    assert entry.actor_user_id == manager.id


# --- the PDF -------------------------------------------------------------------------------------

def test_the_pdf_holds_the_rows_the_exporter_and_the_sha256_and_is_logged(db, site, manager, login_as, data):
    browser = login_as(manager)
    response = browser.get("/reports/audit.pdf", query_string={**ARGS, "site": site.id})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    body = response.data
    assert body.startswith(b"%PDF-")
    assert response.headers["X-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    content_sha256 = response.headers["X-Report-Content-SHA256"]
    text = _pdf_text(body)
    for expected in ("Audit report", "Air-removal test (Bowie-Dick / Helix)", "Spore test", "Site opening",
                     "80.0 %", "66.7 %", "76.9 %", OVERRIDE_REASON, "C-AUD123", "Autoclave A",
                     "The local health office allows 30 days", "2026.12-1", f"Content SHA-256: {content_sha256}",
                     "Exported by Mira Manager on 25 Nov 2026, 10:00:00 (Asia/Jakarta)"):
        assert expected in text, expected
    # The zip of the same report carries the same content SHA-256.
    zipped = _csvs(browser.get("/reports/audit.zip", query_string={**ARGS, "site": site.id}).data)
    assert {r["Key"]: r["Value"] for r in zipped["summary"]}["content_sha256"] == content_sha256
    pdf_entry, zip_entry = _export_entries(db)
    assert pdf_entry.after == {"format": "pdf", "from": "2026-11-02", "to": "2026-11-15", "site_id": site.id,
                               "sha256": hashlib.sha256(body).hexdigest(), "content_sha256": content_sha256}
    assert zip_entry.after["format"] == "zip"


def test_the_pdf_is_written_in_the_sites_locale_and_the_csv_values_stay_machine_readable(
        db, site, manager, login_as, data):
    browser = login_as(manager)
    before = _csvs(browser.get("/reports/audit.zip", query_string={**ARGS, "site": site.id}).data)
    site.locale = "id-ID"  # the manager still reads English words
    db.session.commit()
    text = _pdf_text(browser.get("/reports/audit.pdf", query_string={**ARGS, "site": site.id}).data)
    for expected in ("80,0 %", "66,7 %", "Exported by Mira Manager on 25 Nov 2026 10.00.00 (Asia/Jakarta)"):
        assert expected in text, expected
    assert "80.0 %" not in text and "10:00:00" not in text
    after = _csvs(browser.get("/reports/audit.zip", query_string={**ARGS, "site": site.id}).data)
    assert after == before  # ISO times and decimal points whatever the locale
    assert any(re.fullmatch(r"2026-11-\d\d \d\d:\d\d", row["Started"]) for row in after["failed_loads"])


# --- who sees what -------------------------------------------------------------------------------

def test_an_auditor_reads_every_format_without_a_client_name_or_phone(db, site, auditor, login_as, data):
    browser = login_as(auditor)
    page = browser.get("/reports/audit", query_string=ARGS)
    archive = browser.get("/reports/audit.zip", query_string=ARGS)
    pdf = browser.get("/reports/audit.pdf", query_string=ARGS)
    assert (page.status_code, archive.status_code, pdf.status_code) == (200, 200, 200)
    texts = [page.get_data(as_text=True), *(b.decode("utf-8") for b in zipfile_members(archive.data)),
             _pdf_text(pdf.data)]
    for text in texts:
        assert CLIENT_NAME not in text and "Siti" not in text
        assert CLIENT_PHONE not in text and "5550" not in text
    assert "C-AUD123" in texts[0] and "C-AUD123" in texts[-1]
    assert [e.actor_user_id for e in _export_entries(db)] == [auditor.id, auditor.id]


def zipfile_members(body: bytes) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return [archive.read(name) for name in archive.namelist()]


@pytest.mark.parametrize("path", ["/reports/audit", "/reports/audit.zip", "/reports/audit.pdf"])
def test_another_organisations_site_is_not_found(db, site, other_site, manager, login_as, path, data):
    response = login_as(manager).get(path, query_string={**ARGS, "site": other_site.id})
    assert response.status_code == 404
    assert _export_entries(db) == []


@pytest.mark.parametrize("path", ["/reports/audit", "/reports/audit.zip", "/reports/audit.pdf"])
@pytest.mark.parametrize("args, field, message", [
    ({"from": "2026-11-15", "to": "2026-11-02"}, "to", "the last day is before the first"),
    ({"from": "2026-11-31", "to": "2026-12-01"}, "from", "Not a valid date value."),
    ({"from": "2026-11-02", "to": "next week"}, "to", "Not a valid date value."),
    ({"from": "2025-01-01", "to": "2026-11-15"}, "to", "choose at most 400 days"),
    ({"site": "jakarta", **ARGS}, "site", "Invalid Choice: could not coerce."),
])
def test_bad_input_is_refused_at_its_field_and_nothing_is_exported(db, site, manager, login_as, path, args, field,
                                                                    message):
    response = login_as(manager).get(path, query_string=args)
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert f'<small class="error" id="{field}-error">{message}</small>' in html
    assert 'aria-invalid="true"' in html
    assert _export_entries(db) == []
