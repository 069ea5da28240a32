"""The since-last-write emitter: writes anchored to the previous write, one POST per event,
per-event retries, flush and close, async and blocking.

The async tests run on trio's MockClock with the records' timer set to the loop's clock, so the
moments asserted are exact (up to one turn of the writer's 0.1 s loop) and take no real time.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import anyio
import httpx
import pytest

from kubernaut_audit._generated.models import AuditEventRequest
from kubernaut_audit.emitters import AsyncSinceLastWriteEmitter, SinceLastWriteEmitter
from kubernaut_audit.emulator import Emulator, Faults, make_event

pytestmark = pytest.mark.anyio
EVENTS = "/api/v1/audit/events"
#: One turn of the writer's loop: a write falls due at most this long after it could.
TURN = 0.1 + 1e-9


def event(correlation_id: str, event_type: str = "aiagent.llm.request", **kw: Any) -> Any:
    return make_event(correlation_id, event_type, **kw)


@pytest.fixture
def anyio_backend() -> object:
    from trio.testing import MockClock

    return ("trio", {"clock": MockClock(autojump_threshold=0)})


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Plays a script per request: a status to answer, or None to pass on; stamps each send."""

    def __init__(self, inner: httpx.AsyncBaseTransport, script: list[int | None]) -> None:
        self.inner = inner
        self.script = script
        self.sent_at: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(anyio.current_time())
        step = self.script.pop(0) if self.script else None
        if step is not None:
            return httpx.Response(step, request=request)
        return await self.inner.handle_async_request(request)


def emitter(transport: httpx.AsyncBaseTransport, **kw: Any) -> AsyncSinceLastWriteEmitter:
    options: dict[str, Any] = {"flush_interval": 2.0}
    return AsyncSinceLastWriteEmitter(
        transport=transport, timer=anyio.current_time, **(options | kw)
    )


async def sleep_until(start: float, moment: float) -> None:
    await anyio.sleep(start + moment - anyio.current_time())


def visible(em: AsyncSinceLastWriteEmitter, start: float) -> list[float]:
    return [r.visible_at - start for r in em.records if r.visible_at is not None]


async def test_a_fresh_writer_waits_one_interval_from_its_start(
    emulator: Emulator, cid: str
) -> None:
    """Its clock starts with the writer: an event emitted at once is written an interval on."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        em.emit(event(cid))
        await sleep_until(start, 3.0)
        [at] = visible(em, start)
    assert 2.0 <= at <= 2.0 + TURN


async def test_an_idle_writer_writes_a_new_event_at_once(emulator: Emulator, cid: str) -> None:
    """More than an interval after its last write, a new event is written the moment it comes."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        await sleep_until(start, 3.3)
        em.emit(event(cid))
        await sleep_until(start, 4.0)
        assert visible(em, start) == pytest.approx([3.3])


async def test_a_busy_writer_writes_one_interval_after_its_previous_write(
    emulator: Emulator, cid: str
) -> None:
    """An event emitted within an interval of the last write waits until the interval has
    passed since that write (plus up to one turn of the loop): no grid."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        await sleep_until(start, 3.3)
        em.emit(event(cid))  # idle: written at 3.3
        await sleep_until(start, 4.05)
        em.emit(event(cid))  # busy: written at 5.3 or at most a turn later
        await sleep_until(start, 8.0)
        first, second = visible(em, start)
    assert first == pytest.approx(3.3)
    assert 5.3 - 1e-9 <= second <= 5.3 + TURN


async def test_a_burst_is_split_first_event_at_once_the_rest_an_interval_later(
    emulator: Emulator, cid: str
) -> None:
    """The loop takes one event per turn: an idle writer writes the first of a burst alone."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        await sleep_until(start, 3.0)
        for _ in range(3):
            em.emit(event(cid))
        await sleep_until(start, 6.0)
        moments = visible(em, start)
    assert moments[0] == pytest.approx(3.0)
    assert all(5.0 - 1e-9 <= at <= 5.0 + TURN for at in moments[1:])
    assert len(moments) == 3


async def test_events_are_posted_one_by_one_to_the_single_event_route(
    emulator: Emulator, cid: str
) -> None:
    """A batch of three is three POSTs to /api/v1/audit/events, visible one after another."""
    emulator.faults = Faults(latency=0.01)
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        await sleep_until(start, 0.5)
        for _ in range(3):
            em.emit(event(cid))  # busy (fresh): written together at about 2.0
        await sleep_until(start, 3.0)
        moments = visible(em, start)
    assert emulator.stats.by_route == {"write": 3}
    assert [b - a for a, b in itertools.pairwise(moments)] == pytest.approx([0.01, 0.01])


async def test_a_full_batch_is_written_at_once(emulator: Emulator, cid: str) -> None:
    """batch_size events are written as soon as the loop holds them, interval or not."""
    start = anyio.current_time()
    async with emitter(emulator.transport(), batch_size=4) as em:
        await sleep_until(start, 0.5)
        for _ in range(5):
            em.emit(event(cid))
        await sleep_until(start, 1.0)
        early = visible(em, start)
        await sleep_until(start, 3.0)
        late = visible(em, start)[4:]
    assert early == pytest.approx([0.5] * 4)
    assert len(late) == 1
    assert 2.5 - 1e-9 <= late[0] <= 2.5 + TURN


async def test_a_failing_event_is_tried_three_times_1s_and_4s_apart_then_dropped(
    emulator: Emulator, cid: str
) -> None:
    """Each event is tried on its own: after 1 s and 4 s sleeps it is dropped, and the next
    event of the batch is then written."""
    transport = ScriptedTransport(emulator.transport(), [503, 503, 503])
    start = anyio.current_time()
    async with emitter(transport) as em:
        await sleep_until(start, 3.0)
        em.emit(event(cid))
        em.emit(event(cid))
        await sleep_until(start, 12.0)
        failed, written = em.records
    assert [round(t - start, 9) for t in transport.sent_at[:3]] == [3.0, 4.0, 8.0]
    assert (failed.attempts, failed.dropped, failed.visible_at) == (3, True, None)
    assert written.visible_at is not None
    assert not written.dropped
    assert written.visible_at - start >= 8.0
    assert em.counters.failed_posts == 3


async def test_a_retry_blocks_the_loop(emulator: Emulator, cid: str) -> None:
    """While an event sleeps before its next try, nothing else is written."""
    transport = ScriptedTransport(emulator.transport(), [500])
    start = anyio.current_time()
    async with emitter(transport) as em:
        await sleep_until(start, 3.0)
        em.emit(event(cid))
        await sleep_until(start, 3.5)
        em.emit(event(cid))
        await sleep_until(start, 8.0)
        first, second = visible(em, start)
    assert first == pytest.approx(4.0)
    assert 6.0 - 1e-9 <= second <= 6.0 + TURN  # an interval after the retried write ended


@pytest.mark.parametrize("status", [400, 403, 429])
async def test_a_refused_event_is_dropped_at_once(
    emulator: Emulator, cid: str, status: int
) -> None:
    """A 4xx answer drops the event without another try."""
    transport = ScriptedTransport(emulator.transport(), [status])
    async with emitter(transport) as em:
        await anyio.sleep(3.0)
        em.emit(event(cid))
        await anyio.sleep(1.0)
        [record] = em.records
    assert (record.attempts, record.dropped) == (1, True)
    assert len(transport.sent_at) == 1


async def test_flush_writes_everything_buffered_now(emulator: Emulator, cid: str) -> None:
    """flush() writes the loop's batch and the queue at once and returns once stored."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        await sleep_until(start, 0.4)
        for _ in range(3):
            em.emit(event(cid))
        await sleep_until(start, 0.6)
        em.emit(event(cid))
        await em.flush()
        moments = visible(em, start)
    assert moments == pytest.approx([0.6] * 4)


async def test_flush_counts_as_a_write(emulator: Emulator, cid: str) -> None:
    """The interval runs from the flush: a later event waits for it."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        await sleep_until(start, 3.0)
        em.emit(event(cid))
        await em.flush()
        await sleep_until(start, 3.5)
        em.emit(event(cid))
        await sleep_until(start, 6.0)
        moments = visible(em, start)
    assert moments[0] == pytest.approx(3.0)
    assert 5.0 - 1e-9 <= moments[1] <= 5.0 + TURN


async def test_close_drains_without_waiting_for_the_interval(emulator: Emulator, cid: str) -> None:
    """Leaving the block writes what is buffered at once."""
    start = anyio.current_time()
    async with emitter(emulator.transport()) as em:
        await sleep_until(start, 0.3)
        em.emit(event(cid))
        em.emit(event(cid))
    assert visible(em, start) == pytest.approx([0.3, 0.3])
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://x") as http:
        response = await http.get(EVENTS, params={"correlation_id": cid})
    assert {e["event_id"] for e in response.json()["data"]} == {r.event_id for r in em.records}


async def test_close_gives_up_after_the_drain_timeout(emulator: Emulator, cid: str) -> None:
    """Closing stops retrying after drain_timeout and drops what is left."""
    emulator.faults = Faults(error_500_rate=1.0)
    start = anyio.current_time()
    async with emitter(emulator.transport(), drain_timeout=0.5) as em:
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


async def test_counters_count_the_loops_batch_as_buffered(emulator: Emulator, cid: str) -> None:
    """Events taken into the loop's batch but not written yet still count as buffered."""
    async with emitter(emulator.transport()) as em:
        await anyio.sleep(0.5)
        em.emit(event(cid))
        em.emit(event(cid))
        await anyio.sleep(0.3)
        waiting = em.counters
        await anyio.sleep(2.0)
        done = em.counters
    assert (waiting.emitted, waiting.buffered, waiting.stored, waiting.posts) == (2, 2, 0, 0)
    assert (done.buffered, done.stored, done.posts, done.failed_posts) == (0, 2, 2, 0)


async def test_records_carry_server_ids_and_request_models(emulator: Emulator, cid: str) -> None:
    """emit() takes dicts and AuditEventRequest; records carry the ids the server returned."""
    async with emitter(emulator.transport()) as em:
        em.emit(event(cid, "aiagent.llm.request"))
        em.emit(AuditEventRequest.model_validate(event(cid, "aiagent.llm.response")))
        await em.flush()
    records = em.records
    assert [r.event_type for r in records] == ["aiagent.llm.request", "aiagent.llm.response"]
    assert all(r.event_id and r.correlation_id == cid and r.attempts == 1 for r in records)


@pytest.mark.parametrize("kw", [{"flush_interval": 0}, {"batch_size": 0}, {"loop_period": 0}])
def test_bad_settings_are_refused(kw: dict[str, Any]) -> None:
    """A non-positive interval, batch size or loop period raises ValueError."""
    with pytest.raises(ValueError, match="must"):
        AsyncSinceLastWriteEmitter("http://x", **kw)


def test_defaults_are_the_services() -> None:
    """5 s interval, 50 events a batch, a 0.1 s loop, as the Python service ships."""
    em = AsyncSinceLastWriteEmitter("http://x")
    assert (em.flush_interval, em.loop_period) == (5.0, 0.1)
    assert SinceLastWriteEmitter("http://x").loop_period == 0.1


# -- the blocking emitter, in real time with short intervals --------------------------------


def test_sync_emitter_writes_an_idle_event_at_once(cid: str) -> None:
    """SinceLastWriteEmitter writes in the background; an idle writer writes within a turn."""
    emu = Emulator()
    with SinceLastWriteEmitter(transport=emu.transport(), flush_interval=0.05) as em:
        threading.Event().wait(0.1)  # idle by now
        em.emit(event(cid))
        for _ in range(200):
            if em.counters.stored:
                break
            threading.Event().wait(0.01)
        [record] = em.records
    assert record.visible_at is not None
    assert 0 <= record.visible_at - record.emitted_at < 0.5
    emu.close()


def test_sync_emitter_flush_close_and_late_emits(cid: str) -> None:
    """flush() stores at once, close() drains, emits after close are dropped."""
    emu = Emulator()
    em = SinceLastWriteEmitter(transport=emu.transport(), flush_interval=60.0)
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
    """emit() is safe from several threads; a full batch is written without the interval."""
    emu = Emulator()
    with SinceLastWriteEmitter(transport=emu.transport(), flush_interval=60.0, batch_size=40) as em:

        def emit_ten() -> None:
            for _ in range(10):
                em.emit(event(cid))

        threads = [threading.Thread(target=emit_ten) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _ in range(300):
            if em.counters.stored == 40:
                break
            threading.Event().wait(0.01)
        assert em.counters.stored == 40
    assert emu.stats.by_route == {"write": 40}
    emu.close()
