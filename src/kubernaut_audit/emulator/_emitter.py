"""An imitation of the buffered audit writer Kubernaut's services use (ADR-038)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Final

import anyio
import anyio.from_thread
import httpx

from kubernaut_audit._generated.models import AuditEventRequest

BATCH_PATH: Final = "/api/v1/audit/events/batch"
_IN_PROCESS_URL: Final = "http://data-storage.emulator"


@dataclasses.dataclass(frozen=True)
class EmittedRecord:
    """What became of one emitted event.

    Attributes:
        correlation_id: The event's correlation id.
        event_type: The event's type.
        emitted_at: When ``emit()`` took it, on the emitter's timer (``time.monotonic()`` by
            default).
        visible_at: When the POST that stored it returned, on the same timer; None until then.
        event_id: The id the server gave it, when the response carried one.
        attempts: POSTs made for its batch so far.
        dropped: Whether the emitter gave up on it (refused, out of attempts, or after close).
    """

    correlation_id: str
    event_type: str
    emitted_at: float
    visible_at: float | None = None
    event_id: str | None = None
    attempts: int = 0
    dropped: bool = False


@dataclasses.dataclass(frozen=True)
class EmitterCounters:
    """Running totals of a buffered emitter."""

    emitted: int
    stored: int
    dropped: int
    buffered: int
    posts: int
    failed_posts: int


class _Entry:
    __slots__ = ("attempts", "dropped", "emitted_at", "event", "event_id", "visible_at")

    def __init__(self, event: dict[str, Any], emitted_at: float) -> None:
        self.event = event
        self.emitted_at = emitted_at
        self.visible_at: float | None = None
        self.event_id: str | None = None
        self.attempts = 0
        self.dropped = False

    def record(self) -> EmittedRecord:
        return EmittedRecord(
            correlation_id=str(self.event.get("correlation_id", "")),
            event_type=str(self.event.get("event_type", "")),
            emitted_at=self.emitted_at,
            visible_at=self.visible_at,
            event_id=self.event_id,
            attempts=self.attempts,
            dropped=self.dropped,
        )


def _as_dict(event: Mapping[str, Any] | AuditEventRequest) -> dict[str, Any]:
    if isinstance(event, AuditEventRequest):
        return event.model_dump(mode="json", exclude_unset=True)
    return dict(event)


def _jsonable(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class AsyncBufferedEmitter:
    """Buffers audit events and writes them in batches on a fixed ticker, as services do.

    A background task writes the buffer at every tick of a grid that starts at ``phase``
    seconds after the emitter starts and is never reset by writes; a full batch is written at
    once. A failed write is retried after about 1 s and 2 s (±10 %) and then dropped; a 4xx
    answer (429 included) drops it at once. Time comes from the event loop, so tests can run it
    on trio's ``MockClock``. Use it as ``async with AsyncBufferedEmitter(...) as emitter:``;
    leaving the block drains the buffer.

    Args:
        base_url: Data Storage URL; may be omitted with a ``transport`` (e.g.
            ``Emulator.transport()``).
        transport: httpx transport to send through.
        flush_interval: Seconds between ticks.
        batch_size: Events that trigger an immediate write.
        phase: Offset of the first tick, in ``[0, flush_interval)``; random when None.
        retry_delays: Pauses before the second, third, ... attempts.
        retry_jitter: Relative jitter of those pauses.
        headers: Extra request headers (``Authorization``, ``X-Auth-Request-User``).
        timeout: Per-request timeout in seconds.
        drain_timeout: Cap on how long closing may spend writing the buffer.
        timer: Clock for :class:`EmittedRecord` timestamps.
        seed: Seed for the random phase and jitter.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        flush_interval: float = 2.0,
        batch_size: int = 1000,
        phase: float | None = None,
        retry_delays: Sequence[float] = (1.0, 2.0),
        retry_jitter: float = 0.1,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        drain_timeout: float = 30.0,
        timer: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        if base_url is None and transport is None:
            raise ValueError("give a base_url, a transport, or both")
        if flush_interval <= 0 or batch_size < 1:
            raise ValueError("flush_interval must be > 0 and batch_size >= 1")
        self._rng = random.Random(seed)
        if phase is None:
            phase = self._rng.uniform(0, flush_interval)
        if not 0 <= phase < flush_interval:
            raise ValueError("phase must lie in [0, flush_interval)")
        self._base_url = base_url or _IN_PROCESS_URL
        self._transport = transport
        self._headers = dict(headers or {})
        self._timeout = timeout
        self._interval = flush_interval
        self._batch_size = batch_size
        self._phase = phase
        self._retry_delays = tuple(retry_delays)
        self._retry_jitter = retry_jitter
        self._drain_timeout = drain_timeout
        self._timer = timer
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._buffer: list[_Entry] = []
        self._posts = 0
        self._failed_posts = 0
        self._closed = False
        self._started = False
        self._wake = anyio.Event()
        self._worker_done = anyio.Event()
        self._write_lock = anyio.Lock()
        self._client: httpx.AsyncClient | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def flush_interval(self) -> float:
        return self._interval

    @property
    def phase(self) -> float:
        """Seconds from the start to the first tick."""
        return self._phase

    @property
    def records(self) -> list[EmittedRecord]:
        """A snapshot of every emitted event's record, in emission order."""
        with self._lock:
            return [entry.record() for entry in self._entries]

    @property
    def counters(self) -> EmitterCounters:
        """A snapshot of the running totals."""
        with self._lock:
            return EmitterCounters(
                emitted=len(self._entries),
                stored=sum(entry.visible_at is not None for entry in self._entries),
                dropped=sum(entry.dropped for entry in self._entries),
                buffered=len(self._buffer),
                posts=self._posts,
                failed_posts=self._failed_posts,
            )

    async def __aenter__(self) -> AsyncBufferedEmitter:
        if self._started:
            raise RuntimeError("an emitter starts only once")
        self._started = True
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            transport=self._transport,
            headers=self._headers,
            timeout=self._timeout,
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
        """Buffer an event; never blocks. Call it from the emitter's event loop."""
        if self._push(event):
            self._wake.set()

    async def flush(self) -> None:
        """Write everything buffered now, and return once written (or dropped)."""
        async with self._write_lock:
            await self._write_all()

    async def aclose(self) -> None:
        """Stop the ticker, write what is buffered (within ``drain_timeout``), drop later emits."""
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
        with self._lock:
            self._buffer.clear()
            for entry in self._entries:
                if entry.visible_at is None:
                    entry.dropped = True
        await self._client.aclose()

    # -- internals shared with the sync facade ----------------------------------------------

    def _push(self, event: Mapping[str, Any] | AuditEventRequest) -> bool:
        """Buffer an event; return whether the worker must wake for a full batch."""
        entry = _Entry(_as_dict(event), self._timer())
        with self._lock:
            self._entries.append(entry)
            if self._closed:
                entry.dropped = True
                return False
            self._buffer.append(entry)
            return len(self._buffer) >= self._batch_size

    async def _notify(self) -> None:
        self._wake.set()

    async def _run(self, started: float) -> None:
        first = started + self._phase
        next_tick = first
        try:
            while not self._closed:
                with anyio.CancelScope(deadline=next_tick):
                    await self._wake.wait()
                if self._wake.is_set():
                    self._wake = anyio.Event()
                    if self._closed:
                        break
                    async with self._write_lock:
                        await self._write_all(full_batches_only=True)
                    continue
                # Like Go's time.Ticker: one tick that fell due during a long write is delivered
                # late; the others are skipped, and the grid itself never moves.
                now = anyio.current_time()
                next_tick = (
                    first + (math.floor((now - first) / self._interval) + 1) * self._interval
                )
                async with self._write_lock:
                    await self._write_all()
        finally:
            self._worker_done.set()

    def _take(self, *, full_batches_only: bool) -> list[_Entry]:
        with self._lock:
            if full_batches_only and len(self._buffer) < self._batch_size:
                return []
            batch = self._buffer[: self._batch_size]
            del self._buffer[: self._batch_size]
            return batch

    async def _write_all(self, *, full_batches_only: bool = False) -> None:
        while batch := self._take(full_batches_only=full_batches_only):
            await self._write(batch)

    async def _write(self, batch: list[_Entry]) -> None:
        assert self._client is not None
        body = json.dumps([entry.event for entry in batch], default=_jsonable).encode()
        for attempt in range(1, len(self._retry_delays) + 2):
            with self._lock:
                self._posts += 1
                for entry in batch:
                    entry.attempts = attempt
            verdict, ids = await self._post(body)
            if verdict == "stored":
                self._mark_stored(batch, ids)
                return
            with self._lock:
                self._failed_posts += 1
            if verdict == "refused" or attempt > len(self._retry_delays):
                break
            spread = self._rng.uniform(-self._retry_jitter, self._retry_jitter)
            await anyio.sleep(self._retry_delays[attempt - 1] * (1 + spread))
        with self._lock:
            for entry in batch:
                entry.dropped = True

    async def _post(self, body: bytes) -> tuple[str, list[str]]:
        assert self._client is not None
        try:
            response = await self._client.post(
                BATCH_PATH, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError:
            return "failed", []
        if response.is_success:
            try:
                ids = response.json().get("event_ids") or []
            except (ValueError, AttributeError):
                ids = []  # stored all the same; the body just did not say which ids
            return "stored", [str(event_id) for event_id in ids]
        if 400 <= response.status_code < 500:
            return "refused", []
        return "failed", []

    def _mark_stored(self, batch: list[_Entry], ids: list[str]) -> None:
        now = self._timer()
        with self._lock:
            for index, entry in enumerate(batch):
                entry.visible_at = now
                entry.event_id = ids[index] if index < len(ids) else None


class BufferedEmitter:
    """The blocking twin of :class:`AsyncBufferedEmitter`, run on a background thread.

    ``emit()`` may be called from any thread and never blocks. Use it as
    ``with BufferedEmitter(...) as emitter:``, or call :meth:`start` and :meth:`close`.
    Takes the same arguments as :class:`AsyncBufferedEmitter`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        flush_interval: float = 2.0,
        batch_size: int = 1000,
        phase: float | None = None,
        retry_delays: Sequence[float] = (1.0, 2.0),
        retry_jitter: float = 0.1,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        drain_timeout: float = 30.0,
        timer: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self._inner = AsyncBufferedEmitter(
            base_url,
            transport=transport,
            flush_interval=flush_interval,
            batch_size=batch_size,
            phase=phase,
            retry_delays=retry_delays,
            retry_jitter=retry_jitter,
            headers=headers,
            timeout=timeout,
            drain_timeout=drain_timeout,
            timer=timer,
            seed=seed,
        )
        self._portal_cm: Any = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._running: Any = None

    @property
    def phase(self) -> float:
        """Seconds from the start to the first tick."""
        return self._inner.phase

    @property
    def records(self) -> list[EmittedRecord]:
        """A snapshot of every emitted event's record, in emission order."""
        return self._inner.records

    @property
    def counters(self) -> EmitterCounters:
        """A snapshot of the running totals."""
        return self._inner.counters

    def start(self) -> None:
        """Start the background thread and the ticker."""
        if self._portal is not None:
            raise RuntimeError("an emitter starts only once")
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._running = self._portal.wrap_async_context_manager(self._inner)
        try:
            self._running.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise

    def emit(self, event: Mapping[str, Any] | AuditEventRequest) -> None:
        """Buffer an event; never blocks."""
        if self._inner._push(event) and self._portal is not None:
            self._portal.start_task_soon(self._inner._notify)

    def flush(self) -> None:
        """Write everything buffered now, and return once written (or dropped)."""
        if self._portal is not None:
            self._portal.call(self._inner.flush)

    def close(self) -> None:
        """Write what is buffered (within ``drain_timeout``), stop the thread, drop later emits."""
        if self._portal is None:
            self._inner._closed = True
            return
        try:
            self._running.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
            self._portal = None

    def __enter__(self) -> BufferedEmitter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
