"""The analytics page's range: a preset, or two dates (both included) that are in order, not in the
future, and within the days the query log keeps; each mistake names its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ragapi.api.console.admin import chosen_range
from ragapi.core.errors import InvalidInput

NOW = datetime(2026, 12, 6, 14, 30, tzinfo=UTC)


def test_a_preset_ends_now() -> None:
    chosen = chosen_range("7d", "2020-01-01", "2020-01-02", 90, NOW)  # dates are for `custom` only
    assert (chosen.start, chosen.end, chosen.interval) == (NOW - timedelta(days=7), NOW, "day")


def test_two_dates_cover_whole_days_both_included() -> None:
    chosen = chosen_range("custom", "2026-12-01", "2026-12-03", 90, NOW)
    assert chosen.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert chosen.end == datetime(2026, 12, 4, tzinfo=UTC)
    assert (chosen.interval, chosen.label) == ("day", "2026-12-01 to 2026-12-03")
    one_day = chosen_range("custom", "2026-12-06", "2026-12-06", 90, NOW)
    assert (one_day.end - one_day.start, one_day.interval, one_day.label) == (timedelta(days=1), "hour", "2026-12-06")
    oldest = chosen_range("custom", "2026-09-08", "2026-12-06", 90, NOW)  # the 90 days the log keeps
    assert oldest.end - oldest.start == timedelta(days=90)


@pytest.mark.parametrize(
    ("name", "first", "last", "field", "says"),
    [
        ("custom", "2026-12-05", "2026-12-04", "from", "the first day comes after the last one"),
        ("custom", "2026-12-05", "2026-12-07", "to", "2026-12-07 has not happened yet"),
        ("custom", "2026-09-07", "2026-12-06", "from", "keeps 90 days (QUERY_LOG_RETENTION_DAYS); start on 2026-09-08"),
        ("custom", None, "2026-12-06", "from", "choose a date"),
        ("custom", "2026-12-01", "", "to", "choose a date"),
        ("custom", "yesterday", "2026-12-06", "from", "'yesterday' is not a date (YYYY-MM-DD)"),
        ("custom", "2026-02-30", "2026-12-06", "from", "is not a date"),
        ("forever", None, None, "range", "one of 24h, 7d, 30d, 90d, custom"),
    ],
)
def test_a_range_that_is_not_one_names_its_field(
    name: str, first: str | None, last: str | None, field: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        chosen_range(name, first, last, 90, NOW)
    assert refused.value.field == field
    assert says in refused.value.detail
