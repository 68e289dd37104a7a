"""The verdict from a steriliser's own curve: pure functions, samples and numbers in, figures and reasons out.

- holding time: the longest continuous stretch of samples with the chamber temperature inside the band
  [set, set + max_temperature_over_set_c] (cycle-parameters-met), measured from its first sample to its last;
- equilibration time: from the first sample at or above the set temperature to the start of that stretch (with
  one chamber sensor this is what can be seen of EN 285's equilibration, which needs probes in the load);
- highest temperature of the whole curve;
- saturated-steam check: during the holding stretch, the saturation temperature for the measured pressure
  (IAPWS-IF97 region 4, `iapws`) agrees with the measured temperature within the pack's tolerance;
- too sparse a curve (fewer samples a minute than the pack's minimum, or a gap between two samples over its
  largest) is refused with the reason, not judged.

Reasons are rules.Reason (rule id, code, values), put into words by messages.py like the typed verdict's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from iapws.iapws97 import _TSat_P

from .rules import Reason

RULE = "cycle-parameters-met"
IF97_MIN_KPA, IF97_MAX_KPA = 0.611213, 22064.0  # the saturation line's ends (triple point, critical point)


@dataclass(frozen=True)
class CurveLimits:
    """The numbers in force (the guideline pack with the site's overrides), and the programme's."""
    set_temperature_c: float
    min_holding_seconds: float
    band_over_set_c: float
    steam_tolerance_k: float
    min_samples_per_minute: float
    max_gap_seconds: float
    min_pressure_kpa: float | None = None


@dataclass(frozen=True)
class Stretch:
    first: int   # index of the first sample in the band
    last: int    # index of the last one
    start_s: float
    end_s: float

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class CurveVerdict:
    judged: bool                           # False: refused as too sparse (see `refusal`)
    refusal: Reason | None = None
    holding: Stretch | None = None
    equilibration_seconds: float | None = None
    max_temperature_c: float | None = None
    steam_deviation_k: float | None = None  # measured − saturation, the largest in size during the holding time
    steam_deviation_at_s: float | None = None
    min_holding_pressure_kpa: float | None = None
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.judged and not self.reasons

    @property
    def holding_seconds(self) -> float:
        return self.holding.seconds if self.holding else 0.0


def saturation_temperature_c(pressure_kpa: float) -> float | None:
    """IAPWS-IF97 saturation temperature for an absolute pressure; None off the saturation line's ends."""
    if not IF97_MIN_KPA <= pressure_kpa <= IF97_MAX_KPA:
        return None
    return _TSat_P(pressure_kpa / 1000.0) - 273.15


def sparseness(seconds: Sequence[float], limits: CurveLimits) -> Reason | None:
    """Why the curve is too sparse to judge, or None: its mean rate, then its largest gap."""
    n = len(seconds)
    span = seconds[-1] - seconds[0] if n else 0.0
    if n < 2 or span <= 0:
        return Reason(RULE, "curve_too_sparse", {"per_minute": 0, "required": limits.min_samples_per_minute})
    per_minute = (n - 1) * 60.0 / span
    if per_minute < limits.min_samples_per_minute:
        return Reason(RULE, "curve_too_sparse", {"per_minute": f"{per_minute:.1f}",
                                                 "required": limits.min_samples_per_minute})
    gap, at = 0.0, 0.0
    for i in range(1, n):
        d = seconds[i] - seconds[i - 1]
        if d > gap:
            gap, at = d, seconds[i - 1]
    if gap > limits.max_gap_seconds:
        return Reason(RULE, "curve_gap", {"gap": f"{gap:g}", "at": f"{at:g}", "limit": limits.max_gap_seconds})
    return None


def holding_stretch(seconds: Sequence[float], temperatures: Sequence[float], low: float,
                    high: float) -> Stretch | None:
    """The longest run of consecutive samples inside [low, high] (the first of equal ones); None if none is."""
    best: Stretch | None = None
    first = None
    n = len(seconds)
    for i in range(n + 1):
        inside = i < n and low <= temperatures[i] <= high
        if inside and first is None:
            first = i
        elif not inside and first is not None:
            run = Stretch(first, i - 1, seconds[first], seconds[i - 1])
            if best is None or run.seconds > best.seconds:
                best = run
            first = None
    return best


def steam_deviation(temperatures: Sequence[float], pressures: Sequence[float],
                    stretch: Stretch) -> tuple[float | None, int]:
    """The largest (in size) measured − saturation temperature over the stretch, and the sample's index; None
    where a pressure is off the saturation line (then the check fails: the pressure can't be steam)."""
    worst, at = 0.0, stretch.first
    for i in range(stretch.first, stretch.last + 1):
        saturation = saturation_temperature_c(pressures[i])
        if saturation is None:
            return None, i
        d = temperatures[i] - saturation
        if abs(d) > abs(worst):
            worst, at = d, i
    return worst, at


def judge_curve(seconds: Sequence[float], temperatures: Sequence[float], pressures: Sequence[float],
                limits: CurveLimits) -> CurveVerdict:
    """The whole verdict on one curve: refused as too sparse, or judged with every failing reason."""
    refusal = sparseness(seconds, limits)
    if refusal is not None:
        return CurveVerdict(judged=False, refusal=refusal)
    low = limits.set_temperature_c
    high = limits.set_temperature_c + limits.band_over_set_c
    highest = max(temperatures)
    stretch = holding_stretch(seconds, temperatures, low, high)
    reasons: list[Reason] = []
    if stretch is None:
        reasons.append(Reason(RULE, "curve_never_in_band", {"low": f"{low:g}", "high": f"{high:g}",
                                                            "highest": f"{highest:.1f}"}))
        return CurveVerdict(judged=True, max_temperature_c=highest, reasons=tuple(reasons))
    reached_set = next(i for i, t in enumerate(temperatures) if t >= low)
    equilibration = stretch.start_s - seconds[reached_set]
    if stretch.seconds < limits.min_holding_seconds:
        reasons.append(Reason(RULE, "curve_holding_short", {"reached": f"{stretch.seconds:g}",
                                                            "required": f"{limits.min_holding_seconds:g}",
                                                            "low": f"{low:g}", "high": f"{high:g}"}))
    deviation, i = steam_deviation(temperatures, pressures, stretch)
    at = seconds[i]
    if deviation is None:
        reasons.append(Reason(RULE, "steam_pressure_off_line", {"at": f"{at:g}"}))
    elif abs(deviation) > limits.steam_tolerance_k:
        reasons.append(Reason(RULE, "steam_not_saturated", {
            "deviation": f"{abs(deviation):.1f}", "tolerance": f"{limits.steam_tolerance_k:g}", "at": f"{at:g}",
            "measured": f"{temperatures[i]:.1f}", "pressure": f"{pressures[i]:.1f}",
            "saturation": f"{temperatures[i] - deviation:.1f}"}))
    lowest_pressure = min(pressures[stretch.first:stretch.last + 1])
    if limits.min_pressure_kpa is not None and lowest_pressure < limits.min_pressure_kpa:
        reasons.append(Reason(RULE, "curve_pressure_low", {"reached": f"{lowest_pressure:.1f}",
                                                           "required": f"{limits.min_pressure_kpa:g}"}))
    return CurveVerdict(judged=True, holding=stretch, equilibration_seconds=equilibration, max_temperature_c=highest,
                        steam_deviation_k=deviation, steam_deviation_at_s=at, min_holding_pressure_kpa=lowest_pressure,
                        reasons=tuple(reasons))


@dataclass(frozen=True)
class Tolerances:
    temperature_k: float
    holding_seconds: float
    pressure_kpa: float


@dataclass(frozen=True)
class Comparison:
    figure: str                 # temperature_c, holding_seconds, pressure_kpa
    typed: float | None
    machine_low: float | None   # the machine's range during the holding time (one value for the holding time)
    machine_high: float | None
    disagrees: bool


def reconcile(typed_temperature_c: float, typed_holding_seconds: float, typed_pressure_kpa: float | None,
              seconds: Sequence[float], temperatures: Sequence[float], pressures: Sequence[float],
              holding: tuple[float, float] | None, tolerances: Tolerances) -> list[Comparison]:
    """A load typed from the printout beside the steriliser's record of it: each typed figure against the machine's
    (the temperatures and pressures during the holding stretch, its length; without a stretch, the whole curve),
    disagreeing when it lies further off than the pack's tolerance."""
    if holding is not None:
        inside = [i for i, s in enumerate(seconds) if holding[0] <= s <= holding[1]]
    else:
        inside = list(range(len(seconds)))
    t_lo, t_hi = min(temperatures[i] for i in inside), max(temperatures[i] for i in inside)
    p_lo, p_hi = min(pressures[i] for i in inside), max(pressures[i] for i in inside)
    held = holding[1] - holding[0] if holding is not None else 0.0
    rows = [
        Comparison("temperature_c", typed_temperature_c, t_lo, t_hi,
                   not t_lo - tolerances.temperature_k <= typed_temperature_c <= t_hi + tolerances.temperature_k),
        Comparison("holding_seconds", typed_holding_seconds, held, held,
                   abs(typed_holding_seconds - held) > tolerances.holding_seconds),
    ]
    if typed_pressure_kpa is not None:
        off = not p_lo - tolerances.pressure_kpa <= typed_pressure_kpa <= p_hi + tolerances.pressure_kpa
        rows.append(Comparison("pressure_kpa", typed_pressure_kpa, p_lo, p_hi, off))
    return rows
