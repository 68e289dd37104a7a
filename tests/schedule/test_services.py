"""Obligations made from the pack, the scan and the outbox, against a real database and a real SMTP server
on loopback (aiosmtpd)."""
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.errors import Conflict, Invalid
from compliance.extensions import db as _db
from compliance.guidelines.services import set_site_number
from compliance.schedule import services
from compliance.schedule.models import Finding, Obligation, ObligationChange, OutboxMessage

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # Wednesday 08:00 in Jakarta
NINE_JAKARTA = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _get(db, site, kind):
    return db.session.scalar(select(Obligation).where(Obligation.site_id == site.id, Obligation.kind == kind))


@pytest.fixture
def opening(db, site, manager, nurse):
    """The site's opening checklist: due 09:00 local, overdue after an hour; staff (the nurse) answer for it."""
    services.sync_site(site, NOW)
    db.session.commit()
    return _get(db, site, "opening-checklist")


def _scan(db, at):
    result = services.scan(at)
    db.session.commit()
    return result


# --- made from the pack --------------------------------------------------------------------------

def test_sync_makes_each_subjects_obligations_from_the_pack(db, site, make_steriliser):
    b = make_steriliser(site, type="B")
    n = make_steriliser(site, type="N", name="Small N")
    services.sync_site(site, NOW)
    db.session.commit()
    kinds = {(o.kind, o.subject_type, o.subject_id) for o in db.session.scalars(select(Obligation))}
    assert ("air-removal-test", "steriliser", b.id) in kinds
    assert ("leak-test", "steriliser", b.id) in kinds
    assert ("air-removal-test", "steriliser", n.id) not in kinds  # a type N has no air-removal test
    assert ("spore-test", "steriliser", n.id) in kinds
    assert ("opening-checklist", "site", site.id) in kinds and ("closing-checklist", "site", site.id) in kinds
    again = services.sync_site(site, NOW)  # idempotent
    assert again.created == 0


def test_opening_checklist_is_due_at_nine_local_and_overdue_after_the_grace(opening):
    assert opening.next_due_at == NINE_JAKARTA
    assert opening.action_at == NINE_JAKARTA + timedelta(hours=1) and opening.next_action == "overdue"


def test_nothing_is_flagged_before_the_grace_ends(db, opening):
    assert _scan(db, opening.action_at).findings == []
    assert _scan(db, opening.action_at + timedelta(seconds=1)).findings != []


def test_a_site_override_reschedules(db, site, manager, make_steriliser):
    steriliser = make_steriliser(site)
    services.sync_site(site, NOW)
    spore = _get(db, site, "spore-test")
    assert spore.schedule["every_days"] == 7
    set_site_number(actor_for_user(manager), site.id, "spore-test", "frequency_days", 30, "local rule: monthly", NOW)
    services.sync_site(site, NOW)
    db.session.commit()
    assert spore.schedule["every_days"] == 30 and spore.next_due_at == NOW + timedelta(days=30)
    assert steriliser.id == spore.subject_id


def test_closed_days_and_holidays_move_the_daily_duties(db, site, manager, opening):
    actor = actor_for_user(manager)
    services.set_closing_days(actor, site.id, {"closed_weekdays": ["wed"], "holidays": "2026-11-26 Founders' day"},
                              NOW)
    db.session.commit()
    # Wednesday closed, Thursday a holiday: the next opening checklist is Friday 09:00 Jakarta.
    assert opening.next_due_at == datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)
    with pytest.raises(Invalid) as err:
        services.set_closing_days(actor, site.id, {"closed_weekdays": [], "holidays": "26/11 Founders"}, NOW)
    assert err.value.field == "holidays"


# --- the scan -------------------------------------------------------------------------------------

def test_two_scans_give_one_finding_and_one_email_each(db, opening, nurse):
    late = opening.action_at + timedelta(minutes=5)
    first = _scan(db, late)
    second = _scan(db, late + timedelta(minutes=1))
    assert len(first.findings) == 1 and second.findings == []
    assert _count(db, Finding) == 1
    change = db.session.scalar(select(ObligationChange).where(ObligationChange.to_status == "overdue"))
    assert (change.from_status, change.at, change.by_id) == ("ok", late, None)
    assert [m.recipient for m in db.session.scalars(select(OutboxMessage))] == [nurse.email]


def test_two_scans_at_the_same_moment_in_two_threads_give_one_finding(app, db, opening):
    late = opening.action_at + timedelta(minutes=5)
    db.session.commit()  # the test's own transaction must not hold the database
    barrier, results, errors = threading.Barrier(2), [], []

    def run():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(services.scan(late).findings)
                _db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                _db.session.rollback()
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 1]
    assert _count(db, Finding) == 1 and _count(db, OutboxMessage) == 1


def test_a_three_day_gap_gives_one_finding_per_missed_due_time(db, site, opening):
    closing = _get(db, site, "closing-checklist")
    result = _scan(db, NOW + timedelta(days=3))  # 25, 26 and 27 November's due times have all passed by then
    found = [db.session.get(Finding, f) for f in result.findings]
    assert sorted((f.obligation_id, f.due_at) for f in found if f.obligation_id == opening.id) == [
        (opening.id, NINE_JAKARTA + timedelta(days=d)) for d in range(3)]
    assert len([f for f in found if f.obligation_id == closing.id]) == 3
    assert _scan(db, NOW + timedelta(days=3, minutes=1)).findings == []


def test_doing_the_thing_advances_and_resolves(db, site, opening):
    _scan(db, opening.action_at + timedelta(minutes=1))
    services.checklist_completed(site.id, "opening", opening.action_at + timedelta(minutes=30))
    db.session.commit()
    assert opening.status == "ok"
    assert opening.next_due_at == NINE_JAKARTA + timedelta(days=1)
    assert db.session.scalar(select(Finding)).resolved_at is not None


def test_done_early_in_the_day_counts_for_that_days_due_time(db, site, opening):
    services.checklist_completed(site.id, "opening", NOW)  # 08:00, before the 09:00 due time
    db.session.commit()
    assert opening.next_due_at == NINE_JAKARTA + timedelta(days=1)
    assert _scan(db, NOW + timedelta(hours=3)).findings == []


def test_one_bad_row_is_skipped_and_the_others_are_flagged(db, site, opening):
    closing = _get(db, site, "closing-checklist")
    closing.rule_id = "no-such-rule"
    db.session.commit()
    result = _scan(db, NOW + timedelta(days=1))
    assert result.skipped == [closing.id] and len(result.findings) == 1


def test_finding_keeps_the_guideline_version_and_overrides_in_force(db, site, manager, opening):
    set_site_number(actor_for_user(manager), site.id, "spore-test", "frequency_days", 30, "monthly", NOW)
    db.session.commit()
    _scan(db, NOW + timedelta(days=1))
    finding = db.session.scalar(select(Finding))
    assert finding.guideline_version and finding.overrides == {"spore-test.frequency_days": 30}


# --- notices: reminder, escalation, repeat, digest ---------------------------------------------------

def test_reminder_then_overdue_then_escalation_then_one_repeat_per_gap(db, site, manager, nurse, make_steriliser):
    steriliser = make_steriliser(site)
    services.sync_site(site, NOW)
    spore = _get(db, site, "spore-test")  # every 7 days, grace 1 day, reminder 1 day ahead
    # Only the spore test is followed here (the steriliser's daily tests and the day checklists run too).
    for other in db.session.scalars(select(Obligation).where(Obligation.id != spore.id)):
        services.pause(actor_for_user(manager), other.id, {"reason": "not under test"}, NOW)
    due = spore.next_due_at
    assert (spore.next_action, spore.action_at) == ("reminder", due - timedelta(days=1))
    assert _scan(db, due - timedelta(days=1) + timedelta(seconds=1)).notices == {"reminder": 1}
    assert (spore.next_action, spore.action_at) == ("overdue", due + timedelta(days=1))
    overdue_at = due + timedelta(days=1, minutes=1)
    assert _scan(db, overdue_at).notices == {"overdue": 1}
    assert spore.next_action == "escalation" and spore.action_at == overdue_at + timedelta(minutes=240)
    assert _scan(db, spore.action_at).notices == {"escalation": 1}  # to the manager
    # Three days of downtime: one repeat, not three.
    assert _scan(db, overdue_at + timedelta(days=3, hours=1)).notices == {"repeat": 1}
    assert _scan(db, overdue_at + timedelta(days=3, hours=2)).notices == {}
    kinds = [(m.kind, m.recipient) for m in db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.obligation_id == spore.id).order_by(OutboxMessage.id))]
    assert kinds == [("reminder", nurse.email), ("overdue", nurse.email), ("escalation", manager.email),
                     ("repeat", nurse.email)]
    assert steriliser.id == spore.subject_id


def test_snooze_holds_the_alerts_and_ends_by_itself(db, opening, manager):
    actor = actor_for_user(manager)
    services.snooze(actor, opening.id, {"reason": "engineer on site", "hours": "4"}, NOW)
    db.session.commit()
    assert opening.action_at == NOW + timedelta(hours=4)
    assert _scan(db, NOW + timedelta(hours=3)).findings == []
    assert len(_scan(db, NOW + timedelta(hours=4, minutes=1)).findings) == 1
    change = db.session.scalar(select(ObligationChange).where(ObligationChange.to_status == "snoozed"))
    assert change.by_id == manager.id and change.reason == "engineer on site"


def test_pause_needs_a_reason_and_resume_skips_missed_daily_duties(db, opening, manager):
    actor = actor_for_user(manager)
    with pytest.raises(Invalid):
        services.pause(actor, opening.id, {"reason": " "}, NOW)
    services.pause(actor, opening.id, {"reason": "closed for refurbishment"}, NOW)
    db.session.commit()
    assert opening.status == "paused" and opening.action_at is None
    _scan(db, NOW + timedelta(days=5))
    assert _count(db, Finding, Finding.obligation_id == opening.id) == 0
    with pytest.raises(Conflict):
        services.pause(actor, opening.id, {"reason": "again"}, NOW)
    services.resume(actor, opening.id, {"reason": "reopened"}, NOW + timedelta(days=5))
    db.session.commit()
    assert opening.status == "ok" and opening.next_due_at == NINE_JAKARTA + timedelta(days=5)


def test_staff_cannot_pause(db, opening, nurse):
    from compliance.errors import Forbidden
    with pytest.raises(Forbidden):
        services.pause(actor_for_user(nurse), opening.id, {"reason": "x"}, NOW)


def test_daily_digest_once_per_day_at_the_local_hour(db, site, manager, opening):
    _scan(db, NOW + timedelta(hours=3))  # the opening checklist is overdue
    six = datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)  # 06:00 Jakarta next day
    assert services.queue_digests(six) == 0
    assert services.queue_digests(six + timedelta(hours=1)) == 1
    assert services.queue_digests(six + timedelta(hours=2)) == 0
    digest = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "digest"))
    assert digest.recipient == manager.email and "Opening checklist" in digest.text_body


# --- hooks from the other domains -------------------------------------------------------------------

def test_recording_a_test_advances_its_obligation(db, site, manager, make_steriliser):
    from compliance.sterilisation.services import record_test
    steriliser = make_steriliser(site)
    services.sync_site(site, NOW)
    db.session.commit()
    record_test(actor_for_user(manager), {"steriliser_id": steriliser.id, "kind": "air_removal", "result": "pass",
                                          "performed_at": NOW.isoformat()}, NOW)
    db.session.commit()
    air = _get(db, site, "air-removal-test")
    assert air.last_done_at == NOW and air.next_due_at.date() == date(2026, 11, 26)


def test_a_closed_container_and_a_closed_action_end_their_obligations(db, site, manager):
    from compliance.treatments.services import close_sharps_container, open_sharps_container
    actor = actor_for_user(manager)
    container = open_sharps_container(actor, {"site_id": site.id, "label": "S-1"}, NOW)
    db.session.commit()
    o = db.session.scalar(select(Obligation).where(Obligation.subject_type == "sharps_container"))
    assert o.next_due_at == NOW + timedelta(days=90) and o.next_action == "reminder"
    close_sharps_container(actor, container.id, "", NOW + timedelta(days=10))
    db.session.commit()
    assert o.status == "ended" and o.action_at is None


def test_a_steriliser_out_of_service_pauses_its_tests(db, site, manager, make_steriliser):
    from compliance.devices.services import return_to_service, take_out_of_service
    actor = actor_for_user(manager)
    steriliser = make_steriliser(site)
    services.sync_site(site, NOW)
    take_out_of_service(actor, steriliser.id, "door seal", NOW)
    db.session.commit()
    air = _get(db, site, "air-removal-test")
    assert air.status == "paused"
    return_to_service(actor, steriliser.id, "repaired", NOW + timedelta(days=2))
    db.session.commit()
    assert air.status == "ok" and air.next_due_at > NOW + timedelta(days=2)


def test_a_used_pack_is_not_flagged_even_before_the_next_sync(db, site, nurse):
    from compliance.sterilisation.models import Pack
    pack = Pack(site_id=site.id, label_code="PK-T1", packaging="pouch", status="sterile",
                expires_at=NOW + timedelta(days=1), packed_at=NOW)
    db.session.add(pack)
    services.sync_site(site, NOW)
    pack.status = "used"
    db.session.commit()
    result = _scan(db, NOW + timedelta(days=2))
    o = db.session.scalar(select(Obligation).where(Obligation.subject_type == "pack"))
    assert o.id in result.ended and o.status == "ended"
    assert _count(db, Finding, Finding.obligation_id == o.id) == 0


def test_dry_run_lists_without_changing(db, opening, nurse):
    rows = services.dry_run(NOW + timedelta(days=1))
    assert {r["kind"] for r in rows} == {"opening-checklist", "closing-checklist"}
    assert rows[0]["recipients"] == [nurse.email] and rows[0]["action"] == "overdue"
    assert _count(db, Finding) == 0 and _count(db, OutboxMessage) == 0
    assert db.session.get(Obligation, opening.id).status == "ok"


# --- sending over SMTP --------------------------------------------------------------------------------

def test_the_email_arrives_in_the_persons_language_with_a_link(app, db, opening, nurse, manager, smtp, site):
    inbox, _controller = smtp
    nurse.language = "id"
    db.session.commit()
    _scan(db, opening.action_at + timedelta(minutes=1))
    assert services.send_due(opening.action_at + timedelta(minutes=2)) == {"sent": 1}
    [message] = inbox.messages
    assert message["To"] == nurse.email
    assert message["Content-Language"] == "id"
    assert "Jakarta" in message["Subject"] and "Terlambat" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert f"{app.config['BASE_URL']}/tablet/checklists" in text
    assert message.get_body(("html",)) is not None


@pytest.mark.parametrize("site_locale, own_locale, expected", [
    ("en-GB", None, "Due at 25 Nov 2026, 09:00:00 (Asia/Jakarta)."),
    ("id-ID", None, "Due at 25 Nov 2026 09.00.00 (Asia/Jakarta)."),   # English words, Indonesian formats
    ("id-ID", "en-US", "Due at Nov 25, 2026, 9:00:00\u202fAM (Asia/Jakarta)."),  # the person's own wins
])
def test_the_email_writes_the_due_time_in_the_readers_locale(db, opening, nurse, site, site_locale, own_locale,
                                                            expected):
    site.locale, nurse.locale = site_locale, own_locale
    db.session.commit()
    _scan(db, opening.action_at + timedelta(minutes=1))
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.user_id == nurse.id))
    assert expected in row.text_body and expected in row.html_body


def test_smtp_down_the_email_waits_then_is_delivered_once(app, db, opening, smtp):
    inbox, controller = smtp
    _scan(db, opening.action_at + timedelta(minutes=1))
    controller.stop()
    t = opening.action_at + timedelta(minutes=2)
    assert services.send_due(t) == {"retry": 1}
    assert services.send_due(t) == {}  # backing off: not before its next attempt
    controller.start()
    later = t + timedelta(minutes=5)
    assert services.send_due(later) == {"sent": 1}
    assert services.send_due(later + timedelta(hours=1)) == {}
    assert len(inbox.messages) == 1
    row = db.session.scalar(select(OutboxMessage))
    assert row.state == "sent" and row.attempts == 2
