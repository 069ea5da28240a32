"""The ticker writer: Kubernaut's services' buffered audit writer (ADR-038), on a fixed grid."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import anyio
import httpx

from ._base import AsyncEmitterBase
from ._blocking import BlockingEmitter


class AsyncBufferedEmitter(AsyncEmitterBase):
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

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Importable from ``kubernaut_audit.emitters`` without the ``emulator`` extra.
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
        super().__init__(
            base_url,
            transport=transport,
            flush_interval=flush_interval,
            batch_size=batch_size,
            retry_delays=retry_delays,
            retry_jitter=retry_jitter,
            headers=headers,
            timeout=timeout,
            drain_timeout=drain_timeout,
            timer=timer,
            seed=seed,
        )
        if phase is None:
            phase = self._rng.uniform(0, flush_interval)
        if not 0 <= phase < flush_interval:
            raise ValueError("phase must lie in [0, flush_interval)")
        self._phase = phase

    @property
    def phase(self) -> float:
        """Seconds from the start to the first tick."""
        return self._phase

    async def _schedule(self, started: float) -> None:
        first = started + self._phase
        next_tick = first
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
            next_tick = first + (math.floor((now - first) / self._interval) + 1) * self._interval
            if next_tick <= now:  # floating point put the tick just passed one turn too late
                next_tick += self._interval
            async with self._write_lock:
                await self._write_all()


class BufferedEmitter(BlockingEmitter):
    """The blocking twin of :class:`AsyncBufferedEmitter`, run on a background thread.

    ``emit()`` may be called from any thread and never blocks. Use it as
    ``with BufferedEmitter(...) as emitter:``, or call :meth:`start` and :meth:`close`.
    Takes the same arguments as :class:`AsyncBufferedEmitter`.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Importable from ``kubernaut_audit.emitters`` without the ``emulator`` extra.
    """

    _inner: AsyncBufferedEmitter

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
        super().__init__(
            AsyncBufferedEmitter(
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
        )

    @property
    def phase(self) -> float:
        """Seconds from the start to the first tick."""
        return self._inner.phase
