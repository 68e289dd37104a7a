"""The decontamination-room tablet screens, pack labels and pages, the logbook and the recall screen."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.devices.models import Device
from compliance.sterilisation import services
from compliance.sterilisation.models import Cycle, CycleCorrection, Pack, Recall, SteriliserTest
from compliance.sterilisation.rules import CheckRecord
from compliance.sterilisation.views import air_removal_state, csv_cell, local_day_start, spore_state
from tests.conftest import PIN
from tests.sterilisation.conftest import NOW, good_cycle

JAKARTA = "Asia/Jakarta"


@pytest.fixture(autouse=True)
def frozen():
    """The views take `now` from the clock: hold it at the factories' NOW (10:00 in Jakarta)."""
    with time_machine.travel(NOW, tick=False):
        yield


def rows(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def on_tablet(client, enrol_tablet, site, nurse):
    """The nurse signed in by PIN on the site's enrolled tablet."""
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    return client


def cycle_form(steriliser, packs=(), **changes) -> dict:
    data = {"steriliser_id": str(steriliser.id), "temperature_c": "134.5", "holding_seconds": "200",
            "indicator_result": "pass", "printout_ref": "PR-7",
            "pack_codes": "\n".join(p.label_code for p in packs)}
    data.update(changes)
    return data


def released_load(db, actor, steriliser, packed, at):
    pack = packed(at=at - timedelta(minutes=30))
    cycle = services.record_cycle(actor, good_cycle(steriliser, [pack], started_at=at.isoformat()), at)
    services.release_cycle(actor, cycle.id, at)
    db.session.commit()
    return cycle


# --- pure display helpers ------------------------------------------------------------------------

def test_spore_test_is_due_on_its_last_day_in_date_and_overdue_the_day_after():
    last = datetime(2026, 11, 18, 2, 0, tzinfo=timezone.utc)  # 09:00 Jakarta, 18 November
    tests = [CheckRecord("spore", last, "pass")]
    assert spore_state(tests, datetime(2026, 11, 24, 16, 59, tzinfo=timezone.utc), JAKARTA, 7) == (
        "ok", date(2026, 11, 25))
    assert spore_state(tests, datetime(2026, 11, 24, 17, 0, tzinfo=timezone.utc), JAKARTA, 7)[0] == "due"
    assert spore_state(tests, datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc), JAKARTA, 7)[0] == "overdue"
    assert spore_state([], NOW, JAKARTA, 7) == ("missing", None)
    assert spore_state([CheckRecord("spore", last, "fail")], NOW, JAKARTA, 7)[0] == "failed"


def test_air_removal_state_counts_only_todays_local_tests():
    yesterday = CheckRecord("air_removal", NOW - timedelta(hours=11), "pass")  # 23:00 Jakarta, the day before
    assert air_removal_state("B", [yesterday], NOW, JAKARTA) == "missing"
    assert air_removal_state("B", [CheckRecord("air_removal", NOW - timedelta(hours=1), "fail")], NOW,
                             JAKARTA) == "failed"
    assert air_removal_state("B", [CheckRecord("air_removal", NOW - timedelta(hours=2), "pass")], NOW,
                             JAKARTA) == "passed"
    assert air_removal_state("N", [], NOW, JAKARTA) == "not_needed"


def test_local_dates_become_utc_bounds_and_csv_cells_are_not_formulas():
    assert local_day_start(date(2026, 11, 25), JAKARTA) == datetime(2026, 11, 24, 17, 0, tzinfo=timezone.utc)
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and csv_cell("PR-1") == "PR-1"


# --- the tablet: tests and cycles ----------------------------------------------------------------

def test_staff_records_a_passing_air_removal_test_and_a_cycle_that_awaits_release(
        db, on_tablet, make_steriliser, add_test, site, packed):
    client = on_tablet
    steriliser = make_steriliser(site, name="Autoclave A")
    add_test(steriliser, "spore", at=NOW - timedelta(days=3))
    pack = packed()
    home = text(client.get("/decontamination"))
    assert "Autoclave A" in home and "Air-removal test today: not done yet" in home
    response = client.form_post("/decontamination/tests/new", {"steriliser_id": steriliser.id,
                                                              "kind": "air_removal", "result": "pass"})
    assert response.status_code == 302, text(response)
    assert "Air-removal test today: passed" in text(client.get("/decontamination"))
    form = text(client.get(f"/decontamination/cycles/new?steriliser={steriliser.id}"))
    assert f'<option selected value="{steriliser.id}">' in form and "<details" in form
    response = client.form_post("/decontamination/cycles/new", cycle_form(steriliser, [pack]))
    assert response.status_code == 302, text(response)
    cycle = db.session.scalar(select(Cycle))
    assert response.headers["Location"].endswith(f"/decontamination/loads/{cycle.id}")
    assert cycle.status == "awaiting_release" and cycle.cycle_number == 1
    assert db.session.get(Pack, pack.id).status == "loaded"
    verdict = text(client.get(f"/decontamination/loads/{cycle.id}"))
    assert "Passed — awaiting release" in verdict and "verdict-ok" in verdict
    assert "Release this load" in verdict and "Fail this load" in verdict
    assert "Autoclave A · cycle 1" in text(client.get("/decontamination"))  # awaiting release on the room screen


def test_failing_figures_are_shown_with_every_reason_and_nothing_is_stored_until_confirmed(
        db, on_tablet, ready_steriliser, packed):
    pack = packed()
    data = cycle_form(ready_steriliser, [pack], holding_seconds="100", indicator_result="fail", temperature_c="143,6")
    response = on_tablet.form_post("/decontamination/cycles/new", data)
    page = text(response)
    assert response.status_code == 200
    assert rows(db, Cycle) == 0 and db.session.get(Pack, pack.id).status == "packed"
    assert "Are these the figures on the printout?" in page and "Nothing is stored yet." in page
    assert "Temperature reached 143.6 °C, above the limit of 137.0 °C." in page
    assert "Holding time was 100 s; the programme needs at least 180 s." in page
    assert "The chemical indicator did not pass." in page
    assert 'name="temperature_c" value="143,6"' in page  # what was typed goes back with either answer
    assert 'name="step" value="correct"' in page and 'name="confirm_failure" value="1"' in page

    # The main action: back to the form with the figures typed, still nothing stored.
    response = on_tablet.form_post("/decontamination/cycles/new", {**data, "step": "correct"})
    page = text(response)
    assert response.status_code == 200 and "Record the cycle" in page
    assert 'value="143,6"' in page and "Holding time was" not in page
    assert rows(db, Cycle) == 0

    # The second action: these are the printout's figures, the load is recorded as failed.
    response = on_tablet.form_post("/decontamination/cycles/new", {**data, "confirm_failure": "1"})
    assert response.status_code == 302
    cycle = db.session.scalar(select(Cycle))
    page = text(on_tablet.get(response.headers["Location"]))
    assert "Failed — do not use these packs" in page and "verdict-bad" in page
    assert "Holding time was 100 s; the programme needs at least 180 s." in page
    assert "Release this load" not in page
    assert cycle.status == "failed" and db.session.get(Pack, pack.id).status == "failed"
    assert db.session.get(Pack, pack.id).items[0].device.status == "dirty"


def test_corrected_figures_that_pass_are_stored_at_once(db, on_tablet, ready_steriliser, packed):
    pack = packed()
    data = cycle_form(ready_steriliser, [pack], temperature_c="143,6")
    assert on_tablet.form_post("/decontamination/cycles/new", data).status_code == 200
    assert rows(db, Cycle) == 0
    response = on_tablet.form_post("/decontamination/cycles/new", {**data, "temperature_c": "134,6"})
    assert response.status_code == 302
    cycle = db.session.scalar(select(Cycle))
    assert cycle.status == "awaiting_release" and str(cycle.temperature_c) == "134.6"


@pytest.mark.parametrize("field,value,status", [
    ("temperature_c", "500", 422),
    ("temperature_c", "-5", 422),
    ("holding_seconds", "-1", 422),
    ("cycle_number", "41", 409),
    ("pack_codes", "PK-NOPE2345", 404),
])
def test_impossible_input_is_refused_at_its_field_and_stores_nothing(
        db, on_tablet, actor, ready_steriliser, packed, field, value, status):
    services.record_cycle(actor, good_cycle(ready_steriliser, cycle_number="41"), NOW - timedelta(minutes=5))
    db.session.commit()
    pack = packed()
    before = rows(db, Cycle)
    data = cycle_form(ready_steriliser, [pack], **{field: value})
    if field == "pack_codes":
        data[field] = f"{pack.label_code}\n{value}"
    response = on_tablet.form_post("/decontamination/cycles/new", data)
    page = text(response)
    assert response.status_code == status
    assert f'id="{field}-error"' in page
    assert rows(db, Cycle) == before
    assert db.session.get(Pack, pack.id).status == "packed"
    if field == "cycle_number":
        assert re.search(r"<details class=\"more\" open>", page)  # the message is not hidden under "More"


def test_staff_without_decontamination_training_cannot_release_but_a_manager_can(
        db, on_tablet, login_as, actor, manager, ready_steriliser, packed):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    db.session.commit()
    response = on_tablet.form_post(f"/loads/{cycle.id}/release", {"view": "tablet"})
    assert response.status_code == 403
    assert "only a manager, or staff with in-date decontamination training, may release a load" in text(response)
    assert db.session.get(Cycle, cycle.id).status == "awaiting_release"
    login_as(manager)
    response = on_tablet.form_post(f"/loads/{cycle.id}/release", {"view": "desk"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/loads/{cycle.id}")
    db.session.expire_all()
    assert db.session.get(Cycle, cycle.id).status == "released"
    assert "Released — the packs are sterile" in text(on_tablet.get(f"/loads/{cycle.id}"))


def test_trained_staff_release_and_failing_a_load_needs_a_note(
        db, on_tablet, nurse, actor, make_training, ready_steriliser, packed):
    make_training(nurse, course="sterilisation")
    first = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    second = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    db.session.commit()
    assert on_tablet.form_post(f"/loads/{first.id}/release", {"view": "tablet"}).status_code == 302
    response = on_tablet.form_post(f"/loads/{second.id}/fail", {"view": "tablet", "note": ""})
    assert response.status_code == 422 and 'id="fail-note-error"' in text(response)
    assert db.session.get(Cycle, second.id).status == "awaiting_release"
    response = on_tablet.form_post(f"/loads/{second.id}/fail", {"view": "tablet", "note": "wet packs"})
    assert response.headers["Location"].endswith(f"/decontamination/loads/{second.id}")
    db.session.expire_all()
    assert db.session.get(Cycle, first.id).status == "released"
    assert db.session.get(Cycle, second.id).status == "failed"
    assert "wet packs" in text(on_tablet.get(f"/decontamination/loads/{second.id}"))


def test_spore_test_starts_pending_and_is_read_later(db, on_tablet, make_steriliser, site):
    steriliser = make_steriliser(site)
    response = on_tablet.form_post("/decontamination/tests/new", {
        "steriliser_id": steriliser.id, "kind": "spore", "result": "pending", "indicator_lot": "BI-42"})
    assert response.status_code == 302
    test = db.session.scalar(select(SteriliserTest))
    assert test.result == "pending"
    home = text(on_tablet.get("/decontamination"))
    assert f"/decontamination/tests/{test.id}/result" in home and "BI-42" in home
    response = on_tablet.form_post(f"/decontamination/tests/{test.id}/result", {"result": "pass",
                                                                               "control_result": "no_growth"})
    assert response.status_code == 422 and 'id="control_result-error"' in text(response)
    response = on_tablet.form_post(f"/decontamination/tests/{test.id}/result", {"result": "pass",
                                                                               "control_result": "grew"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(SteriliserTest, test.id).result == "pass"


# --- reprocessing, labels and packs --------------------------------------------------------------

def test_dirty_devices_are_cleaned_inspected_and_packed_with_a_label_to_print(db, on_tablet, make_device, site):
    a, b = make_device(site, serial="RH-1"), make_device(site, serial="RH-2")
    page = text(on_tablet.get("/decontamination/reprocess"))
    assert "RH-1" in page and "RH-2" in page
    response = on_tablet.form_post("/decontamination/reprocess/clean", {"device_ids": [a.id, b.id],
                                                                        "method": "ultrasonic"})
    assert response.status_code == 302 and "step=inspect" in response.headers["Location"]
    response = on_tablet.form_post("/decontamination/reprocess/inspect", {"device_ids": [b.id], "passed": "0"})
    assert response.status_code == 422 and 'id="note-error"' in text(response)
    on_tablet.form_post("/decontamination/reprocess/inspect", {"device_ids": [b.id], "passed": "0",
                                                               "note": "bent tip"})
    assert db.session.get(Device, b.id).status == "quarantined"
    response = on_tablet.form_post("/decontamination/reprocess/inspect", {"device_ids": [a.id], "passed": "1"})
    assert "step=pack" in response.headers["Location"]
    response = on_tablet.form_post("/decontamination/reprocess/pack", {"device_ids": [a.id], "packaging": "pouch"})
    pack = db.session.scalar(select(Pack))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/decontamination/packs/{pack.id}")
    page = text(on_tablet.get(response.headers["Location"]))
    assert pack.label_code in page and f"/packs/labels?ids={pack.id}&amp;format=label" in page
    assert "Print label" in page and "<svg" in page and "Not yet sterilised" in page


def _inspected(on_tablet, devices):
    ids = [d.id for d in devices]
    on_tablet.form_post("/decontamination/reprocess/clean", {"device_ids": ids, "method": "ultrasonic"})
    on_tablet.form_post("/decontamination/reprocess/inspect", {"device_ids": ids, "passed": "1"})
    return ids


def test_each_ticked_device_gets_its_own_pack_unless_wrapped_together(db, on_tablet, make_device, site):
    ids = _inspected(on_tablet, [make_device(site, serial=f"RH-{n}") for n in range(1, 6)])
    response = on_tablet.form_post("/decontamination/reprocess/pack", {"device_ids": ids[:3], "packaging": "pouch"})
    packs = list(db.session.scalars(select(Pack).order_by(Pack.id)))
    assert len(packs) == 3 and [len(p.items) for p in packs] == [1, 1, 1]
    assert len({p.label_code for p in packs}) == 3
    assert response.status_code == 302 and "/packs/labels?ids=" in response.headers["Location"]
    sheet = text(on_tablet.get(response.headers["Location"]))
    assert all(p.label_code in sheet for p in packs)
    response = on_tablet.form_post("/decontamination/reprocess/pack", {"device_ids": ids[3:], "packaging": "wrap",
                                                                       "together": "y"})
    together = db.session.scalar(select(Pack).order_by(Pack.id.desc()))
    assert response.headers["Location"].endswith(f"/decontamination/packs/{together.id}")
    assert sorted(i.device_id for i in together.items) == ids[3:] and rows(db, Pack) == 4


def test_one_device_that_may_not_be_packed_refuses_the_lot(db, on_tablet, make_device, site):
    ready = _inspected(on_tablet, [make_device(site, serial="RH-OK")])
    dirty = make_device(site, serial="RH-DIRTY")
    response = on_tablet.form_post("/decontamination/reprocess/pack", {"device_ids": [*ready, dirty.id],
                                                                       "packaging": "pouch"})
    assert response.status_code == 409 and "RH-DIRTY must be cleaned and inspected" in text(response)
    assert rows(db, Pack) == 0


def test_packing_a_device_that_was_not_cleaned_is_refused_at_the_field(db, on_tablet, make_device, site):
    device = make_device(site)
    response = on_tablet.form_post("/decontamination/reprocess/pack", {"device_ids": [device.id],
                                                                       "packaging": "pouch"})
    assert response.status_code == 409
    assert f"{device.serial} must be cleaned and inspected before packing" in text(response)
    assert rows(db, Pack) == 0


def test_label_sheet_holds_the_code_the_expiry_date_and_a_qr_code(
        db, on_tablet, actor, ready_steriliser, packed, app):
    pack = packed()
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [pack]), NOW)
    db.session.commit()
    before = text(on_tablet.get(f"/packs/labels?ids={pack.id}"))
    assert pack.label_code in before and "Not yet sterilised" in before
    services.release_cycle(actor, cycle.id, NOW)
    db.session.commit()
    expiry = db.session.get(Pack, pack.id).expires_at.astimezone(ZoneInfo(JAKARTA)).date()
    for url in (f"/packs/labels?cycle={cycle.id}", f"/packs/labels?ids={pack.id}&format=label"):
        sheet = text(on_tablet.get(url))
        assert pack.label_code in sheet and f'datetime="{expiry.isoformat()}"' in sheet
        assert sheet.count("<svg") == 1 and "Not yet sterilised" not in sheet
        assert "1 label. Print at actual size (100 %)" in sheet
    assert "labels-a4" in text(on_tablet.get(f"/packs/labels?cycle={cycle.id}&format=a4"))
    assert "labels-label" in text(on_tablet.get(f"/packs/labels?cycle={cycle.id}"))  # one pack: the label printer
    import segno
    svg = segno.make(f"http://localhost/p/{pack.label_code}", error="m").svg_inline(scale=4, omitsize=True)
    assert svg in sheet  # the QR code holds the pack page's full URL


def test_pack_page_shows_its_state_and_history_and_a_scan_opens_it(db, on_tablet, actor, ready_steriliser, packed):
    cycle = released_load(db, actor, ready_steriliser, packed, NOW - timedelta(minutes=20))
    pack = cycle.packs[0]
    page = text(on_tablet.get(f"/p/{pack.label_code}"))
    assert "state-ok" in page and ">Sterile<" in page
    assert "Packed" in page and "Loaded into the steriliser" in page and "Sterilised (load released)" in page
    assert pack.items[0].device.serial in page and "cycle 1" in page
    response = on_tablet.form_post("/decontamination/scan", {"code": f"http://localhost/p/{pack.label_code.lower()}"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/p/{pack.label_code}")
    response = on_tablet.form_post("/decontamination/scan", {"code": "PK-NOPE2345"})
    assert response.status_code == 404 and "no pack with the label PK-NOPE2345" in text(response)
    assert 'id="code-error"' in text(response)


def test_compromising_a_pack_needs_a_reason_and_makes_it_unusable(db, on_tablet, actor, ready_steriliser, packed):
    pack = released_load(db, actor, ready_steriliser, packed, NOW - timedelta(minutes=20)).packs[0]
    response = on_tablet.form_post(f"/p/{pack.label_code}/compromise", {"reason": "other", "note": ""})
    assert response.status_code == 422 and 'id="note-error"' in text(response)
    assert db.session.get(Pack, pack.id).status == "sterile"
    response = on_tablet.form_post(f"/p/{pack.label_code}/compromise", {"reason": "wet"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Pack, pack.id).status == "compromised"
    page = text(on_tablet.get(f"/p/{pack.label_code}"))
    assert "Compromised: do not use" in page and "Pack compromised" in page and "Mark compromised" not in page


# --- the Now screen --------------------------------------------------------------------------------

def test_now_screen_leads_to_the_room_and_lists_loads_awaiting_release_and_sterilisers_out(
        db, on_tablet, actor, make_steriliser, ready_steriliser, site, packed):
    broken = make_steriliser(site, name="Old autoclave")
    services.record_test(actor, {"steriliser_id": broken.id, "kind": "air_removal", "result": "fail"}, NOW)
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    db.session.commit()
    home = text(on_tablet.get("/tablet/home"))
    assert 'href="/decontamination"' in home and 'hx-get="/decontamination/summary"' in home
    summary = text(on_tablet.get("/decontamination/summary", headers={"HX-Request": "true"}))
    assert "Old autoclave is out of service" in summary and "failed air_removal test" in summary
    assert f"/decontamination/loads/{cycle.id}" in summary


# --- the logbook -----------------------------------------------------------------------------------

@pytest.fixture
def thirty_loads(db, actor, ready_steriliser, add_test):
    """30 loads an hour apart back from NOW (10:00 Jakarta): 11 on 25 November, 19 on the 24th; one failed."""
    add_test(ready_steriliser, "air_removal", at=NOW - timedelta(hours=30))  # 04:00 on the 24th
    add_test(ready_steriliser, "air_removal", at=NOW - timedelta(hours=10))  # 00:00 on the 25th
    cycles = []
    for hours in range(29, -1, -1):
        at = NOW - timedelta(hours=hours)
        cycles.append(services.record_cycle(actor, good_cycle(ready_steriliser, started_at=at.isoformat(),
                                                              holding_seconds="90" if hours == 3 else "200"),
                                            at, confirm_failure=True))
    db.session.commit()
    return cycles


def _page_ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="load-(\d+)"', page)]


def test_logbook_pages_and_filters_by_steriliser_local_dates_and_verdict(db, client, login_as, manager,
                                                                         thirty_loads, make_steriliser, site):
    other = make_steriliser(site, name="Spare")
    login_as(manager)
    first = text(client.get("/logbook"))
    assert len(_page_ids(first)) == 25 and 'rel="next"' in first
    assert _page_ids(first)[0] == thirty_loads[-1].id  # newest first
    assert len(_page_ids(text(client.get("/logbook?page=2")))) == 5
    oldest_first = _page_ids(text(client.get("/logbook?sort=date")))
    assert oldest_first[0] == thirty_loads[0].id
    today = _page_ids(text(client.get("/logbook?from=2026-11-25&to=2026-11-25")))
    assert sorted(today) == sorted(c.id for c in thirty_loads[-11:])
    failed = text(client.get("/logbook?verdict=fail"))
    assert _page_ids(failed) == [thirty_loads[-4].id]
    assert "Holding time was 90 s; the programme needs at least 180 s." in failed
    assert "Nothing matches these filters." in text(client.get(f"/logbook?steriliser={other.id}"))


def test_logbook_csv_parses_back_to_the_rows_of_the_filtered_page(db, client, login_as, manager, thirty_loads):
    login_as(manager)
    query = "from=2026-11-24&to=2026-11-24&verdict=pass"
    ids = _page_ids(text(client.get(f"/logbook?{query}&per_page=100")))
    response = client.get(f"/logbook?{query}&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.get_data().decode("utf-8"))))
    header, body = table[0], table[1:]
    assert header[:4] == ["Started", "Time zone", "Steriliser", "Cycle number"]
    numbers = {c.id: c.cycle_number for c in thirty_loads}
    assert [int(r[3]) for r in body] == [numbers[i] for i in ids] and len(body) == 19
    assert all(r[1] == JAKARTA and r[0].startswith("2026-11-24") for r in body)
    assert body[-1][0] == "2026-11-24 05:00"  # local time, not UTC (22:00 on the 23rd)


def test_logbook_lists_steriliser_tests_with_the_same_filters(db, client, login_as, manager, ready_steriliser):
    login_as(manager)
    page = text(client.get("/logbook?tab=tests"))
    assert "Air-removal test (Bowie-Dick / Helix)" in page and "Spore test (biological indicator)" in page
    page = text(client.get("/logbook?tab=tests&kind=spore"))
    assert "Spore test (biological indicator)" in page and "Air-removal test (Bowie-Dick / Helix)</td>" not in page
    table = list(csv.reader(io.StringIO(client.get("/logbook?tab=tests&format=csv").get_data().decode())))
    assert len(table) == 3 and {r[3] for r in table[1:]} == {"air_removal", "spore"}


def test_loads_posted_by_a_data_logger_name_it_on_the_page_and_in_the_csv(db, client, login_as, manager, admin,
                                                                          ready_steriliser, site):
    from compliance.auth.actor import Actor
    from compliance.auth.services import create_api_key

    key, _secret = create_api_key(actor_for_user(admin), site.id, "Melag logger", NOW)
    machine = Actor(organisation_id=site.organisation_id, role="machine", site_ids=frozenset({site.id}),
                    api_key_id=key.id)
    cycle = services.record_cycle(machine, good_cycle(ready_steriliser), NOW)
    db.session.commit()
    login_as(manager)
    assert "loaded: data logger “Melag logger”" in text(client.get("/logbook"))
    assert "data logger “Melag logger”" in text(client.get(f"/loads/{cycle.id}"))
    table = list(csv.reader(io.StringIO(client.get("/logbook?format=csv").get_data().decode())))
    assert table[1][14] == "data logger “Melag logger”"


def test_load_detail_compares_figures_with_the_programme(db, client, login_as, manager, actor, ready_steriliser,
                                                         packed):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()], temperature_c="133"), NOW,
                                  confirm_failure=True)
    db.session.commit()
    login_as(manager)
    page = text(client.get(f"/loads/{cycle.id}"))
    assert "133.0 °C" in page and "134.0 to 137.0 °C" in page and '<tr class="fig-bad">' in page
    assert "Temperature reached 133.0 °C; the programme needs at least 134.0 °C." in page
    assert f"/packs/labels?cycle={cycle.id}" in page


# --- correcting a load's figures ------------------------------------------------------------------

def _failed_by_a_typo(db, actor, steriliser, packed):
    cycle = services.record_cycle(actor, good_cycle(steriliser, [packed()], temperature_c="143.6"), NOW,
                                  confirm_failure=True)
    db.session.commit()
    return cycle


def correction_form(**changes) -> dict:
    data = {"temperature_c": "134,6", "holding_seconds": "200", "indicator_result": "pass", "indicator_class": "5",
            "printout_ref": "PR-1", "reason": "143,6 typed for 134,6"}
    data.update(changes)
    return data


def test_manager_corrects_a_typo_and_the_original_stays_beside_it(db, client, login_as, manager, actor,
                                                                  ready_steriliser, packed):
    cycle = _failed_by_a_typo(db, actor, ready_steriliser, packed)
    login_as(manager)
    page = text(client.get(f"/loads/{cycle.id}"))
    assert f'href="/loads/{cycle.id}/correct"' in page and "Correct figures" in page
    form = text(client.get(f"/loads/{cycle.id}/correct"))
    assert 'value="143.6"' in form and 'value="PR-1"' in form and 'id="reason"' in form
    response = client.form_post(f"/loads/{cycle.id}/correct", correction_form())
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/loads/{cycle.id}")
    page = text(client.get(f"/loads/{cycle.id}"))
    assert "Figures of load 1 corrected: it passes its checks now and awaits release." in page
    assert "Passed — awaiting release" in page and "Release this load" in page
    assert "First recorded" in page and "<s>143.6 °C</s>" in page
    assert "Temperature: 143.6 °C → 134.6 °C" in page and "143,6 typed for 134,6" in page
    assert "Mira Manager" in page
    assert rows(db, CycleCorrection) == 1


def test_corrected_figures_that_fail_are_confirmed_first(db, client, login_as, manager, actor, ready_steriliser,
                                                         packed):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    db.session.commit()
    login_as(manager)
    data = correction_form(holding_seconds="100", reason="holding time misread")
    response = client.form_post(f"/loads/{cycle.id}/correct", data)
    page = text(response)
    assert response.status_code == 200 and "Are these the figures on the printout?" in page
    assert "Holding time was 100 s; the programme needs at least 180 s." in page
    assert rows(db, CycleCorrection) == 0 and db.session.get(Cycle, cycle.id).status == "awaiting_release"
    page = text(client.form_post(f"/loads/{cycle.id}/correct", {**data, "step": "correct"}))
    assert 'value="100"' in page and "holding time misread" in page and rows(db, CycleCorrection) == 0
    response = client.form_post(f"/loads/{cycle.id}/correct", {**data, "confirm_failure": "1"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Cycle, cycle.id).status == "failed" and rows(db, CycleCorrection) == 1
    assert db.session.get(Cycle, cycle.id).packs[0].status == "failed"


def test_a_correction_without_a_reason_is_refused_at_its_field(db, client, login_as, manager, actor, ready_steriliser,
                                                               packed):
    cycle = _failed_by_a_typo(db, actor, ready_steriliser, packed)
    login_as(manager)
    response = client.form_post(f"/loads/{cycle.id}/correct", correction_form(reason=""))
    assert response.status_code == 422 and 'id="reason-error"' in text(response)
    assert rows(db, CycleCorrection) == 0


def test_staff_neither_see_nor_reach_the_correction(db, on_tablet, actor, ready_steriliser, packed):
    cycle = _failed_by_a_typo(db, actor, ready_steriliser, packed)
    assert "Correct figures" not in text(on_tablet.get(f"/decontamination/loads/{cycle.id}"))
    assert on_tablet.get(f"/loads/{cycle.id}/correct").status_code == 403
    assert on_tablet.form_post(f"/loads/{cycle.id}/correct", correction_form()).status_code == 403
    assert rows(db, CycleCorrection) == 0


def test_a_data_loggers_load_offers_no_correction(db, client, login_as, manager, admin, ready_steriliser, packed):
    from compliance.auth.services import actor_for_api_key, create_api_key

    _row, key = create_api_key(actor_for_user(admin), ready_steriliser.site_id, "logger", NOW)
    cycle = services.record_cycle(actor_for_api_key(key, NOW), good_cycle(ready_steriliser, [packed()],
                                                                         temperature_c="143.6"), NOW)
    db.session.commit()
    login_as(manager)
    assert "Correct figures" not in text(client.get(f"/loads/{cycle.id}"))
    response = client.get(f"/loads/{cycle.id}/correct")
    assert response.status_code == 302
    assert "a data logger&#39;s record is not corrected by hand" in text(client.get(response.headers["Location"]))


# --- recalls ---------------------------------------------------------------------------------------

def test_recall_screen_lists_exactly_the_recalled_loads_and_closing_refuses_while_items_are_missing(
        db, client, login_as, manager, actor, make_steriliser, add_test, site, packed):
    steriliser = make_steriliser(site)
    for days in range(10, 0, -1):
        add_test(steriliser, "air_removal", at=NOW - timedelta(days=days, hours=1))
    add_test(steriliser, "spore", at=NOW - timedelta(days=10, minutes=30))
    before = released_load(db, actor, steriliser, packed, NOW - timedelta(days=9))
    add_test(steriliser, "spore", at=NOW - timedelta(days=3, minutes=30))
    after = [released_load(db, actor, steriliser, packed, NOW - timedelta(days=d)) for d in (2, 1)]
    services.record_test(actor, {"steriliser_id": steriliser.id, "kind": "spore", "result": "fail",
                                 "indicator_lot": "BI-9", "control_result": "grew"}, NOW)
    db.session.commit()
    recall = db.session.scalar(select(Recall))
    login_as(manager)
    assert f"/recalls/{recall.id}" in text(client.get("/recalls"))
    page = text(client.get(f"/recalls/{recall.id}"))
    assert sorted(int(x) for x in re.findall(r'<tr id="load-(\d+)"', page)) == sorted(c.id for c in after)
    assert f'id="load-{before.id}"' not in page
    assert "No recorded treatment used a pack from these loads." in page
    assert "Spore test repeated: not yet." in page and "Clients contacted: not yet." in page
    response = client.form_post(f"/recalls/{recall.id}/close", {"note": "done"})
    assert response.status_code == 422  # the confirmation box
    response = client.form_post(f"/recalls/{recall.id}/close", {"note": "done", "confirm": "y"})
    assert response.status_code == 409
    assert "not yet done: a retest of the spore test, 3 consecutive passing spore tests, clients contacted" in text(
        response)
    response = client.form_post(f"/recalls/{recall.id}/contacted", {"note": "phoned both clients"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Recall, recall.id).closed_at is None
    page = text(client.get(f"/recalls/{recall.id}"))
    assert "phoned both clients" in page and "Record that the clients were contacted" not in page


# --- who may see and do what -----------------------------------------------------------------------

@pytest.fixture
def one_of_each(db, actor, ready_steriliser, packed):
    """A released load, its pack and a recall at the manager's site."""
    cycle = released_load(db, actor, ready_steriliser, packed, NOW - timedelta(minutes=20))
    services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore", "result": "fail",
                                 "indicator_lot": "BI-9", "control_result": "grew"}, NOW)
    db.session.commit()
    pending = services.record_test(actor, {"steriliser_id": ready_steriliser.id, "kind": "spore",
                                           "result": "pending", "indicator_lot": "BI-10"}, NOW)
    db.session.commit()
    return {"cycle_id": cycle.id, "pack_id": cycle.packs[0].id, "code": cycle.packs[0].label_code,
            "recall_id": db.session.scalar(select(Recall.id)), "test_id": pending.id}


def _urls(app, ids: dict, method: str) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("sterilisation.") and method in rule.methods:
            url = rule.rule
            for name, value in ids.items():
                url = re.sub(rf"<(int:)?{name}>", str(value), url)
            urls.append(url)
    return urls


def test_every_sterilisation_screen_declares_the_action_it_needs(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("sterilisation."):
            assert getattr(app.view_functions[rule.endpoint], "required_action", None), rule.endpoint


def test_auditor_reads_the_logbook_loads_packs_and_recalls_but_every_post_is_refused(
        db, app, client, login_as, auditor, one_of_each):
    login_as(auditor)
    for url in ("/logbook", "/logbook?tab=tests", f"/loads/{one_of_each['cycle_id']}", f"/p/{one_of_each['code']}",
                "/recalls", f"/recalls/{one_of_each['recall_id']}", f"/packs/labels?ids={one_of_each['pack_id']}"):
        assert client.get(url).status_code == 200, url
    assert "Close the recall" not in text(client.get(f"/recalls/{one_of_each['recall_id']}"))
    assert client.get("/decontamination").status_code == 403
    posts = _urls(app, one_of_each, "POST")
    assert len(posts) >= 10
    for url in posts:
        assert client.form_post(url, {"note": "x", "reason": "wet", "confirm": "y"}).status_code == 403, url


def test_another_sites_load_pack_test_and_recall_are_not_found(db, app, client, login_as, outsider, one_of_each):
    login_as(outsider)
    for url in (f"/loads/{one_of_each['cycle_id']}", f"/decontamination/loads/{one_of_each['cycle_id']}",
                f"/p/{one_of_each['code']}", f"/recalls/{one_of_each['recall_id']}",
                f"/packs/labels?ids={one_of_each['pack_id']}", f"/packs/labels?cycle={one_of_each['cycle_id']}",
                f"/decontamination/packs/{one_of_each['pack_id']}",
                f"/decontamination/tests/{one_of_each['test_id']}/result"):
        assert client.get(url).status_code == 404, url
    for url in _urls(app, one_of_each, "POST"):
        if any(str(v) in url for v in one_of_each.values()):
            assert client.form_post(url, {"note": "x", "reason": "wet", "confirm": "y",
                                          "result": "fail"}).status_code == 404, url
    assert "PK-" not in text(client.get("/logbook")).split("<main", 1)[1]
    assert db.session.get(Cycle, one_of_each["cycle_id"]).status == "recalled"


def test_a_manager_of_two_sites_stays_in_the_room_of_the_site_chosen(db, client, login_as, make_user, site, make_site,
                                                                       make_steriliser):
    second = make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")
    make_steriliser(site, name="Jakarta autoclave")
    make_steriliser(second, name="Bandung autoclave")
    login_as(make_user("manager", [site, second]))
    page = text(client.get(f"/decontamination?site={second.id}"))
    assert "Bandung autoclave" in page and "Jakarta autoclave" not in page
    assert f"/decontamination/cycles/new?site={second.id}" in page
    assert "Bandung autoclave" in text(client.get(f"/decontamination/cycles/new?site={second.id}"))
    assert client.get("/decontamination?site=999999").status_code == 404
