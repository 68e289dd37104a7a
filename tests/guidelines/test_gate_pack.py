"""The gate's overrides and needle items are guideline data, checked when the pack loads; the README's table is
the pack's."""
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml

from compliance.guidelines import DEFAULT_PACK, PackError, load_pack, parse_pack
from compliance.guidelines.tables import END, START, gate_tables
from compliance.treatments import rules
from compliance.treatments.messages import MESSAGES

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 3, 0, tzinfo=timezone.utc)


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_PACK.read_text(encoding="utf-8"))


def test_the_readme_gate_table_is_the_one_made_from_the_pack():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme[readme.index(START):readme.index(END) + len(END)]
    assert shown == gate_tables(), "run scripts/gate-table"


def test_only_the_practitioners_training_may_be_overridden_by_a_manager():
    pack = load_pack()
    assert {code for code, r in pack.gate.items() if r.override == "manager"} == {"training_missing"}
    for code in ("load_not_released", "pack_failed", "pack_recalled", "pack_expired", "pack_compromised",
                 "pack_used", "device_withdrawn", "device_over_limit", "unit_used", "lot_recalled",
                 "lot_quarantined", "lot_expired", "screening_missing", "active_infection"):
        assert pack.override_for(code) == "never", code
    assert pack.override_for("a_code_nobody_declared") == "never"


@pytest.mark.parametrize("code", ["lot_expired", "pack_failed", "unit_used", "active_infection"])
def test_a_pack_marking_a_not_sterile_used_or_client_reason_overridable_is_refused_at_load(code):
    data = _raw()
    data["gate"]["reasons"][code]["override"] = "manager"
    with pytest.raises(PackError, match="can never be overridden"):
        parse_pack(data)


def test_a_pack_may_not_call_a_sterility_reason_a_persons_to_make_it_overridable_without_saying_so():
    data = _raw()
    data["gate"]["reasons"]["lot_expired"]["means"] = "whatever"
    with pytest.raises(PackError, match="means must be one of"):
        parse_pack(data)


def test_a_site_may_make_a_reason_stricter_never_looser():
    pack = load_pack()
    assert pack.with_overrides({("gate", "training_missing"): "never"}).override_for("training_missing") == "never"
    for code in ("pack_failed", "lot_expired", "screening_missing"):
        with pytest.raises(PackError, match="never looser"):
            pack.with_overrides({("gate", code): "manager"})
    with pytest.raises(PackError):
        pack.with_overrides({("gate", "training_missing"): "sometimes"})
    with pytest.raises(PackError):
        pack.with_overrides({("gate", "no_such_reason"): "never"})


def _every_reason_the_rules_give() -> list:
    pack_facts = rules.PackFacts("PK-1", "sterile", datetime(2026, 1, 1, tzinfo=timezone.utc), "failed",
                                 (("D1", 9, 5),), (("D2", "quarantined"),))
    reasons = rules.check_pack(pack_facts, NOW)
    for status in ("recalled", "compromised", "used", "failed"):
        reasons += rules.check_pack(rules.PackFacts("PK-2", status, None, "released"), NOW)
    for lot_status in ("recalled", "quarantined"):
        reasons += rules.check_unit(rules.UnitFacts("S1", True, "L1", lot_status, date(2020, 1, 1)), NOW.date())
    reasons += rules.check_practitioner(["infection_control"], [])
    reasons += rules.check_screening(None) + rules.check_screening({"active_skin_infection": True})
    return reasons


def test_every_reason_the_gate_gives_is_in_the_pack_with_the_same_rule_and_has_words():
    pack = load_pack()
    given = {(r.code, r.rule) for r in _every_reason_the_rules_give()}
    assert {code for code, _rule in given} == set(pack.gate)
    for code, rule in given:
        assert pack.gate[code].rule == rule, code
        assert code in MESSAGES, code


def test_needle_items_per_method():
    methods = load_pack().methods
    pack = rules.NeedleItem("pack", frozenset({"critical"}))
    cartridge = rules.NeedleItem("unit", unit_kind="needle_cartridge")
    roller = rules.NeedleItem("unit", unit_kind="single_use_roller")
    non_critical = rules.NeedleItem("pack", frozenset({"non-critical"}))
    assert [r.title_in("en") for r in rules.missing_needle_items(methods["pen"], [], methods)] == [
        "a sterile pack (pen-tip holder or reusable device)", "a single-use needle cartridge"]
    assert len(rules.missing_needle_items(methods["pen"], [pack], methods)) == 1
    assert rules.missing_needle_items(methods["pen"], [pack, cartridge], methods) == []
    assert rules.missing_needle_items(methods["roller"], [roller], methods) == []
    assert rules.missing_needle_items(methods["roller"], [pack], methods) == []
    assert len(rules.missing_needle_items(methods["roller"], [non_critical, cartridge], methods)) == 1
    # A treatment recorded before methods existed: any one needle item of any method.
    assert rules.missing_needle_items(None, [cartridge], methods) == []
    assert len(rules.missing_needle_items(None, [non_critical], methods)) == 1


def test_a_method_without_needle_items_is_refused_at_load():
    data = _raw()
    data["gate"]["methods"]["pen"]["requires"] = []
    with pytest.raises(PackError, match="at least one needle item"):
        parse_pack(data)
    data = _raw()
    data["gate"]["methods"]["pen"]["requires"][0]["any_of"] = [{"sterile": "maybe"}]
    with pytest.raises(PackError, match="an item is"):
        parse_pack(data)
