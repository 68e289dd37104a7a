"""The one input boundary (compliance/boundary.py and the windows in validation.py), tried through every door:
the pure rules, the API, the forms and the query string — each refusal says which field and why, and stores
nothing."""
from __future__ import annotations

import json
import random
import re
import unicodedata
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from compliance.boundary import (
    MAX_ID, JSONRefused, TextRefused, _at_most, clean_text, strict_json, text_problem,
)
from compliance.errors import Invalid
from compliance.names import name_key
from compliance.sites.models import Room, SiteHoliday, TrainingRecord
from compliance.validation import check_day, check_moment, day_problem

V1 = "/api/v1"
DECOMPOSED = unicodedata.normalize("NFD", "Ärzte")  # "A" + combining diaeresis, as some keyboards send it


# --- pure rules --------------------------------------------------------------------------------------

def test_the_id_pattern_takes_exactly_zero_to_two_to_the_31_minus_one():
    pattern = re.compile(_at_most(MAX_ID) + r"\Z")
    for n in [0, 9, 10, 1999999999, 2000000000, 2147483647, *random.Random(7).sample(range(2**34), 5000)]:
        assert bool(pattern.match(str(n))) == (n <= MAX_ID), n
    assert not pattern.match("2147483648") and not pattern.match("99999999999999999999")


@pytest.mark.parametrize("value, problem", [
    ("plain text, tabs\tand\nlines\r\n", None),
    ("nul\x00", "control character (U+0000)"),
    ("escape\x1b[31m", "control character (U+001B)"),
    ("c1 \x85", "control character (U+0085)"),
    ("lone \ud800 surrogate", "lone surrogate"),
])
def test_text_problems(value, problem):
    found = text_problem(value)
    assert (found is None) if problem is None else (problem in found)


def test_text_is_nfc_normalised():
    assert clean_text(DECOMPOSED, "name") == "Ärzte" and len(clean_text(DECOMPOSED, "name")) == 5
    with pytest.raises(TextRefused) as refused:
        clean_text("a\x00", "note")
    assert refused.value.field == "note"


@pytest.mark.parametrize("raw, why", [
    ('{"result": "pass", "result": "fail"}', "given twice"),
    ("[" * 100_000 + "]" * 100_000, "nest more than"),
    ('{"t": NaN}', "finite number"),
    ('{"t": Infinity}', "finite number"),
    ('{"t": 1e400}', "too large"),
    ('{"id": 99999999999999999999}', "too large"),
    ('{"a": ', "not valid JSON"),
    (b'{"a": "\xff"}', "not UTF-8"),
])
def test_strict_json_refuses(raw, why):
    with pytest.raises(JSONRefused, match=why):
        strict_json(raw)


def test_strict_json_keeps_brackets_in_strings_and_normalises_keys_and_values():
    assert strict_json('{"note": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \\"{"}') == {
        "note": "[" * 40 + ' "{'}
    assert strict_json(json.dumps({DECOMPOSED: [DECOMPOSED]})) == {"Ärzte": ["Ärzte"]}
    with pytest.raises(TextRefused) as refused:
        strict_json('{"rooms": [{"name": "ok"}, {"name": "\\u0000"}]}')
    assert refused.value.field == "rooms[1].name"


def test_the_date_window():
    today = date(2026, 12, 3)
    assert day_problem(date(2000, 1, 1), today) is None and day_problem(date(2036, 12, 3), today) is None
    assert day_problem(date(1999, 12, 31), today) and day_problem(date(2036, 12, 4), today)
    assert day_problem(date(2026, 12, 4), today, not_future=True) is None   # a local day ahead of UTC's
    assert day_problem(date(2026, 12, 5), today, not_future=True)
    assert day_problem(date(2038, 2, 28), date(2028, 2, 29)) is None         # ten years from a 29 February
    with pytest.raises(Invalid, match="Completed on must be between 2000-01-01 and 2036-12-03"):
        check_day(date(9999, 12, 31), "completed_on", today)
    now = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)
    with pytest.raises(Invalid, match="in the future"):
        check_moment(datetime(2026, 12, 3, 9, 6, tzinfo=timezone.utc), "performed_at", now, not_future=True)
    check_moment(datetime(2026, 12, 3, 9, 4, tzinfo=timezone.utc), "performed_at", now, not_future=True)


# --- through the app ---------------------------------------------------------------------------------

def _rooms(db):
    return db.session.scalar(select(func.count()).select_from(Room))


def test_api_ids_beyond_integer_are_not_found_or_refused(client, login_as, manager, site, db):
    client = login_as(manager)
    assert client.api("GET", f"{V1}/sites/{2**31}").status_code == 404
    assert client.api("GET", f"{V1}/sites/{10**22}").status_code == 404
    assert client.api("GET", f"{V1}/sites/{site.id}").status_code == 200
    before = _rooms(db)
    response = client.api("POST", f"{V1}/rooms", {"site_id": 2**40, "name": "Big", "kind": "treatment"})
    assert response.status_code == 422 and "site_id" in response.get_json()["errors"]["json"]
    response = client.api("GET", f"{V1}/rooms?site_id={2**40}")
    assert response.status_code == 422
    assert _rooms(db) == before


def test_api_pages_far_past_the_end_answer_an_empty_page(client, login_as, manager, site):
    response = login_as(manager).api("GET", f"{V1}/rooms?page={2**62}")
    assert response.status_code == 200 and response.get_json() == []


def test_pages_far_past_the_end_show_the_last_page(client, login_as, manager, site):
    response = login_as(manager).get(f"/people?page={10**30}")
    assert response.status_code == 200 and "page 1 of 1" in response.get_data(as_text=True)


def test_api_json_with_a_duplicate_key_is_refused_and_stores_nothing(client, login_as, manager, site, db):
    before = _rooms(db)
    response = login_as(manager).open(f"{V1}/rooms", method="POST", data=(
        '{"site_id": %d, "name": "One", "name": "Two", "kind": "treatment"}' % site.id),
        content_type="application/json", headers={"X-CSRFToken": client.csrf_token()})
    assert response.status_code == 400 and "given twice" in response.get_json()["message"]
    assert _rooms(db) == before


def test_api_text_with_a_control_character_is_refused_naming_the_field(client, login_as, manager, site, db):
    before = _rooms(db)
    response = login_as(manager).api("POST", f"{V1}/rooms", {"site_id": site.id, "name": "Back\x00room",
                                                                  "kind": "treatment"})
    assert response.status_code == 422 and response.get_json()["errors"] == {
        "name": ["contains a control character (U+0000)"]}
    assert _rooms(db) == before


def test_a_form_with_a_control_character_is_refused(client, login_as, manager, site, db):
    before = _rooms(db)
    response = login_as(manager).form_post("/rooms/new", {"site_id": site.id, "name": "Back\x1broom",
                                                          "kind": "treatment"})
    assert response.status_code == 422 and "control character" in response.get_data(as_text=True)
    assert _rooms(db) == before


def test_unique_names_compare_unicode_case_folded_from_every_door(client, login_as, manager, site, db):
    client = login_as(manager)
    created = client.api("POST", f"{V1}/rooms", {"site_id": site.id, "name": DECOMPOSED, "kind": "treatment"})
    assert created.status_code == 201 and created.get_json()["name"] == "Ärzte"   # stored NFC
    for other in ("ärzte", "  ÄRZTE ", unicodedata.normalize("NFD", "ärzte")):
        response = client.api("POST", f"{V1}/rooms", {"site_id": site.id, "name": other, "kind": "treatment"})
        assert response.status_code == 409, other
    page = client.form_post("/rooms/new", {"site_id": site.id, "name": "ÄRZTE", "kind": "treatment"})
    assert page.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Room).where(Room.name_key == name_key("ärzte"))) == 1


def test_two_creates_at_once_end_in_one_row_and_a_409(client, login_as, manager, site, db, monkeypatch):
    """The service's check passed for both (the race): the unique index refuses the second, 409, nothing stored."""
    from compliance.sites import services

    client = login_as(manager)
    assert client.api("POST", f"{V1}/rooms", {"site_id": site.id, "name": "Ärzte", "kind": "treatment"}
                      ).status_code == 201
    monkeypatch.setattr(services, "_unique_room_name", lambda *a, **k: None)  # as if it ran before the first commit
    response = client.api("POST", f"{V1}/rooms", {"site_id": site.id, "name": "ärzte", "kind": "treatment"})
    assert response.status_code == 409 and "unique" in response.get_json()["message"]
    page = client.form_post("/rooms/new", {"site_id": site.id, "name": "ÄRZTE", "kind": "treatment"})
    assert page.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Room).where(Room.site_id == site.id,
                                                                          Room.name_key == "ärzte")) == 1


@pytest.mark.parametrize("completed_on", ["0001-01-01", "1999-12-31", "9999-12-31"])
def test_training_dates_outside_the_window_are_refused(client, login_as, manager, nurse, db, completed_on):
    response = login_as(manager).api("POST", f"{V1}/training", {"user_id": nurse.id, "course": "infection_control",
                                                                "completed_on": completed_on})
    assert response.status_code == 422, response.get_json()
    assert db.session.scalar(select(func.count()).select_from(TrainingRecord)) == 0


def test_training_completed_in_the_future_is_refused(client, login_as, manager, nurse, db):
    response = login_as(manager).api("POST", f"{V1}/training", {"user_id": nurse.id, "course": "infection_control",
                                                                "completed_on": "2030-01-01"})
    assert response.status_code == 422 and "completed_on" in json.dumps(response.get_json())


def test_a_holiday_in_9999_is_refused(client, login_as, admin, site, db):
    response = login_as(admin).form_post(f"/sites/{site.id}/closing-days", {
        "closed_weekdays": [], "holidays": "9999-12-31 Far away"})
    assert response.status_code == 422
    assert "Holidays and other closed days must be between" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(SiteHoliday)) == 0


@pytest.mark.parametrize("moment", ["0552-06-26T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
def test_api_times_outside_the_window_are_refused_and_times_out_are_rfc_3339(client, login_as, manager, site,
                                                                            moment):
    client = login_as(manager)
    response = client.api("GET", f"{V1}/checklist-runs?from={moment[:10]}")
    assert response.status_code == 422 and "must be between 2000-01-01" in json.dumps(response.get_json())
    response = client.api("GET", f"{V1}/checklist-runs?from=2026-11-01")
    assert response.status_code == 200
    response = client.api("GET", f"{V1}/sites/{site.id}")
    created = response.get_json()["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", created)


def test_the_logbook_ignores_an_impossible_steriliser_id(client, login_as, manager, site):
    response = login_as(manager).get(f"/logbook?steriliser={10**25}&from=0001-01-01&to=9999-12-31")
    assert response.status_code == 200
