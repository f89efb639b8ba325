"""The analytics charts drawn on the server: bars to scale, every text escaped, a summary for screen
readers, and an empty range said as such."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ragapi.api.console.charts import Series, bars_over_time, horizontal_bars


def _heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'class="bar" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', svg)]


def test_bars_are_drawn_to_the_scale_of_the_highest() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    days = [start + timedelta(days=n) for n in range(3)]
    svg = str(bars_over_time("q", "Queries", days, [Series("queries", [2, 4, 1])]))
    low, high, lowest = _heights(svg)
    assert high == 2 * low == 4 * lowest > 0
    assert 'role="img"' in svg and '<title id="q-t">Queries</title>' in svg
    assert "3 periods; in all: queries 7" in svg


def test_labels_are_escaped_and_an_empty_range_says_so() -> None:
    svg = str(horizontal_bars("x", "<script>alert(1)</script>", ["<b>stage</b>"], [Series("p95", [5.0])], "ms"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;stage&lt;/b&gt;" in svg
    empty = str(bars_over_time("e", "Queries", [], [Series("queries", [])]))
    assert "No data in this range" in empty and 'class="bar"' not in empty
