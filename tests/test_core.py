"""Sans-I/O core: request headers, deadline-bounded timeouts, retry budgets, body decoding."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pydantic
import pytest

from kubernaut_audit import (
    RequestInfo,
    ResponseDecodeError,
    ResponseValidationError,
    RetryPolicy,
    TransportTimeoutError,
)
from kubernaut_audit._core import (
    ACCEPT,
    Response,
    bounded_timeout,
    decode,
    decode_json,
    request_headers,
    retry_deadline,
    write_policy,
)
from kubernaut_audit._generated.models import AuditEventsQueryResponse

INFO = RequestInfo("GET", "http://ds.test/api/v1/audit/events", "rid-1")
ADAPTER = pydantic.TypeAdapter(AuditEventsQueryResponse)

# -- decoding --------------------------------------------------------------------------------


def _decode(body: bytes, content_type: str | None = "application/json") -> Any:
    return decode_json(ADAPTER, body, status_code=200, content_type=content_type, request=INFO)


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


def test_decode_reads_a_whole_response() -> None:
    """decode() takes status, content type and request from the Response."""
    response = Response(200, {"content-type": "text/html"}, b"<html/>", INFO)
    with pytest.raises(ResponseDecodeError) as info:
        decode(ADAPTER, response)
    assert (info.value.status_code, info.value.request) == (200, INFO)


# -- request headers -------------------------------------------------------------------------


def test_headers_carry_request_id_accept_token_and_user() -> None:
    """A try carries its request id, the JSON/problem Accept, the bearer token and the user."""
    headers = request_headers({}, "rid-1", token="s3cret", user="alice", has_body=False)
    assert headers == {
        "X-Request-ID": "rid-1",
        "Accept": ACCEPT,
        "Authorization": "Bearer s3cret",
        "X-Auth-Request-User": "alice",
    }


def test_headers_of_ours_win_over_the_callers() -> None:
    """A caller's header of the same name never replaces the request id or the token."""
    extra = {"X-Request-ID": "mine", "Authorization": "Basic x", "X-Team": "a"}
    headers = request_headers(extra, "rid-1", token="t", user=None, has_body=False)
    assert (headers["X-Request-ID"], headers["Authorization"]) == ("rid-1", "Bearer t")
    assert headers["X-Team"] == "a"


def test_headers_without_token_or_user_name_neither() -> None:
    """No token and no user: neither header is sent."""
    headers = request_headers({}, "rid-1", token=None, user=None, has_body=False)
    assert "Authorization" not in headers
    assert "X-Auth-Request-User" not in headers


def test_content_type_only_with_a_body() -> None:
    """Content-Type is sent with a body, never without."""
    with_body = request_headers({}, "r", token=None, user=None, has_body=True)
    without = request_headers({}, "r", token=None, user=None, has_body=False)
    assert with_body["Content-Type"] == "application/json"
    assert "Content-Type" not in without


# -- deadlines -------------------------------------------------------------------------------


def test_timeout_unchanged_without_deadline() -> None:
    """Without a deadline the client's timeouts apply as they are."""
    timeout = httpx.Timeout(10.0)
    assert bounded_timeout(timeout, deadline=None, now=5.0, request=INFO) is timeout


def test_timeout_cut_to_the_time_left() -> None:
    """Each timeout is cut to the time left; a shorter one stays."""
    timeout = httpx.Timeout(10.0, connect=1.0, pool=None)
    bounded = bounded_timeout(timeout, deadline=103.0, now=100.0, request=INFO)
    assert (bounded.connect, bounded.read, bounded.write, bounded.pool) == (1.0, 3.0, 3.0, 3.0)


def test_no_time_left_is_a_timeout_before_sending() -> None:
    """A deadline already passed raises a timeout error that says nothing was sent."""
    with pytest.raises(TransportTimeoutError) as info:
        bounded_timeout(httpx.Timeout(10.0), deadline=100.0, now=100.0, request=INFO)
    assert info.value.request_sent is False
    assert info.value.request == INFO


def test_retry_budget_becomes_the_deadline() -> None:
    """A finite retry budget bounds the tries: now + timeout, or the caller's sooner deadline."""
    policy = RetryPolicy(timeout=30.0)
    assert retry_deadline(policy, now=100.0, deadline=None) == 130.0
    assert retry_deadline(policy, now=100.0, deadline=110.0) == 110.0
    assert retry_deadline(policy, now=100.0, deadline=200.0) == 130.0


def test_unbounded_retry_budget_keeps_the_callers_deadline() -> None:
    """An infinite retry budget leaves the caller's deadline (or none) as it is."""
    policy = RetryPolicy(timeout=math.inf)
    assert retry_deadline(policy, now=100.0, deadline=None) is None
    assert retry_deadline(policy, now=100.0, deadline=110.0) == 110.0


def test_writes_retry_only_when_the_client_retries() -> None:
    """A write keeps the client's policy when it retries, else makes a single try."""
    retrying = RetryPolicy(attempts=3)
    assert write_policy(retrying) is retrying
    assert write_policy(RetryPolicy(attempts=1, timeout=5.0)).attempts == 1
