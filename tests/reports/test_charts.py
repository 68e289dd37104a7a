"""The dashboard's SVG charts and week arithmetic, without an app: values in, markup out."""
import re
from datetime import date, datetime, timezone

from compliance.reports import charts
from compliance.reports.charts import BarRow, Week
from compliance.reports.figures import local_midnight, period, week_starts


def _rects(svg: str, cls: str = "bar") -> list[dict]:
    return [dict(re.findall(r'(\w+)="([^"]*)"', tag)) for tag in re.findall(rf'<rect class="{cls}[^"]*"[^>]*>', svg)]


def test_weekly_chart_draws_one_bar_per_week_with_a_height_for_its_rate():
    weeks = [Week("w1", 0.75), Week("w2", 1.0), Week("w3", 0.0), Week("w4", 0.5, recent=True)]
    svg = str(charts.weekly_chart(weeks, title="T", summary="S"))
    assert svg.count('<g class="week">') == 4
    heights = [float(r["height"]) for r in _rects(svg)]
    assert heights == [120.0, 160.0, 0.0, 80.0]  # the plot is 160 high: 75 % → 120
    # Each bar stands on the 0 % line.
    base = charts.TOP + charts.PLOT_HEIGHT
    assert [float(r["y"]) + float(r["height"]) for r in _rects(svg)] == [base] * 4
    assert ">75 %</text>" in svg and ">0 %</text>" in svg


def test_a_week_with_nothing_due_is_a_gap_not_a_zero():
    svg = str(charts.weekly_chart([Week("a", None), Week("b", 0.0), Week("c", None)], title="T", summary="S",
                                  gap_text="nothing fell due"))
    assert svg.count('<g class="week">') == 3
    assert len(_rects(svg)) == 1
    assert svg.count('class="gap"') == 2
    assert "– nothing fell due" in svg


def test_the_last_weeks_are_drawn_stronger_and_bracketed():
    weeks = [Week(str(i), 0.5, recent=i >= 2) for i in range(4)]
    svg = str(charts.weekly_chart(weeks, title="T", summary="S", recent_label="last 2 weeks"))
    fills = [r["fill"] for r in _rects(svg)]
    assert fills == [charts.BAR, charts.BAR, charts.RECENT, charts.RECENT]
    assert 'class="bracket"' in svg and ">last 2 weeks</text>" in svg


def test_charts_say_what_they_show_to_screen_readers():
    svg = str(charts.weekly_chart([Week("a", 0.5, text="50 % (1 of 2)")], title="Done on time",
                                  summary="Done on time. a: 50 %"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert 'aria-label="Done on time. a: 50 %"' in svg
    assert "<title>Done on time</title>" in svg
    assert "<title>a: 50 % (1 of 2)</title>" in svg  # the tooltip of the week


def test_every_label_is_escaped():
    evil = '<script>alert("x")</script> & "q"'
    svg = str(charts.weekly_chart([Week(evil, 0.5, text=evil)], title=evil, summary=evil, recent_label=evil))
    svg += str(charts.bar_list([BarRow(evil, (0.5,), (evil,))], series=(evil,), title=evil, summary=evil))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg and "&amp;" in svg
    assert 'aria-label="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;q&#34;"' in svg


def test_bar_list_draws_a_bar_per_series_scaled_to_its_rate():
    rows = [BarRow("Opening", (0.75, 0.5), ("75 % (3 of 4)", "50 % (3 of 6)")),
            BarRow("Closing", (None, 1.0), ("nothing fell due", "100 % (2 of 2)"))]
    svg = str(charts.bar_list(rows, series=("4 weeks", "12 weeks"), title="T", summary="S"))
    assert svg.count('<g class="rate-row">') == 2
    widths = [float(r["width"]) for r in _rects(svg)]
    assert widths == [142.5, 95.0, 190.0]  # 190 is 100 %; the missing rate has no bar
    assert len(_rects(svg, "track")) == 4
    for text in ("Opening", "75 % (3 of 4)", "50 % (3 of 6)", "nothing fell due", "100 % (2 of 2)", "12 weeks"):
        assert f">{text}</text>" in svg


def test_percent_rounds_down_so_a_miss_never_reads_as_100():
    assert charts.percent(199 / 200) == 99
    assert charts.percent(0.29) == 29
    assert charts.percent(2 / 3) == 66
    assert charts.percent(1.0) == 100
    assert charts.bar_length(None, 160) is None
    assert charts.bar_length(1.5, 160) == 160.0


def test_weeks_are_seven_local_days_ending_today():
    starts = week_starts(date(2026, 11, 25), 12)
    assert len(starts) == 12
    assert starts[-1] == date(2026, 11, 19) and starts[0] == date(2026, 9, 3)
    assert all((b - a).days == 7 for a, b in zip(starts, starts[1:]))


def test_a_week_starts_at_local_midnight_across_a_clock_change():
    # London leaves summer time on 25 October 2026: midnight is 23:00 UTC before, 00:00 UTC after.
    start, end = period(date(2026, 10, 28), "Europe/London", 1)
    assert start == datetime(2026, 10, 21, 23, 0, tzinfo=timezone.utc)
    assert end == datetime(2026, 10, 29, 0, 0, tzinfo=timezone.utc)
    assert local_midnight(date(2026, 11, 25), "Asia/Jakarta") == datetime(2026, 11, 24, 17, 0, tzinfo=timezone.utc)
