"""A site's own numbers: the screen for managers and admins (auditors read it), the confirmation step, every
refusal stores nothing, the history is appended, going back to the default, and the site's obligations and packs
follow the new numbers."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from compliance.audit.models import AuditEntry
from compliance.auth.actor import actor_for_user
from compliance.errors import Conflict, Forbidden, Invalid, NotFound
from compliance.guidelines.models import SiteRuleOverride
from compliance.guidelines.services import (number_history, pack_for_site, plan_site_number, reset_site_number,
                                            set_site_number)
from compliance.schedule.models import Obligation
from compliance.schedule.services import sync_site
from compliance.sterilisation import services as sterilisation
from tests.sterilisation.conftest import (NOW, actor, add_test, good_cycle, make_device, make_steriliser,  # noqa: F401
                                          packed, ready_steriliser)

URL = "/sites/{site}/numbers"
SPORE = "/sites/{site}/numbers/spore-test/frequency_days"


def _rows(db):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(SiteRuleOverride))


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def _change(client, site, value, reason="Local rule: monthly", path="spore-test/frequency_days", confirm="yes"):
    return client.form_post(f"/sites/{site.id}/numbers/{path}", {"value": value, "reason": reason,
                                                                 "confirm": confirm})


# --- who sees the screen -----------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["manager", "admin", "auditor"])
def test_managers_admins_and_auditors_read_every_number_of_the_site(request, client, login_as, site, who):
    page = login_as(request.getfixturevalue(who)).get(URL.format(site=site.id))
    assert page.status_code == 200
    html = _text(page)
    assert "spore-test" in html and "frequency_days" in html and "1 to 31" in html and "higher is looser" in html
    assert "A biological indicator (Geobacillus stearothermophilus)" in html  # the rule's title, in English
    assert "training_missing" in html and "compromised_reasons" in html and "fixed by the pack" in html
    change_link = f'href="/sites/{site.id}/numbers/spore-test/frequency_days"'
    assert (change_link in html) is (who != "auditor")


def test_staff_may_not_see_or_change_the_numbers(db, client, login_as, site, nurse):
    c = login_as(nurse)
    assert c.get(URL.format(site=site.id)).status_code == 403
    assert c.get(SPORE.format(site=site.id)).status_code == 403
    assert _change(c, site, "30").status_code == 403
    assert _rows(db) == 0


def test_an_auditor_may_not_change_a_number(client, login_as, site, auditor, db):
    c = login_as(auditor)
    assert c.get(SPORE.format(site=site.id)).status_code == 403
    assert _change(c, site, "30").status_code == 403
    assert _rows(db) == 0


def test_another_organisations_site_is_not_found(db, client, login_as, site, other_site, outsider, manager):
    c = login_as(manager)
    assert c.get(URL.format(site=other_site.id)).status_code == 404
    assert c.get(SPORE.format(site=other_site.id)).status_code == 404
    assert _change(c, other_site, "30").status_code == 404
    with pytest.raises(NotFound):
        set_site_number(actor_for_user(manager), other_site.id, "spore-test", "frequency_days", 30, "monthly", NOW)
    db.session.rollback()
    assert _rows(db) == 0


def test_an_indonesian_site_reads_titles_and_refusals_in_indonesian(db, client, login_as, make_site, make_user):
    jakarta = make_site(name="Jakarta ID", language="id")
    c = login_as(make_user("manager", [jakarta]))
    page = _text(c.get(URL.format(site=jakarta.id)))
    assert "Indikator biologis (Geobacillus stearothermophilus)" in page and "Angka pedoman" in page
    refused = _text(_change(c, jakarta, "90"))
    assert "spore-test.frequency_days harus dari 1 sampai 31, rentang yang diizinkan paket pedoman" in refused


def test_the_sites_list_links_to_the_numbers(client, login_as, site, manager):
    assert f'href="/sites/{site.id}/numbers"' in login_as(manager).get("/sites").get_data(as_text=True)


# --- changing a number on the screen -------------------------------------------------------------------------

def test_a_change_is_confirmed_first_then_stored_with_its_reason(db, client, login_as, site, manager):
    c = login_as(manager)
    form = c.get(SPORE.format(site=site.id))
    assert form.status_code == 200 and 'value="7"' in form.get_data(as_text=True)
    preview = _change(c, site, "30", confirm="")
    assert preview.status_code == 200
    text = _text(preview)
    assert "changes from 7 to 30" in text and "looser than the pack" in text and "Confirm the change" in text
    assert _rows(db) == 0  # nothing stored before the confirmation
    back = _change(c, site, "30", confirm="back")
    assert back.status_code == 200 and 'value="30"' in back.get_data(as_text=True) and _rows(db) == 0
    done = _change(c, site, "30")
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/sites/{site.id}/numbers#spore-test")
    row = db.session.scalar(select(SiteRuleOverride))
    assert (row.rule_id, row.key, row.value, row.reason, row.set_by_id) == (
        "spore-test", "frequency_days", 30, "Local rule: monthly", manager.id)
    assert pack_for_site(site.id).number("spore-test", "frequency_days") == 30
    page = _text(c.get(URL.format(site=site.id)))
    assert "pill-warn" in page and "7 → <strong>30</strong>" in page and "Mira Manager" in page


def test_an_admin_changes_a_number_too(db, client, login_as, site, admin):
    assert _change(login_as(admin), site, "14").status_code == 302
    assert pack_for_site(site.id).number("spore-test", "frequency_days") == 14


@pytest.mark.parametrize("value,reason,field,message", [
    ("32", "monthly", "value", "spore-test.frequency_days must be from 1 to 31, the range the guideline pack allows"),
    ("0", "monthly", "value", "must be from 1 to 31"),
    ("thirty", "monthly", "value", "spore-test.frequency_days must be a number from 1 to 31"),
    ("7.5", "monthly", "value", "must be a whole number from 1 to 31"),
    ("", "monthly", "value", "must be a number"),
    ("30", "", "reason", "a reason is required"),
    ("30", "   ", "reason", "a reason is required"),
    ("30", "x" * 501, "reason", "at most 500 characters"),
])
@pytest.mark.parametrize("confirm", ["", "yes"])
def test_refused_input_shows_the_form_with_the_error_and_changes_nothing(db, client, login_as, site, manager,
                                                                        value, reason, field, message, confirm):
    response = _change(login_as(manager), site, value, reason=reason, confirm=confirm)
    assert response.status_code == 422
    html = _text(response)
    assert message in html and f'id="{field}-error"' in html
    assert 'name="value"' in html and "Check the change" in html  # the form again
    assert _rows(db) == 0


def test_loosening_a_never_gate_reason_is_refused_on_the_screen(db, client, login_as, site, manager):
    c = login_as(manager)
    page = _text(c.get(URL.format(site=site.id)))
    assert f'href="/sites/{site.id}/numbers/gate/pack_failed"' not in page  # no change offered
    response = _change(c, site, "manager", reason="We trust our steriliser", path="gate/pack_failed")
    assert response.status_code == 422
    assert "gate.pack_failed (rule cycle-parameters-met) can never be overridden by a manager" in _text(response)
    assert _rows(db) == 0 and pack_for_site(site.id).override_for("pack_failed") == "never"


def test_a_gate_reason_made_stricter_on_the_screen_and_back(db, client, login_as, site, manager):
    c = login_as(manager)
    assert _change(c, site, "never", reason="No supervision here", path="gate/training_missing").status_code == 302
    assert pack_for_site(site.id).override_for("training_missing") == "never"
    assert _change(c, site, "manager", reason="Rule relaxed", path="gate/training_missing").status_code == 302
    assert pack_for_site(site.id).override_for("training_missing") == "manager"


@pytest.mark.parametrize("path,status", [("spore-test/no_such_key", 404), ("no-such-rule/frequency_days", 404),
                                         ("gate/no_such_reason", 404)])
def test_an_unknown_rule_or_key_is_not_found(db, client, login_as, site, manager, path, status):
    c = login_as(manager)
    assert c.get(f"/sites/{site.id}/numbers/{path}").status_code == status
    assert _change(c, site, "3", path=path).status_code == status
    assert _rows(db) == 0


def test_a_list_is_shown_but_cannot_be_changed(db, client, login_as, site, manager):
    c = login_as(manager)
    page = c.get(f"/sites/{site.id}/numbers/sterile-storage/compromised_reasons")
    assert page.status_code == 200 and "fixed by the guideline pack" in _text(page)
    refused = _change(c, site, "torn", path="sterile-storage/compromised_reasons")
    assert refused.status_code == 422 and "sterile-storage.compromised_reasons is fixed" in _text(refused)
    assert _rows(db) == 0


def test_a_change_without_the_csrf_token_is_refused(db, client, login_as, site, manager):
    response = login_as(manager).post(SPORE.format(site=site.id), data={"value": "30", "reason": "monthly",
                                                                         "confirm": "yes"})
    assert response.status_code == 400 and _rows(db) == 0


# --- history and going back ------------------------------------------------------------------------------

def test_history_is_appended_and_the_old_row_only_gets_replaced_at(db, site, manager):
    actor = actor_for_user(manager)
    first = set_site_number(actor, site.id, "spore-test", "frequency_days", 30, "monthly", NOW)
    db.session.commit()
    before = (first.value, first.reason, first.set_at, first.set_by_id)
    later = NOW + timedelta(days=2)
    second = set_site_number(actor, site.id, "spore-test", "frequency_days", 14, "fortnightly", later)
    db.session.commit()
    db.session.expire_all()
    old = db.session.get(SiteRuleOverride, first.id)
    assert (old.value, old.reason, old.set_at, old.set_by_id) == before and old.replaced_at == later
    assert db.session.get(SiteRuleOverride, second.id).replaced_at is None
    history = number_history(site.id, "spore-test", "frequency_days")
    assert [(h.old_value, h.new_value, h.reason, h.set_by) for h in history] == [
        (30, 14, "fortnightly", "Mira Manager"), (7, 30, "monthly", "Mira Manager")]


def test_going_back_to_the_default_is_a_change_of_its_own(db, client, login_as, site, manager):
    actor = actor_for_user(manager)
    set_site_number(actor, site.id, "sterile-storage", "shelf_life_days", 180, "Illinois: 6 months", NOW)
    db.session.commit()
    c = login_as(manager)
    page = c.get(f"/sites/{site.id}/numbers/sterile-storage/shelf_life_days")
    assert "Back to the pack" in _text(page) and '<input type="hidden" name="value" value="60">' in _text(page)
    preview = _change(c, site, "60", reason="Moved to HTM 01-05", path="sterile-storage/shelf_life_days", confirm="")
    assert "That is the pack's default" in _text(preview)
    assert _change(c, site, "60", reason="Moved to HTM 01-05", path="sterile-storage/shelf_life_days").status_code \
        == 302
    assert pack_for_site(site.id).number("sterile-storage", "shelf_life_days") == 60
    assert [(h.old_value, h.new_value) for h in number_history(site.id, "sterile-storage", "shelf_life_days")] == [
        (180, 60), (60, 180)]
    assert _rows(db) == 2
    with pytest.raises(Conflict):  # already the default: nothing to change
        reset_site_number(actor, site.id, "sterile-storage", "shelf_life_days", "again", NOW)


def test_reset_through_the_service_stores_the_default(db, site, manager):
    actor = actor_for_user(manager)
    set_site_number(actor, site.id, "gate", "training_missing", "never", "No supervision here", NOW)
    row = reset_site_number(actor, site.id, "gate", "training_missing", "Supervision allowed again", NOW)
    assert row.value == "manager" and pack_for_site(site.id).override_for("training_missing") == "manager"


def test_the_same_value_again_is_refused_and_stores_nothing(db, site, manager):
    actor = actor_for_user(manager)
    with pytest.raises(Conflict) as exc:
        set_site_number(actor, site.id, "spore-test", "frequency_days", 7, "weekly", NOW)
    assert exc.value.rule == "spore-test"
    db.session.rollback()
    assert _rows(db) == 0


def test_the_services_refuse_roles_and_name_the_rule(db, site, manager, auditor, nurse):
    for who in (auditor, nurse):
        with pytest.raises(Forbidden):
            plan_site_number(actor_for_user(who), site.id, "spore-test", "frequency_days", 30, "monthly")
    with pytest.raises(Invalid) as exc:
        set_site_number(actor_for_user(manager), site.id, "spore-test", "frequency_days", 40, "monthly", NOW)
    assert exc.value.rule == "spore-test" and exc.value.field == "value"
    with pytest.raises(Invalid) as exc:
        set_site_number(actor_for_user(manager), site.id, "gate", "lot_expired", "manager", "trust", NOW)
    assert exc.value.rule == "single-use-never-reused" and "gate.lot_expired" in exc.value.message


def test_every_change_goes_into_the_audit_trail(db, client, login_as, site, manager):
    c = login_as(manager)
    assert _change(c, site, "30").status_code == 302
    assert _change(c, site, "14", reason="fortnightly").status_code == 302
    entries = list(db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "site_rule_overrides")
                                      .order_by(AuditEntry.seq)))
    first = db.session.scalar(select(SiteRuleOverride).order_by(SiteRuleOverride.id))
    creates = [e.after for e in entries if e.action == "create"]
    assert [(a["value"], a["reason"]) for a in creates] == [(30, "Local rule: monthly"), (14, "fortnightly")]
    updates = [e for e in entries if e.action == "update"]
    assert len(updates) == 1 and updates[0].entity_id == str(first.id)
    assert updates[0].before["replaced_at"] is None and updates[0].after["replaced_at"] is not None
    assert {e.actor_user_id for e in entries} == {manager.id} and {e.site_id for e in entries} == {site.id}


# --- the site follows its numbers --------------------------------------------------------------------------

def test_the_spore_test_obligation_follows_a_monthly_frequency_set_on_the_screen(db, client, login_as, site, manager,
                                                                               make_steriliser):
    steriliser = make_steriliser(site)
    sync_site(site, NOW)
    db.session.commit()
    spore = db.session.scalar(select(Obligation).where(Obligation.kind == "spore-test",
                                                       Obligation.subject_id == steriliser.id))
    assert spore.schedule["every_days"] == 7
    assert _change(login_as(manager), site, "30").status_code == 302
    db.session.expire_all()
    spore = db.session.get(Obligation, spore.id)
    assert spore.schedule["every_days"] == 30


def test_the_opening_checklist_follows_a_new_opening_hour(db, client, login_as, site, manager):
    sync_site(site, NOW)
    db.session.commit()
    assert _change(login_as(manager), site, "7", reason="We open at 7", path="daily-checks/opening_hour").status_code \
        == 302
    db.session.expire_all()
    opening = db.session.scalar(select(Obligation).where(Obligation.kind == "opening-checklist"))
    assert opening.schedule["cron"]["hour"] == 7


def test_a_new_shelf_life_applies_to_packs_sterilised_afterwards(db, client, login_as, actor, site, manager,
                                                                 ready_steriliser, packed):
    before = packed()
    cycle = sterilisation.record_cycle(actor, good_cycle(ready_steriliser, [before]), NOW)
    sterilisation.release_cycle(actor, cycle.id, NOW)
    db.session.commit()
    assert _change(login_as(manager), site, "180", reason="Illinois: 6 months",
                   path="sterile-storage/shelf_life_days").status_code == 302
    after = packed()
    cycle2 = sterilisation.record_cycle(actor, good_cycle(ready_steriliser, [after], printout_ref="PR-2"), NOW)
    sterilisation.release_cycle(actor, cycle2.id, NOW)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(type(before), before.id).expires_at == cycle.started_at + timedelta(days=60)
    assert db.session.get(type(after), after.id).expires_at == cycle2.started_at + timedelta(days=180)
