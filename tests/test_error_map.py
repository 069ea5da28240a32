"""Error answers and failed exchanges as the SDK's exceptions: status classes, RFC 7807
problems, raw excerpts, Retry-After, httpx failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from kubernaut_audit import (
    AuthenticationError,
    BadRequestError,
    DataStorageError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestInfo,
    ResponseTooLargeError,
    ServerError,
    TransportConnectionError,
    TransportTimeoutError,
    UnprocessableEntityError,
)
from kubernaut_audit._error_map import (
    declared_too_large,
    error_from_response,
    excerpt,
    parse_retry_after,
    too_large,
    transport_error,
)

INFO = RequestInfo("GET", "http://ds.test/api/v1/audit/events", "rid-1")

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


def test_excerpt_bounded_and_marked() -> None:
    """An excerpt keeps at most the limit and marks the cut."""
    assert excerpt(b"abcdef", 3) == "abc…"
    assert excerpt(b"abc", 3) == "abc"


# -- failed exchanges ------------------------------------------------------------------------

REQUEST = httpx.Request("GET", "http://ds.test/")


@pytest.mark.parametrize(
    ("exc", "cls", "sent"),
    [
        (httpx.ConnectError("refused", request=REQUEST), TransportConnectionError, False),
        (httpx.ConnectTimeout("slow", request=REQUEST), TransportTimeoutError, False),
        (httpx.PoolTimeout("busy", request=REQUEST), TransportTimeoutError, False),
        (httpx.ReadTimeout("late", request=REQUEST), TransportTimeoutError, True),
        (httpx.WriteTimeout("late", request=REQUEST), TransportTimeoutError, True),
        (httpx.RemoteProtocolError("cut", request=REQUEST), TransportConnectionError, True),
        (httpx.ReadError("reset", request=REQUEST), TransportConnectionError, True),
        (httpx.StreamClosed(), TransportConnectionError, True),
    ],
)
def test_httpx_failure_mapped(exc: Exception, cls: type[Exception], sent: bool) -> None:
    """Each httpx failure becomes our error; only a connection never made is 'not sent'."""
    assert isinstance(exc, httpx.TransportError | httpx.StreamError)
    err = transport_error(exc, INFO)
    assert type(err) is cls
    assert err.request_sent is sent
    assert err.request == INFO


def test_declared_length_over_the_cap() -> None:
    """A Content-Length over the cap is caught before reading; a missing or odd one is not."""
    assert declared_too_large({"content-length": "101"}, 100)
    assert not declared_too_large({"content-length": "100"}, 100)
    assert not declared_too_large({}, 100)
    assert not declared_too_large({"content-length": "lots"}, 100)


def test_too_large_keeps_what_was_read() -> None:
    """The size error names the cap and keeps the head of the body read so far."""
    err = too_large(
        INFO, status_code=200, headers={"content-type": "a/b"}, head=b"[{", max_bytes=10
    )
    assert isinstance(err, ResponseTooLargeError)
    assert "max_response_bytes=10" in str(err)
    assert (err.excerpt, err.content_type, err.status_code) == ("[{", "a/b", 200)
