"""The since-last-write writer: the Python service's buffered audit store (HAPI), imitated.

It has no grid. One loop waits up to ``loop_period`` for the next buffered event, adds it to the
batch, and writes the batch when it holds ``batch_size`` events or when ``flush_interval`` has
passed since its previous write ended. A write POSTs the batch's events one by one to the
single-event route, so a batch becomes visible event by event. Consequences a waiter meets: an
idle writer writes a new event at once; a burst is split (its first event at once, the rest one
interval later); a busy writer writes one interval (plus up to one loop period) after its
previous write.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import anyio
import httpx

from kubernaut_audit._generated.models import AuditEventRequest

from ._base import AsyncEmitterBase
from ._blocking import BlockingEmitter
from ._posting import Verdict, _jsonable
from ._records import EmitterCounters, Entry

EVENT_PATH: Final = "/api/v1/audit/events"


class AsyncSinceLastWriteEmitter(AsyncEmitterBase):
    """Buffers audit events and writes them once ``flush_interval`` has passed since its
    previous write, one POST per event, as the Python service's audit store does.

    Each event is tried up to ``len(retry_delays) + 1`` times, sleeping ``retry_delays``
    between tries (1 s and 4 s) while the loop waits; an event still failing, or refused with a
    4xx answer, is dropped and the next one is written. :meth:`flush` writes everything buffered
    now; leaving ``async with`` (or :meth:`aclose`) drains the buffer and drops later emits.
    Time comes from the event loop, so tests can run it on trio's ``MockClock``.

    Args:
        base_url: Data Storage URL; may be omitted with a ``transport`` (e.g.
            ``Emulator.transport()``).
        transport: httpx transport to send through.
        flush_interval: Seconds that must pass after a write before the next partial batch
            is written (the service's default is 5 s; 0.1 s in its integration tests).
        batch_size: Events that are written at once, whatever the time.
        loop_period: Longest wait of the loop for the next event.
        retry_delays: Pauses before the second, third, ... try of one event.
        headers: Extra request headers (``Authorization``, ``X-Auth-Request-User``).
        timeout: Per-request timeout in seconds.
        drain_timeout: Cap on how long closing may spend writing the buffer.
        timer: Clock for :class:`EmittedRecord` timestamps.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        flush_interval: float = 5.0,
        batch_size: int = 50,
        loop_period: float = 0.1,
        retry_delays: Sequence[float] = (1.0, 4.0),
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        drain_timeout: float = 30.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            base_url,
            transport=transport,
            flush_interval=flush_interval,
            batch_size=batch_size,
            retry_delays=retry_delays,
            retry_jitter=0.0,
            headers=headers,
            timeout=timeout,
            drain_timeout=drain_timeout,
            timer=timer,
            seed=None,
        )
        if not loop_period > 0:
            raise ValueError("loop_period must be > 0")
        self._loop_period = loop_period
        self._batch: list[Entry] = []
        self._last_write = 0.0

    @property
    def loop_period(self) -> float:
        """Longest wait of the loop for the next event (seconds)."""
        return self._loop_period

    @property
    def counters(self) -> EmitterCounters:
        """A snapshot of the running totals (``buffered`` counts the loop's batch too)."""
        counters = self._ledger.counters()
        return dataclasses.replace(counters, buffered=counters.buffered + len(self._batch))

    def emit(self, event: Mapping[str, Any] | AuditEventRequest) -> None:
        """Buffer an event; never blocks. Call it from the emitter's event loop.

        Args:
            event: The event, as a JSON-ready mapping or an ``AuditEventRequest``.
        """
        if self._push(event):
            self._wake.set()

    def _push(self, event: Mapping[str, Any] | AuditEventRequest) -> bool:
        # The loop waits for every event, not only for a full batch: always wake it.
        closed = self._closed
        super()._push(event)
        return not closed

    async def _schedule(self, started: float) -> None:
        self._last_write = started
        while True:
            if self._ledger.buffered() == 0:
                if self._closed:
                    break
                self._wake = anyio.Event()
                if self._ledger.buffered() == 0:  # an emit from another thread may have raced
                    with anyio.move_on_after(self._loop_period):
                        await self._wake.wait()
            self._batch.extend(self._ledger.take(1))
            due = anyio.current_time() - self._last_write >= self._interval
            if len(self._batch) >= self._batch_size or (self._batch and due):
                async with self._write_lock:
                    await self._write_batch()
        async with self._write_lock:
            await self._write_batch()  # closing: what the loop holds goes out now

    async def _write_all(self, *, full_batches_only: bool = False) -> None:
        # flush() and closing: everything buffered, the loop's batch first.
        self._batch.extend(self._ledger.take(self._ledger.buffered()))
        await self._write_batch()

    async def _write_batch(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        for entry in batch:
            await self._write_one(entry)
        self._last_write = anyio.current_time()

    async def _write_one(self, entry: Entry) -> None:
        body = json.dumps(entry.event, default=_jsonable).encode()
        for attempt in range(1, len(self._retry_delays) + 2):
            self._ledger.count_post([entry], attempt)
            verdict, event_id = await self._post(body)
            if verdict == "stored":
                self._ledger.mark_stored([entry], [event_id] if event_id else [], self._timer())
                return
            self._ledger.count_failed_post()
            if verdict == "refused" or attempt > len(self._retry_delays):
                break
            await anyio.sleep(self._retry_delays[attempt - 1])
        self._ledger.mark_dropped([entry])

    async def _post(self, body: bytes) -> tuple[Verdict, str | None]:
        assert self._client is not None
        try:
            response = await self._client.post(
                EVENT_PATH, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError:
            return "failed", None
        if response.is_success:
            try:
                event_id = response.json().get("event_id")
            except (ValueError, AttributeError):
                event_id = None  # stored all the same; the body just did not say its id
            return "stored", str(event_id) if event_id else None
        if 400 <= response.status_code < 500:
            return "refused", None
        return "failed", None


class SinceLastWriteEmitter(BlockingEmitter):
    """The blocking twin of :class:`AsyncSinceLastWriteEmitter`, run on a background thread.

    ``emit()`` may be called from any thread and never blocks. Use it as
    ``with SinceLastWriteEmitter(...) as emitter:``, or call :meth:`start` and :meth:`close`.
    Takes the same arguments as :class:`AsyncSinceLastWriteEmitter`.

    .. versionadded:: 0.2.0
    """

    _inner: AsyncSinceLastWriteEmitter

    def __init__(
        self,
        base_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        flush_interval: float = 5.0,
        batch_size: int = 50,
        loop_period: float = 0.1,
        retry_delays: Sequence[float] = (1.0, 4.0),
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        drain_timeout: float = 30.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            AsyncSinceLastWriteEmitter(
                base_url,
                transport=transport,
                flush_interval=flush_interval,
                batch_size=batch_size,
                loop_period=loop_period,
                retry_delays=retry_delays,
                headers=headers,
                timeout=timeout,
                drain_timeout=drain_timeout,
                timer=timer,
            )
        )

    @property
    def loop_period(self) -> float:
        """Longest wait of the loop for the next event (seconds)."""
        return self._inner.loop_period
