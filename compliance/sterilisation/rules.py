"""Pure sterilisation rules: values and `now` in, a verdict with reasons and guideline ids out. No Flask here.

Each reason carries a code and its values; compliance/sterilisation/messages.py turns it into words in
the reader's language, so a stored verdict can be shown in English or Indonesian later.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

# Readings outside these are typing mistakes, refused as input rather than judged (°C, s, kPa).
PLAUSIBLE_TEMPERATURE_C = (Decimal("0"), Decimal("150"))
PLAUSIBLE_HOLDING_SECONDS = (0, 4 * 3600)
PLAUSIBLE_PRESSURE_KPA = (Decimal("0"), Decimal("600"))


@dataclass(frozen=True)
class Reason:
    rule: str      # the guideline id
    code: str      # what went wrong, for messages.py
    values: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"rule": self.rule, "code": self.code, "values": self.values}


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[Reason, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class ProgrammeSpec:
    temperature_c: Decimal
    min_holding_seconds: int
    min_pressure_kpa: Decimal | None = None


@dataclass(frozen=True)
class CycleFigures:
    temperature_c: Decimal
    holding_seconds: int
    pressure_kpa: Decimal | None
    indicator_passed: bool
    indicator_class: int | None
    printout_ref: str


@dataclass(frozen=True)
class SteriliserSpec:
    type: str                       # B, S or N (EN 13060)
    is_validated_for_wrapped: bool  # type S only
    is_in_service: bool
    timezone: str


@dataclass(frozen=True)
class LoadSpec:
    has_wrapped: bool
    has_hollow: bool


@dataclass(frozen=True)
class CheckRecord:
    kind: str
    performed_at: datetime
    result: str  # pending, pass, fail


@dataclass(frozen=True)
class Limits:
    """The numbers in force (from the guideline pack with the site's overrides)."""
    max_temperature_over_set_c: Decimal
    min_indicator_class_without_printout: int
    spore_overdue_after_days: int


def check_figures(programme: ProgrammeSpec, figures: CycleFigures, limits: Limits) -> list[Reason]:
    """cycle-parameters-met: the set temperature (not over by more than the limit), the holding time, the pressure."""
    reasons = []
    low = programme.temperature_c
    high = programme.temperature_c + limits.max_temperature_over_set_c
    if figures.temperature_c < low:
        reasons.append(Reason("cycle-parameters-met", "temperature_low",
                              {"reached": str(figures.temperature_c), "required": str(low)}))
    elif figures.temperature_c > high:
        reasons.append(Reason("cycle-parameters-met", "temperature_high",
                              {"reached": str(figures.temperature_c), "limit": str(high)}))
    if figures.holding_seconds < programme.min_holding_seconds:
        reasons.append(Reason("cycle-parameters-met", "holding_short",
                              {"reached": figures.holding_seconds, "required": programme.min_holding_seconds}))
    if programme.min_pressure_kpa is not None:
        if figures.pressure_kpa is None:
            reasons.append(Reason("cycle-parameters-met", "pressure_missing",
                                  {"required": str(programme.min_pressure_kpa)}))
        elif figures.pressure_kpa < programme.min_pressure_kpa:
            reasons.append(Reason("cycle-parameters-met", "pressure_low",
                                  {"reached": str(figures.pressure_kpa), "required": str(programme.min_pressure_kpa)}))
    return reasons


def check_indicators(figures: CycleFigures, limits: Limits) -> list[Reason]:
    """per-load-indicators: the chemical indicator passed; without a printout, it is class 5 or 6."""
    reasons = []
    if not figures.indicator_passed:
        reasons.append(Reason("per-load-indicators", "indicator_failed"))
    if not figures.printout_ref.strip() and (figures.indicator_class or 0) < limits.min_indicator_class_without_printout:
        reasons.append(Reason("per-load-indicators", "no_printout_low_class",
                              {"required": limits.min_indicator_class_without_printout,
                               "given": figures.indicator_class}))
    return reasons


def check_type_fits_load(steriliser: SteriliserSpec, load: LoadSpec) -> list[Reason]:
    """steriliser-type-fits-load: wrapped or hollow needs type B, or type S validated for it."""
    if not (load.has_wrapped or load.has_hollow):
        return []
    if steriliser.type == "B" or (steriliser.type == "S" and steriliser.is_validated_for_wrapped):
        return []
    return [Reason("steriliser-type-fits-load", "type_unfit",
                   {"type": steriliser.type, "wrapped": load.has_wrapped, "hollow": load.has_hollow})]


def local_day(moment: datetime, tz_name: str) -> date:
    return moment.astimezone(ZoneInfo(tz_name)).date()


def air_removal_passed_before(tests: Iterable[CheckRecord], at: datetime, tz_name: str) -> bool:
    """air-removal-test-daily: the last air-removal test of the same local day, before `at`, passed."""
    day = local_day(at, tz_name)
    same_day = [t for t in tests if t.kind == "air_removal" and t.performed_at <= at
                and local_day(t.performed_at, tz_name) == day and t.result != "pending"]
    if not same_day:
        return False
    return max(same_day, key=lambda t: t.performed_at).result == "pass"


def spore_test_state(tests: Iterable[CheckRecord], at: datetime, tz_name: str, overdue_after_days: int) -> str:
    """spore-test: 'ok', 'missing', 'failed' or 'overdue' for the last spore test read by `at`.

    Age is counted in local calendar days: a test 7 days old is in date with the default of 7; on day 8 it is overdue.
    A pending test does not count yet; its predecessor's result stands.
    """
    done = [t for t in tests if t.kind == "spore" and t.result != "pending" and t.performed_at <= at]
    if not done:
        return "missing"
    last = max(done, key=lambda t: t.performed_at)
    if last.result == "fail":
        return "failed"
    age = (local_day(at, tz_name) - local_day(last.performed_at, tz_name)).days
    return "overdue" if age > overdue_after_days else "ok"


def cycle_verdict(programme: ProgrammeSpec, figures: CycleFigures, steriliser: SteriliserSpec, load: LoadSpec,
                  tests: Sequence[CheckRecord], started_at: datetime, limits: Limits) -> Verdict:
    """The whole verdict on a load: every failing reason, so the person sees all of them at once."""
    reasons: list[Reason] = []
    if not steriliser.is_in_service:
        reasons.append(Reason("failed-test-recall", "steriliser_out_of_service"))
    reasons += check_figures(programme, figures, limits)
    reasons += check_indicators(figures, limits)
    reasons += check_type_fits_load(steriliser, load)
    if steriliser.type in ("B", "S") and not air_removal_passed_before(tests, started_at, steriliser.timezone):
        reasons.append(Reason("air-removal-test-daily", "no_air_removal_today"))
    spore = spore_test_state(tests, started_at, steriliser.timezone, limits.spore_overdue_after_days)
    if spore != "ok":
        reasons.append(Reason("spore-test", f"spore_{spore}", {"days": limits.spore_overdue_after_days}))
    return Verdict(tuple(reasons))


def with_curve_reasons(verdict: Verdict, curve_reasons: Sequence[Reason]) -> Verdict:
    """A load's verdict with its figures judged from the steriliser's curve: the typed figures' reasons
    (cycle-parameters-met) give way to the curve's, in their place; every other reason stays."""
    reasons: list[Reason] = []
    placed = False
    for r in verdict.reasons:
        if r.rule == "cycle-parameters-met":
            if not placed:
                reasons += curve_reasons
                placed = True
            continue
        reasons.append(r)
    if not placed:
        at = sum(1 for r in reasons if r.rule == "failed-test-recall")  # after "out of service", as typed ones are
        reasons[at:at] = curve_reasons
    return Verdict(tuple(reasons))


def pack_expires_at(sterilised_at: datetime, shelf_life_days: int) -> datetime:
    """sterile-storage: a pack's expiry, counted from its load."""
    return sterilised_at + timedelta(days=shelf_life_days)


@dataclass(frozen=True)
class LoadRef:
    id: int
    started_at: datetime
    status: str


def loads_to_recall(loads: Iterable[LoadRef], since: datetime | None) -> list[int]:
    """failed-test-recall: every load since the last passing spore test (all loads when there was none)."""
    return sorted(l.id for l in loads
                  if l.status in ("awaiting_release", "released") and (since is None or l.started_at > since))


def may_return_to_service(passing_spore_tests_since_recall: int, required: int) -> bool:
    """failed-test-recall: after a positive spore test, `required` consecutive passing tests before service."""
    return passing_spore_tests_since_recall >= required


def may_release(role: str, has_valid_sterilisation_training: bool) -> bool:
    """A load is released by a manager or admin, or by staff with in-date decontamination training."""
    return role in ("manager", "admin") or (role == "staff" and has_valid_sterilisation_training)


def pack_state(status: str, expires_at: datetime | None, now: datetime) -> str:
    """What a pack is now: its stored status, or 'expired' once a sterile pack is past its expiry."""
    if status == "sterile" and expires_at is not None and now >= expires_at:
        return "expired"
    return status
