"""The tablet through a Wi-Fi drop, in Chromium at 768×1024 (issue 16): a checklist answered offline is kept on
the tablet and sent once when the connection is back; a reload offline still shows the run and what is waiting;
the gate says there is no connection and never shows green, and keeps nothing to send later."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.checklists.models import Answer, CorrectiveAction
from compliance.sites.models import Site, User
from compliance.timeutil import utcnow
from compliance.treatments import services as care
from compliance.treatments.models import GateAttempt, TreatmentPack, TreatmentUnit

from .conftest import EMMA, EMMA_PIN, LONDON
from .test_checklists import ANSWER_URL, enter_number, item, start_run

pytestmark = pytest.mark.browser

PENDING = "Saved on this tablet, not yet sent"
FRIDGE_NOTE = "Fridge door left ajar; closed, checked again after 30 minutes: 5 °C."


def controlled(page) -> None:
    """Until the service worker controls the page (installed, activated, claimed)."""
    page.evaluate("() => navigator.serviceWorker.ready")
    page.wait_for_function("() => !!navigator.serviceWorker.controller")


def kept_copy(page, path: str) -> None:
    """Until the service worker keeps a copy of the page."""
    page.wait_for_function("""async (path) => {
        const names = await caches.keys();
        for (const n of names) { if (await (await caches.open(n)).match(path)) return true; }
        return false; }""", arg=path)


def queued(page) -> int:
    return page.evaluate("""() => new Promise((ok, ko) => {
        const r = indexedDB.open("tablet-queue", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("answers", {keyPath: "seq", autoIncrement: true});
        r.onsuccess = () => { const t = r.result.transaction("answers", "readonly");
                              const q = t.objectStore("answers").count();
                              q.onsuccess = () => { ok(q.result); r.result.close(); }; };
        r.onerror = () => ko(r.error); })""")


def stored(live, run_id: int) -> list[Answer]:
    with live.session() as s:
        rows = list(s.scalars(select(Answer).where(Answer.run_id == run_id).order_by(Answer.id)))
        s.expunge_all()
        return rows


def test_answers_given_offline_are_kept_shown_after_a_reload_and_sent_once(tablet, live, shot, assert_accessible):
    page = tablet(LONDON, EMMA, EMMA_PIN)
    controlled(page)
    run_id = start_run(page, live, "opening")
    path = f"/tablet/runs/{run_id}"
    kept_copy(page, path)
    posted = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" and ANSWER_URL.search(r.url) else None)
    before = utcnow()

    page.context.set_offline(True)
    expect(page.locator("#offline-banner")).to_be_visible()
    for key in ("surfaces_clean", "disinfectant_fresh", "sharps_below_line"):
        item(page, key).locator("button[name=value][value='yes']").click()
        expect(item(page, key).locator(".pending-line")).to_contain_text(PENDING)
    enter_number(page, "fridge_temp", "11")
    fridge = item(page, "fridge_temp")
    fridge.locator("textarea[name=note]").fill(FRIDGE_NOTE)
    fridge.locator("button[type=submit]:not([name=value])").first.click()
    expect(fridge.locator(".pending-line")).to_contain_text(PENDING)
    item(page, "hand_soap").locator("button[name=value][value='yes']").click()
    expect(page.locator("#offline-banner")).to_have_text("Offline — 5 answers waiting on this tablet")
    assert queued(page) == 5 and stored(live, run_id) == []
    assert_accessible(page, "offline-banner")
    shot(page, "offline-five-waiting")

    page.reload()  # offline: the tablet's copy of the run, with the five answers still waiting
    expect(page.locator("h1")).to_contain_text("Site opening")
    expect(page.locator(".pending-line")).to_have_count(5)
    expect(page.locator("#offline-banner")).to_have_text("Offline — 5 answers waiting on this tablet")
    shot(page, "offline-reloaded")

    with page.expect_navigation():  # once this run's answers are sent the page reloads to show them stored
        page.context.set_offline(False)
    page.wait_for_load_state("load")
    page.wait_for_function("() => document.getElementById('offline-banner').hidden")
    rows = stored(live, run_id)
    assert len(rows) == 5 and len({r.idempotency_key for r in rows}) == 5
    # Given in the server's time (the tablet's clock corrected by the last Date header, to the second).
    assert all(before - timedelta(seconds=2) <= r.answered_at <= r.received_at for r in rows)
    fridge_row = next(r for r in rows if r.value == "11" or str(r.value) == "11.00" or r.note)
    assert fridge_row.note == FRIDGE_NOTE
    with live.session() as s:
        assert s.scalar(select(func.count()).select_from(CorrectiveAction)
                        .where(CorrectiveAction.run_id == run_id)) == 1
    assert queued(page) == 0
    expect(page.locator(".pending-line")).to_have_count(0)
    sent = len(posted)

    page.context.set_offline(True)  # a second drop and reconnect sends nothing
    page.context.set_offline(False)
    page.wait_for_timeout(1500)
    assert len(posted) == sent and len(stored(live, run_id)) == 5
    shot(page, "back-online")


def _open_treatment(live) -> int:
    with live.session() as s:
        emma = s.scalar(select(User).where(User.email == "emma@demo.clinic"))
        site = s.scalar(select(Site).where(Site.name == LONDON))
        actor, now = actor_for_user(emma), utcnow()
        client = care.create_client(actor, {"site_id": site.id}, now)
        room = next(r for r in site.rooms if r.kind == "treatment")
        treatment = care.start_treatment(actor, {"room_id": room.id, "client_id": client.id,
                                                 "procedure": "face", "method": "pen"}, now)
        s.commit()
        return treatment.id


def test_offline_the_gate_says_no_connection_never_green_and_keeps_nothing(tablet, live, shot, assert_accessible):
    treatment_id = _open_treatment(live)
    page = tablet(LONDON, EMMA, EMMA_PIN)
    controlled(page)
    page.goto(f"/tablet/treatments/{treatment_id}")
    page.context.set_offline(True)
    page.fill("#code", "PK-7KQ2M4XD")
    page.locator(".scan-box button[type=submit]").click()
    expect(page.locator("#gate .gate-offline")).to_contain_text(
        "No connection — do not use any item until it has been checked")
    expect(page.locator(".gate-ok")).to_have_count(0)
    assert queued(page) == 0
    assert_accessible(page, "gate-offline")
    shot(page, "gate-offline")

    page.reload()  # the scan screen is never shown from a copy
    expect(page.locator("h1")).to_contain_text("No connection — do not use any item until it has been checked")
    expect(page.locator(".gate-ok")).to_have_count(0)
    assert_accessible(page, "gate-offline-page")
    page.context.set_offline(False)
    page.wait_for_timeout(1000)
    with live.session() as s:
        for model in (GateAttempt, TreatmentPack, TreatmentUnit):
            assert s.scalar(select(func.count()).select_from(model).where(model.treatment_id == treatment_id)) == 0
    assert re.search(r"/tablet/treatments/\d+$", page.url)


def test_the_queue_is_per_person_and_signing_out_with_answers_waiting_asks_first(tablet, live, shot):
    """Emma's answer kept on the tablet is not sent while Tom is signed in (not as his, not at all); switching
    person with it waiting asks first; it is sent, as Emma's, when she signs in again."""
    from .conftest import pin_sign_in

    page = tablet(LONDON, EMMA, EMMA_PIN)
    controlled(page)
    run_id = start_run(page, live, "closing")
    kept_copy(page, f"/tablet/runs/{run_id}")
    first = items_of_run(live, run_id)[0]
    page.context.set_offline(True)
    item(page, first).locator("button[name=value][value='yes']").click()
    expect(item(page, first).locator(".pending-line")).to_contain_text(PENDING)
    page.route(ANSWER_URL, lambda route: route.abort())  # back online, but the answers can't get through yet
    page.context.set_offline(False)
    expect(page.locator("#offline-banner")).to_have_text("1 answers waiting to be sent")
    assert queued(page) == 1 and stored(live, run_id) == []

    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.locator("form[action$='/tablet/switch'] button").click()
    page.wait_for_url("**/tablet")
    assert asked and asked[0].startswith("1 answers are kept on this tablet and not sent yet")

    page.unroute(ANSWER_URL)
    posted = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" and ANSWER_URL.search(r.url) else None)
    pin_sign_in(page, "Tom Hughes", "4567")
    page.wait_for_timeout(1500)
    assert posted == [] and queued(page) == 1 and stored(live, run_id) == []  # not Tom's to send
    tom_asked = []
    page.on("dialog", lambda d: (tom_asked.append(d.message), d.accept()))
    page.locator("form[action$='/tablet/switch'] button").click()
    page.wait_for_url("**/tablet")
    assert tom_asked == []  # nothing of Tom's waits

    pin_sign_in(page, EMMA, EMMA_PIN)
    page.wait_for_function("() => document.getElementById('offline-banner').hidden")
    rows = stored(live, run_id)
    with live.session() as s:
        emma = s.scalar(select(User.id).where(User.email == "emma@demo.clinic"))
    assert len(rows) == 1 and rows[0].answered_by_id == emma and queued(page) == 0
    shot(page, "sent-as-emma")


def items_of_run(live, run_id: int) -> list[str]:
    from compliance.checklists.models import ChecklistRun

    with live.session() as s:
        return [i.key for i in s.get(ChecklistRun, run_id).version.items]
