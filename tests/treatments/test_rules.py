"""The point-of-use gate at its boundaries, without an app."""
from datetime import date, datetime, timedelta, timezone

from compliance.treatments.rules import (
    PackFacts,
    UnitFacts,
    check_pack,
    check_passes,
    check_practitioner,
    check_screening,
    check_unit,
    is_reportable,
    required_courses,
)

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
GOOD_PACK = PackFacts("PK-GOOD2345", "sterile", NOW + timedelta(days=30), "released")
GOOD_UNIT = UnitFacts("SER1", False, "LOT1", "available", date(2027, 1, 1))


def codes(reasons):
    return [r.code for r in reasons]


def test_a_sterile_pack_in_date_passes():
    assert check_pack(GOOD_PACK, NOW) == []


def test_pack_from_a_failed_load_is_refused():
    pack = PackFacts("PK-A", "failed", NOW + timedelta(days=30), "failed")
    assert codes(check_pack(pack, NOW)) == ["load_not_released", "pack_failed"]


def test_pack_awaiting_release_is_refused():
    pack = PackFacts("PK-A", "loaded", None, "awaiting_release")
    assert codes(check_pack(pack, NOW)) == ["load_not_released"]


def test_pack_expires_at_its_expiry():
    at_expiry = PackFacts("PK-A", "sterile", NOW, "released")
    assert codes(check_pack(at_expiry, NOW)) == ["pack_expired"]
    assert check_pack(at_expiry, NOW - timedelta(seconds=1)) == []


def test_compromised_recalled_and_used_packs_are_refused():
    assert codes(check_pack(PackFacts("PK-A", "compromised", NOW + timedelta(days=1), "released"), NOW)) == \
        ["pack_compromised"]
    assert codes(check_pack(PackFacts("PK-A", "recalled", NOW + timedelta(days=1), "recalled"), NOW)) == \
        ["pack_recalled"]
    assert codes(check_pack(PackFacts("PK-A", "used", NOW + timedelta(days=1), "released"), NOW)) == ["pack_used"]


def test_device_over_its_makers_limit_is_refused():
    pack = PackFacts("PK-A", "sterile", NOW + timedelta(days=1), "released", (("RH-1", 201, 200),))
    reasons = check_pack(pack, NOW)
    assert codes(reasons) == ["device_over_limit"] and reasons[0].rule == "spaulding-critical"


def test_unit_used_before_is_refused():
    unit = UnitFacts("SER1", True, "LOT1", "available", date(2027, 1, 1))
    reasons = check_unit(unit, date(2026, 11, 25))
    assert codes(reasons) == ["unit_used"] and reasons[0].rule == "single-use-never-reused"


def test_lot_expiry_day_is_still_usable_the_day_after_is_not():
    unit = UnitFacts("SER1", False, "LOT1", "available", date(2026, 11, 25))
    assert check_unit(unit, date(2026, 11, 25)) == []
    assert codes(check_unit(unit, date(2026, 11, 26))) == ["lot_expired"]


def test_recalled_or_quarantined_lot_is_refused():
    assert codes(check_unit(UnitFacts("S", False, "L", "recalled", date(2027, 1, 1)), date(2026, 11, 25))) == \
        ["lot_recalled"]
    assert codes(check_unit(UnitFacts("S", False, "L", "quarantined", date(2027, 1, 1)), date(2026, 11, 25))) == \
        ["lot_quarantined"]


def test_practitioner_needs_every_required_course():
    assert check_practitioner(["infection_control", "microneedling"], {"infection_control", "microneedling"}) == []
    reasons = check_practitioner(["infection_control", "microneedling"], {"infection_control"})
    assert codes(reasons) == ["training_missing"] and reasons[0].values == {"course": "microneedling"}


def test_required_courses_come_from_the_pack_requirements():
    requirements = {"microneedling": ["infection_control", "microneedling"]}
    assert required_courses("acne_scars", requirements) == ["infection_control", "microneedling"]


def test_screening_must_be_recorded():
    assert codes(check_screening(None)) == ["screening_missing"]
    assert check_screening({"active_skin_infection": False}) == []
    assert codes(check_screening({"active_skin_infection": True})) == ["active_infection"]


def test_passes_outside_six_to_ten_need_confirmation():
    assert check_passes(6, False, 6, 10) == [] and check_passes(10, False, 6, 10) == []
    assert codes(check_passes(11, False, 6, 10)) == ["passes_outside"]
    assert codes(check_passes(5, False, 6, 10)) == ["passes_outside"]
    assert check_passes(11, True, 6, 10) == []


def test_expected_effects_are_not_reportable():
    assert not is_reportable("redness") and not is_reportable("pain")
    assert is_reportable("infection") and is_reportable("needlestick_injury")


def test_pack_holding_a_quarantined_device_is_refused():
    pack = PackFacts("PK-A", "sterile", NOW + timedelta(days=1), "released", (), (("RH-2", "quarantined"),))
    assert codes(check_pack(pack, NOW)) == ["device_withdrawn"]
