"""Analytics as SVG drawn on the server: no chart script, nothing to load, readable without JavaScript.

Each chart is an `<svg role="img">` with a title and a one-sentence summary for screen readers, and a
`<title>` per bar (the browser's tooltip) with its exact value. Colours are presentation attributes, not
inline styles, so the console's Content Security Policy needs no `unsafe-inline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 180
LEFT, BOTTOM, TOP, RIGHT = 44, 24, 16, 8
LABELS_W = 76  # the row labels of horizontal bars ("completion", "embedding")
COLOURS = ("#0b5cad", "#d97706", "#1a7f37", "#b42318", "#6e40c9")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _frame(chart_id: str, title: str, summary: str, body: str, peak: float, unit: str) -> Markup:
    plot_h = HEIGHT - TOP - BOTTOM
    axis = (
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#d0d7de"/>'
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#d0d7de"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end" font-size="10" fill="#57606a">'
        f"{escape(_number(peak))}{escape(unit)}</text>"
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="10" fill="#57606a">0</text>'
    )
    return _svg(chart_id, title, summary, axis + body)


def _svg(chart_id: str, title: str, summary: str, body: str) -> Markup:
    # Every text in `body` went through escape(); ids and numbers are ours.
    return Markup(  # noqa: S704
        f'<svg id="{chart_id}" class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(summary)}</desc>'
        f"{body}</svg>"
    )


def bars_over_time(
    chart_id: str, title: str, buckets: Sequence[datetime], series: Sequence[Series], unit: str = ""
) -> Markup:
    """Grouped bars, one group per time bucket (hour or day), one bar per series."""
    count = max(len(buckets), 1)
    peak = max((v for s in series for v in s.values), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / count
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    parts = []
    for i, bucket in enumerate(buckets):
        x0 = LEFT + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / peak
            label = f"{bucket:%Y-%m-%d %H:%M}: {_number(value)}{unit} {s.name}"
            parts.append(
                f'<rect class="bar" x="{x0 + j * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[j % len(COLOURS)]}"><title>{escape(label)}</title></rect>'
            )
    if buckets:
        for i in sorted({0, len(buckets) - 1}):
            x = LEFT + i * group_w + group_w / 2
            anchor = "start" if i == 0 else "end"
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" font-size="10" fill="#57606a">'
                f"{buckets[i]:%m-%d %H:%M}</text>"
            )
    totals = ", ".join(f"{s.name} {_number(sum(s.values))}{unit}" for s in series)
    summary = f"{len(buckets)} periods; in all: {totals}" if buckets else "No data in this range"
    return _frame(chart_id, title, summary, "".join(parts) + _legend(series), peak, unit)


def horizontal_bars(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series], unit: str) -> Markup:
    """One row per label (a stage), one bar per series (p50, p95)."""
    peak = max((v for s in series for v in s.values), default=0.0) or 1.0
    left = LABELS_W
    plot_w, plot_h = WIDTH - left - RIGHT - 30, HEIGHT - TOP - BOTTOM
    row_h = plot_h / max(len(labels), 1)
    bar_h = row_h * 0.8 / max(len(series), 1)
    parts = []
    for i, label in enumerate(labels):
        y0 = TOP + i * row_h + row_h * 0.1
        parts.append(
            f'<text x="{left - 4}" y="{y0 + row_h * 0.45:.1f}" text-anchor="end" font-size="10" fill="#1b1f24">'
            f"{escape(label)}</text>"
        )
        for j, s in enumerate(series):
            value = s.values[i]
            w = plot_w * value / peak
            text = f"{label} {s.name}: {_number(value)} {unit}"
            parts.append(
                f'<rect class="bar" x="{left}" y="{y0 + j * bar_h:.1f}" width="{w:.1f}" height="{bar_h:.1f}" '
                f'fill="{COLOURS[j % len(COLOURS)]}"><title>{escape(text)}</title></rect>'
            )
            parts.append(
                f'<text x="{left + w + 3:.1f}" y="{y0 + (j + 0.8) * bar_h:.1f}" font-size="9" fill="#57606a">'
                f"{escape(_number(value))}</text>"
            )
    summary = "; ".join(
        f"{label}: " + ", ".join(f"{s.name} {_number(s.values[i])} {unit}" for s in series)
        for i, label in enumerate(labels)
    )
    return _svg(chart_id, title, summary, "".join(parts) + _legend(series))


def _legend(series: Sequence[Series]) -> str:
    if len(series) < 2:
        return ""
    parts = []
    x = WIDTH - RIGHT - 80 * len(series)
    for j, s in enumerate(series):
        colour = COLOURS[j % len(COLOURS)]
        parts.append(
            f'<rect x="{x + j * 80}" y="2" width="8" height="8" fill="{colour}"/>'
            f'<text x="{x + j * 80 + 11}" y="10" font-size="10" fill="#57606a">{escape(s.name)}</text>'
        )
    return "".join(parts)
