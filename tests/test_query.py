"""Query filters, time bounds and page bounds: refused before any request, rendered as the
server reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kubernaut_audit import EventCategory, EventOutcome
from kubernaut_audit._query import (
    QueryFilters,
    check_page_bounds,
    format_time_bound,
    make_filters,
    page_params,
)

# -- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "correlation_id",
        "event_type",
        "event_category",
        "event_outcome",
        "severity",
    ],
)
def test_empty_string_filter_refused(name: str) -> None:
    """An empty filter value is refused: the server would read it as 'no filter'."""
    with pytest.raises(ValueError, match=name):
        make_filters(**{name: ""})


def test_blank_padded_filter_refused() -> None:
    """A filter with surrounding blanks is refused rather than silently matching nothing."""
    with pytest.raises(ValueError, match="correlation_id"):
        make_filters(correlation_id=" rr-1 ")


def test_non_string_filter_refused() -> None:
    """A filter that is not a string raises TypeError."""
    with pytest.raises(TypeError, match="correlation_id"):
        make_filters(correlation_id=42)  # type: ignore[arg-type]


def test_filters_render_in_declaration_order() -> None:
    """Given filters become query parameters; omitted ones are not sent at all."""
    filters = make_filters(correlation_id="rr-1", event_type="gateway.signal.received")
    assert filters.params() == [
        ("correlation_id", "rr-1"),
        ("event_type", "gateway.signal.received"),
    ]


def test_enum_members_accepted_as_filters() -> None:
    """EventCategory and EventOutcome members are sent as their string values."""
    filters = make_filters(event_category=EventCategory.GATEWAY, event_outcome=EventOutcome.FAILURE)
    assert dict(filters.params()) == {"event_category": "gateway", "event_outcome": "failure"}


def test_unknown_event_category_filter_allowed() -> None:
    """A category the SDK does not know is still a valid filter (the list is open)."""
    assert make_filters(event_category="brand-new").event_category == "brand-new"


def test_unknown_event_outcome_filter_refused() -> None:
    """event_outcome is a closed enum on the query parameter and is checked locally."""
    with pytest.raises(ValueError, match="event_outcome"):
        make_filters(event_outcome="maybe")


def test_detail_key_without_value_refused() -> None:
    """detail_key alone is refused: the server requires the pair."""
    with pytest.raises(ValueError, match="together"):
        make_filters(detail_key="task_id")


def test_detail_value_without_key_refused() -> None:
    """detail_value alone is refused: the server requires the pair."""
    with pytest.raises(ValueError, match="together"):
        make_filters(detail_value="abc")


@pytest.mark.parametrize("key", ["task-id", "a.b", "ключ", "a b"])
def test_detail_key_pattern_enforced(key: str) -> None:
    """detail_key must match ^[a-zA-Z0-9_]+$."""
    with pytest.raises(ValueError, match="detail_key"):
        make_filters(detail_key=key, detail_value="x")


def test_detail_pair_sent() -> None:
    """A valid detail_key/detail_value pair is sent as both parameters."""
    params = dict(make_filters(detail_key="task_id", detail_value="t-1").params())
    assert params == {"detail_key": "task_id", "detail_value": "t-1"}


def test_overlong_correlation_id_refused() -> None:
    """A correlation id over the server's 255 characters is refused locally."""
    with pytest.raises(ValueError, match="255"):
        make_filters(correlation_id="x" * 256)


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (1001, 0), (-1, 0), (10, -1), (True, 0)])
def test_page_bounds_refused(limit: int, offset: int) -> None:
    """limit outside 1-1000, a negative offset, or a bool are refused."""
    with pytest.raises(ValueError, match=r"limit|offset"):
        check_page_bounds(limit, offset)


@pytest.mark.parametrize(("limit", "offset"), [(1, 0), (1000, 0), (50, 10_000)])
def test_page_bounds_accepted(limit: int, offset: int) -> None:
    """limit 1-1000 and any offset >= 0 are accepted."""
    check_page_bounds(limit, offset)


# -- since/until -----------------------------------------------------------------------------


def test_naive_datetime_refused() -> None:
    """A naive datetime is ambiguous and refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time_bound("since", datetime(2025, 1, 1, 12, 0))


def test_aware_datetime_rendered_in_utc() -> None:
    """An aware datetime is sent in UTC with a Z suffix."""
    when = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time_bound("since", when) == "2025-01-01T12:00:00.000000Z"


def test_timedelta_rendered_as_seconds() -> None:
    """A timedelta is sent as a Go duration in whole seconds, rounded up."""
    assert format_time_bound("since", timedelta(minutes=90, microseconds=1)) == "5401s"


def test_non_positive_timedelta_refused() -> None:
    """A zero or negative timedelta is refused."""
    with pytest.raises(ValueError, match="positive"):
        format_time_bound("since", timedelta(0))


@pytest.mark.parametrize(
    "text",
    [
        "24h",
        "90m",
        "1h30m",
        "7d",
        "2025-01-02T03:04:05Z",
        "2025-01-02T03:04:05.123456789+02:00",
        "2025-01-02T03:04:05",
        "2025-01-02",
    ],
)
def test_server_text_forms_pass_through(text: str) -> None:
    """The server's relative and absolute text forms are sent unchanged."""
    assert format_time_bound("until", text) == text


@pytest.mark.parametrize("text", ["", "yesterday", "24", "7w", "2025/01/02"])
def test_unknown_text_forms_refused(text: str) -> None:
    """A string the server would reject is refused locally."""
    with pytest.raises(ValueError, match="until"):
        format_time_bound("until", text)


def test_wrong_type_time_bound_refused() -> None:
    """A number is not a time bound."""
    with pytest.raises(TypeError, match="since"):
        format_time_bound("since", 3600)  # type: ignore[arg-type]


def test_make_filters_formats_since_and_until() -> None:
    """make_filters renders since/until through the same rules."""
    filters = make_filters(since="24h", until=datetime(2025, 1, 1, tzinfo=UTC))
    assert (filters.since, filters.until) == ("24h", "2025-01-01T00:00:00.000000Z")


def test_no_filters_render_no_parameters() -> None:
    """Empty filters render no parameter at all."""
    assert QueryFilters().params() == []


def test_page_params_always_send_limit() -> None:
    """A page sends its filters and limit, and offset only when it is not 0."""
    filters = make_filters(correlation_id="rr-1")
    assert page_params(filters, 100, 0) == [("correlation_id", "rr-1"), ("limit", 100)]
    assert page_params(filters, 100, 200)[-1] == ("offset", 200)
