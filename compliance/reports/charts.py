"""Charts drawn on the server as SVG: rates week by week, and a list of rate bars per obligation or checklist.

Pure: values in, markup out; no script, no CDN. Every label is escaped. The page's CSP refuses inline
styles, so only SVG presentation attributes (fill, x, y …) and classes are used; app.css may restyle them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup, escape

BAR = "#9db8d6"        # an earlier week
RECENT = "#0b5cad"     # one of the last weeks, drawn stronger
TRACK = "#eef1f5"
GRID = "#d8dee6"
TEXT = "#1b2430"
MUTED = "#5b6675"


@dataclass(frozen=True)
class Week:
    label: str                 # the week on the x axis, e.g. its first day "12 Nov"
    value: float | None        # 0.0–1.0; None when nothing fell due (drawn as a gap)
    text: str = ""             # the figure in words, for the tooltip: "92 % (23 of 25)"
    recent: bool = False       # drawn stronger (the last 4 weeks)


@dataclass(frozen=True)
class BarRow:
    label: str                          # an obligation kind or a checklist, in the reader's words
    values: tuple[float | None, ...]    # one per series (e.g. last 4 weeks, last 12 weeks)
    texts: tuple[str, ...]              # the same figures in words: "92 % (23 of 25)" or "nothing due"


def percent(value: float) -> int:
    """0.0–1.0 as a whole percentage, rounded down: 24 of 25 is 96, 199 of 200 is 99 (never a false 100)."""
    return int(value * 100 + 1e-9)


def bar_length(value: float | None, full: float) -> float | None:
    """The length of a bar for a rate, on a scale where 100 % is `full`; None (nothing due) has no bar."""
    if value is None:
        return None
    return round(max(0.0, min(1.0, value)) * full, 1)


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content, *, anchor: str = "start", size: int = 11, fill: str = TEXT,
          cls: str = "", weight: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    attrs += f' font-weight="{weight}"' if weight else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{attrs}>'
            f"{escape(content)}</text>")


# Weekly chart geometry (viewBox units): the plot is PLOT_HEIGHT tall, so a bar of 75 % is 120 high.
WIDTH, LEFT, RIGHT = 640, 44, 8
TOP, PLOT_HEIGHT, BOTTOM = 34, 160, 40


def weekly_chart(weeks: Sequence[Week], *, title: str, summary: str, recent_label: str = "",
                 gap_text: str = "") -> Markup:
    """One bar per week (oldest first) on a 0–100 % scale, its percentage above it; a week with nothing due
    is a gap marked "–". `summary` is what a screen reader says instead of the picture."""
    height = TOP + PLOT_HEIGHT + BOTTOM
    base = TOP + PLOT_HEIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-weekly" viewBox="0 0 {WIDTH} {height}" '
             f'role="img" aria-label="{escape(summary)}" focusable="false">',
             f"<title>{escape(title)}</title>"]
    for p in (0, 50, 100):
        y = base - PLOT_HEIGHT * p / 100
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y)}" y2="{_n(y)}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(LEFT - 6, y + 4, f"{p} %", anchor="end", fill=MUTED, cls="axis"))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(weeks))
    width = min(36.0, slot * 0.62)
    for i, week in enumerate(weeks):
        cx = LEFT + slot * (i + 0.5)
        length = bar_length(week.value, PLOT_HEIGHT)
        tip = f"{week.label}: {week.text}" if week.text else week.label
        parts.append(f'<g class="week"><title>{escape(tip)}</title>')
        if length is None:
            parts.append(_text(cx, base - 4, "–", anchor="middle", size=14, fill=MUTED, cls="gap"))
        else:
            parts.append(f'<rect class="bar{" recent" if week.recent else ""}" x="{_n(cx - width / 2)}" '
                         f'y="{_n(base - length)}" width="{_n(width)}" height="{_n(length)}" '
                         f'fill="{RECENT if week.recent else BAR}"/>')
            parts.append(_text(cx, base - length - 4, f"{percent(week.value)} %", anchor="middle", cls="value"))
        parts.append(_text(cx, base + 16, week.label, anchor="middle", fill=MUTED, cls="axis"))
        parts.append("</g>")
    recent = [i for i, w in enumerate(weeks) if w.recent]
    if recent and recent_label:
        x1, x2 = LEFT + slot * recent[0] + 2, LEFT + slot * (recent[-1] + 1) - 2
        parts.append(f'<path class="bracket" d="M{_n(x1)} 22 V16 H{_n(x2)} V22" fill="none" stroke="{RECENT}" '
                     f'stroke-width="1.5"/>')
        parts.append(_text((x1 + x2) / 2, 12, recent_label, anchor="middle", fill=RECENT, cls="legend"))
    if gap_text and any(w.value is None for w in weeks):
        parts.append(_text(LEFT, height - 4, f"– {gap_text}", fill=MUTED, cls="legend"))
    parts.append("</svg>")
    return Markup("".join(parts))


# Bar list geometry: a row is its label on a line of its own, then one bar per series under it.
LIST_WIDTH, SERIES_X, BAR_X, BAR_WIDTH = 440, 0, 74, 190
LABEL_HEIGHT, BAR_HEIGHT, BAR_GAP, ROW_GAP = 20, 15, 5, 12


def bar_list(rows: Sequence[BarRow], *, series: Sequence[str], title: str, summary: str) -> Markup:
    """Horizontal bars, a row per key and a bar per series (e.g. "4 weeks", "12 weeks"), each with its figure
    in words at its end; a series with nothing due shows only the words."""
    row_height = LABEL_HEIGHT + len(series) * (BAR_HEIGHT + BAR_GAP) + ROW_GAP
    height = max(1, len(rows)) * row_height
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-bars" viewBox="0 0 {LIST_WIDTH} {height}" '
             f'role="img" aria-label="{escape(summary)}" focusable="false">',
             f"<title>{escape(title)}</title>"]
    for r, row in enumerate(rows):
        top = r * row_height
        parts.append('<g class="rate-row">')
        parts.append(_text(0, top + 15, row.label, size=14, weight="600", cls="row-label"))
        for s, name in enumerate(series):
            y = top + LABEL_HEIGHT + s * (BAR_HEIGHT + BAR_GAP)
            value = row.values[s] if s < len(row.values) else None
            text = row.texts[s] if s < len(row.texts) else ""
            parts.append(_text(SERIES_X, y + 12, name, size=12, fill=MUTED, cls="series"))
            parts.append(f'<rect class="track" x="{BAR_X}" y="{_n(y)}" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" '
                         f'fill="{TRACK}"/>')
            length = bar_length(value, BAR_WIDTH)
            if length is not None:
                parts.append(f'<rect class="bar{" recent" if s == 0 else ""}" x="{BAR_X}" y="{_n(y)}" '
                             f'width="{_n(length)}" height="{BAR_HEIGHT}" fill="{RECENT if s == 0 else BAR}">'
                             f"<title>{escape(name)}: {escape(text)}</title></rect>")
            parts.append(_text(BAR_X + BAR_WIDTH + 8, y + 12, text, size=12, cls="figure"))
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
