"""Curves made from the physics, for the tests, the benchmark, the demo and the example files: a type B cycle's
pre-vacuum pulses, heat-up along the saturation line, a plateau, exhaust and drying.

The chamber pressure is the saturation pressure of water at the chamber temperature (IAPWS-IF97, `iapws`),
raised by the air left in the chamber: with a mole fraction x of air, p = p_sat(T) / (1 - x) (Dalton).
"""
from __future__ import annotations

from iapws.iapws97 import _PSat_T

ATMOSPHERE_KPA = 101.3


def saturation_kpa(temperature_c: float) -> float:
    return _PSat_T(temperature_c + 273.15) * 1000.0


def _phases(set_c: float, plateau_c: float, holding_seconds: float, drying_seconds: float):
    """(duration s, start °C, end °C, 'steam' | kPa at start, kPa at end) for each phase."""
    pulses = []
    for _ in range(3):  # fractionated pre-vacuum: down to 8 kPa, steam in to 150 kPa
        pulses += [(60, 95.0, 90.0, ATMOSPHERE_KPA, 8.0), (45, 90.0, 111.0, "steam", "steam")]
    return pulses + [
        (150, 111.0, plateau_c, "steam", "steam"),                    # heat-up along the saturation line
        (holding_seconds, plateau_c, plateau_c, "steam", "steam"),    # the plateau
        (60, plateau_c, 100.0, "steam", "steam"),                     # exhaust
        (drying_seconds, 100.0, 80.0, 10.0, 10.0),                    # vacuum drying
        (30, 80.0, 75.0, 10.0, ATMOSPHERE_KPA),                       # air in
    ]


def make_curve(set_c: float = 134.0, plateau_c: float = 134.6, holding_seconds: float = 240.0,
               air_fraction: float = 0.0, step: float = 1.0, drying_seconds: float = 300.0,
               dip: tuple[float, float, float] | None = None) -> tuple[list[float], list[float], list[float]]:
    """Seconds, °C and kPa (absolute) sampled every `step` s. `dip`: (seconds into the plateau, length s, °C) where
    the chamber temperature falls (the pressure follows the saturation line down)."""
    seconds, temps, pressures = [], [], []
    start = 0.0
    plateau_start = None
    for duration, t0, t1, p0, p1 in _phases(set_c, plateau_c, holding_seconds, drying_seconds):
        if duration == holding_seconds and t0 == t1 == plateau_c and plateau_start is None:
            plateau_start = start
        t = start if not seconds else max(start, seconds[-1] + step)
        while t < start + duration - 1e-9:
            f = (t - start) / duration
            temp = t0 + (t1 - t0) * f
            in_dip = dip is not None and plateau_start is not None and \
                plateau_start + dip[0] <= t < plateau_start + dip[0] + dip[1]
            if in_dip:
                temp = dip[2]
            if p0 == "steam":
                pressure = saturation_kpa(temp) / (1.0 - air_fraction)
            else:
                pressure = p0 + (p1 - p0) * f
            seconds.append(round(t, 3))
            temps.append(round(temp, 2))
            pressures.append(round(pressure, 2))
            t += step
        start += duration
    return seconds, temps, pressures


def curve_csv(serial: str, number: int, programme: str, started_at: str, curve) -> str:
    """The samples as lines of the generic CSV (without the header)."""
    return "".join(f"{serial},{number},{programme},{started_at},{s:g},{t:.2f},{p:.2f}\n" for s, t, p in zip(*curve))
