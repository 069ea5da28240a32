"""Waits against both writers in the field, emulated: the ticker (``AsyncBufferedEmitter``) and
since-last-write (``AsyncSinceLastWriteEmitter``) emitters writing to the in-process emulator,
which answers every request a few milliseconds late.

On trio's MockClock a suite of waits takes no real time and every moment is reproducible, so
lateness (the wait's return minus the moment its last event became visible) is asserted
exactly. Two short real-time runs cover the blocking face and asyncio.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from kubernaut_audit import AsyncAuditClient, AuditClient
from kubernaut_audit.emitters import (
    AsyncBufferedEmitter,
    AsyncSinceLastWriteEmitter,
    SinceLastWriteEmitter,
)
from kubernaut_audit.emulator import Emulator, Faults, make_event

I = 2.0  # noqa: E741 - the writers' flush interval
TYPES = ("aiagent.llm.request", "aiagent.llm.response", "aiagent.workflow.selected")
Emitter = AsyncBufferedEmitter | AsyncSinceLastWriteEmitter


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    emu.faults = Faults(latency=0.004, latency_jitter=0.003, seed=11)
    yield emu
    emu.close()


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[AsyncAuditClient]:
    async with AsyncAuditClient(transport=emulator.transport(), flush_interval=I) as c:
        yield c


def ticker(emulator: Emulator, phase: float = 0.7) -> AsyncBufferedEmitter:
    return AsyncBufferedEmitter(
        transport=emulator.transport(), flush_interval=I, phase=phase, timer=anyio.current_time
    )


def since_last_write(emulator: Emulator) -> AsyncSinceLastWriteEmitter:
    return AsyncSinceLastWriteEmitter(
        transport=emulator.transport(), flush_interval=I, timer=anyio.current_time
    )


@dataclass(frozen=True)
class Waited:
    lateness: float
    polls: int
    kinds: tuple[str, ...]


async def one_wait(client: AsyncAuditClient, emitter: Emitter, k: int, **options: Any) -> Waited:
    """Emit k events, wait for them; how late the wait returned, and its polls."""
    cid = f"w-{uuid.uuid4().hex[:12]}"
    for i in range(k):
        emitter.emit(make_event(cid, TYPES[i % len(TYPES)]))
    got = await client.wait_for_audit_events(cid, min_count=k, **options)
    returned = anyio.current_time()
    # The emitter hears its last POST's answer a moment after the server stored the row.
    while not all(r.visible_at is not None for r in emitter.records if r.correlation_id == cid):  # noqa: ASYNC110
        await anyio.sleep(0.001)
    visible = max(r.visible_at or 0.0 for r in emitter.records if r.correlation_id == cid)
    return Waited(returned - visible, got.stats.polls, tuple(p.kind for p in got.stats.history))


async def suite(
    client: AsyncAuditClient,
    emitter: Emitter,
    n: int,
    *,
    think: tuple[float, float] = (0.0, I),
    seed: int = 3,
    **options: Any,
) -> list[Waited]:
    """n consecutive waits, each after a random pause (the test's own work)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        await anyio.sleep(rng.uniform(*think))
        out.append(await one_wait(client, emitter, rng.randint(1, 4), **options))
    return out


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


async def test_a_busy_since_last_write_writer_is_learned(
    emulator: Emulator, client: AsyncAuditClient
) -> None:
    """Once learned, each wait polls where the write comes: a few polls, tens of ms late."""
    async with since_last_write(emulator) as writer:
        waits = await suite(client, writer, 30)
    learned = waits[5:]
    assert max(w.lateness for w in waits) <= 0.15 + 0.03
    assert max(w.lateness for w in learned) <= 0.06
    assert sum(w.polls for w in learned) / len(learned) <= 5
    assert all("probe" in w.kinds or "decisive" in w.kinds for w in learned)


async def test_an_idle_since_last_write_writer_is_met_at_once(
    emulator: Emulator, client: AsyncAuditClient
) -> None:
    """An idle writer writes a new event at once: waits poll right then, and the rest of a
    split burst one interval later."""
    async with since_last_write(emulator) as writer:
        waits = await suite(client, writer, 20, think=(I + 0.2, 2 * I))
    learned = waits[4:]
    assert max(w.lateness for w in learned) <= 0.06
    assert sum(w.polls for w in learned) / len(learned) <= 5


async def test_a_ticker_is_still_learned(emulator: Emulator, client: AsyncAuditClient) -> None:
    """Under "auto" a ticker's grid is recognised: 2-3 polls a wait, a few ms late."""
    async with ticker(emulator) as writer:
        waits = await suite(client, writer, 20)
    learned = waits[6:]
    assert max(w.lateness for w in learned) <= 0.03
    assert sum(w.polls for w in learned) / len(learned) <= 3.2


async def test_a_writer_that_changes_kind_costs_at_most_one_late_wait(
    emulator: Emulator, client: AsyncAuditClient
) -> None:
    """Ticker, then since-last-write, then a ticker of another phase, on one client: after
    each change at most one wait is more than 300 ms late."""
    waits: list[list[Waited]] = []
    async with ticker(emulator, phase=0.3) as first:
        waits.append(await suite(client, first, 12, seed=4))
    async with since_last_write(emulator) as second:
        waits.append(await suite(client, second, 12, seed=5))
    async with ticker(emulator, phase=1.6) as third:
        waits.append(await suite(client, third, 12, seed=6))
    for segment in waits:
        assert sum(w.lateness > 0.3 for w in segment) <= 1
        assert max(w.lateness for w in segment) <= I + 0.2


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_flow_written_by_several_tickers_is_never_an_interval_late(
    emulator: Emulator, client: AsyncAuditClient, seed: int
) -> None:
    """A flow's events come from several services, each flushing on a ticker of its own (0.5,
    1 and 2 s here, random phases), spread over them in turn: the rest of a set seen in part
    comes at a moment no single model predicts, and is noticed within about a cold step, never
    an interval late (however the sightings make one model or the other look right by chance)."""
    rng = random.Random(seed)
    lateness = []
    async with AsyncExitStack() as stack:
        writers = [
            await stack.enter_async_context(
                AsyncBufferedEmitter(
                    transport=emulator.transport(),
                    flush_interval=interval,
                    phase=rng.uniform(0, interval),
                    timer=anyio.current_time,
                )
            )
            for interval in (0.5, 1.0, 2.0)
        ]
        for _ in range(40):
            await anyio.sleep(rng.uniform(0, I))
            cid = f"flow-{uuid.uuid4().hex[:12]}"
            k = rng.randint(1, 5)
            for i in range(k):
                writers[i % len(writers)].emit(make_event(cid, TYPES[i % len(TYPES)]))
            await client.wait_for_audit_events(cid, min_count=k)
            returned = anyio.current_time()
            records = [r for w in writers for r in w.records if r.correlation_id == cid]
            while not all(r.visible_at is not None for r in records):  # noqa: ASYNC110
                await anyio.sleep(0.001)
            lateness.append(returned - max(r.visible_at or 0.0 for r in records))
    assert max(lateness) <= 0.15 + 0.03


async def test_a_named_since_last_write_writer_is_predicted_from_its_first_write(
    emulator: Emulator,
) -> None:
    """writer="since-last-write" on the client skips the inference: the second wait already
    polls the predicted window."""
    async with (
        AsyncAuditClient(
            transport=emulator.transport(), flush_interval=I, writer="since-last-write"
        ) as named,
        since_last_write(emulator) as writer,
    ):
        waits = await suite(named, writer, 3, think=(0.3, 0.5))
    assert "probe" in waits[1].kinds or "decisive" in waits[1].kinds


async def test_writer_named_per_call_wins_over_the_client(
    emulator: Emulator, client: AsyncAuditClient
) -> None:
    """writer="ticker" in the call: an idle since-last-write writer's waits follow the cold
    schedule (its random phases never make a grid), where "auto" polls at once."""
    async with since_last_write(emulator) as writer:
        named = await suite(client, writer, 12, think=(I + 0.2, 2 * I), writer="ticker")
        auto = await suite(client, writer, 12, think=(I + 0.2, 2 * I))
    assert all(set(w.kinds) <= {"first", "due", "backoff"} for w in named)
    assert any("probe" in w.kinds for w in auto[4:])


# -- real time, short intervals: the blocking face and asyncio ---------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_since_last_write_waits_under_asyncio(emulator: Emulator) -> None:
    """The same waits work on asyncio in real time (0.1 s writer)."""
    async with (
        AsyncAuditClient(transport=emulator.transport(), flush_interval=0.1) as real,
        AsyncSinceLastWriteEmitter(transport=emulator.transport(), flush_interval=0.1) as writer,
    ):
        for k in (1, 3, 2):
            cid = f"a-{uuid.uuid4().hex[:12]}"
            for i in range(k):
                writer.emit(make_event(cid, TYPES[i]))
            got = await real.wait_for_audit_events(cid, min_count=k, flush_interval=0.1)
            assert len(got) == k


def test_since_last_write_waits_on_the_blocking_face() -> None:
    """AuditClient(writer=...) waits for SinceLastWriteEmitter's events in real time."""
    emu = Emulator()
    with (
        AuditClient(transport=emu.transport(), flush_interval=0.1, writer="auto") as real,
        SinceLastWriteEmitter(transport=emu.transport(), flush_interval=0.1) as writer,
    ):
        for k in (1, 3, 2):
            cid = f"s-{uuid.uuid4().hex[:12]}"
            for i in range(k):
                writer.emit(make_event(cid, TYPES[i]))
            got = real.wait_for_audit_events(cid, min_count=k, writer="since-last-write")
            assert len(got) == k
    emu.close()
