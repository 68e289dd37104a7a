"""The checklist screens on the tablet: starting a run, answering item by item (one request per tap, with or
without htmx), notes demanded at the field, replays stored once, uploads checked, corrections with a reason."""
from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.checklists import services
from compliance.checklists.models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction
from compliance.timeutil import utcnow
from tests.conftest import PIN

HTMX = {"HX-Request": "true"}
# The smallest valid PNG (1 x 1 pixel).
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


class ItemForms(HTMLParser):
    """The item forms of a run page: data-item-key -> the form's action, attributes and hidden inputs."""

    def __init__(self):
        super().__init__()
        self.forms: dict[str, dict] = {}
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "checklist-item" in (a.get("class") or ""):
            self._current = {"attrs": a, "inputs": {}}
            self.forms[a["data-item-key"]] = self._current
        elif tag == "input" and self._current is not None and a.get("type") == "hidden":
            self._current["inputs"][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def item_forms(html: str) -> dict[str, dict]:
    parser = ItemForms()
    parser.feed(html)
    return parser.forms


def text(response) -> str:
    return response.get_data(as_text=True)


def count(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def templates(db, site):
    services.load_default_templates(site.organisation_id, utcnow())
    db.session.commit()
    return {t.key: t for t in db.session.scalars(select(ChecklistTemplate))}


@pytest.fixture
def on_tablet(client, enrol_tablet, site, nurse):
    """The nurse signed in by PIN on the site's enrolled tablet."""
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    return client


def start(client, template, **extra) -> int:
    response = client.form_post("/tablet/checklists/start", {"template_id": template.id, **extra})
    assert response.status_code == 302, text(response)
    return int(re.search(r"/tablet/runs/(\d+)$", response.headers["Location"]).group(1))


def forms_of(client, run_id: int) -> dict[str, dict]:
    page = client.get(f"/tablet/runs/{run_id}")
    assert page.status_code == 200
    return item_forms(text(page))


def send(client, run_id: int, form: dict, htmx: bool = True, **fields):
    """Post an item's form as the tablet does: its hidden inputs (the server's key) and the tapped value."""
    data = {k: v for k, v in form["inputs"].items() if k != "csrf_token"}
    data.update(fields)
    return client.form_post(f"/tablet/runs/{run_id}/answers", data, headers=HTMX if htmx else {})


BEFORE_CLIENT = {"active_infection": "yes", "herpes_history": "yes", "allergies": "none known", "skin_type": "III",
                 "age_ok": "yes", "hands_gloves": "yes", "skin_prep": "yes", "pack_checked": "yes"}


def test_staff_on_the_tablet_answers_before_client_until_complete(db, on_tablet, templates):
    listing = text(on_tablet.get("/tablet/checklists"))
    assert "Before a client" in listing and "Site opening" in listing
    run_id = start(on_tablet, templates["before_client"])
    forms = forms_of(on_tablet, run_id)
    assert set(forms) == set(BEFORE_CLIENT)
    keys = [f["inputs"]["idempotency_key"] for f in forms.values()]
    assert len(set(keys)) == len(keys) and all(len(k) >= 16 for k in keys)  # fresh, per item, from the server
    for form in forms.values():
        attrs = form["attrs"]
        assert attrs["action"] == attrs["hx-post"] == f"/tablet/runs/{run_id}/answers"
        assert attrs["hx-target"] == "this" and attrs["hx-swap"] == "outerHTML"
    last = list(BEFORE_CLIENT)[-1]
    for key, value in BEFORE_CLIENT.items():
        if key == "skin_type":  # without JavaScript: the answer redirects to the run, at the item
            response = send(on_tablet, run_id, forms[key], htmx=False, value=value)
            assert response.status_code == 302
            assert response.headers["Location"].endswith(f"/tablet/runs/{run_id}#item-skin_type")
            continue
        response = send(on_tablet, run_id, forms[key], value=value)
        assert response.status_code == 200, text(response)
        body = text(response)
        assert f'data-item-key="{key}"' in body and 'id="run-progress" class="run-progress' in body
        assert 'hx-swap-oob="true"' in body
        assert ("Complete ✓" in body) == (key == last)
    run = db.session.get(ChecklistRun, run_id)
    assert run.completed_at is not None
    assert count(db, Answer, Answer.run_id == run_id) == len(BEFORE_CLIENT)
    page = text(on_tablet.get(f"/tablet/runs/{run_id}"))
    assert "Complete ✓" in page and not item_forms(page)
    assert "1 done today" in text(on_tablet.get("/tablet/checklists"))


def test_an_out_of_limit_number_needs_a_note_at_the_field_and_then_opens_a_corrective_action(db, on_tablet,
                                                                                               templates):
    run_id = start(on_tablet, templates["opening"])
    fridge = forms_of(on_tablet, run_id)["fridge_temp"]
    refused = send(on_tablet, run_id, fridge, value="11")
    assert refused.status_code == 422
    body = text(refused)
    assert re.search(r'<textarea id="note-fridge_temp" name="note"[^>]*autofocus', body)
    assert 'role="alert"' in body and "A note is needed" in body
    assert 'class="note-field" hidden' not in body
    assert count(db, Answer) == 0 and count(db, CorrectiveAction) == 0
    # The refused partial carries the key again: the corrected answer is the same answer, sent once.
    again = item_forms(body)["fridge_temp"]
    stored = send(on_tablet, run_id, again, value="11", note="Door left open; stock moved to the spare fridge")
    assert stored.status_code == 200
    assert "11 °C" in text(stored) and "Corrective action opened" in text(stored)
    assert count(db, Answer) == 1
    action = db.session.scalar(select(CorrectiveAction))
    assert action.closed_at is None and "Door left open" in action.what
    listing = text(on_tablet.get("/tablet/checklists"))
    assert "Open corrective actions" in listing and "Door left open" in listing and "due" in listing


def test_a_replayed_answer_with_the_same_key_is_stored_once(db, on_tablet, templates):
    run_id = start(on_tablet, templates["after_client"])
    linen = forms_of(on_tablet, run_id)["linen"]
    first = send(on_tablet, run_id, linen, value="yes")
    replay = send(on_tablet, run_id, linen, value="yes")
    without_js = send(on_tablet, run_id, linen, htmx=False, value="yes")
    assert (first.status_code, replay.status_code, without_js.status_code) == (200, 200, 302)
    assert count(db, Answer) == 1


def test_a_double_tap_on_yes_then_no_stores_the_first_answer_once(db, on_tablet, templates):
    run_id = start(on_tablet, templates["decontamination"])
    form = forms_of(on_tablet, run_id)["storage_dry"]
    assert send(on_tablet, run_id, form, value="yes").status_code == 200
    second = send(on_tablet, run_id, form, value="no")
    assert second.status_code == 200 and ">Yes<" in text(second)
    assert [a.value for a in db.session.scalars(select(Answer))] == [True]


def test_a_new_answer_to_an_answered_item_is_refused_in_favour_of_a_correction(db, on_tablet, templates):
    run_id = start(on_tablet, templates["decontamination"])
    form = forms_of(on_tablet, run_id)["storage_dry"]
    send(on_tablet, run_id, form, value="yes")
    other = dict(form, inputs={**form["inputs"], "idempotency_key": "another-fresh-key-123"})
    response = send(on_tablet, run_id, other, value="no")
    assert response.status_code == 409 and "correct it with a reason" in text(response)
    assert count(db, Answer) == 1


def test_an_answer_for_an_item_of_another_template_is_not_found(db, on_tablet, templates):
    run_id = start(on_tablet, templates["opening"])
    other_run = start(on_tablet, templates["closing"])
    foreign = forms_of(on_tablet, other_run)["waste_out"]
    response = send(on_tablet, run_id, foreign, value="yes")
    assert response.status_code == 404
    assert send(on_tablet, run_id, foreign, htmx=False, value="yes").status_code == 404
    assert count(db, Answer) == 0


def test_a_number_that_is_not_a_number_is_refused_at_the_field(db, on_tablet, templates):
    run_id = start(on_tablet, templates["opening"])
    fridge = forms_of(on_tablet, run_id)["fridge_temp"]
    response = send(on_tablet, run_id, fridge, value="cold")
    assert response.status_code == 422
    body = text(response)
    assert body.lstrip().startswith("<form") and "this is not a number" in body and 'value="cold"' in body
    assert count(db, Answer) == 0
    page = send(on_tablet, run_id, fridge, htmx=False, value="cold")  # without htmx: the page, same message
    assert page.status_code == 422 and "this is not a number" in text(page) and "<html" in text(page)


@pytest.fixture
def photo_template(db, site):
    template = services.create_template(site.organisation_id, {
        "key": "shelf_photo", "kind": "weekly", "title": {"en": "Shelf photo", "id": "Foto rak"},
        "items": [{"key": "shelf", "kind": "photo", "en": "Photo of the sterile shelf", "id": "Foto rak steril"}]},
        None, utcnow())
    db.session.commit()
    return template


def send_photo(client, run_id, form, content: bytes, name="shelf.png"):
    """A multipart post built here: werkzeug's test client spools a large body to a file it never closes."""
    boundary = "----checklist-test-boundary"
    fields = {**form["inputs"], "csrf_token": client.csrf_token()}
    body = io.BytesIO()
    for key, value in fields.items():
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
               f"Content-Type: image/png\r\n\r\n".encode() + content + f"\r\n--{boundary}--\r\n".encode())
    return client.post(f"/tablet/runs/{run_id}/answers", data=body.getvalue(), headers=HTMX,
                       content_type=f"multipart/form-data; boundary={boundary}")


def test_a_photo_that_is_not_an_image_or_too_large_is_refused_and_a_real_one_is_kept(db, app, on_tablet,
                                                                                     photo_template):
    run_id = start(on_tablet, photo_template)
    form = forms_of(on_tablet, run_id)["shelf"]
    assert form["attrs"]["enctype"] == form["attrs"]["hx-encoding"] == "multipart/form-data"
    uploads = __import__("pathlib").Path(app.instance_path) / "uploads"
    before = set(uploads.glob("*")) if uploads.exists() else set()
    not_image = send_photo(on_tablet, run_id, form, b"GIF89a not what we accept", "shelf.png")
    assert not_image.status_code == 422 and "only PNG or JPEG" in text(not_image)
    too_big = send_photo(on_tablet, run_id, form, PNG + b"\0" * services.MAX_UPLOAD_BYTES)
    assert too_big.status_code == 422 and "larger than" in text(too_big)
    nothing = send(on_tablet, run_id, form)
    assert nothing.status_code == 422 and "a photo or signature is needed" in text(nothing)
    assert count(db, Answer) == 0
    kept = send_photo(on_tablet, run_id, form, PNG)
    assert kept.status_code == 200
    answer = db.session.scalar(select(Answer))
    assert answer.value == answer.file_path and (uploads / answer.file_path).read_bytes() == PNG
    assert set(uploads.glob("*")) - before == {uploads / answer.file_path}  # refused files are not kept
    served = on_tablet.get(f"/tablet/answers/{answer.id}/file")
    body = served.data
    served.close()  # the file is streamed from disk: close it
    assert served.status_code == 200 and body == PNG and served.mimetype == "image/png"


def test_a_signature_is_stored_from_the_pads_data_url(db, app, on_tablet, templates):
    run_id = start(on_tablet, templates["closing"])
    page = text(on_tablet.get(f"/tablet/runs/{run_id}"))
    assert "signature_pad" in page and "<canvas" in page
    form = item_forms(page)["signature"]
    bad = send(on_tablet, run_id, form, signature="data:text/html;base64,PGI+")
    assert bad.status_code == 422 and "signature could not be read" in text(bad)
    good = send(on_tablet, run_id, form, signature="data:image/png;base64," + base64.b64encode(PNG).decode())
    assert good.status_code == 200 and "Signed" in text(good)
    assert db.session.scalar(select(Answer)).file_path.endswith(".png")


def test_pages_without_a_signature_item_do_not_load_signature_pad(db, on_tablet, templates):
    run_id = start(on_tablet, templates["opening"])
    assert "signature_pad" not in text(on_tablet.get(f"/tablet/runs/{run_id}"))
    assert "signature_pad" not in text(on_tablet.get("/tablet/home"))
    assert "signature_pad" not in text(on_tablet.get("/tablet/checklists"))


def test_a_run_of_another_site_is_not_found(db, make_site, make_user, on_tablet, site, templates):
    elsewhere = make_site(org=site.organisation, name="Bandung")
    colleague = make_user("staff", [elsewhere])
    run = services.start_run(actor_for_user(colleague), {"site_id": elsewhere.id,
                                                         "template_id": templates["opening"].id}, utcnow())
    db.session.commit()
    soap = next(i for i in run.version.items if i.key == "hand_soap")
    assert on_tablet.get(f"/tablet/runs/{run.id}").status_code == 404
    response = on_tablet.form_post(f"/tablet/runs/{run.id}/answers",
                                   {"item_id": soap.id, "value": "yes", "idempotency_key": "foreign-key-123"})
    assert response.status_code == 404
    assert count(db, Answer) == 0


def test_a_correction_needs_a_reason_and_keeps_the_old_answer_in_the_history(db, on_tablet, nurse, templates):
    run_id = start(on_tablet, templates["before_client"])
    form = forms_of(on_tablet, run_id)["pack_checked"]
    send(on_tablet, run_id, form, value="yes")
    old = db.session.scalar(select(Answer))
    page = text(on_tablet.get(f"/tablet/runs/{run_id}"))
    assert f'action="/tablet/answers/{old.id}/amend"' in page and ">Correct<" in page
    amend_key = re.search(rf'action="/tablet/answers/{old.id}/amend".*?name="idempotency_key" value="([^"]+)"',
                          page, re.S).group(1)
    url = f"/tablet/answers/{old.id}/amend"
    no_reason = on_tablet.form_post(url, {"value": "no", "note": "Pack wet", "idempotency_key": amend_key},
                                    headers=HTMX)
    assert no_reason.status_code == 422 and "Give the reason for the correction." in text(no_reason)
    assert re.search(r'<details class="amend" open>', text(no_reason))
    assert count(db, Answer) == 1
    fixed = on_tablet.form_post(url, {"value": "no", "note": "Pack wet, set aside", "reason": "Looked again",
                                      "idempotency_key": amend_key}, headers=HTMX)
    assert fixed.status_code == 200
    body = text(fixed)
    assert "<s>Yes" in body and "Looked again" in body and nurse.name in body and ">No<" in body
    assert count(db, Answer) == 2 and count(db, CorrectiveAction) == 1
    assert db.session.scalar(select(Answer).where(Answer.amends_id == old.id)).amend_reason == "Looked again"
    stale = on_tablet.form_post(url, {"value": "yes", "reason": "again", "idempotency_key": "stale-key-12345"},
                                headers=HTMX)
    assert stale.status_code == 409 and count(db, Answer) == 2


def test_the_now_screen_lists_todays_checklists(db, on_tablet, templates):
    home = text(on_tablet.get("/tablet/home"))
    assert 'hx-get="/tablet/checklists/summary"' in home and 'href="/tablet/checklists"' in home
    assert "Start a treatment" in home and 'hx-get="/decontamination/summary"' in home  # what was there stays
    summary = text(on_tablet.get("/tablet/checklists/summary"))
    assert "Site opening" in summary and "Not done yet" in summary
    run_id = start(on_tablet, templates["decontamination"])
    for key, form in forms_of(on_tablet, run_id).items():
        send(on_tablet, run_id, form, value="yes")
    summary = text(on_tablet.get("/tablet/checklists/summary"))
    row = re.search(r"Decontamination room</strong>.*?</li>", summary, re.S).group(0)
    assert "Done ✓" in row


def test_titles_and_labels_follow_the_persons_language(db, client, enrol_tablet, make_user, site, templates):
    person = make_user("staff", [site], language="id")
    enrol_tablet(site)
    client.form_post(f"/tablet/pin/{person.id}", {"pin": PIN})
    assert "Sebelum klien" in text(client.get("/tablet/checklists"))
    run_id = start(client, templates["before_client"])
    assert "Tipe kulit (Fitzpatrick)" in text(client.get(f"/tablet/runs/{run_id}"))


def test_the_htmx_answer_response_is_small(db, on_tablet, templates):
    run_id = start(on_tablet, templates["before_client"])
    forms = forms_of(on_tablet, run_id)
    response = send(on_tablet, run_id, forms["skin_type"], value="IV")
    assert response.status_code == 200
    assert len(response.data) < 20_000
    assert "<html" not in text(response)


def test_an_auditor_reads_a_run_without_answer_forms(db, client, login_as, auditor, nurse, site, templates):
    run = services.start_run(actor_for_user(nurse), {"site_id": site.id, "template_id": templates["opening"].id},
                             utcnow())
    db.session.commit()
    login_as(auditor)
    page = client.get(f"/tablet/runs/{run.id}")
    assert page.status_code == 200 and not item_forms(text(page))
    assert client.get("/tablet/checklists").status_code == 403


def test_a_room_checklist_starts_in_the_room_tapped(db, make_site, make_user, client, enrol_tablet, site,
                                                   templates):
    from compliance.sites.models import Room

    second = Room(site=site, name="Room 2")
    db.session.add(second)
    db.session.commit()
    person = make_user("staff", [site])
    enrol_tablet(site)
    client.form_post(f"/tablet/pin/{person.id}", {"pin": PIN})
    listing = text(client.get("/tablet/checklists"))
    assert f'name="room_id" value="{second.id}"' in listing
    run_id = start(client, templates["after_client"], room_id=second.id)
    assert db.session.get(ChecklistRun, run_id).room_id == second.id
    assert "Room 2" in text(client.get(f"/tablet/runs/{run_id}"))


class StartForms(HTMLParser):
    """The start forms of the day's checklists: template id -> their hidden inputs."""

    def __init__(self):
        super().__init__()
        self.forms: dict[str, dict] = {}
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "start-form" in (a.get("class") or ""):
            self._current = {}
        elif tag == "input" and self._current is not None and a.get("type") == "hidden":
            self._current[a["name"]] = a.get("value", "")
            if a["name"] == "template_id":
                self.forms[a["value"]] = self._current

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def start_forms(client) -> dict[str, dict]:
    parser = StartForms()
    parser.feed(text(client.get("/tablet/checklists")))
    return parser.forms


def test_a_replayed_start_form_opens_the_same_run(db, on_tablet, templates):
    form = start_forms(on_tablet)[str(templates["opening"].id)]
    assert 16 <= len(form["idempotency_key"]) <= 64
    data = {k: v for k, v in form.items() if k != "csrf_token"}
    first, again = start(on_tablet, templates["opening"], **data), start(on_tablet, templates["opening"], **data)
    assert first == again and count(db, ChecklistRun) == 1
    assert db.session.get(ChecklistRun, first).idempotency_key == form["idempotency_key"]
    # The page shown afterwards carries a fresh key: a deliberate second start makes a second run.
    fresh = start_forms(on_tablet)[str(templates["opening"].id)]
    assert fresh["idempotency_key"] != form["idempotency_key"]
    assert start(on_tablet, templates["opening"], idempotency_key=fresh["idempotency_key"]) != first
    assert count(db, ChecklistRun) == 2


def test_one_start_form_key_gives_each_room_its_own_run_and_a_replay_the_same(db, on_tablet, templates, site):
    from compliance.sites.models import Room
    other = Room(site_id=site.id, name="Room 2")
    db.session.add(other)
    db.session.commit()
    first_room = site.rooms[0].id
    key = start_forms(on_tablet)[str(templates["opening"].id)]["idempotency_key"]
    one = start(on_tablet, templates["opening"], idempotency_key=key, room_id=first_room)
    replay = start(on_tablet, templates["opening"], idempotency_key=key, room_id=first_room)
    two = start(on_tablet, templates["opening"], idempotency_key=key, room_id=other.id)
    assert one == replay and two != one and count(db, ChecklistRun) == 2


def test_a_malformed_start_key_is_refused_and_starts_nothing(db, on_tablet, templates):
    response = on_tablet.form_post("/tablet/checklists/start", {"template_id": templates["opening"].id,
                                                               "idempotency_key": "bad key"})
    assert response.status_code == 422 and "idempotency_key" in text(response)
    assert count(db, ChecklistRun) == 0


def test_start_forms_without_a_key_still_start_a_run_each(db, on_tablet, templates):
    assert start(on_tablet, templates["opening"]) != start(on_tablet, templates["opening"])
    assert count(db, ChecklistRun) == 2
