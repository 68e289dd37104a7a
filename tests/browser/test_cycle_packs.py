"""The cycle form on the tablet, in Chromium: the packs waiting for a load are buttons; a tap puts a pack's label
in the load's list and a second tap takes it out, "All" adds every one, typing still works and the buttons follow
it (what is posted is the list, read as before)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from compliance.sites.models import User
from compliance.sterilisation.models import Pack
from compliance.timeutil import utcnow

from .conftest import JAKARTA, SARI, SARI_PIN

pytestmark = pytest.mark.browser


def _waiting(live, codes: list[str]) -> None:
    """Packs of Jakarta, packed and waiting for a load (as the pack step leaves them)."""
    site_id = live.site_id(JAKARTA)
    with live.session() as s:
        sari = s.scalar(select(User.id).where(User.email == "sari@demo.clinic"))
        for code in codes:
            s.add(Pack(site_id=site_id, label_code=code, packaging="pouch", status="packed", packed_by_id=sari,
                       packed_at=utcnow()))
        s.commit()


def test_waiting_packs_are_tapped_into_the_load(tablet, live, shot, assert_accessible):
    _waiting(live, ["PK-TAPONE23", "PK-TAPTWO45", "PK-TAPSIX78"])
    page = tablet(JAKARTA, SARI, SARI_PIN)
    page.goto("/decontamination/cycles/new")
    area = page.locator("textarea[name=pack_codes]")
    one, two = page.locator("[data-pack-code='PK-TAPONE23']"), page.locator("[data-pack-code='PK-TAPTWO45']")
    expect(one).to_have_attribute("aria-pressed", "false")
    one.click()
    two.click()
    expect(area).to_have_value("PK-TAPONE23\nPK-TAPTWO45")
    expect(one).to_have_attribute("aria-pressed", "true")
    assert_accessible(page, "cycle-packs-tapped")
    shot(page, "cycle-packs-tapped")
    one.click()  # out again
    expect(area).to_have_value("PK-TAPTWO45")
    expect(one).to_have_attribute("aria-pressed", "false")
    page.locator("[data-pack-all]").click()
    values = area.input_value().split("\n")
    assert {"PK-TAPONE23", "PK-TAPTWO45", "PK-TAPSIX78"} <= set(values) and len(values) == len(set(values))
    area.fill("pk-taptwo45")  # typed (or scanned) by hand: the buttons follow
    area.dispatch_event("input")
    expect(two).to_have_attribute("aria-pressed", "true")
    expect(one).to_have_attribute("aria-pressed", "false")
