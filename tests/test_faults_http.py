"""Issue 6, items 1–5 and 8–14: retries, Retry-After, backoff, broken connections and bodies,
and hostile response bodies, proved against the emulator's fault injection.

The MockTransport versions of most of these live in test_retry.py and test_client_async.py;
here the faults come from the emulator: in-process on trio's MockClock where time matters, over
a loopback socket (real time, asyncio) where the fault needs a real connection.
"""

from __future__ import annotations

import socket
import struct
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio
import httpx
import pydantic
import pytest
from faultkit import (
    BASE,
    Gate,
    Mangle,
    RawServer,
    Stamped,
    established,
    free_port,
    planted,
    read_request,
)

from kubernaut_audit import (
    AsyncAuditClient,
    AuthenticationError,
    BadRequestError,
    DataStorageError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    ResponseValidationError,
    RetryDetails,
    RetryHook,
    RetryPolicy,
    ServerError,
    TransportConnectionError,
    UnprocessableEntityError,
)
from kubernaut_audit.emulator import Emulator, Faults, make_event

pytestmark = pytest.mark.anyio
mock_clock = pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
loopback = pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
FAST = RetryPolicy(attempts=3, initial=0.0)


def in_process(
    emu: Emulator, hooks: list[RetryDetails] | None = None, **kwargs: Any
) -> tuple[AsyncAuditClient, Stamped]:
    stamped = Stamped(emu.transport())
    client = AsyncAuditClient(
        transport=stamped,
        retry_hooks=[hooks.append] if hooks is not None else None,
        **kwargs,
    )
    return client, stamped


def heal_after(emu: Emulator, failures: int, seen: list[RetryDetails]) -> list[RetryHook]:
    """Retry hooks that record each retry and turn the emulator's faults off after
    ``failures`` failed tries."""

    def heal(details: RetryDetails) -> None:
        if len(seen) >= failures:
            emu.faults = Faults()

    return [seen.append, heal]


# -- 1: 503, 503, 200 ---------------------------------------------------------------------------


@mock_clock
async def test_two_503s_then_200_succeeds_after_two_visible_retries() -> None:
    """Two 503s from the emulator, then a 200: the query succeeds after two retries, both
    reported to the retry hook."""
    emu = Emulator(faults=Faults(error_503_rate=1.0))
    [event_id] = planted(emu, "rr-1")
    seen: list[RetryDetails] = []
    async with AsyncAuditClient(
        transport=emu.transport(), retry_hooks=heal_after(emu, 2, seen)
    ) as client:
        page = await client.query_audit_events(correlation_id="rr-1")
    assert [str(e.event_id) for e in page.events] == [event_id]
    assert [d.attempt for d in seen] == [1, 2]
    assert all(isinstance(d.error, ServerError) and d.error.status_code == 503 for d in seen)
    assert emu.stats.by_status == {503: 2, 200: 1}


# -- 2: permanent statuses ----------------------------------------------------------------------


@mock_clock
@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (422, UnprocessableEntityError),
    ],
)
async def test_proxy_refusal_is_sent_once_and_typed(
    status: int, cls: type[DataStorageError]
) -> None:
    """401 / 403 / 422 from the proxy in front of the emulator: one request, the typed error."""
    gate = Gate(Emulator().app, status=status)
    async with AsyncAuditClient(transport=_asgi(gate), token="t") as client:
        with pytest.raises(cls) as info:
            await client.query_audit_events(correlation_id="rr-2")
    assert info.value.status_code == status
    assert len(gate.tokens) == 1


@mock_clock
async def test_emulator_400_is_sent_once_and_typed() -> None:
    """A write the emulator refuses with 400 is sent once, even with retry_writes=True."""
    emu = Emulator()
    client, stamped = in_process(emu)
    stale = make_event("rr-2", event_timestamp=_ago(days=8))
    async with client:
        with pytest.raises(BadRequestError):
            await client.create_audit_event(stale, retry_writes=True)
    assert len(stamped.times) == 1


@mock_clock
async def test_emulator_404_is_sent_once_and_typed() -> None:
    """An unknown path (a base URL with a wrong prefix) gets one request and NotFoundError."""
    emu = Emulator()
    stamped = Stamped(emu.transport())
    async with AsyncAuditClient(base_url=BASE + "/wrong", transport=stamped) as client:
        with pytest.raises(NotFoundError) as info:
            await client.query_audit_events(correlation_id="rr-2")
    assert len(stamped.times) == 1
    assert info.value.body is not None
    assert "404 page not found" in info.value.body


# -- 3: Retry-After ------------------------------------------------------------------------------


def _http_date(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@mock_clock
@pytest.mark.parametrize(
    ("faults", "low", "high"),
    [
        ({"error_503_rate": 1.0, "retry_after": "3"}, 3.0, 3.0),
        ({"rate_429": 1.0, "retry_after": "2"}, 2.0, 2.0),
        ({"rate_429": 1.0}, 1.0, 1.0),  # the rate limiter's own "1"
        ({"error_503_rate": 1.0, "retry_after": "3600"}, 12.0, 12.0),  # capped
    ],
    ids=["503-seconds", "429-seconds", "429-default", "capped"],
)
async def test_retry_after_seconds_waited(faults: dict[str, Any], low: float, high: float) -> None:
    """The emulator's Retry-After in seconds is waited before the retry, capped."""
    emu = Emulator(faults=Faults(**faults))
    seen: list[RetryDetails] = []
    stamped = Stamped(emu.transport())
    async with AsyncAuditClient(
        transport=stamped,
        retry=RetryPolicy(max_retry_after=12.0, timeout=100.0),
        retry_hooks=heal_after(emu, 1, seen),
    ) as client:
        await client.query_audit_events(correlation_id="rr-3")
    gap = stamped.times[1] - stamped.times[0]
    assert low - 1e-6 <= gap <= high + 1e-6


@mock_clock
async def test_retry_after_http_date_waited() -> None:
    """A Retry-After HTTP date ten seconds ahead is waited (to the second it names)."""
    emu = Emulator(faults=Faults(error_503_rate=1.0, retry_after=_http_date(10)))
    seen: list[RetryDetails] = []
    stamped = Stamped(emu.transport())
    async with AsyncAuditClient(
        transport=stamped,
        retry=RetryPolicy(timeout=100.0),
        retry_hooks=heal_after(emu, 1, seen),
    ) as client:
        await client.query_audit_events(correlation_id="rr-3")
    assert 8.5 <= stamped.times[1] - stamped.times[0] <= 10.0


@mock_clock
async def test_retry_after_on_429_is_a_rate_limit_error_at_the_end() -> None:
    """A rate limiter that never lets up ends in RateLimitError carrying its Retry-After."""
    emu = Emulator(faults=Faults(rate_429=1.0, retry_after="1"))
    client, stamped = in_process(emu, retry=RetryPolicy(attempts=3))
    async with client:
        with pytest.raises(RateLimitError) as info:
            await client.query_audit_events(correlation_id="rr-3")
    assert info.value.retry_after == 1.0
    assert [b - a for a, b in zip(stamped.times, stamped.times[1:], strict=False)] == [1.0, 1.0]


# -- 4: unusable Retry-After ---------------------------------------------------------------------


@mock_clock
@pytest.mark.parametrize(
    "value", ["inf", "nan", "-10", " ", "not a date", "Mon, 01 Jan 100000 00:00:00 GMT"]
)
async def test_unusable_retry_after_falls_back_to_backoff(value: str) -> None:
    """An unusable Retry-After from the emulator gives normal backoff, and the 503 at the end."""
    emu = Emulator(faults=Faults(error_503_rate=1.0, retry_after=value))
    seen: list[RetryDetails] = []
    client, stamped = in_process(
        emu, seen, retry=RetryPolicy(attempts=3, initial=1.0, max_backoff=2.0)
    )
    async with client:
        with pytest.raises(ServerError) as info:
            await client.query_audit_events(correlation_id="rr-4")
    assert info.value.status_code == 503
    assert info.value.retry_after is None
    assert len(stamped.times) == 3
    assert 0.0 <= seen[0].wait <= 1.0
    assert 0.0 <= seen[1].wait <= 2.0


# -- 5: backoff -------------------------------------------------------------------------------


@mock_clock
async def test_backoff_over_many_503s_stays_in_the_full_jitter_range() -> None:
    """Thirty failures in a row: every sleep lies in [0, min(cap, initial * 2**(n-1))], and the
    sleeps really happen between the emulator's requests."""
    emu = Emulator(faults=Faults(error_503_rate=1.0))
    seen: list[RetryDetails] = []
    policy = RetryPolicy(attempts=30, initial=0.5, max_backoff=4.0, timeout=10_000.0)
    client, stamped = in_process(emu, seen, retry=policy)
    async with client:
        with pytest.raises(ServerError):
            await client.query_audit_events(correlation_id="rr-5")
    assert len(seen) == 29
    assert all(0.0 <= d.wait <= min(4.0, 0.5 * 2 ** (d.attempt - 1)) for d in seen)
    capped = [d.wait for d in seen if d.attempt >= 4]
    assert max(capped) - min(capped) > 1.0
    gaps = [b - a for a, b in zip(stamped.times, stamped.times[1:], strict=False)]
    assert gaps == pytest.approx([d.wait for d in seen], abs=1e-6)


@mock_clock
async def test_two_clients_failing_together_do_not_retry_in_lockstep() -> None:
    """Two clients hitting one failing emulator at the same moment retry at different times."""
    emu = Emulator(faults=Faults(error_503_rate=1.0))
    clients = [in_process(emu, retry=RetryPolicy(attempts=8)) for _ in range(2)]

    async def fail(client: AsyncAuditClient) -> None:
        async with client:
            with pytest.raises(ServerError):
                await client.query_audit_events(correlation_id="rr-5")

    async with anyio.create_task_group() as tg:
        for client, _ in clients:
            tg.start_soon(fail, client)
    first, second = (stamped.times[1:] for _, stamped in clients)
    assert len(first) == len(second) == 7
    assert not set(first) & set(second)


# -- 8: connection refused / reset ---------------------------------------------------------------


@loopback
async def test_connection_refused_is_retried_then_a_connection_error() -> None:
    """Nothing listening: each try is refused, retried, and a TransportConnectionError ends
    it, marked as never sent."""
    seen: list[RetryDetails] = []
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncAuditClient(base_url=url, retry=FAST, retry_hooks=[seen.append]) as client:
        with pytest.raises(TransportConnectionError) as info:
            await client.query_audit_events(correlation_id="rr-8")
    assert [d.attempt for d in seen] == [1, 2]
    assert info.value.request_sent is False


def _reset(conn: socket.socket) -> None:
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@loopback
async def test_connection_reset_is_retried_then_a_connection_error_leaving_nothing_open() -> None:
    """A server resetting every connection: each try on a new connection, retried, then
    TransportConnectionError, and no connection left open."""
    seen: list[RetryDetails] = []
    with RawServer(_reset).running() as server:
        async with AsyncAuditClient(
            base_url=server.url, retry=FAST, retry_hooks=[seen.append]
        ) as client:
            with pytest.raises(TransportConnectionError):
                await client.query_audit_events(correlation_id="rr-8")
            assert established(server.port) == 0
    assert [d.attempt for d in seen] == [1, 2]
    assert len(set(server.peers)) == 3


@loopback
async def test_dropped_connection_is_retried_then_a_connection_error_leaving_nothing_open() -> None:
    """The emulator dropping every connection mid-body: retried, then
    TransportConnectionError, and the client holds no connection to it."""
    emu = Emulator(faults=Faults(drop_connection_rate=1.0, routes=("query",)))
    planted(emu, "rr-8")
    seen: list[RetryDetails] = []
    with emu.serve_in_thread() as url:
        port = int(url.rsplit(":", 1)[1])
        async with AsyncAuditClient(base_url=url, retry=FAST, retry_hooks=[seen.append]) as client:
            with pytest.raises(TransportConnectionError):
                await client.query_audit_events(correlation_id="rr-8")
            assert established(port) == 0
            emu.faults = Faults()
            page = await client.query_audit_events(correlation_id="rr-8")  # still usable
    assert len(seen) == 2
    assert len(page.events) == 1
    assert emu.stats.by_route == {"query": 4}


# -- 9: truncated body ---------------------------------------------------------------------------


@loopback
async def test_truncated_body_is_retried_then_a_typed_error() -> None:
    """A Content-Length larger than the body sent: retried, then TransportConnectionError."""
    emu = Emulator(faults=Faults(truncated_body_rate=1.0, routes=("query",)))
    planted(emu, "rr-9")
    seen: list[RetryDetails] = []
    with emu.serve_in_thread() as url:
        port = int(url.rsplit(":", 1)[1])
        async with AsyncAuditClient(base_url=url, retry=FAST, retry_hooks=[seen.append]) as client:
            with pytest.raises(TransportConnectionError) as info:
                await client.query_audit_events(correlation_id="rr-9")
            assert established(port) == 0
    assert len(seen) == 2
    assert emu.stats.by_route == {"query": 3}
    assert "incomplete" in str(info.value).lower() or "peer closed" in str(info.value).lower()


# -- 10: 200 with a body that is not the JSON expected -------------------------------------------


@mock_clock
async def test_malformed_json_is_a_decode_error_not_retried() -> None:
    """A 200 whose JSON stops halfway is a ResponseDecodeError with the status and a bounded
    excerpt; it is not retried and yields no events."""
    emu = Emulator(faults=Faults(malformed_json_rate=1.0, routes=("query",)))
    planted(emu, "rr-10", 20)
    client, stamped = in_process(emu)
    async with client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.query_audit_events(correlation_id="rr-10")
    assert info.value.status_code == 200
    assert info.value.excerpt is not None
    assert 0 < len(info.value.excerpt) <= 501
    assert len(stamped.times) == 1


# -- 11: body size cap ---------------------------------------------------------------------------


@loopback
async def test_page_over_the_size_cap_is_refused() -> None:
    """A chunked page from the emulator larger than max_response_bytes raises
    ResponseTooLargeError with a bounded excerpt, and is not retried."""
    emu = Emulator()
    planted(emu, "rr-11", 200)  # about 200 KiB, sent chunked without Content-Length
    with emu.serve_in_thread() as url:
        async with AsyncAuditClient(base_url=url, max_response_bytes=64 * 1024) as client:
            with pytest.raises(ResponseTooLargeError) as info:
                await client.query_audit_events(correlation_id="rr-11", limit=1000)
    assert info.value.excerpt is not None
    assert len(info.value.excerpt) <= 500
    assert emu.stats.by_route == {"query": 1}


# Abandoning a body part way leaves httpx's nested async generators unexhausted; see
# test_client_async.test_streamed_oversize_body_aborted_early.
@loopback
@pytest.mark.filterwarnings("ignore:Async generator:ResourceWarning")
async def test_endless_body_is_aborted_early_with_memory_bounded() -> None:
    """A body that never ends is abandoned once past the cap; memory stays near the cap."""
    sent = [0]
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)

    def endless(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        while sent[0] < 1 << 30:
            conn.sendall(chunk)  # fails once the client has gone
            sent[0] += 65536

    cap = 1 << 20
    with RawServer(endless).running() as server:
        async with AsyncAuditClient(base_url=server.url, max_response_bytes=cap) as client:
            tracemalloc.start()
            try:
                with pytest.raises(ResponseTooLargeError):
                    await client.query_audit_events(correlation_id="rr-11")
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    assert peak < 6 * cap
    assert sent[0] < 64 * cap  # the server was cut off, not read to the end


# -- 12: newer servers' fields and values --------------------------------------------------------


@mock_clock
async def test_unknown_fields_and_enum_values_are_kept() -> None:
    """Extra fields and unknown category, outcome and type values from the emulator are parsed
    and kept, and a wait still matches on the unknown type."""
    emu = Emulator(faults=Faults(extra_fields=True, unknown_enums=True))
    [event_id] = planted(emu, "rr-12")
    async with AsyncAuditClient(transport=emu.transport()) as client:
        (event,) = (await client.query_audit_events(correlation_id="rr-12")).events
        waited = await client.wait_for_audit_events(
            "rr-12", event_type="future.service.event_happened", timeout=5
        )
    assert str(event.event_id) == event_id
    assert event.event_category == "quantumcomputing"
    assert not event.event_category.is_known
    assert event.event_outcome == "partially_succeeded"
    assert event.event_type == "future.service.event_happened"
    assert event.model_extra == {"x_emulator_extra": {"note": "a field no spec lists"}}
    assert [str(e.event_id) for e in waited] == [event_id]


# -- 13: required field missing or of the wrong type ---------------------------------------------


def _set(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def rewrite(document: dict[str, Any]) -> None:
        if value is _MISSING:
            del document["data"][0][field]
        else:
            document["data"][0][field] = value

    return rewrite


_MISSING = object()


# The spec does not require event_id on a read event (AuditEvent = AuditEventRequest + optional
# event_id), so a missing event_id is accepted; its wrong type, or a missing required field, is
# not.
@mock_clock
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", 12345),
        ("event_id", "not-a-uuid"),
        ("correlation_id", _MISSING),
        ("event_timestamp", _MISSING),
    ],
    ids=["event_id-int", "event_id-text", "no-correlation_id", "no-event_timestamp"],
)
async def test_bad_required_field_is_a_validation_error_with_the_pydantic_cause(
    field: str, value: object
) -> None:
    """An emulator page with a wrongly typed event_id or a missing required field is a
    ResponseValidationError caused by pydantic's ValidationError, naming the field."""
    emu = Emulator()
    planted(emu, "rr-13", 2)
    async with AsyncAuditClient(transport=_asgi(Mangle(emu.app, _set(field, value)))) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.query_audit_events(correlation_id="rr-13")
    assert isinstance(info.value.__cause__, pydantic.ValidationError)
    assert field in str(info.value)


# -- 14: problem details and proxy pages ---------------------------------------------------------


@mock_clock
async def test_handler_400_exposes_the_problem_fields() -> None:
    """The emulator's write-handler 400 exposes status, title and detail (no field_errors, as
    the service sends none)."""
    emu = Emulator()
    async with AsyncAuditClient(transport=emu.transport()) as client:
        with pytest.raises(BadRequestError) as info:
            await client.create_audit_event(make_event("rr-14", event_timestamp=_ago(days=8)))
    error = info.value
    assert error.status_code == 400
    assert error.title == "Validation Error"
    assert error.detail == "audit event request failed validation"
    assert error.field_errors == {}
    assert "audit event request failed validation" in str(error)


@mock_clock
async def test_proxy_502_html_keeps_the_raw_text() -> None:
    """A proxy's HTML 502 from the emulator is retried, then a ServerError keeping the text."""
    emu = Emulator(faults=Faults(proxy_502_rate=1.0))
    client, stamped = in_process(emu, retry=RetryPolicy(attempts=2))
    async with client:
        with pytest.raises(ServerError) as info:
            await client.query_audit_events(correlation_id="rr-14")
    assert info.value.status_code == 502
    assert info.value.problem is None
    assert info.value.body is not None
    assert "502 Bad Gateway" in info.value.body
    assert len(stamped.times) == 2


# -- helpers -----------------------------------------------------------------------------------


def _asgi(app: Any) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=app)


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")
