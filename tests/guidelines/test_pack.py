"""The default guideline pack loads, is complete in both languages, and site overrides are checked."""
import pytest

from compliance.guidelines import PackError, load_pack, parse_pack

EXPECTED_RULES = {
    "spaulding-critical", "single-use-never-reused", "device-legally-marketed", "clean-before-sterilise",
    "steriliser-type-fits-load", "cycle-parameters-met", "per-load-indicators", "pack-labelled",
    "air-removal-test-daily", "automatic-control-test-daily", "spore-test", "weekly-leak-test",
    "periodic-validation", "failed-test-recall", "sterile-storage", "client-screening", "hand-hygiene-gloves",
    "skin-prep", "passes-within-range", "surfaces-between-clients", "sharps-container", "trained-practitioner",
    "adverse-event", "look-back", "record-retention", "daily-checks", "corrective-action-due",
}


def test_default_pack_has_every_rule_with_both_languages():
    pack = load_pack()
    assert set(pack.rules) == EXPECTED_RULES
    for rule in pack.rules.values():
        assert rule.title["en"] and rule.title["id"] and rule.title["en"] != rule.title["id"]


def test_default_numbers_come_from_the_pack():
    pack = load_pack()
    assert pack.number("sterile-storage", "shelf_life_days") == 60
    assert pack.number("spore-test", "overdue_after_days") == 7
    assert pack.number("passes-within-range", "min_passes") == 6
    assert pack.number("passes-within-range", "max_passes") == 10


def test_site_override_wins_and_is_checked():
    pack = load_pack().with_overrides({("sterile-storage", "shelf_life_days"): 30})
    assert pack.number("sterile-storage", "shelf_life_days") == 30
    with pytest.raises(PackError):
        load_pack().with_overrides({("sterile-storage", "shelf_life_days"): "thirty"})
    with pytest.raises(PackError):
        load_pack().with_overrides({("sterile-storage", "no_such_number"): 3})


def test_malformed_pack_is_refused():
    with pytest.raises(PackError, match="severity"):
        parse_pack({"version": "1", "rules": {"x": {"severity": "fatal", "title": {"en": "a", "id": "b"}}}})
    with pytest.raises(PackError, match="title"):
        parse_pack({"version": "1", "rules": {"x": {"severity": "minor", "title": {"en": "a"}}}})
