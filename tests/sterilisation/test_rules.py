"""Sterilisation rules at their boundaries, without an app."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from compliance.sterilisation.rules import (
    CycleFigures,
    Limits,
    LoadRef,
    LoadSpec,
    ProgrammeSpec,
    SteriliserSpec,
    CheckRecord,
    air_removal_passed_before,
    check_figures,
    check_indicators,
    check_type_fits_load,
    cycle_verdict,
    loads_to_recall,
    may_release,
    may_return_to_service,
    pack_expires_at,
    pack_state,
    spore_test_state,
)

LIMITS = Limits(max_temperature_over_set_c=D("3"), min_indicator_class_without_printout=5,
                spore_overdue_after_days=7)
P134 = ProgrammeSpec(D("134.0"), 180, None)
JKT = "Asia/Jakarta"
# 09:00 in Jakarta on 25 November 2026
START = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
B = SteriliserSpec("B", False, True, JKT)
WRAPPED = LoadSpec(has_wrapped=True, has_hollow=False)


def figures(t="134.0", hold=180, pressure=None, ci=True, ci_class=5, printout="PR-1"):
    return CycleFigures(D(t), hold, D(pressure) if pressure else None, ci, ci_class, printout)


def good_tests(at=START):
    return [CheckRecord("air_removal", at - timedelta(hours=1), "pass"),
            CheckRecord("spore", at - timedelta(days=3), "pass")]


def codes(reasons):
    return [r.code for r in reasons]


def test_temperature_at_the_set_point_passes_a_tenth_below_fails():
    assert check_figures(P134, figures("134.0"), LIMITS) == []
    assert codes(check_figures(P134, figures("133.9"), LIMITS)) == ["temperature_low"]


def test_temperature_above_the_tolerance_fails():
    assert check_figures(P134, figures("137.0"), LIMITS) == []
    assert codes(check_figures(P134, figures("137.1"), LIMITS)) == ["temperature_high"]


def test_holding_time_one_second_short_fails():
    assert check_figures(P134, figures(hold=180), LIMITS) == []
    reasons = check_figures(P134, figures(hold=179), LIMITS)
    assert codes(reasons) == ["holding_short"] and reasons[0].rule == "cycle-parameters-met"


def test_pressure_is_checked_only_when_the_programme_sets_one():
    with_pressure = ProgrammeSpec(D("134.0"), 180, D("304.0"))
    assert codes(check_figures(with_pressure, figures(), LIMITS)) == ["pressure_missing"]
    assert codes(check_figures(with_pressure, figures(pressure="303.9"), LIMITS)) == ["pressure_low"]
    assert check_figures(with_pressure, figures(pressure="304.0"), LIMITS) == []


def test_failed_chemical_indicator_fails_the_load():
    assert codes(check_indicators(figures(ci=False), LIMITS)) == ["indicator_failed"]


def test_without_a_printout_the_indicator_must_be_class_5_or_6():
    assert codes(check_indicators(figures(printout="", ci_class=4), LIMITS)) == ["no_printout_low_class"]
    assert check_indicators(figures(printout="", ci_class=5), LIMITS) == []
    assert check_indicators(figures(printout="LOG-7", ci_class=1), LIMITS) == []


@pytest.mark.parametrize("stype,validated,load,ok", [
    ("N", False, LoadSpec(True, False), False),   # type N with a wrapped load
    ("N", False, LoadSpec(False, True), False),   # type N with a hollow item
    ("N", False, LoadSpec(False, False), True),   # type N, solid unwrapped
    ("S", False, LoadSpec(True, False), False),
    ("S", True, LoadSpec(True, True), True),
    ("B", False, LoadSpec(True, True), True),
])
def test_steriliser_type_must_fit_the_load(stype, validated, load, ok):
    reasons = check_type_fits_load(SteriliserSpec(stype, validated, True, JKT), load)
    assert (reasons == []) is ok
    if not ok:
        assert reasons[0].rule == "steriliser-type-fits-load"


def test_air_removal_test_from_yesterday_does_not_count_today():
    yesterday = CheckRecord("air_removal", START - timedelta(days=1), "pass")
    assert not air_removal_passed_before([yesterday], START, JKT)
    today = CheckRecord("air_removal", START - timedelta(minutes=30), "pass")
    assert air_removal_passed_before([yesterday, today], START, JKT)


def test_air_removal_day_is_the_sites_local_day():
    # 23:30 UTC on the 24th is 06:30 on the 25th in Jakarta: the same local day as START.
    early = CheckRecord("air_removal", datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc), "pass")
    assert air_removal_passed_before([early], START, JKT)
    assert not air_removal_passed_before([early], START, "Europe/London")


def test_air_removal_after_the_cycle_or_failed_does_not_count():
    later = CheckRecord("air_removal", START + timedelta(minutes=5), "pass")
    assert not air_removal_passed_before([later], START, JKT)
    passed_then_failed = [CheckRecord("air_removal", START - timedelta(hours=2), "pass"),
                          CheckRecord("air_removal", START - timedelta(hours=1), "fail")]
    assert not air_removal_passed_before(passed_then_failed, START, JKT)


def test_spore_test_7_days_old_is_in_date_8_days_is_overdue():
    seven = CheckRecord("spore", START - timedelta(days=7), "pass")
    eight = CheckRecord("spore", START - timedelta(days=8), "pass")
    assert spore_test_state([seven], START, JKT, 7) == "ok"
    assert spore_test_state([eight], START, JKT, 7) == "overdue"


def test_spore_test_missing_failed_and_pending():
    assert spore_test_state([], START, JKT, 7) == "missing"
    failed = CheckRecord("spore", START - timedelta(days=1), "fail")
    assert spore_test_state([failed], START, JKT, 7) == "failed"
    good = CheckRecord("spore", START - timedelta(days=3), "pass")
    pending = CheckRecord("spore", START - timedelta(hours=5), "pending")
    assert spore_test_state([good, pending], START, JKT, 7) == "ok"


def test_a_good_load_passes():
    verdict = cycle_verdict(P134, figures(), B, WRAPPED, good_tests(), START, LIMITS)
    assert verdict.passed and verdict.reasons == ()


def test_a_bad_load_lists_every_reason():
    n = SteriliserSpec("N", False, False, JKT)
    verdict = cycle_verdict(P134, figures("133.9", 179, ci=False), n, WRAPPED, [], START, LIMITS)
    assert not verdict.passed
    assert set(codes(verdict.reasons)) == {"steriliser_out_of_service", "temperature_low", "holding_short",
                                           "indicator_failed", "type_unfit", "spore_missing"}
    assert "no_air_removal_today" not in codes(verdict.reasons)  # not required for type N


def test_type_b_without_todays_air_removal_test_fails():
    tests = [CheckRecord("spore", START - timedelta(days=2), "pass")]
    verdict = cycle_verdict(P134, figures(), B, WRAPPED, tests, START, LIMITS)
    assert codes(verdict.reasons) == ["no_air_removal_today"]
    assert verdict.reasons[0].rule == "air-removal-test-daily"


def test_pack_expiry_counts_shelf_life_from_the_load():
    assert pack_expires_at(START, 60) == START + timedelta(days=60)


def test_pack_is_expired_from_its_expiry_on():
    expires = START + timedelta(days=60)
    assert pack_state("sterile", expires, expires - timedelta(seconds=1)) == "sterile"
    assert pack_state("sterile", expires, expires) == "expired"
    assert pack_state("failed", expires, expires) == "failed"


def test_recall_takes_loads_after_the_last_passing_spore_test():
    since = START
    loads = [LoadRef(1, START - timedelta(hours=1), "released"), LoadRef(2, START, "released"),
             LoadRef(3, START + timedelta(hours=1), "released"), LoadRef(4, START + timedelta(days=2), "awaiting_release"),
             LoadRef(5, START + timedelta(days=2), "failed")]
    assert loads_to_recall(loads, since) == [3, 4]
    assert loads_to_recall(loads, None) == [1, 2, 3, 4]


def test_release_needs_a_manager_or_trained_staff():
    assert may_release("manager", False) and may_release("admin", False)
    assert may_release("staff", True)
    assert not may_release("staff", False)
    assert not may_release("auditor", True)


def test_steriliser_returns_after_three_passing_spore_tests():
    assert not may_return_to_service(2, 3)
    assert may_return_to_service(3, 3)
