"""A multi-cycle CSV of the steriliser's own records uploaded on the Jakarta tablet in Chromium: both cycles are
judged and listed, the same file again changes nothing and the page says so, and the curve's page draws the curve."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from compliance.devices.models import Steriliser
from compliance.sterilisation.curve_physics import curve_csv, make_curve

from .conftest import JAKARTA, SARI, SARI_PIN

pytestmark = pytest.mark.browser

HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"


def test_a_multi_cycle_csv_is_uploaded_then_again(tablet, live, shot, assert_accessible, tmp_path):
    site_id = live.site_id(JAKARTA)
    with live.session() as s:
        serial = s.scalar(select(Steriliser.serial).where(Steriliser.site_id == site_id))
    path = tmp_path / "usb-export.csv"
    path.write_text(HEADER + curve_csv(serial, 901, "134 C wrapped", "2026-11-25T08:00:00+07:00", make_curve(step=2))
                    + curve_csv(serial, 902, "134 C wrapped", "2026-11-25T09:00:00+07:00",
                                make_curve(step=2, air_fraction=0.08)), encoding="utf-8")
    page = tablet(JAKARTA, SARI, SARI_PIN)
    page.goto("/decontamination")
    page.locator(f"a[href^='/decontamination/curves/import']").click()
    page.locator("input[type=file][name=file]").set_input_files(str(path))
    page.locator("button[type=submit].primary").last.click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("901")
    expect(result).to_contain_text("902")
    expect(result.locator(".outcome-imported")).to_have_count(2)
    expect(result.locator(".pill-ok")).to_have_count(1)   # 901: saturated steam
    expect(result.locator(".pill-bad")).to_have_count(1)  # 902: 8 % air
    assert_accessible(page, "curve-upload-result")
    shot(page, "curve-upload-result")
    page.locator("input[type=file][name=file]").set_input_files(str(path))
    page.locator("button[type=submit].primary").last.click()
    expect(page.locator("#import-result .outcome-unchanged")).to_have_count(2)
    page.locator("#import-result a", has_text="902").click()
    expect(page.locator("svg.chart-curve polyline")).to_have_count(2)
    expect(page.locator(".verdict-from-curve")).to_contain_text("K")
    assert_accessible(page, "curve-page")
    shot(page, "curve-page")


def test_a_typed_load_takes_the_figures_of_the_record_uploaded_after_it(tablet, live, shot, assert_accessible,
                                                                        tmp_path):
    """On the tablet: a load typed with a slip (holding 21 s for 215 s), confirmed; then the steriliser's USB
    export of that cycle is uploaded: the result links the load, which now holds the machine's figures, the
    typed one struck through and the disagreement marked as a finding."""
    from compliance.sterilisation.models import Cycle

    site_id = live.site_id(JAKARTA)
    page = tablet(JAKARTA, SARI, SARI_PIN)
    page.goto("/decontamination/cycles/new")
    page.fill("#temperature_c", "134,6")
    page.fill("#holding_seconds", "21")
    page.locator("label.choice-pass").first.click()
    page.fill("#printout_ref", "PR-BROWSER-USB")
    page.locator("form.big-form button[type=submit]").click()
    page.locator("button[name=confirm_failure]").click()
    page.wait_for_url("**/decontamination/loads/*")
    cycle_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    with live.session() as s:
        load = s.get(Cycle, cycle_id)
        number, started, load_site = load.cycle_number, load.started_at, load.site_id
        serial = s.scalar(select(Steriliser.serial).where(Steriliser.id == load.steriliser_id))
    assert load_site == site_id
    path = tmp_path / f"{serial}-{number}.csv"
    path.write_text(HEADER + curve_csv(serial, number, "134 C wrapped", started.isoformat(), make_curve(step=2)),
                    encoding="utf-8")
    page.goto("/decontamination/curves/import")
    page.locator("input[type=file][name=file]").set_input_files(str(path))
    page.locator("button[type=submit].primary").last.click()
    row = page.locator("#import-result .outcome-imported")
    expect(row).to_have_count(1)
    expect(row.locator(f"a[href='/loads/{cycle_id}']")).to_have_count(1)
    expect(row.locator(".finding")).to_be_visible()  # the typed holding time disagrees
    assert_accessible(page, "curve-upload-load-change")
    shot(page, "curve-upload-load-change")
    row.locator(f"a[href='/loads/{cycle_id}']").click()
    expect(page.locator("table.figures s", has_text="21 s")).to_have_count(1)  # the typed figure, struck through
    expect(page.locator("#corrections .finding")).to_be_visible()
    with live.session() as s:
        held = s.get(Cycle, cycle_id).holding_seconds
    assert held >= 240  # the machine's holding stretch
    assert_accessible(page, "load-with-machine-record")
    shot(page, "load-with-machine-record")
