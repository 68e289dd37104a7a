"""Abandoning a treatment in progress: a written reason, who and when; what was opened stays used and the devices
go back to be reprocessed; refused for a treatment no longer open, without a reason, or out of reach. On the
tablet, the treatment's page and the API."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select, update

from compliance.audit.models import AuditEntry
from compliance.auth.actor import actor_for_user
from compliance.devices.models import DeviceEvent
from compliance.errors import Conflict, Invalid, NotFound
from compliance.treatments import services
from compliance.treatments.models import Treatment, TreatmentPack, TreatmentUnit
from tests.conftest import PIN
from tests.treatments.conftest import NOW, barcode

LATER = NOW + timedelta(minutes=20)
V1 = "/api/v1"


@pytest.fixture(autouse=True)
def frozen():
    """The views and the API take `now` from the clock: hold it at the factories' NOW (10:00 in Jakarta)."""
    with time_machine.travel(NOW, tick=False):
        yield


def _count(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _state(db, treatment_id: int) -> tuple:
    db.session.expire_all()
    t = db.session.get(Treatment, treatment_id)
    return t.status, t.ended_at, t.abandoned_reason, t.abandoned_by_id


@pytest.fixture
def in_use(db, actor, start, sterile_pack, make_lot):
    """An open treatment with a sterile pack opened and a single-use unit used."""
    make_lot()
    treatment = start()
    pack = sterile_pack()
    assert services.add_pack(actor, treatment.id, pack.label_code, NOW).accepted
    assert services.add_unit(actor, treatment.id, barcode("AB1"), NOW).accepted
    db.session.commit()
    return treatment, pack


# --- the service -----------------------------------------------------------------------------------------

def test_abandon_with_a_reason_records_status_end_reason_and_who(db, actor, manager, start):
    treatment = start()
    services.abandon_treatment(actor, treatment.id, {"reason": "  Client left before the first pass  "}, LATER)
    db.session.commit()
    assert _state(db, treatment.id) == ("abandoned", LATER, "Client left before the first pass", manager.id)
    # The claim is a conditional UPDATE, out of the flush listener's sight: it is in the audit trail all the same.
    [entry] = [e for e in db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "treatments",
                                                                      AuditEntry.action == "update"))
               if "status" in (e.after or {})]
    assert (entry.entity_id, entry.actor_user_id, entry.before["status"], entry.after["status"],
            entry.after["abandoned_reason"]) == (str(treatment.id), manager.id, "open", "abandoned",
                                                 "Client left before the first pass")


def test_abandon_without_a_reason_is_refused_at_the_field_and_changes_nothing(db, actor, start):
    treatment = start()
    for data in ({}, {"reason": ""}, {"reason": "   "}):
        with pytest.raises(Invalid) as exc:
            services.abandon_treatment(actor, treatment.id, data, LATER)
        assert exc.value.field == "reason"
        db.session.rollback()
        assert _state(db, treatment.id) == ("open", None, "", None)
    with pytest.raises(Invalid) as exc:
        services.abandon_treatment(actor, treatment.id, {"reason": "x" * 2001}, LATER)
    assert exc.value.field == "reason"


def test_a_finished_or_abandoned_treatment_cannot_be_abandoned(db, actor, start, needled):
    finished, abandoned = needled(start()), start()
    services.finish_treatment(actor, finished.id, {"passes": 8, "needle_depth_mm": "0.5"}, LATER)
    services.abandon_treatment(actor, abandoned.id, {"reason": "Contraindication at screening"}, LATER)
    db.session.commit()
    with pytest.raises(Conflict, match="finished"):
        services.abandon_treatment(actor, finished.id, {"reason": "too late"}, LATER)
    with pytest.raises(Conflict, match="abandoned"):
        services.abandon_treatment(actor, abandoned.id, {"reason": "twice"}, LATER)
    db.session.rollback()
    assert _state(db, finished.id)[0] == "finished"
    assert _state(db, abandoned.id)[2] == "Contraindication at screening"


def test_of_a_finish_and_an_abandon_at_the_same_moment_only_one_changes_the_row(db, actor, start, in_use):
    treatment, pack = in_use
    device = pack.items[0].device
    # Another tablet finished it after this one read it as open: the session still holds the stale "open".
    db.session.execute(update(Treatment).where(Treatment.id == treatment.id)
                       .values(status="finished", ended_at=NOW).execution_options(synchronize_session=False))
    assert treatment.status == "open"
    with pytest.raises(Conflict, match="finished"):
        services.abandon_treatment(actor, treatment.id, {"reason": "Client left"}, LATER)
    db.session.rollback()
    assert _state(db, treatment.id)[:3] == ("open", None, "")  # the simulated finish was rolled back too
    assert device.status != "dirty"


def test_staff_of_another_site_do_not_find_the_treatment(db, start, make_site, make_user, site):
    treatment = start()
    sister = make_site(org=site.organisation, name="Bandung")
    stranger = make_user("staff", [sister], name="Sister Staff")
    with pytest.raises(NotFound):
        services.abandon_treatment(actor_for_user(stranger), treatment.id, {"reason": "not mine"}, LATER)
    db.session.rollback()
    assert _state(db, treatment.id)[0] == "open"


def test_what_was_opened_stays_used_and_the_devices_go_back_to_dirty(db, actor, start, in_use, sterile_pack):
    treatment, pack = in_use
    device = pack.items[0].device
    assert device.status != "dirty"
    services.abandon_treatment(actor, treatment.id, {"reason": "Device dropped on the floor"}, LATER)
    db.session.commit()
    db.session.expire_all()
    assert pack.status == "used" and device.status == "dirty"
    event = db.session.scalar(select(DeviceEvent).where(DeviceEvent.device_id == device.id)
                              .order_by(DeviceEvent.id.desc()).limit(1))
    assert (event.kind, event.to_status, event.pack_id, event.at) == ("used", "dirty", pack.id, LATER)
    assert _count(db, TreatmentPack, TreatmentPack.treatment_id == treatment.id) == 1
    assert _count(db, TreatmentUnit, TreatmentUnit.treatment_id == treatment.id) == 1
    # Single use: another client's treatment is refused the pack and the unit at the gate.
    other = start()
    assert [r["code"] for r in services.add_pack(actor, other.id, pack.label_code, LATER).reasons] == ["pack_used"]
    assert [r["code"] for r in services.add_unit(actor, other.id, barcode("AB1"), LATER).reasons] == ["unit_used"]


def test_a_refused_abandon_leaves_the_devices_as_they_were(db, actor, in_use):
    treatment, pack = in_use
    device = pack.items[0].device
    status, events = device.status, _count(db, DeviceEvent, DeviceEvent.device_id == device.id)
    with pytest.raises(Invalid):
        services.abandon_treatment(actor, treatment.id, {"reason": ""}, LATER)
    db.session.rollback()
    assert (device.status, _count(db, DeviceEvent, DeviceEvent.device_id == device.id)) == (status, events)


def test_a_treatment_with_nothing_used_changes_no_device(db, actor, start):
    treatment = start()
    events = _count(db, DeviceEvent)
    services.abandon_treatment(actor, treatment.id, {"reason": "Client left"}, LATER)
    db.session.commit()
    assert _count(db, DeviceEvent) == events


# --- the tablet and the treatment's page -----------------------------------------------------------------

@pytest.fixture
def on_tablet(client, enrol_tablet, site, trained_nurse):
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{trained_nurse.id}", {"pin": PIN}).status_code == 302
    return client


def test_the_tablet_offers_abandon_and_refuses_it_without_a_reason(db, on_tablet, start, trained_nurse):
    treatment = start()
    page = on_tablet.get(f"/tablet/treatments/{treatment.id}").get_data(as_text=True)
    assert f'action="/treatments/{treatment.id}/abandon"' in page and "data-confirm=" in page
    assert 'name="reason"' in page

    response = on_tablet.form_post(f"/treatments/{treatment.id}/abandon", {"reason": ""})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="abandon_reason-error"' in body and "Reason is required" in body
    assert 'class="more abandon-box" id="abandon" open' in body
    assert _state(db, treatment.id) == ("open", None, "", None)

    response = on_tablet.form_post(f"/treatments/{treatment.id}/abandon", {"reason": "Client felt faint"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/tablet/treatments/{treatment.id}")
    assert _state(db, treatment.id) == ("abandoned", NOW, "Client felt faint", trained_nurse.id)
    summary = on_tablet.get(response.headers["Location"]).get_data(as_text=True)
    assert "Treatment abandoned" in summary and "Client felt faint" in summary
    assert "Treatment abandoned. What was opened stays used" in summary  # the flash
    assert 'action="/treatments/' not in summary  # no second abandon


def test_the_treatment_page_abandons_and_then_shows_the_reason_who_and_when(db, login_as, manager, start):
    treatment = start()
    client = login_as(manager)
    page = client.get(f"/treatments/{treatment.id}").get_data(as_text=True)
    assert f'action="/treatments/{treatment.id}/abandon"' in page

    response = client.form_post(f"/treatments/{treatment.id}/abandon", {"reason": "  "})
    assert response.status_code == 422 and "Reason is required" in response.get_data(as_text=True)
    assert _state(db, treatment.id)[0] == "open"

    with time_machine.travel(LATER, tick=False):
        response = client.form_post(f"/treatments/{treatment.id}/abandon",
                                    {"reason": "Contraindication found at screening"})
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"/treatments/{treatment.id}")
        page = client.get(f"/treatments/{treatment.id}").get_data(as_text=True)
    assert "Contraindication found at screening" in page
    facts = page[page.index("<dt>Abandoned</dt>"):]
    facts = facts[:facts.index("</dd>")]
    assert manager.name in facts and "10:20" in facts  # who, and when in Jakarta time
    assert f'action="/treatments/{treatment.id}/abandon"' not in page


def test_abandoning_a_finished_treatment_changes_nothing(db, login_as, manager, actor, start, needled):
    treatment = needled(start())
    services.finish_treatment(actor, treatment.id, {"passes": 8, "needle_depth_mm": "0.5"}, NOW)
    db.session.commit()
    client = login_as(manager)
    response = client.form_post(f"/treatments/{treatment.id}/abandon", {"reason": "too late"})
    assert response.status_code == 302
    assert "no longer in progress" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _state(db, treatment.id)[0] == "finished"


def test_the_auditor_may_not_abandon(db, login_as, auditor, start):
    treatment = start()
    client = login_as(auditor)
    assert 'action="/treatments/' not in client.get(f"/treatments/{treatment.id}").get_data(as_text=True)
    assert client.form_post(f"/treatments/{treatment.id}/abandon", {"reason": "no"}).status_code == 403
    assert _state(db, treatment.id)[0] == "open"


# --- the API -----------------------------------------------------------------------------------------------

def test_the_api_abandons_with_a_reason_and_refuses_without_one(db, client, login_as, trained_nurse, in_use):
    treatment, pack = in_use
    c = login_as(trained_nurse)
    url = f"{V1}/treatments/{treatment.id}/abandon"
    r = c.api("POST", url, {})
    assert r.status_code == 422 and "reason" in r.get_json()["errors"]["json"]
    r = c.api("POST", url, {"reason": "   "})
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["reason"]
    assert _state(db, treatment.id)[0] == "open"

    r = c.api("POST", url, {"reason": "Client left"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["abandoned_reason"], body["abandoned_by_id"], body["ended_at"]) == (
        "abandoned", "Client left", trained_nurse.id, "2026-11-25T03:00:00+00:00")
    db.session.expire_all()
    assert pack.items[0].device.status == "dirty" and pack.status == "used"

    r = c.api("POST", url, {"reason": "again"})
    assert r.status_code == 409 and list(r.get_json()["errors"]) == ["treatment_id"]
