"""Checklists on the tablet, in Chromium: tapping through a run, the note an out-of-limit value demands, a double
tap and a replayed request stored once, the site's language, axe, and the size of one answer's response.

Written against the screens' contract: GET /tablet/checklists lists the day's checklists with a start form
(POST /tablet/checklists/start, template_id); GET /tablet/runs/<id> shows each item as
<form class="checklist-item" data-item-key="KEY"> with big buttons name="value" (yes/no, a tick's yes, a choice's
values), number inputs name="value", a note textarea name="note" shown when the server demands it and a
server-rendered hidden idempotency_key; htmx posts each answer, one tap one request, to /tablet/runs/<id>/answers.
The whole module skips (reason: "checklist screens not built yet") only while GET /tablet/checklists answers 404.
"""
from __future__ import annotations

import http.client
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from compliance.checklists.models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction
from compliance.checklists.services import current_answers, current_version
from compliance.demo import ORG_NAME
from compliance.sites.models import Organisation

from .conftest import EMMA, EMMA_PIN, JAKARTA, LONDON, ROOT, SARI, SARI_PIN

ANSWER_URL = re.compile(r"/tablet/runs/(\d+)/answers$")
RESPONSE_BUDGET = 20 * 1024
FRIDGE_NOTE = "Pintu kulkas tidak tertutup rapat; sudah ditutup, suhu dicek lagi 30 menit kemudian: 5 °C."


@pytest.fixture(scope="module", autouse=True)
def checklist_screens(browser, live):
    """Skip the module only while the screens are not there: GET /tablet/checklists answers 404.
    (Chromium first: without it the browser tests skip, or fail in CI, before the server is started.)"""
    host, port = urlsplit(live.url).hostname, urlsplit(live.url).port
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/tablet/checklists")
        status = conn.getresponse().status
    finally:
        conn.close()
    if status == 404:
        pytest.skip("checklist screens not built yet")


pytestmark = pytest.mark.browser


# --- the data, read in the test process ------------------------------------------------------------

def items_of(live, key: str) -> list[dict]:
    """The current version's items of the demo organisation's checklist `key`, in order."""
    with live.session() as s:
        template = s.scalar(select(ChecklistTemplate).join(Organisation).where(
            Organisation.name == ORG_NAME, ChecklistTemplate.key == key))
        version = current_version(template)
        return [{"id": i.id, "key": i.key, "kind": i.kind, "required": i.is_required, "label": dict(i.label),
                 "choices": list(i.choices or ())} for i in version.items]


def template_id(live, key: str) -> int:
    with live.session() as s:
        return s.scalar(select(ChecklistTemplate.id).join(Organisation).where(
            Organisation.name == ORG_NAME, ChecklistTemplate.key == key))


def stored(live, run_id: int) -> dict:
    """The run as stored: complete or not, its answers (all of them, and those in force), its actions."""
    with live.session() as s:
        run = s.get(ChecklistRun, run_id)
        keyed = {a.item.key: a for a in current_answers(run).values()}
        return {
            "completed": run.completed_at is not None,
            "answers": len(run.answers),
            "current": {k: {"value": a.value, "note": a.note, "key": a.idempotency_key} for k, a in keyed.items()},
            "actions": [c.what for c in s.scalars(select(CorrectiveAction).where(CorrectiveAction.run_id == run_id))],
        }


# --- the screens, driven as a person would ------------------------------------------------------

def start_run(page, live, key: str) -> int:
    """From the day's checklists, tap the checklist's start button (the first room, if it offers rooms)."""
    tid = template_id(live, key)
    page.goto("/tablet/checklists")
    form = page.locator(f"form:has(input[name=template_id][value='{tid}'])")
    button = page.locator(f"button[name=template_id][value='{tid}']").or_(
        form.locator("button[type=submit], button:not([type])")).first
    button.click()
    page.wait_for_url(re.compile(r"/tablet/runs/\d+(#.*)?$"))
    return int(re.search(r"/tablet/runs/(\d+)", page.url).group(1))


def item(page, key: str):
    return page.locator(f"form.checklist-item[data-item-key='{key}']")


def is_answer_post(r) -> bool:
    request = getattr(r, "request", r)
    return request.method == "POST" and bool(ANSWER_URL.search(urlsplit(request.url).path))


def settle(page) -> None:
    """Until htmx has swapped its answer in (no request in flight, nothing swapping or settling)."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def send(page, action):
    """Do `action` (a tap) and return the answer's response, once htmx has put it on the screen."""
    with page.expect_response(is_answer_post) as info:
        action()
    settle(page)
    return info.value


def tap(page, key: str, value: str):
    return send(page, lambda: item(page, key).locator(f"button[name=value][value='{value}']").click())


def submit(page, key: str):
    """Tap the item's own submit button (Save), not an answer button."""
    form = item(page, key)
    button = form.locator("button[type=submit]:not([name=value]), button:not([type]):not([name=value]), "
                          "input[type=submit]").first
    return send(page, button.click)


def enter_number(page, key: str, text: str) -> None:
    """Type a number: on the item's keypad when it has one (a tablet has no keyboard out), else into the input."""
    form = item(page, key)
    field = form.locator("input[name=value]")
    keypad = form.locator(".keypad")
    if keypad.count():
        while field.input_value():
            keypad.locator("[data-key='clear']").click()
        for ch in text:
            keypad.locator(f"[data-key='{ch}']").click()
    else:
        field.fill(text)
    assert field.input_value() == text


def answer(page, spec: dict, value: str | None = None):
    """Answer an item the way its kind is answered on the screen; returns the answer's response."""
    key, kind = spec["key"], spec["kind"]
    if kind in ("yes_no", "tick"):
        return tap(page, key, value or "yes")
    if kind == "choice":
        value = value or spec["choices"][len(spec["choices"]) // 2]
        form = item(page, key)
        if form.locator(f"button[name=value][value='{value}']").count():
            return tap(page, key, value)
        if form.locator("select[name=value]").count():
            form.locator("select[name=value]").select_option(value)
        else:
            form.locator(f"input[name=value][value='{value}']").check()
        return submit(page, key)
    if kind == "number":
        enter_number(page, key, value or "5")
        return submit(page, key)
    if kind in ("text", "scan"):
        item(page, key).locator("[name=value]").fill(value or "tidak ada")
        return submit(page, key)
    raise AssertionError(f"this test does not answer a {kind} item ({key})")


def answer_fridge_out_of_limits(page, live, run_id: int, without_note_first: bool = False, check=None,
                                shot=None) -> list:
    """11 °C on the opening checklist (limits 2–8) demands a note: type it and submit.

    The screen may show the note field as soon as the value is out of limits; whether it does or not, a submit
    without the note is refused by the server, stores nothing and brings the item back with its note field
    shown (`without_note_first` tries that first; `check(page, name)` is then run on that state).
    """
    responses = []
    enter_number(page, "fridge_temp", "11")
    note = item(page, "fridge_temp").locator("textarea[name=note]")
    if shot:
        shot(page, "fridge-out-of-limits")
    if without_note_first or not note.is_visible():
        if note.is_visible():
            note.fill("")
        responses.append(submit(page, "fridge_temp"))
        assert not responses[-1].ok, f"accepted without the note it demands: {responses[-1].status}"
        assert "fridge_temp" not in stored(live, run_id)["current"], "stored without the note it demands"
        expect(note).to_be_visible()
        if check:
            check(page, "run-note-demanded")
        if item(page, "fridge_temp").locator("input[name=value]").input_value() != "11":
            enter_number(page, "fridge_temp", "11")
    note.fill(FRIDGE_NOTE)
    responses.append(submit(page, "fridge_temp"))
    assert responses[-1].ok, responses[-1].text()[:500]
    return responses


# --- the tests -----------------------------------------------------------------------------------

def test_sari_taps_through_before_client_and_opening_with_a_note_for_the_fridge(tablet, live, shot):
    page = tablet()  # the Jakarta tablet, Sari by PIN

    run_id = start_run(page, live, "before_client")
    shot(page, "before-client-new")
    for spec in items_of(live, "before_client"):
        response = answer(page, spec)
        assert response.ok, f"{spec['key']}: {response.status} {response.text()[:500]}"
    shot(page, "before-client-done")
    run = stored(live, run_id)
    required = [i["key"] for i in items_of(live, "before_client") if i["required"]]
    assert run["completed"] and set(required) <= set(run["current"])
    assert run["current"]["active_infection"]["value"] is True and run["current"]["hands_gloves"]["value"] is True
    assert run["current"]["skin_type"]["value"] in ("I", "II", "III", "IV", "V", "VI")
    assert run["answers"] == len(run["current"]) and run["actions"] == []

    run_id = start_run(page, live, "opening")
    for spec in items_of(live, "opening"):
        if spec["key"] == "fridge_temp":
            answer_fridge_out_of_limits(page, live, run_id, shot=shot)
        else:
            assert answer(page, spec).ok
    shot(page, "opening-done")
    run = stored(live, run_id)
    assert run["completed"]
    fridge = run["current"]["fridge_temp"]
    assert (fridge["value"], fridge["note"]) == ("11", FRIDGE_NOTE)
    assert len(run["actions"]) == 1 and FRIDGE_NOTE in run["actions"][0]  # the out-of-limit value opened one
    assert run["answers"] == len(items_of(live, "opening"))               # the refused try stored nothing


def test_a_double_tap_and_a_replayed_request_store_one_answer(tablet, live):
    page = tablet()
    run_id = start_run(page, live, "before_client")
    sent = []
    page.on("request", lambda r: sent.append(r) if is_answer_post(r) else None)
    yes = item(page, "active_infection").locator("button[name=value][value=yes]")
    response = send(page, lambda: yes.dblclick())
    page.wait_for_load_state("networkidle")
    assert response.ok, response.text()[:500]
    assert sent, "the tap sent no answer"
    keys = {dict(parse_qsl(r.post_data or "")).get("idempotency_key") for r in sent}
    assert len(keys) == 1 and None not in keys, f"every tap of one form carries its one key: {keys}"

    # The tablet retries the same request (a lost response on the clinic's Wi-Fi): same form, same key.
    first = sent[0]
    form = dict(parse_qsl(first.post_data, keep_blank_values=True))
    headers = {k: v for k, v in first.all_headers().items() if k.lower() in ("x-csrftoken", "hx-request")}
    replay = page.request.post(first.url, form=form, headers=headers)
    assert replay.ok, f"{replay.status}: {replay.text()[:500]}"

    run = stored(live, run_id)
    with live.session() as s:
        for_item = s.scalar(select(func.count()).select_from(Answer).where(
            Answer.run_id == run_id, Answer.item_id == int(form["item_id"])))
    assert for_item == 1 and run["answers"] == 1, f"{len(sent)} tap request(s) + 1 replay stored {for_item}"
    assert run["current"]["active_infection"]["key"] == form["idempotency_key"]


def same_in_indonesian() -> set[str]:
    from babel.messages.pofile import read_po

    with open(ROOT / "compliance/translations/id/LC_MESSAGES/messages.po", "rb") as fh:
        return {m.id for m in read_po(fh) if isinstance(m.id, str) and m.id and m.string == m.id}


VISIBLE_TEXTS = """() => {
    const texts = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const text = walker.currentNode.textContent.replace(/\\s+/g, " ").trim();
        const element = walker.currentNode.parentElement;
        if (text && element && element.checkVisibility()) texts.add(text);
    }
    return [...texts];
}"""


def test_a_jakarta_run_is_in_indonesian_and_a_london_run_in_english(tablet, live, shot):
    specs = items_of(live, "before_client")
    with live.session() as s:
        title = current_version(s.scalar(select(ChecklistTemplate).join(Organisation).where(
            Organisation.name == ORG_NAME, ChecklistTemplate.key == "before_client"))).title

    texts = {}
    for site, person, pin, lang, other in ((JAKARTA, SARI, SARI_PIN, "id", "en"),
                                           (LONDON, EMMA, EMMA_PIN, "en", "id")):
        page = tablet(site, person, pin)
        start_run(page, live, "before_client")
        shot(page, f"run-{lang}")
        assert page.locator("html").get_attribute("lang") == lang
        expect(page.locator("h1")).to_contain_text(title[lang])
        text = page.locator("main").inner_text()
        for spec in specs:
            assert spec["label"][lang] in text, f"{spec['key']}: “{spec['label'][lang]}” missing ({lang})"
            assert spec["label"][other] not in text, f"{spec['key']}: “{spec['label'][other]}” shown ({lang})"
        yes_no = item(page, "active_infection").locator("button[name=value]")
        assert [b.inner_text().strip() for b in yes_no.all()] == (["Ya", "Tidak"] if lang == "id" else ["Yes", "No"])
        texts[lang] = set(page.evaluate(VISIBLE_TEXTS))

    # Every sentence of the screen, not only the checklist's own words: the Jakarta screen shares no visible
    # text with the London one but numbers, the skin types' roman numerals and words the Indonesian catalogue
    # deliberately keeps as they are (msgstr == msgid, e.g. "PIN").
    shared = sorted(t for t in texts["id"] & texts["en"]
                    if re.search(r"[A-Za-z]", t) and not re.fullmatch(r"[IVX]+", t)
                    and t.strip("←→✓ ") not in same_in_indonesian())
    assert not shared, f"English on the Jakarta tablet's run screen (untranslated?): {shared}"


def test_checklist_screens_have_no_axe_violations(tablet, live, assert_accessible, shot):
    page = tablet()
    page.goto("/tablet/checklists")
    assert_accessible(page, "checklists-today")

    run_id = start_run(page, live, "opening")
    assert_accessible(page, "run-new")
    enter_number(page, "fridge_temp", "11")
    assert_accessible(page, "run-out-of-limits")  # the note field the screen may show at once
    answer_fridge_out_of_limits(page, live, run_id, without_note_first=True,
                                check=lambda page, name: (assert_accessible(page, name), shot(page, name)))
    for spec in items_of(live, "opening"):
        if spec["key"] != "fridge_temp":
            answer(page, spec)
    assert_accessible(page, "run-answered")
    shot(page, "run-answered")

    before = start_run(page, live, "before_client")
    for spec in items_of(live, "before_client"):
        answer(page, spec)
    assert stored(live, before)["completed"]
    assert_accessible(page, "run-complete")


def test_one_answers_response_is_at_most_20_kb(tablet, live, capsys):
    page = tablet()
    start_run(page, live, "before_client")
    response = tap(page, "active_infection", "yes")
    assert response.ok
    size = len(response.body())
    page_size = len(page.request.get(page.url).body())
    with capsys.disabled():
        print(f"\n[answer response] one tap: {size} B (the whole run page: {page_size} B); budget 20 KB")
    assert size <= RESPONSE_BUDGET, f"one answer's response is {size} B"
