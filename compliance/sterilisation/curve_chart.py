"""A cycle's curve as server-side SVG, drawn as the dashboard's charts are (compliance/reports/charts.py): no
script, presentation attributes only (the CSP refuses inline styles), every label escaped.

Temperature (°C, left axis) and pressure (kPa absolute, right axis) against minutes from the start; the band
[set, set + limit] shaded across the plot, the holding stretch shaded below it. At most MAX_POINTS points a line
(each bucket keeps its lowest and highest sample, so a dip out of the band stays visible).
"""
from __future__ import annotations

from typing import Sequence

from flask_babel import gettext as _
from markupsafe import Markup, escape

from ..reports.charts import GRID, MUTED, TEXT, _n, _text

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 56, 20, 44
MAX_POINTS = 800
TEMPERATURE = "#c2410c"
PRESSURE = "#0b5cad"
BAND = "#fde7d3"
HOLDING = "#dcfce7"


def _thin(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float]]:
    n = len(xs)
    if n <= MAX_POINTS:
        return list(zip(xs, ys))
    size = (n + MAX_POINTS // 2 - 1) // (MAX_POINTS // 2)
    points = []
    for start in range(0, n, size):
        idx = range(start, min(n, start + size))
        lo = min(idx, key=lambda i: ys[i])
        hi = max(idx, key=lambda i: ys[i])
        for i in sorted({lo, hi}):
            points.append((xs[i], ys[i]))
    return points


def curve_svg(seconds: Sequence[float], temperatures: Sequence[float], pressures: Sequence[float], *,
              set_c: float, band_c: float, holding: tuple[float, float] | None, title: str, summary: str,
              labels: dict[str, str]) -> Markup:
    """The chart; `holding` is (start s, end s) of the holding stretch, or None."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    t_end = max(seconds[-1], 1.0)
    t_lo = min(0.0, min(temperatures))
    t_hi = max(set_c + band_c + 5, max(temperatures) + 2)
    p_hi = max(400.0, max(pressures) * 1.05)

    def x(s):
        return LEFT + plot_w * s / t_end

    def yt(c):
        return TOP + plot_h * (1 - (c - t_lo) / (t_hi - t_lo))

    def yp(k):
        return TOP + plot_h * (1 - k / p_hi)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-curve" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="{escape(summary)}" focusable="false">', f"<title>{escape(title)}</title>"]
    if holding is not None:
        parts.append(f'<rect class="holding" x="{_n(x(holding[0]))}" y="{TOP}" '
                     f'width="{_n(max(1.0, x(holding[1]) - x(holding[0])))}" height="{plot_h}" fill="{HOLDING}"/>')
    parts.append(f'<rect class="band" x="{LEFT}" y="{_n(yt(set_c + band_c))}" width="{plot_w}" '
                 f'height="{_n(max(1.0, yt(set_c) - yt(set_c + band_c)))}" fill="{BAND}" fill-opacity="0.8"/>')
    for i in range(5):  # temperature grid and both axes' figures
        c = t_lo + (t_hi - t_lo) * i / 4
        y = yt(c)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y)}" y2="{_n(y)}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(LEFT - 6, y + 4, f"{c:.0f}", anchor="end", fill=TEMPERATURE, cls="axis"))
        parts.append(_text(WIDTH - RIGHT + 6, y + 4, f"{p_hi * i / 4:.0f}", fill=PRESSURE, cls="axis"))
    minutes = int(t_end // 60)
    step = max(1, (minutes + 7) // 8)
    for m in range(0, minutes + 1, step):
        parts.append(_text(x(m * 60), HEIGHT - BOTTOM + 16, f"{m}", anchor="middle", fill=MUTED, cls="axis"))
    parts.append(_text(LEFT + plot_w / 2, HEIGHT - 8, labels["minutes"], anchor="middle", fill=MUTED, cls="axis"))
    parts.append(_text(4, 12, labels["temperature"], fill=TEMPERATURE, cls="legend"))
    parts.append(_text(WIDTH - 4, 12, labels["pressure"], anchor="end", fill=PRESSURE, cls="legend"))
    for ys, scale, colour, cls in ((pressures, yp, PRESSURE, "pressure"), (temperatures, yt, TEMPERATURE,
                                                                           "temperature")):
        points = " ".join(f"{_n(x(s))},{_n(scale(v))}" for s, v in _thin(seconds, ys))
        parts.append(f'<polyline class="{cls}" points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    if holding is not None:
        parts.append(_text(x(holding[0]) + 2, TOP + 12, labels["holding"], fill=TEXT, cls="legend", size=10))
    parts.append("</svg>")
    return Markup("".join(parts))


def chart_for(curve) -> Markup:
    """The chart of a stored CycleCurve, in the reader's language."""
    from .curve_services import samples_of  # noqa: PLC0415
    from .curve_services import pack_for_site  # noqa: PLC0415
    seconds, temps, pressures = samples_of(curve)
    judged_by = curve.limits or {}  # the numbers in force when it was judged (older records: today's)
    band = float(judged_by.get("band_over_set_c") or
                 pack_for_site(curve.site_id).number("cycle-parameters-met", "max_temperature_over_set_c"))
    holding = None
    if curve.holding_start_s is not None and curve.holding_end_s is not None:
        holding = (float(curve.holding_start_s), float(curve.holding_end_s))
    set_c = float(judged_by.get("set_temperature_c") or curve.programme.temperature_c)
    summary = _("Temperature and pressure of cycle %(n)s against time; the band %(low)s–%(high)s °C is shaded, and "
                "the holding time in it.", n=curve.cycle_number, low=f"{set_c:g}", high=f"{set_c + band:g}")
    return curve_svg(seconds, temps, pressures, set_c=set_c, band_c=band, holding=holding,
                     title=_("Cycle %(n)s", n=curve.cycle_number), summary=summary,
                     labels={"minutes": _("minutes from the start"), "temperature": _("°C (left)"),
                             "pressure": _("kPa absolute (right)"), "holding": _("holding time")})
