"""The range the pack allows each site number in, as data: read by the loader (which refuses a pack whose own
default lies outside it), checked for every override, shown read-only for lists and texts."""
from copy import deepcopy

import pytest
import yaml

from compliance.guidelines import DEFAULT_PACK, NOTICES, NumberRefused, PackError, load_pack, parse_pack
from compliance.guidelines.numbers import is_looser, number_row, parse_value, site_numbers


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_PACK.read_text(encoding="utf-8"))


def test_the_default_pack_gives_the_ranges_the_readme_promises():
    pack = load_pack()
    spore = pack.limits[("spore-test", "frequency_days")]
    assert (spore.min, spore.max, spore.whole, spore.looser) == (1, 31, True, "higher")
    shelf = pack.limits[("sterile-storage", "shelf_life_days")]
    assert (shelf.min, shelf.max, shelf.looser) == (1, 365, "higher")
    assert pack.limits[("weekly-leak-test", "max_pressure_rise_mbar_per_min")].whole is False
    assert pack.limits[("daily-checks", "opening_hour")].max == 23
    assert pack.limits[(NOTICES, "digest_local_hour")].max == 23
    assert ("single-use-never-reused", "max_uses") not in pack.limits  # used once, everywhere: fixed


def test_every_range_holds_its_own_default():
    pack = load_pack()
    for (rule_id, key), limit in pack.limits.items():
        assert limit.min <= pack.default(rule_id, key) <= limit.max, (rule_id, key)


@pytest.mark.parametrize("spec,match", [
    ({"min": 1, "max": 5}, "outside the pack's own range 1–5"),       # the default is 7
    ({"min": 8, "max": 31}, "outside the pack's own range 8–31"),
    ({"min": 31, "max": 1}, "min ≤ max"),
    ({"min": 1.5, "max": 31}, "min and max must be too"),
    ({"min": 1, "max": 31, "looser": "sideways"}, "looser must be one of"),
    ({"min": 1, "max": 31, "at_most": "no_such_key"}, "at_most"),
    ({"min": 1, "max": 31, "step": 2}, "unknown settings"),
])
def test_the_loader_refuses_a_range_that_does_not_hold_or_make_sense(spec, match):
    data = _raw()
    data["rules"]["spore-test"]["limits"]["frequency_days"] = spec
    with pytest.raises(PackError, match=match) as exc:
        parse_pack(data)
    assert "spore-test" in str(exc.value) and "frequency_days" in str(exc.value)


def test_the_loader_refuses_a_range_for_a_list_and_a_notice_default_outside_its_range():
    data = _raw()
    data["rules"]["sterile-storage"]["limits"]["compromised_reasons"] = {"min": 1, "max": 3}
    with pytest.raises(PackError, match="only a plain number"):
        parse_pack(data)
    data = _raw()
    data["notices"]["digest_local_hour"] = 30
    with pytest.raises(PackError, match="digest_local_hour"):
        parse_pack(data)


def test_a_pack_without_ranges_still_loads_and_its_numbers_are_fixed():
    data = deepcopy(_raw())
    for spec in data["rules"].values():
        spec.pop("limits", None)
    data.pop("notice_limits")
    pack = parse_pack(data)
    assert pack.limits == {}
    with pytest.raises(NumberRefused) as exc:
        pack.with_overrides({("spore-test", "frequency_days"): 30})
    assert exc.value.kind == "fixed"


@pytest.mark.parametrize("rule_id,key,value,kind", [
    ("spore-test", "frequency_days", 32, "range"),
    ("spore-test", "frequency_days", 0, "range"),
    ("spore-test", "frequency_days", -7, "range"),
    ("spore-test", "frequency_days", 7.5, "whole"),
    ("spore-test", "frequency_days", "30", "number"),
    ("spore-test", "frequency_days", True, "number"),
    ("spore-test", "frequency_days", None, "number"),
    ("sterile-storage", "shelf_life_days", 366, "range"),
    ("weekly-leak-test", "max_pressure_rise_mbar_per_min", 1.31, "range"),
    ("cycle-parameters-met", "max_temperature_over_set_c", 4, "range"),
    ("failed-test-recall", "empty_chamber_cycles_before_return", 1, "range"),
    ("sterile-storage", "compromised_reasons", ["torn"], "fixed"),
    ("single-use-never-reused", "max_uses", 2, "fixed"),
    ("air-removal-test-daily", "frequency", "weekly", "fixed"),
    (NOTICES, "escalate_after_minutes", 0, "range"),
    (NOTICES, "reminder_lead_minutes", 1.5, "whole"),
    ("spore-test", "no_such_number", 3, "unknown"),
    ("no-such-rule", "frequency_days", 3, "unknown"),
    ("gate", "pack_failed", "manager", "gate"),
    ("gate", "training_missing", "sometimes", "choice"),
    ("gate", "no_such_reason", "never", "unknown"),
])
def test_a_number_the_pack_does_not_allow_is_refused_naming_rule_and_key(rule_id, key, value, kind):
    with pytest.raises(NumberRefused) as exc:
        load_pack().with_overrides({(rule_id, key): value})
    assert exc.value.kind == kind
    assert f"{rule_id}" in str(exc.value) and key in str(exc.value)


def test_numbers_within_range_are_in_force():
    pack = load_pack().with_overrides({("spore-test", "frequency_days"): 31, ("sterile-storage", "shelf_life_days"): 1,
                                       ("weekly-leak-test", "max_pressure_rise_mbar_per_min"): 1,
                                       (NOTICES, "digest_local_hour"): 0, ("gate", "training_missing"): "never"})
    assert pack.number("spore-test", "frequency_days") == 31
    assert pack.number("sterile-storage", "shelf_life_days") == 1
    assert pack.number(NOTICES, "digest_local_hour") == 0
    assert pack.override_for("training_missing") == "never"


def test_a_minimum_may_not_pass_its_maximum():
    pack = load_pack()
    with pytest.raises(NumberRefused) as exc:
        pack.with_overrides({("passes-within-range", "min_passes"): 12})  # max_passes is 10
    assert exc.value.kind == "order" and exc.value.other == "max_passes"
    with pytest.raises(NumberRefused):
        pack.with_overrides({("passes-within-range", "max_passes"): 5})  # below min_passes 6
    both = pack.with_overrides({("passes-within-range", "min_passes"): 12, ("passes-within-range", "max_passes"): 14})
    assert both.number("passes-within-range", "min_passes") == 12
    with pytest.raises(NumberRefused):
        pack.with_overrides({("daily-checks", "opening_hour"): 21})  # after closing at 20


@pytest.mark.parametrize("raw,expected", [("30", 30), (" 30 ", 30), ("30.0", 30), (30.0, 30), (30, 30)])
def test_typed_whole_numbers_are_read_as_whole_numbers(raw, expected):
    value = parse_value(load_pack(), "spore-test", "frequency_days", raw)
    assert value == expected and isinstance(value, int)


@pytest.mark.parametrize("raw", ["thirty", "", "30 days", "1" * 40, "nan", "inf", True, [30], {"a": 1}])
def test_text_that_is_no_number_is_refused(raw):
    with pytest.raises(NumberRefused) as exc:
        parse_value(load_pack(), "spore-test", "frequency_days", raw)
    assert exc.value.kind == "number"


def test_a_decimal_comma_is_read_and_a_gate_setting_stays_text():
    assert parse_value(load_pack(), "weekly-leak-test", "max_pressure_rise_mbar_per_min", "1,2") == 1.2
    assert parse_value(load_pack(), "gate", "training_missing", " never ") == "never"


def test_the_screen_rows_group_every_number_by_rule_with_the_sites_value_beside_the_default():
    pack = load_pack().with_overrides({("spore-test", "frequency_days"): 30, ("gate", "training_missing"): "never"})
    groups = {g.rule_id: g for g in site_numbers(pack, "id", "notices", "gate")}
    assert set(groups) == {r.id for r in pack.rules.values() if r.numbers} | {"notices", "gate"}
    spore = groups["spore-test"]
    assert spore.title == pack.rule("spore-test").title["id"] and spore.severity == "major"
    frequency = {n.key: n for n in spore.numbers}["frequency_days"]
    assert (frequency.default, frequency.value, frequency.differs, frequency.editable) == (7, 30, True, True)
    assert not {n.key: n for n in spore.numbers}["overdue_after_days"].differs
    reasons = {n.key: n for n in groups["gate"].numbers}
    assert reasons["training_missing"].value == "never" and reasons["training_missing"].differs
    assert reasons["training_missing"].editable and not reasons["pack_failed"].editable  # never stays never
    fixed = {n.key: n for n in groups["sterile-storage"].numbers}["compromised_reasons"]
    assert fixed.kind == "fixed" and not fixed.editable


def test_looser_is_measured_against_the_pack_default_in_the_packs_direction():
    pack = load_pack()
    assert is_looser(number_row(pack, "spore-test", "frequency_days"), 30)
    assert not is_looser(number_row(pack, "spore-test", "frequency_days"), 3)
    assert is_looser(number_row(pack, "record-retention", "retention_years"), 3)
    assert not is_looser(number_row(pack, "daily-checks", "opening_hour"), 6)
