"""Sans-I/O core: filters, time bounds, Retry-After, error mapping and body decoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from kubernaut_audit import (
    AuthenticationError,
    BadRequestError,
    DataStorageError,
    EventCategory,
    EventOutcome,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestInfo,
    ResponseDecodeError,
    ResponseValidationError,
    ServerError,
    UnprocessableEntityError,
)
from kubernaut_audit._core import (
    check_page_bounds,
    decode_json,
    error_from_response,
    excerpt,
    format_time_bound,
    make_filters,
    parse_retry_after,
)
from kubernaut_audit._generated.models import AuditEventsQueryResponse

INFO = RequestInfo("GET", "http://ds.test/api/v1/audit/events", "rid-1")
ADAPTER = pydantic.TypeAdapter(AuditEventsQueryResponse)

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


# -- Retry-After -----------------------------------------------------------------------------


def test_retry_after_seconds() -> None:
    """A number of seconds is read as such."""
    assert parse_retry_after("3") == 3.0


def test_retry_after_http_date() -> None:
    """An HTTP date is read as the seconds from now until then."""
    now = datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:07 GMT", now=now) == 7.0


def test_retry_after_past_date_is_zero() -> None:
    """A date in the past means 'retry now'."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Sat, 01 Jan 2000 00:00:00 GMT", now=now) == 0.0


@pytest.mark.parametrize(
    "value",
    [None, "", "  ", "inf", "nan", "-10", "1e400", "soon", "Mon, 01 Jan 100000 00:00:00 GMT"],
)
def test_retry_after_garbage_ignored(value: str | None) -> None:
    """Unusable Retry-After values give None (normal backoff), never an exception."""
    assert parse_retry_after(value) is None


# -- error mapping ---------------------------------------------------------------------------

PROBLEM_400 = {
    "type": "https://kubernaut.ai/problems/validation-error",
    "title": "Validation Error",
    "status": 400,
    "detail": "limit out of range",
    "instance": "/api/v1/audit/events",
    "field_errors": {"limit": "must be 1-1000"},
    "resource": "audit_events",
}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (413, PayloadTooLargeError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (418, DataStorageError),
    ],
)
def test_status_mapped_to_class(status: int, cls: type[DataStorageError]) -> None:
    """Each meaningful status maps to its exception class."""
    err = error_from_response(status, {}, b"", INFO)
    assert type(err) is cls
    assert err.status_code == status


def test_problem_json_fields_exposed() -> None:
    """A problem+json body is parsed and its members exposed on the exception."""
    body = json.dumps(PROBLEM_400).encode()
    err = error_from_response(400, {"content-type": "application/problem+json"}, body, INFO)
    assert (err.title, err.detail, err.type, err.instance) == (
        "Validation Error",
        "limit out of range",
        PROBLEM_400["type"],
        "/api/v1/audit/events",
    )
    assert err.field_errors == {"limit": "must be 1-1000"}
    assert err.problem is not None
    assert err.problem.resource == "audit_events"
    assert err.body is None


def test_problem_fields_in_message() -> None:
    """The message names the title, detail and field errors."""
    body = json.dumps(PROBLEM_400).encode()
    err = error_from_response(400, {"content-type": "application/problem+json"}, body, INFO)
    assert "Validation Error" in str(err)
    assert "limit: must be 1-1000" in str(err)


def test_non_json_error_keeps_raw_text() -> None:
    """A proxy's HTML 502 keeps its text in .body and has no problem."""
    body = b"<html><body>Bad Gateway</body></html>"
    err = error_from_response(502, {"content-type": "text/html"}, body, INFO)
    assert isinstance(err, ServerError)
    assert err.problem is None
    assert err.body == body.decode()
    assert err.title is None
    assert err.field_errors == {}


def test_json_error_of_wrong_shape_keeps_raw_text() -> None:
    """A JSON error body that is not a problem report is kept as raw text."""
    err = error_from_response(500, {"content-type": "application/json"}, b'{"oops":1}', INFO)
    assert err.problem is None
    assert err.body == '{"oops":1}'


def test_error_carries_request_info() -> None:
    """The error carries method, URL and request id."""
    err = error_from_response(404, {}, b"404 page not found", INFO)
    assert err.request == INFO
    assert "rid-1" in str(err)


def test_error_reads_retry_after() -> None:
    """Retry-After on an error response is exposed as retry_after."""
    err = error_from_response(429, {"retry-after": "4"}, b"", INFO)
    assert err.retry_after == 4.0


def test_error_raw_body_bounded() -> None:
    """A huge error body is kept only as a bounded excerpt."""
    err = error_from_response(502, {"content-type": "text/plain"}, b"x" * 100_000, INFO)
    assert err.body is not None
    assert len(err.body) <= 501


# -- decoding --------------------------------------------------------------------------------


def _decode(body: bytes, content_type: str | None = "application/json") -> Any:
    return decode_json(ADAPTER, body, status_code=200, content_type=content_type, request=INFO)


def test_excerpt_bounded_and_marked() -> None:
    """An excerpt keeps at most the limit and marks the cut."""
    assert excerpt(b"abcdef", 3) == "abc…"
    assert excerpt(b"abc", 3) == "abc"


def test_invalid_json_is_decode_error() -> None:
    """Malformed JSON raises ResponseDecodeError with status and excerpt."""
    with pytest.raises(ResponseDecodeError) as info:
        _decode(b'{"data": [')
    assert info.value.status_code == 200
    assert info.value.excerpt == '{"data": ['


def test_non_utf8_is_decode_error() -> None:
    """Bytes that are not UTF-8 raise ResponseDecodeError."""
    with pytest.raises(ResponseDecodeError):
        _decode(b'{"data": "\xff\xfe"}')


def test_html_200_is_decode_error() -> None:
    """A text/html 200 (a proxy's login page) is never parsed as events."""
    with pytest.raises(ResponseDecodeError) as info:
        _decode(b"<html>Sign in</html>", "text/html; charset=utf-8")
    assert info.value.content_type == "text/html; charset=utf-8"


def test_decode_error_excerpt_bounded() -> None:
    """The excerpt of a large bad body is bounded."""
    with pytest.raises(ResponseDecodeError) as info:
        _decode(b"[" * 100_000)
    assert len(info.value.excerpt) <= 501


def test_wrong_shape_is_validation_error_with_cause() -> None:
    """JSON of the wrong shape raises ResponseValidationError caused by pydantic's error."""
    with pytest.raises(ResponseValidationError) as info:
        _decode(b'{"data": [{"event_id": 5}]}')
    assert isinstance(info.value.__cause__, pydantic.ValidationError)


def test_json_type_suffix_accepted() -> None:
    """A +json media type with parameters counts as JSON."""
    page = _decode(b'{"data": []}', "application/vnd.x+json; charset=utf-8")
    assert page.data == []
