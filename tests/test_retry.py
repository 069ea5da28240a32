"""Retries: what is transient, full-jitter backoff, Retry-After, attempt and time bounds.

Timing tests run on trio's MockClock only (sleeps take no real time) and assert on
``anyio.current_time()``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anyio
import httpx
import pytest

from kubernaut_audit import (
    AsyncAuditClient,
    BadRequestError,
    DataStorageError,
    RequestInfo,
    RetryDetails,
    RetryPolicy,
    ServerError,
    TransportConnectionError,
)
from kubernaut_audit._retry import backoff, call_with_retry, is_transient

BASE = "http://ds.test"
OK = httpx.Response(200, json={"data": [], "pagination": {"total": 0}})
INFO = RequestInfo("GET", BASE)
mock_clock_only = pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)


class Flaky:
    """Answers each request with the next response of a script (the last one repeats)."""

    def __init__(self, *responses: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.responses = responses
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(anyio.current_time())
        answer = self.responses[min(len(self.times), len(self.responses)) - 1]
        return answer(request) if callable(answer) else answer

    @property
    def count(self) -> int:
        return len(self.times)


def status(code: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return httpx.Response(code, text="busy", headers=headers)


def client_for(
    server: Flaky, hooks: list[RetryDetails] | None = None, **policy: float
) -> AsyncAuditClient:
    return AsyncAuditClient(
        base_url=BASE,
        transport=httpx.MockTransport(server),
        retry=RetryPolicy(**policy),  # type: ignore[arg-type]
        retry_hooks=[hooks.append] if hooks is not None else None,
    )


# -- through the client ----------------------------------------------------------------------


@pytest.mark.anyio
@mock_clock_only
async def test_503_503_200_succeeds_after_two_retries() -> None:
    """Two 503s then a 200 succeed; the hook sees both retries."""
    server = Flaky(status(503), status(503), OK)
    seen: list[RetryDetails] = []
    async with client_for(server, seen) as client:
        page = await client.query_audit_events()
    assert page.events == []
    assert server.count == 3
    assert [d.attempt for d in seen] == [1, 2]
    assert all(isinstance(d.error, ServerError) for d in seen)
    assert seen[0].request.method == "GET"


@pytest.mark.anyio
@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
async def test_client_errors_not_retried(code: int) -> None:
    """400/401/403/404/422 are answered by exactly one request."""
    server = Flaky(status(code), OK)
    async with client_for(server, initial=0.0) as client:
        with pytest.raises(DataStorageError) as info:
            await client.query_audit_events()
    assert info.value.status_code == code
    assert server.count == 1


@pytest.mark.anyio
@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_retried(code: int) -> None:
    """408, 429 and 5xx are retried on a query."""
    server = Flaky(status(code), OK)
    async with client_for(server, initial=0.0) as client:
        await client.query_audit_events()
    assert server.count == 2


@pytest.mark.anyio
async def test_attempts_bounded_and_last_error_raised() -> None:
    """After the last attempt the status error itself is raised (never tenacity's)."""
    server = Flaky(status(503))
    async with client_for(server, attempts=4, initial=0.0) as client:
        with pytest.raises(ServerError):
            await client.query_audit_events()
    assert server.count == 4


@pytest.mark.anyio
async def test_connect_error_retried_then_connection_error() -> None:
    """A refused connection is retried, then raised as TransportConnectionError."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = Flaky(refuse)
    async with client_for(server, attempts=3, initial=0.0) as client:
        with pytest.raises(TransportConnectionError) as info:
            await client.query_audit_events()
    assert server.count == 3
    assert info.value.request_sent is False


@pytest.mark.anyio
@mock_clock_only
async def test_retry_after_seconds_honoured() -> None:
    """Retry-After: 7 makes the retry wait exactly 7 s."""
    server = Flaky(status(503, "7"), OK)
    async with client_for(server) as client:
        await client.query_audit_events()
    assert server.times[1] - server.times[0] == pytest.approx(7.0, abs=1e-6)


@pytest.mark.anyio
@mock_clock_only
async def test_retry_after_on_429_honoured() -> None:
    """A 429's Retry-After is honoured too."""
    server = Flaky(status(429, "3"), OK)
    async with client_for(server) as client:
        await client.query_audit_events()
    assert server.times[1] - server.times[0] == pytest.approx(3.0, abs=1e-6)


@pytest.mark.anyio
@mock_clock_only
async def test_retry_after_http_date_honoured() -> None:
    """Retry-After as an HTTP date waits until then (to the header's one-second precision)."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    server = Flaky(status(503, when), OK)
    async with client_for(server) as client:
        await client.query_audit_events()
    assert 2.5 <= server.times[1] - server.times[0] <= 4.0


@pytest.mark.anyio
@mock_clock_only
@pytest.mark.parametrize("value", ["3600", "Fri, 01 Jan 2100 00:00:00 GMT"])
async def test_retry_after_capped(value: str) -> None:
    """A huge Retry-After is capped at max_retry_after."""
    server = Flaky(status(503, value), OK)
    async with client_for(server, max_retry_after=12.0, timeout=100.0) as client:
        await client.query_audit_events()
    assert server.times[1] - server.times[0] == pytest.approx(12.0, abs=1e-6)


@pytest.mark.anyio
@mock_clock_only
@pytest.mark.parametrize(
    "value", ["inf", "nan", "-10", "", "not a date", "Mon, 01 Jan 100000 00:00:00 GMT"]
)
async def test_garbage_retry_after_falls_back_to_backoff(value: str) -> None:
    """An unusable Retry-After gives normal backoff, no crash, and the status error at the end."""
    server = Flaky(status(503, value))
    seen: list[RetryDetails] = []
    async with client_for(server, seen, attempts=3, initial=1.0, max_backoff=2.0) as client:
        with pytest.raises(ServerError) as info:
            await client.query_audit_events()
    assert info.value.status_code == 503
    assert server.count == 3
    assert [0.0 <= d.wait <= b for d, b in zip(seen, [1.0, 2.0], strict=True)] == [True, True]


@pytest.mark.anyio
@mock_clock_only
async def test_backoff_within_full_jitter_range_and_cap() -> None:
    """Over many failures each wait lies in [0, min(cap, initial * 2**(n-1))]."""
    server = Flaky(status(503))
    seen: list[RetryDetails] = []
    policy = {"attempts": 30, "initial": 0.5, "max_backoff": 4.0, "timeout": 10_000.0}
    async with client_for(server, seen, **policy) as client:
        with pytest.raises(ServerError):
            await client.query_audit_events()
    assert len(seen) == 29
    for details in seen:
        assert 0.0 <= details.wait <= min(4.0, 0.5 * 2 ** (details.attempt - 1))
    # Full jitter, not a fixed ladder: once capped, the waits still spread out.
    capped = [d.wait for d in seen if d.attempt >= 4]
    assert max(capped) - min(capped) > 1.0
    # The sleeps really happen: each retry waits what the hook was told.
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert gaps == pytest.approx([d.wait for d in seen], abs=1e-6)


@pytest.mark.anyio
@mock_clock_only
async def test_backoff_differs_between_clients() -> None:
    """Two clients failing together do not retry in lockstep."""
    waits: list[list[float]] = []
    for _ in range(2):
        seen: list[RetryDetails] = []
        async with client_for(Flaky(status(503)), seen, attempts=6) as client:
            with pytest.raises(ServerError):
                await client.query_audit_events()
        waits.append([d.wait for d in seen])
    assert waits[0] != waits[1]


@pytest.mark.anyio
@mock_clock_only
async def test_total_time_bounded() -> None:
    """With a 5 s budget against repeated 503s the error comes by 5 s; no sleep ends past it."""
    server = Flaky(status(503, "2"))
    seen: list[RetryDetails] = []
    async with client_for(server, seen, attempts=100, timeout=5.0) as client:
        start = anyio.current_time()
        with pytest.raises(ServerError):
            await client.query_audit_events()
        elapsed = anyio.current_time() - start
    assert elapsed <= 5.0
    assert server.count == 3  # at 0, 2 and 4 s; a third sleep would end at 6 s
    assert all(d.waited_so_far + d.wait <= 5.0 for d in seen)


@pytest.mark.anyio
@mock_clock_only
async def test_retry_hook_reports_elapsed_time() -> None:
    """RetryDetails.waited_so_far counts from the first attempt."""
    server = Flaky(status(503, "1"), status(503, "1"), OK)
    seen: list[RetryDetails] = []
    async with client_for(server, seen) as client:
        await client.query_audit_events()
    assert [d.waited_so_far for d in seen] == pytest.approx([0.0, 1.0], abs=1e-6)


@pytest.mark.anyio
async def test_default_hook_logs_retry(caplog: pytest.LogCaptureFixture) -> None:
    """Without hooks, each retry is logged once with structured fields."""
    server = Flaky(status(503), OK)
    client = AsyncAuditClient(
        base_url=BASE,
        transport=httpx.MockTransport(server),
        retry=RetryPolicy(initial=0.0),
    )
    with caplog.at_level("INFO", logger="kubernaut_audit"):
        async with client:
            await client.query_audit_events()
    records = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(records) == 1
    assert records[0].audit_attempt == 1  # type: ignore[attr-defined]


# -- the pieces ------------------------------------------------------------------------------


def test_backoff_prefers_retry_after() -> None:
    """A usable Retry-After wins over jitter, capped at max_retry_after."""
    policy = RetryPolicy(max_retry_after=10.0)
    assert backoff(policy, 1, random.Random(0), 4.0) == 4.0
    assert backoff(policy, 1, random.Random(0), 40.0) == 10.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10, 60])
def test_backoff_bound_grows_then_caps(attempt: int) -> None:
    """Jittered waits stay under min(max_backoff, initial * 2**(attempt-1))."""
    policy = RetryPolicy(initial=0.25, max_backoff=5.0)
    rng = random.Random(attempt)
    bound = min(5.0, 0.25 * 2 ** (attempt - 1))
    waits = [backoff(policy, attempt, rng, None) for _ in range(500)]
    assert all(0.0 <= w <= bound for w in waits)
    assert max(waits) > 0.8 * bound


def test_transport_error_on_write_retried_only_if_unsent() -> None:
    """A write is retried after a transport error only when the request was never sent."""
    from kubernaut_audit import TransportTimeoutError

    unsent = TransportConnectionError("refused", request=INFO, request_sent=False)
    sent = TransportTimeoutError("read timeout", request=INFO)
    assert is_transient(unsent, idempotent=False)
    assert not is_transient(sent, idempotent=False)
    assert is_transient(sent, idempotent=True)


def test_status_error_on_write_never_transient() -> None:
    """A status error on a non-idempotent request is never retried."""
    err = ServerError("boom", request=INFO, status_code=503)
    assert not is_transient(err, idempotent=False)
    assert is_transient(err, idempotent=True)


def test_other_errors_not_transient() -> None:
    """Errors outside the tree (bugs, cancellation) are never retried."""
    assert not is_transient(ValueError("x"), idempotent=True)
    assert not is_transient(BadRequestError("x", status_code=400), idempotent=True)


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"timeout": -1.0}, {"initial": -0.1}, {"max_retry_after": -1.0}]
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    """RetryPolicy refuses zero attempts and negative durations."""
    with pytest.raises(ValueError):  # noqa: PT011
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
@mock_clock_only
async def test_call_with_retry_respects_deadline() -> None:
    """No sleep starts that would end past the caller's deadline."""
    calls: list[float] = []

    async def failing() -> None:
        calls.append(anyio.current_time())
        raise ServerError("busy", request=INFO, status_code=503, retry_after=3.0)

    start = anyio.current_time()
    with pytest.raises(ServerError):
        await call_with_retry(
            failing,
            request=INFO,
            policy=RetryPolicy(attempts=100, timeout=1000.0),
            rng=random.Random(0),
            idempotent=True,
            deadline=start + 7.0,
            hooks=(),
        )
    assert [c - start for c in calls] == pytest.approx([0.0, 3.0, 6.0], abs=1e-6)
    assert anyio.current_time() - start <= 7.0


@pytest.mark.anyio
async def test_cancellation_not_retried() -> None:
    """A cancelled call is not retried and the cancellation propagates."""
    calls = 0

    async def hang() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep_forever()

    with anyio.move_on_after(0.01) as scope:
        await call_with_retry(
            hang, request=INFO, policy=RetryPolicy(), rng=random.Random(0), idempotent=True
        )
    assert scope.cancelled_caught
    assert calls == 1
