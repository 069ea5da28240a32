"""AuditClient: the blocking face, driving an AsyncAuditClient on a portal's event loop.

Every call runs as a task on an anyio blocking portal (one event-loop thread per client), so
the logic exists once, in the async client. Interrupting a blocking call (Ctrl-C) cancels the
task it was waiting for.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, Unpack

import anyio
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import _config
from . import _trail_ops as trail
from ._chain import ChainVerification
from ._client import AsyncAuditClient
from ._expectations import ExpectationSet
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
from ._polling import PollHook
from ._query import AuditFilters, check_page_bounds, make_filters
from ._retry import RetryHook, RetryPolicy
from ._tracebacks import cut_plumbing, hide_audit_errors
from ._trail_ops import ExportFilters, ExportProgress
from ._wait import AbsenceOptions, WaitOptions, WaitResult
from ._writers import WriterKind
from .models import AuditEvent, AuditEventPage, BatchResult, CreateResult

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

T = TypeVar("T")

#: Clients that may hold a portal, for the fork handler below.
_CLIENTS: weakref.WeakSet[AuditClient] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The portal threads did not survive fork(). Leaving a portal's context manager (when the
    # child replaces or closes it, or collects the client) asks its thread to stop the portal and
    # waits for the answer: for ever. A portal marked as not running makes that call fail, which
    # anyio ignores, and the join returns at once (a child sees the other threads as stopped).
    # A private attribute: tests/test_dependency_reaches.py fails if anyio changes it.
    for client in list(_CLIENTS):
        if client._portal is not None:
            client._portal._event_loop_thread_id = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class AuditClient:
    """Blocking Data Storage audit client for plain pytest tests and scripts.

    Takes the same arguments as :class:`AsyncAuditClient` (except ``http_client``, which must be
    an async client living on this client's own loop) and has the same methods, blocking.

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
        retry: RetryPolicy | None = None,
        retry_hooks: Sequence[RetryHook] | None = None,
        max_response_bytes: int = _config.DEFAULT_MAX_RESPONSE_BYTES,
        flush_interval: float | None = None,
        writer: WriterKind | None = None,
        payloads: PayloadRegistry | None = None,
    ) -> None:
        self._async = AsyncAuditClient(
            base_url=base_url,
            token=token,
            token_file=token_file,
            user=user,
            timeout=timeout,
            headers=headers,
            transport=transport,
            retry=retry,
            retry_hooks=retry_hooks,
            max_response_bytes=max_response_bytes,
            flush_interval=flush_interval,
            writer=writer,
            payloads=payloads,
        )
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._pid = os.getpid()
        self._closed = False
        _CLIENTS.add(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._async.base_url!r})"

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def flush_interval(self) -> float:
        return self._async.flush_interval

    @property
    def writer(self) -> WriterKind:
        """The writer kind that waits on this client assume.

        .. versionadded:: 0.2.0
        """
        return self._async.writer

    @property
    def async_client(self) -> AsyncAuditClient:
        """The async client underneath (only usable on this client's portal loop)."""
        return self._async

    def _get_portal(self) -> BlockingPortal:
        if self._closed:
            raise RuntimeError("this client is closed")
        if self._portal is None or self._pid != os.getpid():
            # A forked child has no portal thread: start its own loop (and, lazily, its own pool).
            self._portal_cm = start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
            self._pid = os.getpid()
        return self._portal

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        portal = self._get_portal()

        # A Ctrl-C can also land while start_task_soon is still handing the task to the loop,
        # before there is a future to cancel: the task then finds the flag set when it starts, or
        # the loop cancels the scope it registered (both run on the loop thread, so no race).
        interrupted = threading.Event()
        scopes: list[anyio.CancelScope] = []

        async def call() -> T:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                if interrupted.is_set():
                    scope.cancel()
                return await fn(*args, **kwargs)
            raise RuntimeError("interrupted before it started")  # only reached when cancelled

        def cancel_started() -> None:
            for scope in scopes:
                scope.cancel()

        try:
            future = portal.start_task_soon(call)
        except BaseException:
            interrupted.set()
            portal.call(cancel_started)
            raise
        try:
            return future.result()
        except BaseException as exc:
            future.cancel()  # Ctrl-C in the caller ends the task too
            # An AuditError surfaces from the caller's call, not from the portal's thread.
            raise cut_plumbing(exc)  # noqa: B904 - the same error, fewer frames

    def _start_soon(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Future[T]:
        """Start ``fn`` on this client's loop and return at once (a background task)."""
        return self._get_portal().start_task_soon(fn, *args)

    def close(self) -> None:
        """Close the connection pool and stop the event-loop thread."""
        if self._closed:
            return
        try:
            if self._portal is not None and self._pid == os.getpid():
                self._run(self._async.aclose)
        finally:
            self._closed = True
            if self._portal_cm is not None and self._pid == os.getpid():
                self._portal_cm.__exit__(None, None, None)
            self._portal = self._portal_cm = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def query_audit_events(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[AuditFilters]
    ) -> AuditEventPage:
        """See :meth:`AsyncAuditClient.query_audit_events`."""
        return self._run(self._async.query_audit_events, limit=limit, offset=offset, **filters)

    def iter_audit_events(
        self, *, page_size: int = _config.MAX_PAGE_LIMIT, **filters: Unpack[AuditFilters]
    ) -> Iterator[AuditEvent]:
        """See :meth:`AsyncAuditClient.iter_audit_events`."""
        parsed = make_filters(**filters)
        check_page_bounds(page_size, 0)

        def walk() -> Iterator[AuditEvent]:
            walker = PageWalker(page_size=page_size)
            while (nxt := walker.next_request()) is not None:
                yield from walker.feed(self._run(self._async._fetch_page, parsed, *nxt))

        return walk()

    def list_audit_events(
        self, *, page_size: int = _config.MAX_PAGE_LIMIT, **filters: Unpack[AuditFilters]
    ) -> list[AuditEvent]:
        """See :meth:`AsyncAuditClient.list_audit_events`."""
        return list(self.iter_audit_events(page_size=page_size, **filters))

    def create_audit_event(self, event: EventInput, *, retry_writes: bool = False) -> CreateResult:
        """See :meth:`AsyncAuditClient.create_audit_event`."""
        return self._run(self._async.create_audit_event, event, retry_writes=retry_writes)

    def create_audit_events(
        self, events: Iterable[EventInput], *, retry_writes: bool = False
    ) -> BatchResult:
        """See :meth:`AsyncAuditClient.create_audit_events`."""
        return self._run(self._async.create_audit_events, list(events), retry_writes=retry_writes)

    def ready(self) -> bool:
        """See :meth:`AsyncAuditClient.ready`."""
        return self._run(self._async.ready)

    def wait_for_audit_events(
        self, correlation_id: str, **options: Unpack[WaitOptions]
    ) -> WaitResult:
        """Block until the expected events arrive; see :func:`wait_for_audit_events`."""
        return self._run(self._async.wait_for_audit_events, correlation_id, **options)

    def assert_no_audit_events(
        self, correlation_id: str, **options: Unpack[AbsenceOptions]
    ) -> None:
        """Fail if a matching event appears; see :func:`assert_no_audit_events`."""
        self._run(self._async.assert_no_audit_events, correlation_id, **options)

    # -- the audit trail ---------------------------------------------------------------------

    def export_audit_events(
        self,
        *,
        limit: int = trail.DEFAULT_EXPORT_LIMIT,
        offset: int = 0,
        **filters: Unpack[ExportFilters],
    ) -> AuditExportResponse:
        """One export page; see :meth:`AsyncAuditClient.export_audit_events`."""
        return self._run(self._async.export_audit_events, limit=limit, offset=offset, **filters)

    def iter_export(
        self,
        *,
        page_size: int = trail.DEFAULT_EXPORT_LIMIT,
        on_page: Callable[[ExportProgress], object] | None = None,
        **filters: Unpack[ExportFilters],
    ) -> Iterator[AuditExportResponse]:
        """Every export page; see :meth:`AsyncAuditClient.iter_export`."""
        trail.check_export_bounds(page_size, 0)
        query = trail.export_query(**filters)

        def walk() -> Iterator[AuditExportResponse]:
            walker = trail.ExportWalker(page_size)
            while not walker.done:
                page = self._run(
                    self._async._call, trail.export_page(query, page_size, walker.offset)
                )
                progress = walker.feed(page)
                if on_page is not None:
                    on_page(progress)
                yield page

        return walk()

    def verify_audit_chain(self, correlation_id: str) -> VerifyChainResponse:
        """Server-side verification; see :meth:`AsyncAuditClient.verify_audit_chain`."""
        return self._run(self._async.verify_audit_chain, correlation_id)

    def verify_audit_chain_offline(
        self,
        correlation_id: str,
        *,
        key: bytes | str | None = None,
        algorithm: Literal["auto", "sha256-unkeyed", "hmac-sha256"] = "auto",
    ) -> ChainVerification:
        """Local verification; see :meth:`AsyncAuditClient.verify_audit_chain_offline`."""
        return self._run(
            self._async.verify_audit_chain_offline, correlation_id, key=key, algorithm=algorithm
        )

    def place_legal_hold(self, correlation_id: str, reason: str) -> LegalHoldPlacement:
        """See :meth:`AsyncAuditClient.place_legal_hold`."""
        return self._run(self._async.place_legal_hold, correlation_id, reason)

    def list_legal_holds(self) -> LegalHoldList:
        """See :meth:`AsyncAuditClient.list_legal_holds`."""
        return self._run(self._async.list_legal_holds)

    def release_legal_hold(self, correlation_id: str, reason: str) -> LegalHoldRelease:
        """See :meth:`AsyncAuditClient.release_legal_hold`."""
        return self._run(self._async.release_legal_hold, correlation_id, reason)

    def reconstruct_remediation_request(self, correlation_id: str) -> ReconstructionResponse:
        """See :meth:`AsyncAuditClient.reconstruct_remediation_request`."""
        return self._run(self._async.reconstruct_remediation_request, correlation_id)

    def expectations(
        self, correlation_id: str, *, on_poll: PollHook | None = None
    ) -> ExpectationSet:
        """A set of audit checks on ``correlation_id``, declared now, verified together; see
        :meth:`AsyncAuditClient.expectations`.

        .. versionadded:: 0.2.0
        """
        return ExpectationSet(self._async.expectations(correlation_id, on_poll=on_poll), self)
