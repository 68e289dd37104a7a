"""What a refusal says, in the reader's language: a choice lists its choices by their words (not internal codes), an
address email_validator refuses is explained in our own words on an Indonesian page, a checklist note over its
limit says the limit and its length; and /favicon.ico answers the product's icon."""
from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from flask_babel import force_locale

from compliance import validation as v
from compliance.auth.actor import actor_for_user
from compliance.errors import Invalid
from compliance.treatments import services as treatments
from compliance.timeutil import utcnow

from .checklists.test_views import HTMX, forms_of, on_tablet, send, start, templates  # noqa: F401  (fixtures)


def _refusal(call) -> Invalid:
    try:
        call()
    except Invalid as exc:
        return exc
    raise AssertionError("not refused")


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


# --- 1. a choice's choices by their words --------------------------------------------------------------------

def test_a_refused_choice_lists_the_labels_in_the_readers_language_or_the_codes_without_labels(app):
    from compliance.treatments.forms import PROCEDURE_LABELS
    from compliance.treatments.models import PROCEDURES

    exc = _refusal(lambda: v.choice({"procedure": "laser"}, "procedure", PROCEDURES, labels=PROCEDURE_LABELS))
    bare = _refusal(lambda: v.choice({"skin_type": "VII"}, "skin_type", ("I", "II", "III")))
    assert exc.field == "procedure"
    with app.test_request_context(), force_locale("en"):
        assert exc.message == ("Procedure must be one of: Face, Acne scars, Surgical scars, Stretch marks, Scalp, "
                               "Other")
        assert bare.message == "Skin type (Fitzpatrick) must be one of: I, II, III"
    with app.test_request_context(), force_locale("id"):
        assert "Bekas jerawat" in exc.message and "acne_scars" not in exc.message
        assert exc.message.startswith("Prosedur ")
        assert bare.message.endswith(": I, II, III")


def test_the_api_lists_the_sites_methods_by_their_titles_in_the_callers_language(client, login_as, make_user,
                                                                                 site, db):
    room = site.rooms[0]
    for language, title, other in (("id", "Microneedling dengan pen", "Micro-needling with a pen"),
                                   ("en", "Micro-needling with a pen", "Microneedling dengan pen")):
        person = make_user("manager", [site], language=language)
        patient = treatments.create_client(actor_for_user(person), {"site_id": site.id}, utcnow())
        db.session.commit()
        login_as(person)
        response = client.api("POST", "/api/v1/treatments", json={
            "room_id": room.id, "client_id": patient.id, "procedure": "face", "method": "laser"})
        assert response.status_code == 422, response.get_json()
        body = response.get_json()
        message = body["errors"]["method"][0]
        assert body["message"] == message
        assert title in message and other not in message, message
        assert "pen, roller" not in message  # the codes, as before


def test_a_form_lists_the_room_kinds_by_their_words(client, login_as, make_user, site):
    manager = make_user("manager", [site], language="id")
    page = login_as(manager).form_post("/rooms/new", {"site_id": site.id, "name": "Dapur", "kind": "kitchen"})
    assert page.status_code == 422
    body = text(page)
    assert "Ruang perawatan, Ruang dekontaminasi" in body
    assert "treatment, decontamination" not in body


# --- 2. email_validator's English reason stays off Indonesian pages ---------------------------------------------

def _people_form(client, site, email: str):
    return client.form_post("/people/new", {"name": "Nia Baru", "email": email, "role": "staff",
                                            "site_ids": site.id, "pin": "4821", "language": ""})


def test_an_invalid_email_is_said_in_our_words_on_an_indonesian_page(client, login_as, make_user, site):
    login_as(make_user("manager", [site], language="id"))
    page = _people_form(client, site, "nia.klinik.test")
    assert page.status_code == 422
    body = text(page)
    assert "Email: masukkan alamat email yang valid, misalnya nama@klinik.com" in body
    assert "@-sign" not in body and "email address is not valid" not in body


def test_an_english_reader_keeps_the_reason(client, login_as, make_user, site):
    login_as(make_user("manager", [site], language="en"))
    body = text(_people_form(client, site, "nia.klinik.test"))
    assert "Email is not valid: " in body and "@-sign" in body


def test_the_forgotten_password_page_says_a_mistyped_address_at_once(client, make_site):
    make_site(name="Bali", language="id")
    english = client.form_post("/password/forgot", {"email": "rina@klinik"})
    assert english.status_code == 422 and "Email is not valid: " in text(english)
    indonesian = client.form_post("/password/forgot", {"email": "rina@klinik"},
                                  headers={"Accept-Language": "id"})
    assert indonesian.status_code == 422, indonesian.status_code
    body = text(indonesian)
    assert "masukkan alamat email yang valid" in body and "should have a period" not in body
    assert client.form_post("/password/forgot", {"email": "rina@klinik.test"}).status_code == 200


# --- 3. the icon at /favicon.ico ------------------------------------------------------------------------------------

def test_favicon_ico_answers_the_products_icon_without_a_session(client, app):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.get_data() == (Path(app.static_folder) / "favicon.svg").read_bytes()
    again = client.get("/favicon.ico", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


# --- 4. a checklist note over its limit says the limit and its length -----------------------------------------

@pytest.mark.parametrize("language, words", [
    ("en", "At most 2000 characters: this text has 2001. Shorten it; nothing was saved."),
    ("id", None),
])
def test_a_too_long_checklist_note_says_its_limit_and_length(db, on_tablet, templates, site, language,  # noqa: F811
                                                              words):
    site.language = language
    db.session.commit()
    run_id = start(on_tablet, templates["opening"])
    fridge = forms_of(on_tablet, run_id)["fridge_temp"]
    refused = send(on_tablet, run_id, fridge, value="11", note="x" * 2001)
    assert refused.status_code == 422
    error = re.search(r'id="note-error-fridge_temp" role="alert">([^<]*)<', text(refused)).group(1)
    if words:
        assert error == words
    else:
        assert "2000" in error and "2001" in error and "characters" not in error, error


def test_the_api_says_the_length_of_a_text_over_its_limit(app):
    exc = _refusal(lambda: v.text({"reason": "y" * 2001}, "reason", 2000))
    assert isinstance(exc, v.TooLong) and (exc.limit, exc.length) == (2000, 2001)
    with app.test_request_context(), force_locale("en"):
        assert exc.message == "Reason must be at most 2000 characters; this text has 2001"
    with app.test_request_context(), force_locale("id"):
        assert "2000" in exc.message and "2001" in exc.message and "characters" not in exc.message
