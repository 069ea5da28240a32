"""AsyncAuditClient: a thin, typed wrapper over one ``httpx.AsyncClient``."""

from __future__ import annotations

import logging
import math
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, Unpack

import anyio
import httpx
import pydantic

from . import _config
from ._auth import TokenSource
from ._core import (
    AuditFilters,
    Filters,
    check_page_bounds,
    decode_json,
    dump_json,
    error_from_response,
    make_filters,
)
from ._exceptions import (
    AuditError,
    BatchPartiallyStoredError,
    ConfigurationError,
    DataStorageConnectionError,
    DataStorageError,
    DataStorageTimeoutError,
    RequestInfo,
    ResponseTooLargeError,
    TransportError,
)
from ._generated.models import (
    AsyncAcceptanceResponse,
    AuditEventResponse,
    AuditEventsQueryResponse,
    BatchAuditEventResponse,
)
from ._pagination import PageWalker
from ._payloads import PayloadRegistry
from ._polling import WaitState
from ._retry import NO_RETRY, RetryHook, RetryPolicy, call_with_retry, log_retry
from ._wait import AbsenceOptions, AuditEvents, WaitOptions, assert_none_async, wait_async
from .models import AuditEvent, AuditEventPage, AuditEventRequest, BatchResult, CreateResult

logger = logging.getLogger("kubernaut_audit")

EVENTS_PATH = "/api/v1/audit/events"
BATCH_PATH = "/api/v1/audit/events/batch"
READY_PATH = "/readyz"
_IN_PROCESS_URL = "http://data-storage.invalid"
_MAX_BATCH_BYTES = 4 * 1024 * 1024  # the server refuses bodies over 5 MiB; keep a margin

_QUERY_ADAPTER = pydantic.TypeAdapter(AuditEventsQueryResponse)
_CREATED_ADAPTER = pydantic.TypeAdapter(AuditEventResponse)
_ACCEPTED_ADAPTER = pydantic.TypeAdapter(AsyncAcceptanceResponse)
_BATCH_ADAPTER = pydantic.TypeAdapter(BatchAuditEventResponse)

EventInput = AuditEventRequest | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Response:
    status_code: int
    headers: httpx.Headers
    body: bytes
    request: RequestInfo


class AsyncAuditClient:
    """Asynchronous Data Storage audit client (works under asyncio and trio).

    Args:
        base_url: the Data Storage address; default: env ``DATA_STORAGE_URL``.
        token: a bearer token (env ``DATA_STORAGE_TOKEN``).
        token_file: a file holding the token, re-read when it rotates
            (env ``DATA_STORAGE_TOKEN_FILE``; e.g. a projected ServiceAccount token).
        user: sent as ``X-Auth-Request-User``, as integration tests without the auth proxy do
            (env ``DATA_STORAGE_USER``).
        timeout: seconds for each HTTP request (or an ``httpx.Timeout``).
        headers: extra headers on every request.
        transport: an httpx transport (``httpx.MockTransport``, ``httpx.ASGITransport``...).
        http_client: bring your own ``httpx.AsyncClient``; the SDK will not close it.
        retry: the policy for idempotent requests (queries); see :class:`RetryPolicy`.
        retry_hooks: called before each retry sleep; default: one log line.
        max_response_bytes: responses larger than this are aborted while streaming.
        flush_interval: the audit writer's flush interval waits assume (default 2.0 s).
        payloads: a :class:`PayloadRegistry` (from ``kubernaut-audit codegen``): the events
            returned carry it, and ``event.payload`` is the payload parsed into its model (on
            first read); ``event_data`` stays the dict. Without one, no payload work at all.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        user: str | None = None,
        timeout: float | httpx.Timeout = _config.DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        retry_hooks: Sequence[RetryHook] | None = None,
        max_response_bytes: int = _config.DEFAULT_MAX_RESPONSE_BYTES,
        flush_interval: float | None = None,
        payloads: PayloadRegistry | None = None,
    ) -> None:
        url = base_url or _config.env(_config.ENV_URL)
        if url is None and http_client is not None and str(http_client.base_url):
            url = str(http_client.base_url)
        if url is None:
            if transport is None:
                raise ConfigurationError(
                    f"no Data Storage address: pass base_url= or set {_config.ENV_URL}"
                )
            url = _IN_PROCESS_URL
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}")
        if token is None and token_file is None:
            token = _config.env(_config.ENV_TOKEN)
            if token is None:
                token_file = _config.env(_config.ENV_TOKEN_FILE)
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be positive")
        self._base_url = url.rstrip("/")
        self._tokens = TokenSource(token=token, token_file=token_file)
        self._user = user if user is not None else _config.env(_config.ENV_USER)
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._headers = dict(headers or {})
        self._transport = transport
        self._retry = retry or RetryPolicy()
        self._hooks: tuple[RetryHook, ...] = (
            tuple(retry_hooks) if retry_hooks is not None else (log_retry,)
        )
        self._max_bytes = max_response_bytes
        self._flush_interval = (
            flush_interval
            if flush_interval is not None
            else _config.env_flush_interval() or _config.DEFAULT_FLUSH_INTERVAL
        )
        self._payloads = payloads
        self._owns_http = http_client is None
        self._http = http_client or self._new_http_client()
        self._pid = os.getpid()
        self._rng = random.Random()
        self._closed = False
        # What the waits on this client share (in-flight queries, the learned flush cadence).
        self._wait_state = WaitState()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def flush_interval(self) -> float:
        """The audit writer's flush interval that waits on this client assume (seconds)."""
        return self._flush_interval

    def _new_http_client(self) -> httpx.AsyncClient:
        # Redirects are followed; httpx drops Authorization when one leads to another origin.
        return httpx.AsyncClient(
            transport=self._transport, timeout=self._timeout, follow_redirects=True
        )

    def _http_client(self) -> httpx.AsyncClient:
        if self._closed:
            raise RuntimeError("this client is closed")
        if self._pid != os.getpid() and self._owns_http:
            # After fork() the parent's pooled sockets are shared with it: never reuse them.
            self._http = self._new_http_client()
            self._pid = os.getpid()
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool (unless it came from ``http_client=``)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_http and self._pid == os.getpid():
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- transport ---------------------------------------------------------------------------

    def _request_headers(self, request_id: str, *, has_body: bool) -> dict[str, str]:
        headers = dict(self._headers)
        headers["X-Request-ID"] = request_id
        headers["Accept"] = "application/json, application/problem+json"
        secret = self._tokens.get()
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret.reveal()}"
        if self._user is not None:
            headers["X-Auth-Request-User"] = self._user
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _timeout_for(self, deadline: float | None, info: RequestInfo) -> httpx.Timeout:
        if deadline is None:
            return self._timeout
        left = deadline - anyio.current_time()
        if left <= 0:
            raise DataStorageTimeoutError(
                f"no time left for {info}", request=info, request_sent=False
            )

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        t = self._timeout
        return httpx.Timeout(
            connect=cap(t.connect), read=cap(t.read), write=cap(t.write), pool=cap(t.pool)
        )

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str | int]] = (),
        body: bytes | None = None,
        deadline: float | None = None,
    ) -> _Response:
        http = self._http_client()
        request_id = uuid.uuid4().hex
        url = httpx.URL(self._base_url + path, params=list(params))
        info = RequestInfo(method, str(url), request_id)
        retried_auth = False
        while True:
            request = http.build_request(
                method,
                url,
                content=body,
                headers=self._request_headers(request_id, has_body=body is not None),
                timeout=self._timeout_for(deadline, info),
            )
            started = time.perf_counter()
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                response = await self._exchange(http, request, info)
            if scope.cancelled_caught:
                raise DataStorageTimeoutError(
                    f"Data Storage did not finish answering {info} before the deadline",
                    request=info,
                )
            logger.debug(
                "%s -> %d in %.1f ms",
                info,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
            if (
                response.status_code == 401
                and not retried_auth
                and self._tokens.refresh_after_unauthorized()
            ):
                retried_auth = True  # the token file rotated: one more try with the new token
                continue
            if response.status_code >= 400:
                raise error_from_response(
                    response.status_code, response.headers, response.body, info
                )
            return response

    async def _exchange(
        self, http: httpx.AsyncClient, request: httpx.Request, info: RequestInfo
    ) -> _Response:
        try:
            response = await http.send(request, stream=True)
            try:
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
                    raise self._too_large(response, info, b"")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise self._too_large(response, info, b"".join(chunks)[:500])
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            cls: type[TransportError] = DataStorageTimeoutError
            if isinstance(exc, httpx.ConnectError):
                cls = DataStorageConnectionError
            raise cls(
                f"could not reach Data Storage for {info}: {type(exc).__name__}: {exc}",
                request=info,
                request_sent=False,
            ) from exc
        except httpx.TimeoutException as exc:
            raise DataStorageTimeoutError(
                f"timed out waiting for Data Storage on {info}: {type(exc).__name__}",
                request=info,
            ) from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise DataStorageConnectionError(
                f"connection to Data Storage broke during {info}: {type(exc).__name__}: {exc}",
                request=info,
            ) from exc
        return _Response(response.status_code, response.headers, b"".join(chunks), info)

    def _too_large(self, response: httpx.Response, info: RequestInfo, head: bytes) -> AuditError:
        return ResponseTooLargeError(
            f"response to {info} is larger than max_response_bytes={self._max_bytes}",
            request=info,
            status_code=response.status_code,
            content_type=response.headers.get("content-type"),
            excerpt=head.decode("utf-8", errors="replace"),
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str | int]] = (),
        body: bytes | None = None,
        idempotent: bool,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
    ) -> _Response:
        info = RequestInfo(method, self._base_url + path)
        policy = retry or self._retry
        if math.isfinite(policy.timeout):
            # The budget bounds the tries as well as the sleeps: a body trickled just under the
            # read timeout would otherwise hold one try open for as long as the server likes.
            budget = anyio.current_time() + policy.timeout
            deadline = budget if deadline is None else min(deadline, budget)

        async def attempt() -> _Response:
            return await self._send_once(method, path, params=params, body=body, deadline=deadline)

        return await call_with_retry(
            attempt,
            request=info,
            policy=policy,
            rng=self._rng,
            idempotent=idempotent,
            deadline=deadline,
            hooks=self._hooks,
        )

    # -- queries -----------------------------------------------------------------------------

    async def _fetch_page(
        self,
        filters: Filters,
        limit: int,
        offset: int,
        *,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> AuditEventPage:
        params: list[tuple[str, str | int]] = [*filters.params(), ("limit", limit)]
        if offset:
            params.append(("offset", offset))
        response = await self._request(
            "GET", EVENTS_PATH, params=params, idempotent=True, deadline=deadline, retry=retry
        )
        decoded = decode_json(
            _QUERY_ADAPTER,
            response.body,
            status_code=response.status_code,
            content_type=response.headers.get("content-type"),
            request=response.request,
        )
        events = decoded.data or []
        if self._payloads is not None:
            self._payloads._attach(events)
        pagination = decoded.pagination
        return AuditEventPage(
            events=events,
            limit=pagination.limit if pagination and pagination.limit is not None else limit,
            offset=pagination.offset if pagination and pagination.offset is not None else offset,
            total=pagination.total if pagination and pagination.total is not None else len(events),
            has_more=bool(pagination.has_more) if pagination else False,
        )

    async def query_audit_events(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        **filters: Unpack[AuditFilters],
    ) -> AuditEventPage:
        """Fetch one page of matching events, newest first.

        Every filter is optional and they combine with AND. An empty string is refused with
        ``ValueError`` (the server would read it as "no filter"). ``since``/``until`` take an
        aware ``datetime``, a ``timedelta`` back from now, or the server's text forms
        (``"90m"``, ``"24h"``, ``"7d"``, RFC 3339, ``"YYYY-MM-DD"``). ``limit`` (1–1000) is
        always sent.

        .. versionadded:: 0.1.0
        """
        check_page_bounds(limit, offset)
        return await self._fetch_page(make_filters(**filters), limit, offset)

    async def _walk(
        self, filters: Filters, page_size: int, *, deadline: float | None = None
    ) -> AsyncIterator[AuditEvent]:
        walker = PageWalker(page_size=page_size)
        while (nxt := walker.next_request()) is not None:
            page = await self._fetch_page(filters, *nxt, deadline=deadline)
            for event in walker.feed(page):
                yield event

    def iter_audit_events(
        self,
        *,
        page_size: int = _config.MAX_PAGE_LIMIT,
        **filters: Unpack[AuditFilters],
    ) -> AsyncIterator[AuditEvent]:
        """Iterate over every matching event, page after page (filters as in
        :meth:`query_audit_events`).

        Each event is yielded once (deduplicated by ``event_id``) even when rows arriving during
        the walk shift the pages; every event stored before the walk began is yielded. When the
        walk spans several pages it ends with a count check and re-reads the pages while the
        count shows events it has not yielded.

        .. versionadded:: 0.1.0
        """
        check_page_bounds(page_size, 0)
        return self._walk(make_filters(**filters), page_size)

    async def list_audit_events(
        self,
        *,
        page_size: int = _config.MAX_PAGE_LIMIT,
        **filters: Unpack[AuditFilters],
    ) -> list[AuditEvent]:
        """Every matching event as a list; see :meth:`iter_audit_events`.

        .. versionadded:: 0.1.0
        """
        iterator = self.iter_audit_events(page_size=page_size, **filters)
        return [event async for event in iterator]

    # -- writes ------------------------------------------------------------------------------

    async def create_audit_event(
        self, event: EventInput, *, retry_writes: bool = False
    ) -> CreateResult:
        """Write one event. A 202 comes back as ``stored=False`` (parked, not queryable).

        The event is validated strictly before anything is sent. A write that may have reached
        the server is not retried unless ``retry_writes=True`` (which may store it twice).

        .. versionadded:: 0.1.0
        """
        body = dump_json(_request_json(event))
        response = await self._request(
            "POST", EVENTS_PATH, body=body, idempotent=retry_writes, retry=self._write_retry()
        )
        ctype = response.headers.get("content-type")
        if response.status_code == 202:
            accepted = decode_json(
                _ACCEPTED_ADAPTER,
                response.body,
                status_code=202,
                content_type=ctype,
                request=response.request,
            )
            return CreateResult(stored=False, status_code=202, message=accepted.message)
        created = decode_json(
            _CREATED_ADAPTER,
            response.body,
            status_code=response.status_code,
            content_type=ctype,
            request=response.request,
        )
        return CreateResult(
            stored=True,
            status_code=response.status_code,
            message=created.message,
            event_id=created.event_id,
            event_timestamp=created.event_timestamp,
        )

    async def create_audit_events(
        self, events: Iterable[EventInput], *, retry_writes: bool = False
    ) -> BatchResult:
        """Write events through the batch endpoint, in chunks the server accepts (≤ 500 events,
        well under its body cap). All events are validated before the first request.

        If a chunk fails after earlier chunks were stored, :class:`BatchPartiallyStoredError`
        says which ids were stored and how many events were not.

        .. versionadded:: 0.1.0
        """
        encoded = [dump_json(_request_json(e)) for e in events]
        chunks = _chunk(encoded)
        stored: list[uuid.UUID] = []
        for index, chunk in enumerate(chunks):
            body = b"[" + b",".join(chunk) + b"]"
            try:
                response = await self._request(
                    "POST",
                    BATCH_PATH,
                    body=body,
                    idempotent=retry_writes,
                    retry=self._write_retry(),
                )
                decoded = decode_json(
                    _BATCH_ADAPTER,
                    response.body,
                    status_code=response.status_code,
                    content_type=response.headers.get("content-type"),
                    request=response.request,
                )
            except AuditError as exc:
                if index == 0:
                    raise
                unsent = sum(len(c) for c in chunks[index:])
                raise BatchPartiallyStoredError(
                    f"batch write failed at chunk {index + 1} of {len(chunks)}: {len(stored)} "
                    f"events stored, {unsent} not ({exc})",
                    request=exc.request,
                    event_ids=stored,
                    unsent=unsent,
                ) from exc
            stored.extend(decoded.event_ids or [])
        return BatchResult(event_ids=stored, requests=len(chunks))

    def _write_retry(self) -> RetryPolicy:
        return self._retry if self._retry.attempts > 1 else NO_RETRY

    # -- waiting ---------------------------------------------------------------------------

    async def wait_for_audit_events(
        self, correlation_id: str, **options: Unpack[WaitOptions]
    ) -> AuditEvents:
        """Wait for audit events of ``correlation_id``; see :func:`wait_for_audit_events`.

        .. versionadded:: 0.1.0
        """
        return await wait_async(self, correlation_id, **options)

    async def assert_no_audit_events(
        self, correlation_id: str, **options: Unpack[AbsenceOptions]
    ) -> None:
        """Fail if a matching event appears; see :func:`assert_no_audit_events`.

        .. versionadded:: 0.1.0
        """
        await assert_none_async(self, correlation_id, **options)

    # -- health ------------------------------------------------------------------------------

    async def ready(self) -> bool:
        """True when ``/readyz`` says ready; False when it says not ready or nothing answers.

        .. versionadded:: 0.1.0
        """
        try:
            response = await self._request("GET", READY_PATH, idempotent=True, retry=NO_RETRY)
        except DataStorageError as exc:
            if exc.status_code == 503:
                return False
            raise
        except (DataStorageConnectionError, DataStorageTimeoutError):
            return False
        return response.status_code == 200


def _request_json(event: EventInput) -> dict[str, Any]:
    # Models are validated again: model_construct() or attribute assignment can bypass checks.
    data = event.model_dump(exclude_unset=True) if isinstance(event, AuditEventRequest) else event
    return AuditEventRequest.model_validate(data).model_dump(mode="json", exclude_unset=True)


def _chunk(encoded: list[bytes]) -> list[list[bytes]]:
    chunks: list[list[bytes]] = []
    current: list[bytes] = []
    size = 2
    for item in encoded:
        if current and (
            len(current) >= _config.MAX_BATCH_SIZE or size + len(item) + 1 > _MAX_BATCH_BYTES
        ):
            chunks.append(current)
            current, size = [], 2
        current.append(item)
        size += len(item) + 1
    if current:
        chunks.append(current)
    return chunks
