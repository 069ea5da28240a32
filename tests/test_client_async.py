"""AsyncAuditClient against httpx.MockTransport: queries, writes, errors, configuration."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pydantic
import pytest

from kubernaut_audit import (
    AsyncAuditClient,
    AuditEventRequest,
    AuthenticationError,
    BadRequestError,
    BatchPartiallyStoredError,
    ConfigurationError,
    DataStorageError,
    EventCategory,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    TransportConnectionError,
    TransportTimeoutError,
    UnprocessableEntityError,
)

pytestmark = pytest.mark.anyio

BASE = "http://ds.test"
#: Retries without backoff: these tests are about what is retried, not when.
FAST = RetryPolicy(initial=0.0, max_backoff=0.0)
ONCE = RetryPolicy(attempts=1)
Handler = Callable[[httpx.Request], httpx.Response]
EventFactory = Callable[..., dict[str, Any]]


class Server:
    """A MockTransport handler that records requests and plays responses in order."""

    def __init__(self, *responses: httpx.Response | Handler) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        index = min(len(self.requests), len(self.responses)) - 1
        answer = self.responses[index]
        return answer(request) if callable(answer) else answer

    def client(self, **kwargs: Any) -> AsyncAuditClient:
        kwargs.setdefault("base_url", BASE)
        kwargs.setdefault("retry", FAST)
        return AsyncAuditClient(transport=httpx.MockTransport(self), **kwargs)


def page(events: list[dict[str, Any]], *, total: int | None = None) -> httpx.Response:
    body = {
        "data": events,
        "pagination": {
            "limit": 100,
            "offset": 0,
            "total": len(events) if total is None else total,
            "has_more": False,
        },
    }
    return httpx.Response(200, json=body)


def problem(status: int, **extra: Any) -> httpx.Response:
    body = {"type": "https://kubernaut.ai/problems/x", "title": "T", "status": status, **extra}
    return httpx.Response(
        status, content=json.dumps(body), headers={"content-type": "application/problem+json"}
    )


# -- queries ---------------------------------------------------------------------------------


async def test_query_always_sends_limit() -> None:
    """limit is sent even when the caller does not pass it (the server's default is 50)."""
    server = Server(page([]))
    async with server.client() as client:
        await client.query_audit_events(correlation_id="rr-1")
    assert server.requests[0].url.params["limit"] == "100"


async def test_query_sends_filters_and_offset() -> None:
    """Every filter, limit and a non-zero offset reach the query string."""
    server = Server(page([]))
    async with server.client() as client:
        await client.query_audit_events(
            correlation_id="rr-1",
            event_type="gateway.signal.received",
            event_category=EventCategory.GATEWAY,
            event_outcome="success",
            severity="info",
            since="24h",
            until="2025-01-02",
            detail_key="task_id",
            detail_value="t-1",
            limit=10,
            offset=20,
        )
    params = dict(server.requests[0].url.params)
    assert params == {
        "correlation_id": "rr-1",
        "event_type": "gateway.signal.received",
        "event_category": "gateway",
        "event_outcome": "success",
        "severity": "info",
        "since": "24h",
        "until": "2025-01-02",
        "detail_key": "task_id",
        "detail_value": "t-1",
        "limit": "10",
        "offset": "20",
    }


@pytest.mark.parametrize(
    "filters",
    [
        {"correlation_id": ""},
        {"event_type": ""},
        {"severity": ""},
        {"since": datetime(2025, 1, 1)},
        {"detail_key": "task_id"},
        {"detail_key": "bad-key", "detail_value": "x"},
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
    ],
)
async def test_invalid_query_refused_before_any_request(filters: dict[str, Any]) -> None:
    """Invalid filters and page bounds raise ValueError and send nothing."""
    server = Server(page([]))
    async with server.client() as client:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            await client.query_audit_events(**filters)
    assert server.requests == []


async def test_iter_refuses_empty_filter_before_any_request() -> None:
    """iter_audit_events validates its filters before the first request."""
    server = Server(page([]))
    async with server.client() as client:
        with pytest.raises(ValueError, match="correlation_id"):
            client.iter_audit_events(correlation_id="")
    assert server.requests == []


async def test_query_returns_typed_page(stored_event: EventFactory) -> None:
    """The page carries typed events and the pagination figures."""
    server = Server(page([stored_event(), stored_event()], total=7))
    async with server.client() as client:
        result = await client.query_audit_events(correlation_id="rr-1")
    assert len(result) == 2
    assert result.total == 7
    assert all(isinstance(e.event_id, uuid.UUID) for e in result)


async def test_query_without_pagination_uses_request_values(stored_event: EventFactory) -> None:
    """A body without pagination falls back on the requested limit/offset and len(data)."""
    server = Server(httpx.Response(200, json={"data": [stored_event()]}))
    async with server.client() as client:
        result = await client.query_audit_events(limit=5, offset=3)
    assert (result.limit, result.offset, result.total, result.has_more) == (5, 3, 1, False)


async def test_query_keeps_unknown_values(stored_event: EventFactory) -> None:
    """Extra fields and unknown enum values and event types from a newer server survive."""
    event = stored_event(
        event_category="quantum",
        event_outcome="partial",
        event_type="future.thing.happened",
        brand_new_field={"x": 1},
    )
    server = Server(page([event]))
    async with server.client() as client:
        (got,) = (await client.query_audit_events()).events
    assert got.event_category == "quantum"
    assert not got.event_category.is_known
    assert got.event_outcome == "partial"
    assert got.event_type == "future.thing.happened"
    assert got.model_extra == {"brand_new_field": {"x": 1}}


async def test_request_id_header_sent_and_reported() -> None:
    """Each request carries X-Request-ID, and an error reports the same id."""
    server = Server(httpx.Response(404, text="404 page not found"))
    async with server.client() as client:
        with pytest.raises(NotFoundError) as info:
            await client.query_audit_events()
    sent = server.requests[0].headers["x-request-id"]
    assert sent
    assert info.value.request is not None
    assert info.value.request.request_id == sent


async def test_error_request_info_has_method_and_url() -> None:
    """An error names the method and the full URL asked for."""
    server = Server(httpx.Response(404, text="404 page not found"))
    async with server.client() as client:
        with pytest.raises(NotFoundError) as info:
            await client.query_audit_events(correlation_id="rr-1")
    request = info.value.request
    assert request is not None
    assert request.method == "GET"
    assert request.url.startswith(f"{BASE}/api/v1/audit/events?")
    assert "correlation_id=rr-1" in request.url


async def test_user_and_extra_headers_sent() -> None:
    """user= is sent as X-Auth-Request-User, and headers= on every request."""
    server = Server(page([]))
    async with server.client(user="alice", headers={"X-Test": "1"}) as client:
        await client.query_audit_events()
    headers = server.requests[0].headers
    assert headers["x-auth-request-user"] == "alice"
    assert headers["x-test"] == "1"


# -- error mapping ---------------------------------------------------------------------------


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
        (503, ServerError),
    ],
)
async def test_status_raises_typed_error(status: int, cls: type[DataStorageError]) -> None:
    """An error status raises its class with the status code."""
    server = Server(problem(status))
    async with server.client(retry=ONCE) as client:
        with pytest.raises(cls) as info:
            await client.query_audit_events()
    assert info.value.status_code == status


async def test_problem_fields_exposed() -> None:
    """A handler-level 400 exposes title, detail, field_errors and resource."""
    server = Server(
        problem(
            400,
            title="Bad Request",
            detail="invalid since",
            field_errors={"since": "bad duration"},
            resource="audit_events",
        )
    )
    async with server.client() as client:
        with pytest.raises(BadRequestError) as info:
            await client.query_audit_events(since="24h")
    err = info.value
    assert (err.title, err.detail, err.field_errors) == (
        "Bad Request",
        "invalid since",
        {"since": "bad duration"},
    )
    assert err.problem is not None
    assert err.problem.resource == "audit_events"


async def test_non_json_502_keeps_raw_text() -> None:
    """A proxy's plain-text 502 keeps its text in .body."""
    server = Server(httpx.Response(502, text="upstream connect error"))
    async with server.client(retry=ONCE) as client:
        with pytest.raises(ServerError) as info:
            await client.query_audit_events()
    assert info.value.body == "upstream connect error"
    assert info.value.problem is None


# -- decoding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"data": [{"event_id": "', "application/json"),
        (b'{"data": [], "pagination": {"limit": 1}', "application/json"),
        (b'{"data": "\xff\xfe\xfd"}', "application/json"),
        (b"<html><form>Sign in</form></html>", "text/html; charset=utf-8"),
        (b"", "application/json"),
    ],
    ids=["truncated", "unclosed", "non-utf8", "html-login-page", "empty"],
)
async def test_bad_success_body_is_decode_error(content: bytes, content_type: str) -> None:
    """A 200 body that is not the JSON we expect raises ResponseDecodeError with an excerpt."""
    server = Server(httpx.Response(200, content=content, headers={"content-type": content_type}))
    async with server.client() as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.query_audit_events()
    assert info.value.status_code == 200
    assert info.value.excerpt == content.decode("utf-8", errors="replace")


async def test_decode_error_excerpt_bounded() -> None:
    """The excerpt of a big HTML page is bounded."""
    body = b"<html>" + b"x" * 50_000
    server = Server(httpx.Response(200, content=body, headers={"content-type": "text/html"}))
    async with server.client() as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.query_audit_events()
    assert len(info.value.excerpt) <= 501
    assert len(str(info.value)) < 1000


async def test_decode_error_not_retried() -> None:
    """A malformed 200 is not retried: the server answered."""
    server = Server(httpx.Response(200, text="nope", headers={"content-type": "text/html"}))
    async with server.client() as client:
        with pytest.raises(ResponseDecodeError):
            await client.query_audit_events()
    assert len(server.requests) == 1


async def test_wrong_shape_is_validation_error(stored_event: EventFactory) -> None:
    """A missing required field raises ResponseValidationError caused by pydantic."""
    event = stored_event()
    del event["correlation_id"]
    server = Server(page([event]))
    async with server.client() as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.query_audit_events()
    assert isinstance(info.value.__cause__, pydantic.ValidationError)


async def test_wrongly_typed_event_id_is_validation_error(stored_event: EventFactory) -> None:
    """A wrongly typed event_id raises ResponseValidationError."""
    server = Server(page([stored_event(event_id=12)]))
    async with server.client() as client:
        with pytest.raises(ResponseValidationError, match="event_id"):
            await client.query_audit_events()


class _Trickle(httpx.AsyncByteStream):
    """A body of ``chunks`` pieces of ``size`` bytes; counts how many were pulled."""

    def __init__(self, chunks: int, size: int) -> None:
        self.chunks = chunks
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b" " * self.size


async def test_declared_oversize_body_refused() -> None:
    """A Content-Length over max_response_bytes raises ResponseTooLargeError."""
    server = Server(
        httpx.Response(200, content=b"[]" * 600, headers={"content-type": "application/json"})
    )
    async with server.client(max_response_bytes=1000) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.query_audit_events()


# Abandoning a body part way leaves httpx's own nested async generators (aiter_bytes ->
# aiter_raw -> the transport stream) unexhausted; trio warns when they are collected. That is
# httpx's doing, not a leak of the SDK's: the response itself is closed.
@pytest.mark.filterwarnings("ignore:Async generator:ResourceWarning")
async def test_streamed_oversize_body_aborted_early() -> None:
    """A chunked body is abandoned as soon as it passes the cap, not read to the end."""
    stream = _Trickle(chunks=1000, size=100)
    server = Server(
        httpx.Response(200, stream=stream, headers={"content-type": "application/json"})
    )
    async with server.client(max_response_bytes=1000) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.query_audit_events()
    assert stream.pulled <= 11


class _Broken(httpx.AsyncByteStream):
    """A body that breaks off part way, like a connection dropped mid-response."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"data": ['
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


async def test_body_broken_mid_stream_retried_then_connection_error() -> None:
    """A body cut off mid-stream is retried, then raises TransportConnectionError."""
    server = Server(
        lambda _: httpx.Response(
            200, stream=_Broken(), headers={"content-type": "application/json"}
        )
    )
    async with server.client(retry=RetryPolicy(attempts=3, initial=0.0)) as client:
        with pytest.raises(TransportConnectionError) as info:
            await client.query_audit_events()
    assert len(server.requests) == 3
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


# -- writes ----------------------------------------------------------------------------------


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        201,
        json={
            "event_id": str(uuid.uuid4()),
            "event_timestamp": "2025-01-02T03:04:05Z",
            "message": "created",
        },
    )


def batch_created(request: httpx.Request) -> httpx.Response:
    count = len(json.loads(request.content))
    ids = [str(uuid.uuid4()) for _ in range(count)]
    return httpx.Response(201, json={"event_ids": ids, "message": f"{count} created"})


async def test_create_201_is_stored(request_event: EventFactory) -> None:
    """A 201 comes back as stored with the event's id and timestamp."""
    server = Server(created)
    async with server.client() as client:
        result = await client.create_audit_event(request_event())
    assert result.stored is True
    assert result.status_code == 201
    assert isinstance(result.event_id, uuid.UUID)
    assert result.event_timestamp is not None


async def test_create_202_is_not_stored(request_event: EventFactory) -> None:
    """A 202 (parked in the dead-letter queue) is never reported as stored."""
    server = Server(httpx.Response(202, json={"status": "accepted", "message": "queued for retry"}))
    async with server.client() as client:
        result = await client.create_audit_event(request_event())
    assert result.stored is False
    assert result.event_id is None
    assert result.message == "queued for retry"


async def test_create_sends_json_body(request_event: EventFactory) -> None:
    """The event is POSTed as JSON with the fields the caller set."""
    server = Server(created)
    async with server.client() as client:
        await client.create_audit_event(request_event(severity="warning"))
    sent = server.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/api/v1/audit/events")
    assert sent.headers["content-type"] == "application/json"
    body = json.loads(sent.content)
    assert body["severity"] == "warning"
    assert "namespace" not in body


async def test_create_accepts_model(request_event: EventFactory) -> None:
    """An AuditEventRequest model is accepted as well as a dict."""
    server = Server(created)
    async with server.client() as client:
        result = await client.create_audit_event(AuditEventRequest.model_validate(request_event()))
    assert result.stored


@pytest.mark.parametrize(
    "overrides",
    [{"surprise": 1}, {"event_category": "quantum"}, {"event_outcome": "maybe"}, {"version": ""}],
    ids=["unknown-field", "unknown-category", "unknown-outcome", "empty-version"],
)
async def test_invalid_write_refused_before_request(
    request_event: EventFactory, overrides: dict[str, Any]
) -> None:
    """Writes are strict: unknown fields or enum values are refused and nothing is sent."""
    server = Server(created)
    async with server.client() as client:
        with pytest.raises(ValueError):  # noqa: PT011 - pydantic's message varies
            await client.create_audit_event(request_event(**overrides))
    assert server.requests == []


async def test_write_not_retried_on_503(request_event: EventFactory) -> None:
    """A write that reached the server is not retried on 503."""
    server = Server(problem(503), created)
    async with server.client() as client:
        with pytest.raises(ServerError):
            await client.create_audit_event(request_event())
    assert len(server.requests) == 1


async def test_write_retried_on_503_when_opted_in(request_event: EventFactory) -> None:
    """retry_writes=True retries a write on 503."""
    server = Server(problem(503), created)
    async with server.client() as client:
        result = await client.create_audit_event(request_event(), retry_writes=True)
    assert result.stored
    assert len(server.requests) == 2


async def test_write_retried_after_connect_error(request_event: EventFactory) -> None:
    """A write whose connection was never made is retried: nothing reached the server."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = Server(refuse, created)
    async with server.client() as client:
        result = await client.create_audit_event(request_event())
    assert result.stored
    assert len(server.requests) == 2


async def test_write_not_retried_after_read_timeout(request_event: EventFactory) -> None:
    """A write that timed out waiting for the answer may have been stored: not retried."""

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    server = Server(hang, created)
    async with server.client() as client:
        with pytest.raises(TransportTimeoutError):
            await client.create_audit_event(request_event())
    assert len(server.requests) == 1


async def test_batch_chunked_at_500_with_ids_in_order(request_event: EventFactory) -> None:
    """1,201 events go out as 500 + 500 + 201, and the ids come back in request order."""
    server = Server(batch_created)
    events = [request_event(correlation_id=f"rr-{i}") for i in range(1201)]
    async with server.client() as client:
        result = await client.create_audit_events(events)
    sizes = [len(json.loads(r.content)) for r in server.requests]
    assert sizes == [500, 500, 201]
    sent_order = [e["correlation_id"] for r in server.requests for e in json.loads(r.content)]
    assert sent_order == [f"rr-{i}" for i in range(1201)]
    assert len(result.event_ids) == 1201
    assert result.requests == 3


async def test_batch_ids_follow_server_answers(request_event: EventFactory) -> None:
    """The ids of a chunked batch are the servers' answers, concatenated in chunk order."""
    answers: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        ids = [str(uuid.uuid4()) for _ in json.loads(request.content)]
        answers.append(ids)
        return httpx.Response(201, json={"event_ids": ids, "message": "ok"})

    server = Server(answer)
    async with server.client() as client:
        result = await client.create_audit_events([request_event() for _ in range(501)])
    assert [str(i) for i in result.event_ids] == answers[0] + answers[1]


async def test_batch_partial_failure_reports_stored_ids(request_event: EventFactory) -> None:
    """A later chunk failing raises BatchPartiallyStoredError with the stored ids and unsent."""
    server = Server(batch_created, problem(500))
    async with server.client() as client:
        with pytest.raises(BatchPartiallyStoredError) as info:
            await client.create_audit_events([request_event() for _ in range(700)])
    err = info.value
    assert len(err.event_ids) == 500
    assert err.unsent == 200
    assert isinstance(err.__cause__, ServerError)


async def test_batch_first_chunk_failure_raises_plain_error(request_event: EventFactory) -> None:
    """When nothing was stored, the chunk's own error is raised."""
    server = Server(problem(400))
    async with server.client() as client:
        with pytest.raises(BadRequestError):
            await client.create_audit_events([request_event() for _ in range(3)])


async def test_batch_validated_before_first_request(request_event: EventFactory) -> None:
    """One invalid event in a batch refuses the whole batch before anything is sent."""
    server = Server(batch_created)
    events = [request_event() for _ in range(600)] + [request_event(event_category="nope")]
    async with server.client() as client:
        with pytest.raises(ValueError, match="event_category"):
            await client.create_audit_events(events)
    assert server.requests == []


# -- readiness -------------------------------------------------------------------------------


async def test_ready_true_on_200() -> None:
    """ready() is True when /readyz answers 200 (text/plain, as the service sends it)."""
    server = Server(httpx.Response(200, text='{"status":"ready"}'))
    async with server.client() as client:
        assert await client.ready() is True
    assert server.requests[0].url.path == "/readyz"


async def test_ready_false_on_503() -> None:
    """ready() is False when the service says it is not ready."""
    server = Server(httpx.Response(503, text='{"status":"not_ready"}'))
    async with server.client() as client:
        assert await client.ready() is False


async def test_ready_false_when_unreachable() -> None:
    """ready() is False when nothing answers."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with Server(refuse).client() as client:
        assert await client.ready() is False


# -- configuration and lifecycle ------------------------------------------------------------


async def test_env_url_used_when_base_url_omitted(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATA_STORAGE_URL is used when base_url is not passed."""
    monkeypatch.setenv("DATA_STORAGE_URL", "http://from-env.test/")
    server = Server(page([]))
    async with AsyncAuditClient(transport=httpx.MockTransport(server)) as client:
        await client.query_audit_events()
    assert server.requests[0].url.host == "from-env.test"


async def test_base_url_argument_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit base_url wins over DATA_STORAGE_URL."""
    monkeypatch.setenv("DATA_STORAGE_URL", "http://from-env.test")
    server = Server(page([]))
    async with server.client(base_url="http://from-arg.test") as client:
        await client.query_audit_events()
    assert server.requests[0].url.host == "from-arg.test"


async def test_env_token_and_user_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATA_STORAGE_TOKEN and DATA_STORAGE_USER apply when the arguments are omitted."""
    monkeypatch.setenv("DATA_STORAGE_TOKEN", "env-token")
    monkeypatch.setenv("DATA_STORAGE_USER", "env-user")
    server = Server(page([]))
    async with server.client() as client:
        await client.query_audit_events()
    assert server.requests[0].headers["authorization"] == "Bearer env-token"
    assert server.requests[0].headers["x-auth-request-user"] == "env-user"


def test_no_url_is_configuration_error() -> None:
    """Without base_url or DATA_STORAGE_URL the client refuses to start."""
    with pytest.raises(ConfigurationError, match="DATA_STORAGE_URL"):
        AsyncAuditClient()


def test_bad_scheme_is_configuration_error() -> None:
    """A base_url without http(s):// is refused."""
    with pytest.raises(ConfigurationError, match="http"):
        AsyncAuditClient(base_url="ds.test:8080")


async def test_closed_client_refuses_requests() -> None:
    """After aclose() a request raises RuntimeError instead of reopening the pool."""
    client = Server(page([])).client()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.query_audit_events()


async def test_own_http_client_left_open() -> None:
    """A caller's http_client is used and not closed by the SDK."""
    server = Server(page([]))
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        async with AsyncAuditClient(base_url=BASE, http_client=http) as client:
            await client.query_audit_events()
        assert not http.is_closed
    assert len(server.requests) == 1


async def test_list_audit_events_returns_every_event(stored_event: EventFactory) -> None:
    """list_audit_events collects the events of a single-page walk."""
    events = [stored_event() for _ in range(3)]
    server = Server(page(events))
    async with server.client() as client:
        got = await client.list_audit_events(correlation_id="rr-1")
    assert [str(e.event_id) for e in got] == [e["event_id"] for e in events]
    assert server.requests[0].url.params["limit"] == "1000"
