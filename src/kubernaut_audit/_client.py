"""AsyncAuditClient: I/O and delegation over one ``httpx.AsyncClient``.

What a request is and how its answer reads live in the sans-I/O modules (``_core``,
``_operations``, ``_query``, ``_error_map``); the waits in ``_wait``. This module sends, streams
under the size cap, retries and re-reads a rotated token: the parts that touch the network.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, Unpack

import anyio
import httpx

from . import _config
from . import _operations as ops
from . import _trail_ops as trail
from ._auth import TokenSource
from ._chain import ChainVerification, verify_event_chain
from ._core import (
    Operation,
    Response,
    bounded_timeout,
    request_headers,
    retry_deadline,
    write_policy,
)
from ._error_map import (
    deadline_passed,
    declared_too_large,
    error_from_response,
    too_large,
    transport_error,
)
from ._exceptions import AuditError, RequestInfo
from ._expectations import AsyncExpectationSet
from ._generated.models import (
    AuditExportResponse,
    LegalHoldList,
    LegalHoldPlacement,
    LegalHoldRelease,
    ReconstructionResponse,
    VerifyChainResponse,
)
from ._operations import EventInput
from ._pagination import PageWalker
from ._payloads import PayloadRegistry
from ._polling import PollHook, WaitState
from ._query import AuditFilters, QueryFilters, check_page_bounds, make_filters
from ._retry import NO_RETRY, RetryHook, RetryPolicy, call_with_retry
from ._tracebacks import hide_audit_errors
from ._trail_ops import ExportFilters, ExportProgress
from ._wait import AbsenceOptions, WaitOptions, WaitResult, assert_none_async, wait_async
from ._writers import WriterKind
from .models import AuditEvent, AuditEventPage, BatchResult, CreateResult

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

logger = logging.getLogger("kubernaut_audit")

T = TypeVar("T")


class AsyncAuditClient:
    """Asynchronous Data Storage audit client (works under asyncio and trio).

    Args:
        base_url: the Data Storage address; default: env ``DATA_STORAGE_URL``.
        token: a bearer token (env ``DATA_STORAGE_TOKEN``).
        token_file: a file holding the token, re-read when it rotates
            (env ``DATA_STORAGE_TOKEN_FILE``; e.g. a projected ServiceAccount token).
        user: sent as ``X-Auth-Request-User`` (env ``DATA_STORAGE_USER``). It only matters to
            a Data Storage without its auth middleware (a bare server in integration tests, the
            emulator without ``tokens=``): the middleware deletes the header and sets it to the
            bearer token's user, so behind it the caller's identity always comes from
            ``token``.
        timeout: seconds for each HTTP request (or an ``httpx.Timeout``).
        headers: extra headers on every request.
        transport: an httpx transport (``httpx.MockTransport``, ``httpx.ASGITransport``...).
        http_client: bring your own ``httpx.AsyncClient``; the SDK will not close it.
        retry: the policy for idempotent requests (queries); see :class:`RetryPolicy`.
        retry_hooks: called before each retry sleep; default: one log line.
        max_response_bytes: responses larger than this are aborted while streaming.
        flush_interval: the audit writer's flush interval waits assume (default 2.0 s).
        writer: how that writer writes, as waits assume: ``"ticker"`` (the Go services),
            ``"since-last-write"`` (the Python service) or ``"auto"`` (the default: worked out
            from what the waits see); env ``KUBERNAUT_AUDIT_WRITER``.
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
        writer: WriterKind | None = None,
        payloads: PayloadRegistry | None = None,
    ) -> None:
        settings = _config.client_settings(
            base_url=base_url,
            token=token,
            token_file=token_file,
            user=user,
            timeout=timeout,
            headers=headers,
            retry=retry,
            retry_hooks=retry_hooks,
            max_response_bytes=max_response_bytes,
            flush_interval=flush_interval,
            writer=writer,
            http_base_url=str(http_client.base_url) if http_client is not None else None,
            in_process=transport is not None,
        )
        self._base_url = settings.base_url
        self._tokens = TokenSource(token=settings.token, token_file=settings.token_file)
        self._user = settings.user
        self._timeout = settings.timeout
        self._headers = settings.headers
        self._transport = transport
        self._retry = settings.retry
        self._hooks = settings.hooks
        self._max_bytes = settings.max_response_bytes
        self._flush_interval = settings.flush_interval
        self._writer = settings.writer
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

    @property
    def writer(self) -> WriterKind:
        """The writer kind that waits on this client assume (``"auto"`` unless set).

        .. versionadded:: 0.2.0
        """
        return self._writer

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

    async def _call(
        self,
        operation: Operation[T],
        *,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
    ) -> T:
        """Send ``operation`` under its retry policy (``retry``, else the client's for its
        kind), bounded by ``deadline`` (event-loop time); return its decoded answer."""
        if retry is None:
            retry = write_policy(self._retry) if operation.write else self._retry
        deadline = retry_deadline(retry, now=anyio.current_time(), deadline=deadline)

        async def attempt() -> Response:
            return await self._send_once(operation, deadline)

        response = await call_with_retry(
            attempt,
            request=RequestInfo(operation.method, self._base_url + operation.path),
            policy=retry,
            rng=self._rng,
            idempotent=operation.idempotent,
            deadline=deadline,
            hooks=self._hooks,
        )
        return operation.decode(response)

    async def _send_once(self, operation: Operation[Any], deadline: float | None) -> Response:
        """One try; once more at once if a 401 comes while the token file has rotated."""
        http = self._http_client()
        request_id = uuid.uuid4().hex
        url = httpx.URL(self._base_url + operation.path, params=list(operation.params))
        info = RequestInfo(operation.method, str(url), request_id)
        retried_auth = False
        while True:
            secret = self._tokens.get()
            request = http.build_request(
                operation.method,
                url,
                content=operation.body,
                headers=request_headers(
                    self._headers,
                    request_id,
                    token=None if secret is None else secret.reveal(),
                    user=self._user,
                    has_body=operation.body is not None,
                ),
                timeout=bounded_timeout(
                    self._timeout, deadline=deadline, now=anyio.current_time(), request=info
                ),
            )
            started = time.perf_counter()
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                response = await self._exchange(http, request, info)
            if scope.cancelled_caught:
                raise deadline_passed(info)
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
                retried_auth = True
                continue
            if response.status_code >= 400:
                raise error_from_response(
                    response.status_code, response.headers, response.body, info
                )
            return response

    async def _exchange(
        self, http: httpx.AsyncClient, request: httpx.Request, info: RequestInfo
    ) -> Response:
        """Send and read the whole answer, streamed under ``max_response_bytes``."""
        try:
            response = await http.send(request, stream=True)
            try:
                if declared_too_large(response.headers, self._max_bytes):
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
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise transport_error(exc, info) from exc
        return Response(response.status_code, response.headers, b"".join(chunks), info)

    def _too_large(self, response: httpx.Response, info: RequestInfo, head: bytes) -> AuditError:
        return too_large(
            info,
            status_code=response.status_code,
            headers=response.headers,
            head=head,
            max_bytes=self._max_bytes,
        )

    # -- queries -----------------------------------------------------------------------------

    async def _fetch_page(
        self,
        filters: QueryFilters,
        limit: int,
        offset: int,
        *,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> AuditEventPage:
        operation = ops.query_page(filters, limit, offset, payloads=self._payloads)
        return await self._call(operation, deadline=deadline, retry=retry)

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
        self, filters: QueryFilters, page_size: int, *, deadline: float | None = None
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
        return await self._call(ops.create_event(event, retry_writes=retry_writes))

    async def create_audit_events(
        self, events: Iterable[EventInput], *, retry_writes: bool = False
    ) -> BatchResult:
        """Write events through the batch endpoint, in chunks the server accepts (≤ 500 events,
        well under its body cap). All events are validated before the first request.

        If a chunk fails after earlier chunks were stored, :class:`BatchPartiallyStoredError`
        says which ids were stored and how many events were not.

        .. versionadded:: 0.1.0
        """
        chunks = ops.batch_chunks(events)
        stored: list[uuid.UUID] = []
        for index, chunk in enumerate(chunks):
            try:
                ids = await self._call(ops.create_batch(chunk, retry_writes=retry_writes))
            except AuditError as exc:
                if index == 0:
                    raise
                raise ops.partial_batch_error(
                    exc, index=index, chunks=chunks, stored=stored
                ) from exc
            stored.extend(ids)
        return BatchResult(event_ids=stored, requests=len(chunks))

    # -- the audit trail ---------------------------------------------------------------------

    async def export_audit_events(
        self,
        *,
        limit: int = trail.DEFAULT_EXPORT_LIMIT,
        offset: int = 0,
        **filters: Unpack[ExportFilters],
    ) -> AuditExportResponse:
        """One page of a signed export, oldest first (``limit`` 1–10000, always sent).

        What the page does **not** mean:

        * ``hash_chain_valid`` and the ``hash_chain_verification`` counts are computed on this
          page alone: the first event of a chain cut by the page, by a time window or by
          ``event_category`` shows as broken. They mean something only for one
          ``correlation_id``, no other filter, and the whole chain on one page; otherwise use
          :meth:`verify_audit_chain` or :meth:`verify_audit_chain_offline`.
        * ``total_events`` counts this page, not all matches; ``events`` are regrouped by
          correlation id, the groups in no stable order; every time is cut to whole seconds.
        * ``signature`` covers six counters and times of this page, not the events, and a
          client cannot check it: the service serves no certificate and the signed times
          arrive cut to seconds.
        * ``redact_pii=True`` masks e-mail, IPv4 and long digit runs only under a fixed list of
          ``event_data`` key names (and in ``exported_by``): not a complete redaction.

        Args:
            limit: events per page (the service's default is 1000).
            offset: matching events to skip.
            filters: ``start_time``/``end_time`` (aware datetimes or RFC 3339, inclusive),
                ``correlation_id``, ``event_category``, ``include_detached_signature``,
                ``redact_pii``. Empty strings are refused (the service reads them as "no
                filter").

        .. versionadded:: 0.2.0
        """
        query = trail.export_query(**filters)
        return await self._call(trail.export_page(query, limit, offset))

    async def _export_pages(
        self,
        query: trail.ExportQuery,
        page_size: int,
        on_page: Callable[[ExportProgress], object] | None,
    ) -> AsyncIterator[AuditExportResponse]:
        walker = trail.ExportWalker(page_size)
        while not walker.done:
            page = await self._call(trail.export_page(query, page_size, walker.offset))
            progress = walker.feed(page)
            if on_page is not None:
                on_page(progress)
            yield page

    def iter_export(
        self,
        *,
        page_size: int = trail.DEFAULT_EXPORT_LIMIT,
        on_page: Callable[[ExportProgress], object] | None = None,
        **filters: Unpack[ExportFilters],
    ) -> AsyncIterator[AuditExportResponse]:
        """Every page of an export, by offset until a page is short (the service gives no
        count). Each page is what :meth:`export_audit_events` returns, with the same caveats;
        one page is held at a time.

        Pages are read one request each with no snapshot between them: an event stored
        meanwhile with an older timestamp than the rows already read shifts the later pages,
        so one event may appear twice or be missed. Export a closed time window for a stable
        result.

        Args:
            page_size: events per request (1–10000).
            on_page: called with an :class:`ExportProgress` after each page.
            filters: as for :meth:`export_audit_events`.

        .. versionadded:: 0.2.0
        """
        trail.check_export_bounds(page_size, 0)
        return self._export_pages(trail.export_query(**filters), page_size, on_page)

    async def verify_audit_chain(self, correlation_id: str) -> VerifyChainResponse:
        """Ask the service to verify the hash chain of ``correlation_id``.

        ``is_valid: false`` is a result, not an error. What it does **not** mean: an unknown
        correlation id comes back valid with ``total_events`` 0 (there is no 404); a broken
        link is usually listed twice in ``tampered_events`` (the link, then the hash); and
        "tampered" includes events merely stored out of timestamp order (a late buffered
        write, two events in one microsecond), which
        :meth:`verify_audit_chain_offline` tells apart. Events stored without a hash are left
        out (``skipped_null_hash``).

        Args:
            correlation_id: the chain (the service refuses more than 256 bytes).

        .. versionadded:: 0.2.0
        """
        return await self._call(trail.verify_chain(correlation_id))

    async def verify_audit_chain_offline(
        self,
        correlation_id: str,
        *,
        key: bytes | str | None = None,
        algorithm: Literal["auto", "sha256-unkeyed", "hmac-sha256"] = "auto",
    ) -> ChainVerification:
        """Verify the chain here: read every event of ``correlation_id`` and recompute each
        hash, without trusting the server's verdict; see :func:`verify_event_chain`.

        Production rows are keyed (HMAC): without ``key`` they come back *undetermined*,
        never intact or broken.

        .. versionadded:: 0.2.0
        """
        events = await self.list_audit_events(correlation_id=correlation_id)
        return verify_event_chain(events, key=key, algorithm=algorithm)

    async def place_legal_hold(self, correlation_id: str, reason: str) -> LegalHoldPlacement:
        """Hold every stored event of ``correlation_id`` (placing again overwrites reason,
        holder and time). Events stored later are not held. The holder is the token's user,
        whatever ``user=`` says. A correlation id with no events raises :class:`NotFoundError`.

        .. versionadded:: 0.2.0
        """
        return await self._call(trail.place_legal_hold(correlation_id, reason))

    async def list_legal_holds(self) -> LegalHoldList:
        """The holds in force, newest first, one entry per correlation id, holder, time and
        reason; ``events_affected`` counts the rows still held.

        .. versionadded:: 0.2.0
        """
        return await self._call(trail.list_legal_holds())

    async def release_legal_hold(self, correlation_id: str, reason: str) -> LegalHoldRelease:
        """Release the hold on ``correlation_id``; the reason is appended to the rows' hold
        reason and who placed it stays. Nothing held (released already, or unknown) raises
        :class:`NotFoundError`. Not retried once it may have reached the server.

        .. versionadded:: 0.2.0
        """
        return await self._call(trail.release_legal_hold(correlation_id, reason))

    async def reconstruct_remediation_request(self, correlation_id: str) -> ReconstructionResponse:
        """Have the service rebuild the RemediationRequest of ``correlation_id`` from its
        audit trail: the YAML and a completeness report.

        A 200 can still say ``validation.is_valid`` false (a required field missing but at
        least half of the nine fields present). Below 50 % completeness, without a usable
        gateway or API-frontend event, or with nothing parseable, the service answers 400
        (:class:`BadRequestError`); with none of the eight lifecycle event types, 404
        (:class:`NotFoundError`). Only the first 1000 relevant events are read.

        .. versionadded:: 0.2.0
        """
        return await self._call(trail.reconstruct(correlation_id))

    # -- waiting ---------------------------------------------------------------------------

    async def wait_for_audit_events(
        self, correlation_id: str, **options: Unpack[WaitOptions]
    ) -> WaitResult:
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

    def expectations(
        self, correlation_id: str, *, on_poll: PollHook | None = None
    ) -> AsyncExpectationSet:
        """A set of audit checks on ``correlation_id``, declared now, verified together.

        ``expect(...)``/``expect_none(...)`` record checks at once; ``await verify()`` polls
        for all of them in one loop. See :class:`AsyncExpectationSet`.

        Args:
            correlation_id: required and non-empty.
            on_poll: called with a :class:`PollRecord` after every poll.

        .. versionadded:: 0.2.0
        """
        return AsyncExpectationSet(self, correlation_id, on_poll=on_poll)

    # -- health ------------------------------------------------------------------------------

    async def ready(self) -> bool:
        """True when ``/readyz`` says ready; False when it says not ready or nothing answers.

        .. versionadded:: 0.1.0
        """
        try:
            return await self._call(ops.ready(), retry=NO_RETRY)
        except AuditError as exc:
            if ops.means_not_ready(exc):
                return False
            raise
