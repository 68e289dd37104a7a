"""The treatment screens: the tablet flow through the point-of-use gate, overrides, finishing, adverse events,
and the manager's lists, trace, look-back and overrides."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser

import pytest
import time_machine
from markupsafe import escape
from sqlalchemy import func, select

from compliance.guidelines import load_pack
from compliance.sites.models import Room
from compliance.sterilisation import services as steri
from compliance.treatments.models import (AdverseEvent, Client, GateAttempt, GateOverride, LookBack, Treatment,
                                          TreatmentPack, TreatmentUnit)
from compliance.treatments.views import is_pack_code
from tests.conftest import PASSWORD, PIN
from tests.treatments.conftest import NOW, barcode, good_cycle

CLIENT_NAME = "Siti Rahmawati"


@pytest.fixture(autouse=True)
def frozen():
    """The views take `now` from the clock: hold it at the factories' NOW (10:00 in Jakarta)."""
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def on_tablet(client, enrol_tablet, site, trained_nurse):
    """The trained nurse signed in by PIN on the site's enrolled tablet."""
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{trained_nurse.id}", {"pin": PIN}).status_code == 302
    return client


@pytest.fixture
def named_client(db, client_row):
    client_row.name, client_row.phone = CLIENT_NAME, "+62 811 000 111"
    db.session.commit()
    return client_row


def rows(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def text(response) -> str:
    return response.get_data(as_text=True)


def title(rule_id: str) -> str:
    return str(escape(load_pack().rules[rule_id].title_in("en")))


def scan(client, treatment_id: int, code: str, htmx: bool = False):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.form_post(f"/tablet/treatments/{treatment_id}/scan", {"code": code}, headers=headers)


def finish_form(**changes) -> dict:
    data = {"passes": "8", "needle_depth_mm": "0.5", "aftercare": "Petroleum jelly", "ended_at": "2026-11-25T10:00",
            "products-0-name": "Lidocaine 5% cream", "products-0-lot": "LD-22"}
    data.update(changes)
    return data


def awaiting_pack(db, actor, steriliser, packed):
    """A pack whose load passed its checks but was not released yet."""
    pack = packed()
    steri.record_cycle(actor, good_cycle(steriliser, [pack]), NOW)
    db.session.commit()
    return pack


def load_of_two(db, actor, steriliser, packed):
    """Two packs sterilised in one released load."""
    first, second = packed(), packed()
    cycle = steri.record_cycle(actor, good_cycle(steriliser, [first, second]), NOW)
    steri.release_cycle(actor, cycle.id, NOW)
    db.session.commit()
    return first, second


class TableCells(HTMLParser):
    """The header and cells of the table with a given id, as text."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.cell = table_id, False, None
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(unescape(" ".join("".join(self.cell).split())))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def page_table(html: str, table_id: str = "trace-table") -> list[list[str]]:
    parser = TableCells(table_id)
    parser.feed(html)
    return parser.rows


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text(response))))


# --- pure helper -----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,is_pack", [
    ("PK-7KQ2M4XD", True), ("pk-7kq2m4xd", True), ("https://clinic.example/p/PK-7KQ2M4XD", True),
    ("SU-ABCD2345", False), ("(01)09506000134352(17)271231(10)LOT42(21)S1", False), ("0109506000134352", False),
])
def test_the_scan_box_tells_a_pack_label_from_a_unit_code(raw, is_pack):
    assert is_pack_code(raw) is is_pack


# --- the tablet flow -----------------------------------------------------------------------------------

def test_trained_staff_start_screen_scan_a_pack_and_a_unit_and_finish_with_a_sharps_container(
        db, on_tablet, site, trained_nurse, client_row, sterile_pack, make_lot, container):
    client = on_tablet
    pack = sterile_pack()
    make_lot()
    page = client.get("/tablet/treatments/new")
    assert page.status_code == 200 and "Start a treatment" in text(page)
    response = client.form_post("/tablet/treatments/new", {
        "client_choice": "existing", "client_code": "c-test22", "room_id": str(site.rooms[0].id),
        "procedure": "acne_scars", "method": "roller", "practitioner_id": str(trained_nurse.id)})
    assert response.status_code == 302, text(response)
    treatment = db.session.scalar(select(Treatment))
    assert response.headers["Location"].endswith(f"/tablet/treatments/{treatment.id}/screening")
    assert treatment.practitioner_id == trained_nurse.id and treatment.client_id == client_row.id

    response = client.form_post(f"/tablet/treatments/{treatment.id}/screening", {
        "active_skin_infection": "no", "herpes_history": "no", "metal_allergy": "yes", "skin_type": "IV",
        "age_confirmed": "yes"})
    assert response.status_code == 302
    db.session.refresh(treatment)
    assert treatment.screening["skin_type"] == "IV" and treatment.screening["metal_allergy"] is True

    green = scan(client, treatment.id, pack.label_code)
    assert green.status_code == 200 and "gate-ok" in text(green) and "Accepted: use it" in text(green)
    assert pack.label_code in text(green)
    unit = scan(client, treatment.id, barcode("SER-1"), htmx=True)
    assert unit.status_code == 200 and "gate-ok" in text(unit) and "SER-1" in text(unit)
    assert "<html" not in text(unit) and 'id="gate"' in text(unit)  # htmx gets the gate panel only
    assert rows(db, TreatmentPack) == 1 and rows(db, TreatmentUnit) == 1

    response = client.form_post(f"/tablet/treatments/{treatment.id}/finish",
                                finish_form(sharps_container_id=str(container.id)))
    assert response.status_code == 302, text(response)
    db.session.refresh(treatment)
    assert treatment.status == "finished" and treatment.passes == 8
    assert treatment.sharps_container_id == container.id
    assert treatment.products == [{"name": "Lidocaine 5% cream", "lot": "LD-22"}]
    summary = client.get(f"/tablet/treatments/{treatment.id}")
    assert "Treatment finished" in text(summary) and pack.label_code in text(summary) and "SC-1" in text(summary)


def test_a_new_client_gets_a_code_and_staff_cannot_give_a_name(db, on_tablet, site, trained_nurse):
    response = on_tablet.form_post("/tablet/treatments/new", {
        "client_choice": "new", "name": "Not Stored", "phone": "123", "room_id": str(site.rooms[0].id),
        "procedure": "face", "method": "pen", "practitioner_id": str(trained_nurse.id)})
    assert response.status_code == 302
    created = db.session.scalar(select(Client))
    assert created.code.startswith("C-") and created.name == "" and created.phone == ""
    page = on_tablet.get(response.headers["Location"], follow_redirects=True)
    assert created.code in text(page)


def test_unknown_client_code_is_refused_at_the_field(db, on_tablet, site, trained_nurse):
    response = on_tablet.form_post("/tablet/treatments/new", {
        "client_choice": "existing", "client_code": "C-NOPE99", "room_id": str(site.rooms[0].id),
        "procedure": "face", "method": "pen", "practitioner_id": str(trained_nurse.id)})
    assert response.status_code == 404 and 'id="client_code-error"' in text(response)
    assert rows(db, Treatment) == 0


def test_pack_from_a_load_awaiting_release_is_refused_in_red_with_no_override_and_only_the_attempt_is_stored(
        db, on_tablet, actor, start, ready_steriliser, packed):
    treatment = start()
    pack = awaiting_pack(db, actor, ready_steriliser, packed)
    response = scan(on_tablet, treatment.id, pack.label_code)
    page = text(response)
    assert response.status_code == 409 and "gate-bad" in page and "Refused: do not use" in page
    assert f"Pack {pack.label_code} is not from a released load: its load is awaiting release." in page
    assert title("spaulding-critical") in page
    assert "Manager override" not in page and "Override and use it" not in page
    assert "no manager&#39;s word makes this item sterile or unused" in page and "abandon the treatment" in page
    assert rows(db, GateAttempt) == 1 and rows(db, TreatmentPack) == 0
    attempt = db.session.scalar(select(GateAttempt))
    assert attempt.reasons[0]["code"] == "load_not_released"
    assert db.session.get(type(pack), pack.id).status != "used"


def test_an_unscreened_client_is_refused(db, on_tablet, start, sterile_pack):
    treatment = start(screened=False)
    pack = sterile_pack()
    page = on_tablet.get(f"/tablet/treatments/{treatment.id}")
    assert "screening is not recorded yet" in text(page)
    response = scan(on_tablet, treatment.id, pack.label_code)
    assert response.status_code == 409
    assert "The client&#39;s screening is not recorded yet." in text(response)
    assert title("client-screening") in text(response)
    assert rows(db, TreatmentPack) == 0 and rows(db, GateAttempt) == 1


def test_a_used_unit_is_refused_and_no_override_is_offered(db, on_tablet, start, make_lot):
    make_lot()
    first, second = start(), start()
    assert scan(on_tablet, first.id, barcode("ONCE")).status_code == 200
    response = scan(on_tablet, second.id, barcode("ONCE"))
    assert response.status_code == 409 and "was already used" in text(response)
    assert "No override is possible" in text(response) and "Override and use it" not in text(response)


def test_an_unknown_barcode_is_an_error_at_the_scan_box_not_a_refusal(db, on_tablet, start):
    treatment = start()
    response = scan(on_tablet, treatment.id, "(01)09506000134352(17)271231(10)NOLOT(21)X1", htmx=True)
    assert response.status_code == 404 and 'id="code-error"' in text(response)
    assert rows(db, GateAttempt) == 0


def test_manager_override_with_the_right_password_records_the_usage_as_an_override(
        db, on_tablet, login_as, actor, manager, start, sterile_pack, untrained_nurse):
    treatment = start(practitioner=untrained_nurse)
    pack = sterile_pack()
    refused = scan(on_tablet, treatment.id, pack.label_code)
    assert refused.status_code == 409 and "Manager override" in text(refused)
    attempt = db.session.scalar(select(GateAttempt))
    response = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/refusals/{attempt.id}/override", {
        "manager_pick": manager.email, "secret": PASSWORD, "reason": "Printout checked by phone with the nurse"},
        headers={"HX-Request": "true"})
    assert response.status_code == 200 and "gate-ok" in text(response)
    assert "Used with a manager's override" in text(response)
    usage = db.session.scalar(select(TreatmentPack))
    assert usage.pack_id == pack.id and usage.override_id is not None
    db.session.refresh(treatment)
    assert treatment.supervised_by_id == manager.id

    login_as(manager)
    detail = text(on_tablet.get(f"/treatments/{treatment.id}"))
    assert "Overrides: findings" in detail and "Printout checked by phone with the nurse" in detail
    assert "Mira Manager overrode the refusal of pack" in detail
    listing = text(on_tablet.get("/treatments"))
    assert f'id="treatment-{treatment.id}"' in listing and '<span class="pill pill-bad">1</span>' in listing
    findings = text(on_tablet.get("/overrides"))
    assert "Printout checked by phone with the nurse" in findings and pack.label_code in findings


def test_manager_override_with_a_wrong_password_uses_nothing(
        db, on_tablet, actor, manager, start, sterile_pack, untrained_nurse):
    treatment = start(practitioner=untrained_nurse)
    pack = sterile_pack()
    scan(on_tablet, treatment.id, pack.label_code)
    attempt = db.session.scalar(select(GateAttempt))
    response = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/refusals/{attempt.id}/override", {
        "manager_email": manager.email, "secret": "not-the-password", "reason": "Trust me"})
    assert response.status_code == 403 and 'id="secret-error"' in text(response)
    assert "the manager&#39;s password or PIN is not right" in text(response)
    assert rows(db, TreatmentPack) == 0 and rows(db, GateOverride) == 0
    db.session.refresh(manager)
    assert manager.pin_failed_count == 1  # kept: a PIN can't be guessed through the override form either


def test_an_override_of_another_treatments_refusal_is_not_found(db, on_tablet, actor, manager, start,
                                                                ready_steriliser, packed):
    first, second = start(), start()
    pack = awaiting_pack(db, actor, ready_steriliser, packed)
    scan(on_tablet, first.id, pack.label_code)
    attempt = db.session.scalar(select(GateAttempt))
    response = on_tablet.form_post(f"/tablet/treatments/{second.id}/refusals/{attempt.id}/override", {
        "manager_email": manager.email, "secret": PASSWORD, "reason": "x"})
    assert response.status_code == 404 and rows(db, GateOverride) == 0


# --- finishing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("changes,field", [
    ({"passes": "-1"}, "passes"),
    ({"passes": "1000"}, "passes"),
    ({"needle_depth_mm": "40"}, "needle_depth_mm"),
    ({"ended_at": "2026-11-25T09:00"}, "ended_at"),  # the treatment started at 10:00 Jakarta
])
def test_implausible_settings_are_refused_naming_the_field_and_nothing_is_stored(db, on_tablet, start, changes,
                                                                                 field, needled):
    treatment = needled(start())
    response = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/finish", finish_form(**changes))
    assert 400 <= response.status_code < 500
    assert f'id="{field}-error"' in text(response) and f'href="#{field}"' in text(response)
    db.session.refresh(treatment)
    assert treatment.status == "open" and treatment.passes is None and treatment.products == []


def test_twelve_passes_need_the_practitioners_confirmation(db, on_tablet, start, needled):
    treatment = needled(start())
    refused = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/finish", finish_form(passes="12"))
    assert refused.status_code == 422 and 'id="passes_confirmed-error"' in text(refused)
    assert "12 passes is outside 6–10" in text(refused)
    db.session.refresh(treatment)
    assert treatment.status == "open"
    stored = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/finish",
                                 finish_form(passes="12", passes_confirmed="y"))
    assert stored.status_code == 302
    db.session.refresh(treatment)
    assert treatment.status == "finished" and treatment.passes == 12 and treatment.passes_confirmed


def test_units_used_need_a_sharps_container(db, on_tablet, start, make_lot, container, needled):
    make_lot()
    treatment = needled(start())
    scan(on_tablet, treatment.id, barcode("NEEDS-BIN"))
    response = on_tablet.form_post(f"/tablet/treatments/{treatment.id}/finish", finish_form())
    assert response.status_code == 422 and 'id="sharps_container_id-error"' in text(response)
    db.session.refresh(treatment)
    assert treatment.status == "open"


# --- who sees what -------------------------------------------------------------------------------

def test_staff_see_client_codes_but_never_names(db, on_tablet, login_as, manager, named_client, start, container,
                                                needled):
    treatment = needled(start())
    for url in ("/tablet/treatments/new", f"/tablet/treatments/{treatment.id}", "/treatments",
                f"/treatments/{treatment.id}", f"/clients/{named_client.id}"):
        page = on_tablet.get(url)
        assert page.status_code == 200, url
        assert "C-TEST22" in text(page) and CLIENT_NAME not in text(page) and "811 000" not in text(page), url
    assert on_tablet.form_post(f"/tablet/treatments/{treatment.id}/finish", finish_form()).status_code == 302
    assert CLIENT_NAME not in text(on_tablet.get(f"/tablet/treatments/{treatment.id}"))
    login_as(manager)
    assert CLIENT_NAME in text(on_tablet.get(f"/clients/{named_client.id}"))
    assert CLIENT_NAME in text(on_tablet.get("/treatments"))


def test_another_sites_treatment_is_not_found(db, on_tablet, login_as, manager, other_site, outsider):
    room = db.session.scalar(select(Room).where(Room.site_id == other_site.id))
    stranger = Client(organisation_id=other_site.organisation_id, site_id=other_site.id, code="C-OTHER2")
    db.session.add(stranger)
    db.session.flush()
    theirs = Treatment(site_id=other_site.id, room_id=room.id, client_id=stranger.id, practitioner_id=outsider.id,
                       procedure="face", status="open", started_at=NOW)
    db.session.add(theirs)
    db.session.commit()
    assert on_tablet.get(f"/tablet/treatments/{theirs.id}").status_code == 404
    assert scan(on_tablet, theirs.id, "PK-AAAAAAAA").status_code == 404
    assert on_tablet.get(f"/treatments/{theirs.id}/adverse-events/new").status_code == 404
    login_as(manager)
    assert on_tablet.get(f"/treatments/{theirs.id}").status_code == 404
    assert on_tablet.get(f"/clients/{stranger.id}").status_code == 404
    assert "C-OTHER2" not in text(on_tablet.get("/treatments"))
    assert on_tablet.get("/trace?client=C-OTHER2").status_code == 404


def test_auditor_reads_treatments_and_trace_but_every_post_is_refused(app, db, client, login_as, auditor, start,
                                                                      sterile_pack):
    treatment = start()
    login_as(auditor)
    for url in ("/treatments", f"/treatments/{treatment.id}", "/trace", "/trace?client=C-TEST22", "/overrides",
                f"/clients/{treatment.client_id}"):
        assert client.get(url).status_code == 200, url
    ids = {"treatment_id": treatment.id, "attempt_id": 1}
    posts = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("treatments.") and "POST" in r.methods]
    assert len(posts) >= 6
    for rule in posts:
        url = rule.rule
        for name, value in ids.items():
            url = url.replace(f"<int:{name}>", str(value))
        assert client.form_post(url, {"code": "PK-X", "passes": "8"}).status_code == 403, url


# --- adverse events and look-back ---------------------------------------------------------------

def test_an_infection_opens_a_look_back_that_lists_exactly_the_exposed_treatments(
        db, on_tablet, login_as, manager, actor, start, ready_steriliser, packed, sterile_pack, make_lot):
    make_lot("LOT42")
    make_lot("LOT99")
    same_load_a, same_load_b = load_of_two(db, actor, ready_steriliser, packed)
    elsewhere = sterile_pack()
    infected, shared_load, shared_lot, unrelated = start(), start(), start(), start()
    for treatment, code in ((infected, same_load_a.label_code), (infected, barcode("U1")),
                            (shared_load, same_load_b.label_code), (shared_lot, barcode("U2")),
                            (unrelated, elsewhere.label_code), (unrelated, barcode("U3", lot="LOT99"))):
        assert scan(on_tablet, treatment.id, code).status_code == 200, code

    response = on_tablet.form_post(f"/treatments/{infected.id}/adverse-events/new", {
        "kind": "infection", "severity": "moderate", "description": "Pustules on the cheek, day 3"})
    assert response.status_code == 302
    page = text(on_tablet.get(response.headers["Location"]))
    assert "Look-back opened" in page and "/look-backs/" not in page  # staff: no trace.read, no link
    look = db.session.scalar(select(LookBack))
    event = db.session.scalar(select(AdverseEvent))
    assert look.adverse_event_id == event.id and event.is_reportable

    login_as(manager)
    detail = text(on_tablet.get(f"/treatments/{infected.id}"))
    assert f"/look-backs/{look.id}" in detail
    page = text(on_tablet.get(f"/look-backs/{look.id}"))
    assert [int(row[0]) for row in page_table(page, "index-table")[1:]] == [infected.id]
    assert {int(row[0]) for row in page_table(page, "exposed-table")[1:]} == {shared_load.id, shared_lot.id}
    exposed = csv_rows(on_tablet.get(f"/look-backs/{look.id}?format=csv"))
    assert {int(r[0]) for r in exposed[1:]} == {shared_load.id, shared_lot.id}
    assert all(r[4] == "C-TEST22" for r in exposed[1:])
    shared = {int(r[0]): r[-1] for r in exposed[1:]}
    assert "load" in shared[shared_load.id] and shared[shared_lot.id] == "lot LOT42"


def test_an_adverse_event_in_the_future_is_refused_at_the_field(db, on_tablet, start):
    treatment = start()
    response = on_tablet.form_post(f"/treatments/{treatment.id}/adverse-events/new", {
        "kind": "redness", "severity": "mild", "onset_at": "2026-11-27T10:00"})
    assert response.status_code == 422 and 'id="onset_at-error"' in text(response)
    assert rows(db, AdverseEvent) == 0


# --- trace ---------------------------------------------------------------------------------------

def test_the_trace_csv_parses_back_to_the_pages_rows(db, client, login_as, manager, actor, start, sterile_pack,
                                                      make_lot, add_test, ready_steriliser):
    from compliance.treatments import services

    make_lot()
    first, second = start(), start()
    services.add_pack(actor, first.id, sterile_pack().label_code, NOW)
    services.add_unit(actor, first.id, barcode("T1"), NOW)
    services.add_unit(actor, second.id, barcode("T2"), NOW)
    db.session.commit()
    login_as(manager)
    for query in ("client=C-TEST22", "mode=lookback&lot=LOT42", f"mode=lookback&steriliser={ready_steriliser.id}"):
        page = client.get(f"/trace?{query}")
        assert page.status_code == 200, query
        shown = page_table(text(page))
        exported = client.get(f"/trace?{query}&format=csv")
        assert exported.mimetype == "text/csv"
        assert csv_rows(exported) == shown, query
        assert len(shown) > 1
    traced = csv_rows(client.get("/trace?client=C-TEST22&format=csv"))
    assert traced[0][:3] == ["Treatment", "Started", "Time zone"]
    assert traced[1][1] == "2026-11-25 10:00" and traced[1][2] == "Asia/Jakarta"
    pack_row = next(r for r in traced if r[7] == "Pack")
    assert pack_row[13].startswith("Pass 2026-11-25 08:00")  # that day's air-removal test, local time
    assert pack_row[14].startswith("Pass 2026-11-22")          # the spore test before the load
    assert pack_row[11] == "Released" and pack_row[12] == "2026-11-25 10:00"  # released at NOW
    assert {r[15] for r in traced if r[7] == "Single-use unit"} == {"LOT42"}


def test_a_look_back_by_an_unknown_lot_says_so(db, client, login_as, manager):
    login_as(manager)
    response = client.get("/trace?mode=lookback&lot=NOPE")
    assert response.status_code == 404 and 'id="lot-error"' in text(response)


def test_recall_reached_lists_the_treatments_and_clients_a_recall_reached(
        db, client, login_as, manager, actor, start, sterile_pack, named_client, add_test, ready_steriliser):
    from compliance.treatments import services

    treatment = start()
    services.add_pack(actor, treatment.id, sterile_pack().label_code, NOW)
    db.session.commit()
    spore = add_test(ready_steriliser, "spore", result="pending", at=NOW + timedelta(minutes=5))
    steri.record_test_result(actor, spore.id, {"result": "fail", "control_result": "grew"},
                             NOW + timedelta(hours=1))
    db.session.commit()
    recall_id = db.session.scalar(select(func.max(steri.Recall.id)))
    login_as(manager)
    partial = client.get(f"/recalls/{recall_id}/reached", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in text(partial)
    assert "C-TEST22" in text(partial) and CLIENT_NAME in text(partial)
    assert re.search(rf'/treatments/{treatment.id}"', text(partial))
