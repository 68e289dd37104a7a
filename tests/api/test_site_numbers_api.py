"""A site's guideline numbers over the JSON API: the same data as the screen, set and reset by a manager with a
reason, the same refusals (4xx naming the rule) storing nothing, read-only callers and a site's key may not write,
another organisation's site is not found, and the obligations follow."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from compliance.guidelines.models import SiteRuleOverride
from compliance.guidelines.services import pack_for_site
from compliance.schedule.models import Obligation
from compliance.schedule.services import sync_site
from compliance.timeutil import utcnow

V1 = "/api/v1"
ENDPOINTS = {
    "/api/v1/sites/{site_id}/numbers": {"get"},
    "/api/v1/sites/{site_id}/numbers/{rule_id}/{key}": {"get", "put"},
    "/api/v1/sites/{site_id}/numbers/{rule_id}/{key}/reset": {"post"},
}


def _url(site_id, path="spore-test/frequency_days"):
    return f"{V1}/sites/{site_id}/numbers/{path}"


def _rows(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(SiteRuleOverride))


def test_the_numbers_of_a_site_with_default_value_range_and_gate(db, world, login_as):
    body = login_as(world.auditor).api("GET", f"{V1}/sites/{world.site_id}/numbers").get_json()
    assert body["site_id"] == world.site_id and body["pack"] == "default" and body["version"]
    groups = {g["rule_id"]: g for g in body["groups"]}
    spore = groups["spore-test"]
    assert spore["severity"] == "major" and spore["title"].startswith("A biological indicator")
    frequency = {n["key"]: n for n in spore["numbers"]}["frequency_days"]
    assert frequency == {**frequency, "default": 7, "value": 7, "differs": False, "editable": True, "kind": "whole",
                         "min": 1, "max": 31, "looser": "higher"}
    gate = {n["key"]: n for n in groups["gate"]["numbers"]}
    assert gate["pack_failed"] == {**gate["pack_failed"], "default": "never", "editable": False,
                                   "gate_rule": "cycle-parameters-met", "choices": ["never", "manager"]}
    assert {n["key"]: n for n in groups["sterile-storage"]["numbers"]}["compromised_reasons"]["kind"] == "fixed"
    assert groups["notices"]["numbers"][0]["key"] == "reminder_lead_minutes"
    assert body["history"] == []


def test_a_manager_sets_a_number_and_the_answer_holds_its_history(db, world, login_as):
    c = login_as(world.manager)
    r = c.api("PUT", _url(world.site_id), {"value": 30, "reason": "California: monthly"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["value"] == 30 and body["differs"] is True and body["site_id"] == world.site_id
    assert [(h["old_value"], h["new_value"], h["reason"], h["set_by_id"], h["replaced_at"]) for h in body["history"]] \
        == [(7, 30, "California: monthly", world.manager_id, None)]
    r = c.api("PUT", _url(world.site_id), {"value": 14, "reason": "fortnightly"})
    history = r.get_json()["history"]
    assert [(h["old_value"], h["new_value"]) for h in history] == [(30, 14), (7, 30)]
    assert history[0]["replaced_at"] is None and history[1]["replaced_at"] is not None
    listed = c.api("GET", f"{V1}/sites/{world.site_id}/numbers").get_json()["history"]
    assert [h["new_value"] for h in listed] == [14, 30]
    assert pack_for_site(world.site_id).number("spore-test", "frequency_days") == 14
    assert pack_for_site(world.site_b_id).number("spore-test", "frequency_days") == 7  # only that site


def test_an_admin_sets_a_decimal_and_a_gate_reason_stricter(db, world, login_as):
    c = login_as(world.admin)
    r = c.api("PUT", _url(world.site_id, "weekly-leak-test/max_pressure_rise_mbar_per_min"),
              {"value": 1.0, "reason": "Maker's limit"})
    assert r.status_code == 200 and r.get_json()["value"] == 1.0
    r = c.api("PUT", _url(world.site_id, "gate/training_missing"), {"value": "never", "reason": "No supervision"})
    assert r.status_code == 200 and r.get_json()["value"] == "never"


@pytest.mark.parametrize("path,body,status,rule,field,message", [
    ("spore-test/frequency_days", {"value": 32, "reason": "r"}, 422, "spore-test", "value", "from 1 to 31"),
    ("spore-test/frequency_days", {"value": -1, "reason": "r"}, 422, "spore-test", "value", "from 1 to 31"),
    ("spore-test/frequency_days", {"value": "thirty", "reason": "r"}, 422, "spore-test", "value", "must be a number"),
    ("spore-test/frequency_days", {"value": True, "reason": "r"}, 422, "spore-test", "value", "must be a number"),
    ("spore-test/frequency_days", {"value": [30], "reason": "r"}, 422, "spore-test", "value", "must be a number"),
    ("spore-test/frequency_days", {"value": 7.5, "reason": "r"}, 422, "spore-test", "value", "whole number"),
    ("spore-test/frequency_days", {"value": 30, "reason": "  "}, 422, "spore-test", "reason", "a reason is required"),
    ("sterile-storage/shelf_life_days", {"value": 400, "reason": "r"}, 422, "sterile-storage", "value",
     "sterile-storage.shelf_life_days must be from 1 to 365"),
    ("sterile-storage/compromised_reasons", {"value": ["torn"], "reason": "r"}, 422, "sterile-storage", "value",
     "is fixed by the guideline pack"),
    ("passes-within-range/min_passes", {"value": 11, "reason": "r"}, 422, "passes-within-range", "value",
     "may not be more than passes-within-range.max_passes (10)"),
    ("gate/pack_failed", {"value": "manager", "reason": "r"}, 422, "cycle-parameters-met", "value",
     "gate.pack_failed (rule cycle-parameters-met) can never be overridden by a manager"),
    ("gate/training_missing", {"value": "sometimes", "reason": "r"}, 422, "trained-practitioner", "value",
     "never or manager"),
    ("spore-test/no_such_key", {"value": 3, "reason": "r"}, 404, "spore-test", "key", "no number"),
    ("no-such-rule/frequency_days", {"value": 3, "reason": "r"}, 404, "no-such-rule", "key", "no number"),
    ("spore-test/frequency_days", {"value": 7, "reason": "r"}, 409, "spore-test", "value", "already"),
])
def test_refusals_name_the_rule_and_store_nothing(db, world, login_as, snapshot, path, body, status, rule, field,
                                                  message):
    before = snapshot()
    r = login_as(world.manager).api("PUT", _url(world.site_id, path), body)
    assert r.status_code == status, r.get_json()
    answer = r.get_json()
    assert answer["rule"] == rule and message in answer["message"] and answer["errors"][field]
    assert snapshot() == before and _rows(db) == 0


@pytest.mark.parametrize("body,field", [({"reason": "r"}, "value"), ({"value": 30}, "reason"),
                                        ({"value": 30, "reason": "r", "extra": 1}, "extra"),
                                        ({"value": None, "reason": "r"}, "value")])
def test_a_body_that_cannot_be_read_is_422_before_the_service(db, world, login_as, body, field):
    r = login_as(world.manager).api("PUT", _url(world.site_id), body)
    assert r.status_code == 422 and field in r.get_json()["errors"]["json"]
    assert _rows(db) == 0


@pytest.mark.parametrize("who", ["auditor", "nurse"])
def test_read_only_roles_and_staff_may_not_write(db, world, login_as, who):
    c = login_as(getattr(world, who))
    assert c.api("PUT", _url(world.site_id), {"value": 30, "reason": "r"}).status_code == 403
    assert c.api("POST", _url(world.site_id) + "/reset", {"reason": "r"}).status_code == 403
    assert _rows(db) == 0


def test_staff_may_not_read_the_numbers(db, world, login_as):
    assert login_as(world.nurse).api("GET", f"{V1}/sites/{world.site_id}/numbers").status_code == 403


def test_a_sites_key_reads_no_numbers_and_changes_none(db, world, client, make_key):
    """The rules judge a data logger's loads with the site's numbers; the logger itself need not read them."""
    key = make_key(world.site, world.admin)
    assert client.api("GET", f"{V1}/sites/{world.site_id}/numbers", key=key).status_code == 403
    assert client.api("GET", _url(world.site_id), key=key).status_code == 403
    assert client.api("PUT", _url(world.site_id), {"value": 30, "reason": "r"}, key=key).status_code == 403
    assert _rows(db) == 0


def test_another_organisations_site_is_not_found(db, world, login_as):
    c = login_as(world.manager)
    assert c.api("GET", f"{V1}/sites/{world.other_site_id}/numbers").status_code == 404
    assert c.api("GET", _url(world.other_site_id)).status_code == 404
    assert c.api("PUT", _url(world.other_site_id), {"value": 30, "reason": "r"}).status_code == 404
    assert c.api("POST", _url(world.other_site_id) + "/reset", {"reason": "r"}).status_code == 404
    assert _rows(db) == 0


def test_a_write_without_the_csrf_header_is_refused(db, world, login_as):
    r = login_as(world.manager).api("PUT", _url(world.site_id), {"value": 30, "reason": "r"}, csrf=False)
    assert r.status_code == 400 and _rows(db) == 0


def test_reset_goes_back_to_the_default_and_keeps_the_history(db, world, login_as):
    c = login_as(world.manager)
    c.api("PUT", _url(world.site_id, "sterile-storage/shelf_life_days"), {"value": 180, "reason": "Illinois"})
    r = c.api("POST", _url(world.site_id, "sterile-storage/shelf_life_days") + "/reset", {"reason": "HTM 01-05"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["value"] == 60 and body["differs"] is False
    assert [(h["old_value"], h["new_value"], h["reason"]) for h in body["history"]] == [
        (180, 60, "HTM 01-05"), (60, 180, "Illinois")]
    again = c.api("POST", _url(world.site_id, "sterile-storage/shelf_life_days") + "/reset", {"reason": "again"})
    assert again.status_code == 409 and again.get_json()["rule"] == "sterile-storage"
    assert _rows(db) == 2


def test_the_spore_obligation_follows_a_number_set_over_the_api(db, world, login_as, make_steriliser):
    steriliser = make_steriliser(world.site)
    sync_site(world.site, utcnow())
    db.session.commit()
    r = login_as(world.manager).api("PUT", _url(world.site_id), {"value": 30, "reason": "monthly"})
    assert r.status_code == 200
    db.session.expire_all()
    spore = db.session.scalar(select(Obligation).where(Obligation.kind == "spore-test",
                                                       Obligation.subject_id == steriliser.id))
    assert spore.schedule["every_days"] == 30


@pytest.fixture
def make_steriliser(db):
    from compliance.devices.models import Steriliser

    def make(site):
        steriliser = Steriliser(site_id=site.id, name="Autoclave", type="B", is_in_service=True)
        db.session.add(steriliser)
        db.session.commit()
        return steriliser

    return make
