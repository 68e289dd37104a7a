"""A London page in Chromium writes day/month/year and the 24-hour clock (en-GB), never the US 12/2/26, 9:33 PM."""
from __future__ import annotations

from datetime import datetime, timezone

from playwright.sync_api import expect
from sqlalchemy import select

from .conftest import EMMA, LONDON

AT = datetime(2026, 12, 2, 21, 33, tzinfo=timezone.utc)  # 21:33 in London (GMT in December)


def test_a_london_page_shows_02_12_2026_and_21_33(live, new_page):
    from compliance.sites.models import Site, User

    with live.session() as s:
        assert s.scalar(select(Site.locale).where(Site.name == LONDON)) == "en-GB"
        emma = s.scalar(select(User).where(User.name == EMMA))
        emma.created_at, emma_id = AT, emma.id  # "Added" on her page: a stored instant we know
        s.commit()
    page = new_page()
    page.goto("/login")
    page.fill("#email", "manager.london@demo.clinic")
    page.fill("#password", "demo-password-2026")
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/overview")
    page.goto(f"/people/{emma_id}")
    added = page.locator("main dd", has_text="02/12/2026")
    expect(added).to_contain_text("02/12/2026, 21:33")
    main = page.locator("main").inner_text()
    assert "12/2/26" not in main and "9:33" not in main and "PM" not in main
