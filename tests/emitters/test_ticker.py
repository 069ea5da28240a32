"""The ticker emitter: grid, batch size, retries, flush and close, async and blocking.

The async tests run on trio's MockClock, with the records' timer set to the loop's clock, so
schedule assertions are exact and take no real time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from kubernaut_audit._generated.models import AuditEventRequest
from kubernaut_audit.emitters import AsyncBufferedEmitter, BufferedEmitter
from kubernaut_audit.emulator import Emulator, Faults, make_event

pytestmark = pytest.mark.anyio
Script = list[int | float | None]
EVENTS = "/api/v1/audit/events"


def event(correlation_id: str, event_type: str = "gateway.signal.received", **kw: Any) -> Any:
    return make_event(correlation_id, event_type, **kw)


@pytest.fixture
def anyio_backend() -> object:
    from trio.testing import MockClock

    return ("trio", {"clock": MockClock(autojump_threshold=0)})


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Plays a script per request: a status to answer, seconds to stall, or None to pass on."""

    def __init__(self, inner: httpx.AsyncBaseTransport, script: Script) -> None:
        self.inner = inner
        self.script = script
        self.sent_at: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(anyio.current_time())
        step = self.script.pop(0) if self.script else None
        if isinstance(step, int):
            return httpx.Response(step, request=request)
        if isinstance(step, float):
            await anyio.sleep(step)
        return await self.inner.handle_async_request(request)


def emitter(transport: httpx.AsyncBaseTransport, **kw: Any) -> AsyncBufferedEmitter:
    options: dict[str, Any] = {"flush_interval": 2.0, "phase": 0.5, "seed": 3}
    return AsyncBufferedEmitter(transport=transport, timer=anyio.current_time, **(options | kw))


async def sleep_until(start: float, moment: float) -> None:
    await anyio.sleep(start + moment - anyio.current_time())


async def test_first_write_is_at_the_phase(emulator: Emulator, cid: str) -> None:
    """An event emitted at start becomes visible at start + phase."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        em.emit(event(cid))
        await anyio.sleep(1.0)
        [record] = em.records
    assert record.visible_at == pytest.approx(start + 0.5)
    assert record.emitted_at == pytest.approx(start)
    assert record.attempts == 1
    assert not record.dropped


async def test_grid_is_not_reset_by_writes(emulator: Emulator, cid: str) -> None:
    """Writes happen on the fixed grid start + phase + k * interval, whatever was written."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        for moment in (0.0, 1.0, 2.6, 2.7):
            await sleep_until(start, moment)
            em.emit(event(cid))
        await sleep_until(start, 6.0)
        visible = [r.visible_at - start for r in em.records if r.visible_at is not None]
    assert visible == pytest.approx([0.5, 2.5, 4.5, 4.5])


async def test_events_of_one_interval_share_one_post(emulator: Emulator, cid: str) -> None:
    """Events emitted between two ticks go out in a single batch POST."""
    async with emitter(emulator.transport()) as em:
        for _ in range(5):
            em.emit(event(cid))
        await anyio.sleep(1.0)
    assert emulator.stats.by_route == {"batch": 1}
    assert em.counters.stored == 5


async def test_full_batch_is_written_at_once(emulator: Emulator, cid: str) -> None:
    """Reaching batch_size writes immediately, before the tick."""
    start = anyio.current_time()
    async with emitter(emulator.transport(), batch_size=3, phase=1.9) as em:
        await anyio.sleep(0.2)
        for _ in range(4):
            em.emit(event(cid))
        await anyio.sleep(2.0)
        visible = [r.visible_at - start for r in em.records if r.visible_at is not None]
    assert visible == pytest.approx([0.2, 0.2, 0.2, 1.9])


async def test_failed_write_is_retried_after_1s_then_2s_then_dropped(
    emulator: Emulator, cid: str
) -> None:
    """A failing batch is tried 3 times, about 1 s then 2 s apart (±10 %), then dropped."""
    emulator.faults = Faults(error_503_rate=1.0)
    transport = ScriptedTransport(emulator.transport(), [])
    async with emitter(transport) as em:
        em.emit(event(cid))
        await anyio.sleep(5.0)
        [record] = em.records
    first, second, third = transport.sent_at
    assert 0.9 <= second - first <= 1.1
    assert 1.8 <= third - second <= 2.2
    assert (record.attempts, record.dropped, record.visible_at) == (3, True, None)
    assert em.counters.failed_posts == 3


async def test_retry_that_succeeds_delays_visibility(emulator: Emulator, cid: str) -> None:
    """A write failing once is visible about a second after its tick."""
    start = anyio.current_time()
    transport = ScriptedTransport(emulator.transport(), [500])
    async with emitter(transport) as em:
        em.emit(event(cid))
        await anyio.sleep(3.0)
        [record] = em.records
    assert record.attempts == 2
    assert record.visible_at is not None
    assert 1.4 <= record.visible_at - start <= 1.6


async def test_connection_errors_are_retried(emulator: Emulator, cid: str) -> None:
    """A dropped connection counts as a failed attempt and is retried."""
    emulator.faults = Faults(drop_connection_rate=1.0)
    async with emitter(emulator.transport()) as em:
        em.emit(event(cid))
        await anyio.sleep(1.2)
        emulator.faults = Faults()
        await anyio.sleep(1.0)
        [record] = em.records
    assert record.attempts == 2
    assert record.visible_at is not None


@pytest.mark.parametrize("status", [429, 400, 403])
async def test_client_errors_drop_at_once(emulator: Emulator, cid: str, status: int) -> None:
    """A 4xx answer (429 included) drops the batch without retrying."""
    transport = ScriptedTransport(emulator.transport(), [status])
    async with emitter(transport) as em:
        em.emit(event(cid))
        await anyio.sleep(4.0)
        [record] = em.records
    assert (record.attempts, record.dropped) == (1, True)
    assert len(transport.sent_at) == 1


async def test_invalid_event_is_dropped(emulator: Emulator, cid: str) -> None:
    """An event the server refuses (400) is dropped, as upstream does silently."""
    async with emitter(emulator.transport()) as em:
        em.emit(event(cid, event_category="nope"))
        await anyio.sleep(1.0)
        [record] = em.records
    assert record.dropped


async def test_a_tick_missed_during_a_long_write_fires_once_late(
    emulator: Emulator, cid: str
) -> None:
    """As Go's ticker: a tick due during a slow write fires once it ends; the grid holds."""
    start = anyio.current_time()
    transport = ScriptedTransport(emulator.transport(), [5.0])
    async with emitter(transport) as em:
        em.emit(event(cid))  # written at 0.5, the POST stalls until 5.5
        await sleep_until(start, 1.0)
        em.emit(event(cid))  # ticks at 2.5 and 4.5 fall due meanwhile: one is kept
        await sleep_until(start, 5.7)
        em.emit(event(cid))  # the grid still says 6.5
        await sleep_until(start, 7.0)
        visible = [r.visible_at - start for r in em.records if r.visible_at is not None]
    assert visible == pytest.approx([5.5, 5.5, 6.5])


async def test_a_tick_on_a_rounding_edge_does_not_stall_the_grid(
    emulator: Emulator, cid: str
) -> None:
    """A tick whose next one rounds back onto it (start + 0.01 + 2.0 in floating point) still
    moves on: the grid keeps writing on later turns instead of spinning in place."""
    start = anyio.current_time()

    def rounds_back(phase: float) -> bool:
        first = start + phase
        tick = first + 2.0
        return first + (math.floor((tick - first) / 2.0) + 1) * 2.0 <= tick

    phase = next(p for p in (i / 100 for i in range(1, 200)) if rounds_back(p))
    async with emitter(emulator.transport(), phase=phase) as em:
        await sleep_until(start, phase + 2.0 + 0.5)
        em.emit(event(cid))
        await sleep_until(start, phase + 4.0 + 0.5)
        visible = [r.visible_at - start for r in em.records if r.visible_at is not None]
    assert visible == pytest.approx([phase + 4.0])


async def test_flush_writes_now(emulator: Emulator, cid: str) -> None:
    """flush() writes the buffer at once and returns when it is stored."""
    start = anyio.current_time()
    async with emitter(emulator.transport(), phase=1.5) as em:
        await anyio.sleep(0.2)
        em.emit(event(cid))
        await em.flush()
        [record] = em.records
    assert record.visible_at == pytest.approx(start + 0.2)


async def test_close_drains_the_buffer(emulator: Emulator, cid: str) -> None:
    """Leaving the block writes what is buffered."""
    start = anyio.current_time()
    async with emitter(emulator.transport(), phase=1.5) as em:
        em.emit(event(cid))
    [record] = em.records
    assert record.visible_at == pytest.approx(start)
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://x") as http:
        response = await http.get(EVENTS, params={"correlation_id": cid})
    assert response.json()["data"][0]["event_id"] == record.event_id


async def test_close_gives_up_after_the_drain_timeout(emulator: Emulator, cid: str) -> None:
    """Closing stops retrying after drain_timeout and drops what is left."""
    emulator.faults = Faults(error_500_rate=1.0)
    start = anyio.current_time()
    async with emitter(emulator.transport(), phase=1.5, drain_timeout=0.5) as em:
        em.emit(event(cid))
    assert anyio.current_time() - start == pytest.approx(0.5)
    assert em.records[0].dropped


async def test_emit_after_close_is_dropped(emulator: Emulator, cid: str) -> None:
    """Events emitted after close are dropped without a request."""
    async with emitter(emulator.transport()) as em:
        pass
    em.emit(event(cid))
    assert em.records[0].dropped
    assert em.counters.posts == 0


async def test_records_carry_server_ids_and_request_models(emulator: Emulator, cid: str) -> None:
    """emit() takes dicts and AuditEventRequest; records carry the ids the server returned."""
    async with emitter(emulator.transport()) as em:
        em.emit(event(cid, "orchestrator.lifecycle.started"))
        em.emit(AuditEventRequest.model_validate(event(cid, "notification.message.sent")))
        await em.flush()
    records = em.records
    assert [r.event_type for r in records] == [
        "orchestrator.lifecycle.started",
        "notification.message.sent",
    ]
    assert all(r.event_id and r.correlation_id == cid for r in records)


def test_random_phase_lies_within_the_interval() -> None:
    """Without phase, the phase is drawn in [0, flush_interval), reproducibly with seed."""
    phases = {AsyncBufferedEmitter("http://x", flush_interval=2.0, seed=s).phase for s in range(20)}
    assert all(0 <= phase < 2.0 for phase in phases)
    assert len(phases) > 1
    assert (
        AsyncBufferedEmitter("http://x", seed=1).phase
        == AsyncBufferedEmitter("http://x", seed=1).phase
    )


@pytest.mark.parametrize(
    "kw", [{"phase": 2.0}, {"phase": -0.1}, {"flush_interval": 0}, {"batch_size": 0}]
)
def test_bad_settings_are_refused(kw: dict[str, Any]) -> None:
    """Out-of-range phase, interval or batch size raise ValueError."""
    with pytest.raises(ValueError, match="must"):
        AsyncBufferedEmitter("http://x", **kw)


def test_needs_somewhere_to_write() -> None:
    """Without base_url or transport the emitter refuses to build."""
    with pytest.raises(ValueError, match="base_url"):
        AsyncBufferedEmitter()


# -- the blocking emitter, in real time with short intervals --------------------------------
# Real time on a loaded machine: these wait for an outcome with a generous deadline and assert
# what happened, never how fast (the schedule itself is asserted above, on the mock clock).


def eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """Whether ``condition`` holds at some point within ``within`` real seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_sync_emitter_writes_on_its_ticker(cid: str) -> None:
    """BufferedEmitter writes in the background, without flush() or close()."""
    emu = Emulator()
    with BufferedEmitter(transport=emu.transport(), flush_interval=0.05) as em:
        em.emit(event(cid))
        assert eventually(lambda: em.counters.stored == 1)
        [record] = em.records
    assert record.visible_at is not None
    assert record.visible_at >= record.emitted_at
    emu.close()


def test_sync_emitter_flush_close_and_late_emits(cid: str) -> None:
    """flush() stores at once, close() drains, emits after close are dropped."""
    emu = Emulator()
    em = BufferedEmitter(transport=emu.transport(), flush_interval=60.0, phase=59.0)
    em.start()
    em.emit(event(cid))
    em.flush()
    assert em.counters.stored == 1
    em.emit(event(cid))
    em.close()
    em.emit(event(cid))
    assert [r.visible_at is not None for r in em.records] == [True, True, False]
    assert em.records[2].dropped
    emu.close()


def test_sync_emitter_accepts_emits_from_many_threads(cid: str) -> None:
    """emit() is safe from several threads; a full batch wakes the writer."""
    emu = Emulator()
    with BufferedEmitter(transport=emu.transport(), flush_interval=60.0, batch_size=40) as em:

        def emit_ten() -> None:
            for _ in range(10):
                em.emit(event(cid))

        threads = [threading.Thread(target=emit_ten) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert eventually(lambda: em.counters.stored == 40)
    emu.close()


def test_sync_emitter_over_loopback(cid: str) -> None:
    """BufferedEmitter writes to a served emulator over HTTP."""
    emu = Emulator()
    with emu.serve_in_thread() as url:
        with BufferedEmitter(url, flush_interval=0.05) as em:
            em.emit(event(cid))
        with httpx.Client(base_url=url) as http:
            total = http.get(EVENTS, params={"correlation_id": cid}).json()["pagination"]["total"]
    assert total == 1
    assert em.records[0].visible_at is not None
    emu.close()
