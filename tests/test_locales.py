"""Locales: dates, times, the clock and numbers follow the site's locale (or the person's own), through Babel;
the language of the words stays the language setting's; the API and the CSV files stay machine-readable."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from compliance.i18n import force_format_locale, input_number, local_date, local_datetime, local_time, number
from compliance.sites.models import Site, User
from compliance.sites.rules import default_locale
from compliance.stock.models import ItemType
from compliance.validation import DecimalRefused, decimal, parse_decimal

AT = datetime(2026, 12, 2, 21, 33, tzinfo=timezone.utc)  # 21:33 in London in December (GMT)
NNBSP = "\u202f"  # CLDR puts a narrow no-break space before AM/PM


def _text(response) -> str:
    return response.get_data(as_text=True)


def _visible(page: str) -> str:
    """The page as a reader sees it: tags and their attributes left out (a CSRF token or nonce is random text
    that may hold "PM" or any other letters)."""
    import html
    import re

    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]*>", " ", page))


# --- the rule (no app) -----------------------------------------------------------------------------

@pytest.mark.parametrize("language, zone, expected", [
    ("en", "Europe/London", "en-GB"),
    ("id", "Asia/Jakarta", "id-ID"),
    ("en", "Asia/Jakarta", "en-GB"),       # an English clinic in Jakarta: day/month, never the US order
    ("en", "America/New_York", "en-US"),
    ("en", "Australia/Sydney", "en-AU"),
    ("id", "Europe/London", "id-ID"),      # the language decides first
    ("en", "UTC", "en-GB"),
])
def test_a_site_without_a_chosen_locale_gets_one_from_its_language_and_zone(language, zone, expected):
    assert default_locale(language, zone) == expected


# --- formatting per locale -------------------------------------------------------------------------

@pytest.mark.parametrize("tag, dt, time, day, decimal_text, big", [
    ("en-GB", "02/12/2026, 21:33", "21:33", "2 Dec 2026", "0.50", "1,234.5"),
    ("en-US", f"12/2/26, 9:33{NNBSP}PM", f"9:33{NNBSP}PM", "Dec 2, 2026", "0.50", "1,234.5"),
    ("en-AU", f"2/12/26, 9:33{NNBSP}pm", f"9:33{NNBSP}pm", "2 Dec 2026", "0.50", "1,234.5"),
    ("id-ID", "2/12/26 21.33", "21.33", "2 Des 2026", "0,50", "1.234,5"),
])
def test_dates_times_and_numbers_follow_the_locale(app, tag, dt, time, day, decimal_text, big):
    with app.app_context(), force_format_locale(tag):
        assert local_datetime(AT, "Europe/London", "short") == dt
        assert local_time(AT, "Europe/London") == time
        assert local_date(AT.date()) == day
        assert number(Decimal("0.50")) == decimal_text            # the places stored are the places shown
        assert number(Decimal("1234.5")) == big
        assert input_number(Decimal("1234.5")) == ("1234,5" if tag == "id-ID" else "1234.5")  # no grouping


def test_an_indonesian_edit_field_reads_back_as_the_same_value(app):
    with app.test_request_context(), force_format_locale("id-ID"):
        for stored, places in ((Decimal("134.5"), 1), (Decimal("0.50"), 2), (Decimal("2100.0"), 1)):
            shown = input_number(stored)
            assert "," in shown and "." not in shown
            assert decimal({"v": shown}, "v", Decimal("0"), Decimal("5000"), places=places) == stored


def test_the_api_reads_decimal_points_only(app):
    assert parse_decimal("134,5", 1, decimal_comma=True) == Decimal("134.5")   # a form: as the screen shows it
    with pytest.raises(DecimalRefused) as exc:
        parse_decimal("134,5", 1, decimal_comma=False)
    assert exc.value.kind == "number"


# --- pages -----------------------------------------------------------------------------------------

@pytest.fixture
def london(make_site):
    return make_site(name="London", timezone="Europe/London", language="en")


def test_a_london_page_shows_day_month_year_and_the_24_hour_clock(db, london, make_user, login_as):
    manager = make_user("manager", [london], name="Oliver Manager")
    staff = make_user("staff", [london], name="Emma Staff")
    staff.created_at = AT
    db.session.commit()
    assert london.locale == "en-GB"
    page = _text(login_as(manager).get(f"/people/{staff.id}"))
    assert "02/12/2026, 21:33" in page
    assert "12/2/26" not in _visible(page) and "PM" not in _visible(page)


def test_a_persons_own_locale_wins_over_the_sites(db, london, make_user, login_as):
    manager = make_user("manager", [london], name="Olive American")
    manager.locale = "en-US"
    staff = make_user("staff", [london], name="Emma Staff")
    staff.created_at = AT
    db.session.commit()
    page = _text(login_as(manager).get(f"/people/{staff.id}"))
    assert f"12/2/26, 9:33{NNBSP}PM" in page
    assert "02/12/2026" not in page


def test_an_indonesian_page_writes_decimal_commas(db, make_site, make_user, login_as):
    jakarta = make_site(name="Jakarta Kemang", timezone="Asia/Jakarta", language="id")
    manager = make_user("manager", [jakarta], name="Dewi Manajer")
    db.session.add(ItemType(organisation_id=jakarta.organisation_id, name="Roller 0.5", kind="single_use_roller",
                            needle_length_mm=Decimal("0.50")))
    db.session.commit()
    assert jakarta.locale == "id-ID"
    page = _text(login_as(manager).get("/item-types"))
    assert "0,50 mm" in page and "0.50 mm" not in page


def test_the_language_stays_the_language_setting(db, make_site, make_user, login_as):
    """An English-speaking person at an Indonesian site reads English words in Indonesian formats."""
    jakarta = make_site(name="Jakarta Kemang", timezone="Asia/Jakarta", language="id")
    manager = make_user("manager", [jakarta], name="Expat Manager", language="en")
    db.session.add(ItemType(organisation_id=jakarta.organisation_id, name="Roller 0.5", kind="single_use_roller",
                            needle_length_mm=Decimal("0.50")))
    db.session.commit()
    page = _text(login_as(manager).get("/item-types"))
    assert "0,50 mm" in page and "Single-use stock" in page and "Stok sekali pakai" not in page


# --- settings --------------------------------------------------------------------------------------

def test_an_admin_sets_a_sites_locale_and_an_unknown_one_is_refused(db, admin, site, login_as):
    client = login_as(admin)
    values = {"name": site.name, "timezone": site.timezone, "language": site.language}
    assert client.form_post(f"/sites/{site.id}/edit", {**values, "locale": "en-AU"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Site, site.id).locale == "en-AU"
    response = client.form_post(f"/sites/{site.id}/edit", {**values, "name": "Renamed", "locale": "fr-FR"})
    assert response.status_code == 422
    assert "Dates and numbers must be one of: en-GB, en-US, en-AU, id-ID" in _text(response)
    db.session.expire_all()
    assert (db.session.get(Site, site.id).name, db.session.get(Site, site.id).locale) == (site.name, "en-AU")


def test_a_person_chooses_their_own_locale_where_they_choose_their_language(db, admin, nurse, login_as):
    client = login_as(admin)
    form = _text(client.get(f"/people/{nurse.id}/edit"))
    assert 'name="locale"' in form and "English (United States)" in form
    response = client.form_post(f"/people/{nurse.id}/edit", {
        "name": nurse.name, "email": nurse.email, "role": "staff", "site_ids": [s.id for s in nurse.sites],
        "language": "", "locale": "en-US"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(User.locale).where(User.id == nurse.id)) == "en-US"
    response = client.form_post(f"/people/{nurse.id}/edit", {
        "name": nurse.name, "email": nurse.email, "role": "staff", "site_ids": [s.id for s in nurse.sites],
        "language": "", "locale": "xx-YY"})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.scalar(select(User.locale).where(User.id == nurse.id)) == "en-US"
