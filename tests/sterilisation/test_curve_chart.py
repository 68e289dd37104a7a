"""The curve as SVG: the band and the holding stretch are marked, a dip survives thinning, labels are escaped."""
from compliance.sterilisation.curve_chart import MAX_POINTS, _thin, curve_svg
from compliance.sterilisation.curve_physics import make_curve

LABELS = {"minutes": "min", "temperature": "°C", "pressure": "kPa", "holding": "holding <time>"}


def test_band_holding_and_both_lines_are_drawn():
    seconds, temps, pressures = make_curve(step=1)
    svg = str(curve_svg(seconds, temps, pressures, set_c=134, band_c=3, holding=(462, 706), title="Cycle 5",
                        summary="a <summary>", labels=LABELS))
    assert svg.startswith("<svg") and 'class="band"' in svg and 'class="holding"' in svg
    assert svg.count("<polyline") == 2 and 'aria-label="a &lt;summary&gt;"' in svg
    assert "holding &lt;time&gt;" in svg and "style=" not in svg  # the CSP refuses inline styles


def test_thinning_keeps_a_short_dip():
    seconds, temps, _ = make_curve(step=1, holding_seconds=600, drying_seconds=1500, dip=(300, 2, 120.0))
    points = _thin(seconds, temps)
    assert len(seconds) > MAX_POINTS >= len(points)
    assert any(t == 120.0 for s, t in points if 760 < s < 770)  # the 2 s dip in the middle of the plateau
