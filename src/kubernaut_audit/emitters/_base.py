"""The part every buffered emitter shares: buffer, HTTP client, lifecycle, flush and drain.

A concrete emitter subclasses :class:`AsyncEmitterBase` and implements :meth:`_schedule`, the
background loop that decides *when* to write; everything else (what a write is, retries,
records, closing) lives here and in ``_posting`` / ``_records``.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.abc
import httpx

from kubernaut_audit._generated.models import AuditEventRequest

from ._posting import BatchPoster
from ._records import EmittedRecord, EmitterCounters, Entry, Ledger, as_dict

_IN_PROCESS_URL: Final = "http://data-storage.emulator"


class AsyncEmitterBase(abc.ABC):
    """A buffer of audit events written in batches by a background task.

    Subclasses implement :meth:`_schedule`. It runs on the emitter's event loop from
    ``__aenter__`` until close; it waits on ``self._wake`` (set by a full batch and by close),
    checks ``self._closed``, and writes under ``self._write_lock`` with :meth:`_write_all`.
    """

    def __init__(
        self,
        base_url: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None,
        flush_interval: float,
        batch_size: int,
        retry_delays: Sequence[float],
        retry_jitter: float,
        headers: Mapping[str, str] | None,
        timeout: float,
        drain_timeout: float,
        timer: Callable[[], float],
        seed: int | None,
    ) -> None:
        if base_url is None and transport is None:
            raise ValueError("give a base_url, a transport, or both")
        if flush_interval <= 0 or batch_size < 1:
            raise ValueError("flush_interval must be > 0 and batch_size >= 1")
        self._rng = random.Random(seed)
        self._base_url = base_url or _IN_PROCESS_URL
        self._transport = transport
        self._headers = dict(headers or {})
        self._timeout = timeout
        self._interval = flush_interval
        self._batch_size = batch_size
        self._retry_delays = tuple(retry_delays)
        self._retry_jitter = retry_jitter
        self._drain_timeout = drain_timeout
        self._timer = timer
        self._ledger = Ledger()
        self._closed = False
        self._started = False
        self._wake = anyio.Event()
        self._worker_done = anyio.Event()
        self._write_lock = anyio.Lock()
        self._client: httpx.AsyncClient | None = None
        self._poster: BatchPoster | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def flush_interval(self) -> float:
        """Seconds between writes, as the emitter's kind interprets them."""
        return self._interval

    @property
    def records(self) -> list[EmittedRecord]:
        """A snapshot of every emitted event's record, in emission order."""
        return self._ledger.records()

    @property
    def counters(self) -> EmitterCounters:
        """A snapshot of the running totals."""
        return self._ledger.counters()

    async def __aenter__(self) -> Self:
        if self._started:
            raise RuntimeError("an emitter starts only once")
        self._started = True
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            transport=self._transport,
            headers=self._headers,
            timeout=self._timeout,
        )
        self._poster = BatchPoster(
            self._client,
            self._ledger,
            retry_delays=self._retry_delays,
            retry_jitter=self._retry_jitter,
            rng=self._rng,
            timer=self._timer,
        )
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run, anyio.current_time())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def emit(self, event: Mapping[str, Any] | AuditEventRequest) -> None:
        """Buffer an event; never blocks. Call it from the emitter's event loop.

        Args:
            event: The event, as a JSON-ready mapping or an ``AuditEventRequest``.
        """
        if self._push(event):
            self._wake.set()

    async def flush(self) -> None:
        """Write everything buffered now, and return once written (or dropped)."""
        async with self._write_lock:
            await self._write_all()

    async def aclose(self) -> None:
        """Stop the writer, write what is buffered (within ``drain_timeout``), drop later emits."""
        if self._closed or self._tg is None or self._client is None:
            self._closed = True
            return
        self._closed = True
        self._wake.set()
        with anyio.move_on_after(self._drain_timeout):
            await self._worker_done.wait()
            async with self._write_lock:
                await self._write_all()
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        self._ledger.drop_unwritten()
        await self._client.aclose()

    @abc.abstractmethod
    async def _schedule(self, started: float) -> None:
        """Write the buffer whenever this kind of emitter would, until ``self._closed``.

        Args:
            started: ``anyio.current_time()`` when the emitter started.
        """

    # -- internals shared with the blocking facade -------------------------------------------

    def _push(self, event: Mapping[str, Any] | AuditEventRequest) -> bool:
        """Buffer an event; return whether the worker must wake for a full batch."""
        closed = self._closed
        size = self._ledger.push(Entry(as_dict(event), self._timer()), closed=closed)
        return not closed and size >= self._batch_size

    async def _notify(self) -> None:
        self._wake.set()

    def _mark_closed(self) -> None:
        self._closed = True

    async def _run(self, started: float) -> None:
        try:
            await self._schedule(started)
        finally:
            self._worker_done.set()

    async def _write_all(self, *, full_batches_only: bool = False) -> None:
        assert self._poster is not None
        while batch := self._ledger.take(self._batch_size, full_batches_only=full_batches_only):
            await self._poster.write(batch)
