"""How late, and at what cost, do waits for buffered audit events return, per writer?

Both writers in the field, emulated (``kubernaut_audit.emitters``): the Go services' ticker
(``AsyncBufferedEmitter``: a fixed grid, a batch in one POST) and the Python service's
since-last-write writer (``AsyncSinceLastWriteEmitter``: one interval after its previous write,
one POST per event), at 0.1, 1, 2 and 5 s. The writers run in a process of their own (as the
services under test do: a busy client must not delay the writes it measures) and write to the
emulator, served over loopback in another. Scenarios:

* cold: every trial has a fresh writer (a ticker of random phase; a since-last-write writer
  that just started); the workers of a cell share one client per strategy;
* suite: each worker has one long-lived writer and its own clients, and runs consecutive
  trials, each after a random pause in [0, interval) (the test's own work);
* idle: as suite, pauses in [interval + 0.1, 2 × interval + 0.1): the writer is idle whenever
  a trial begins;
* switch: one suite whose writer changes kind and interval every few trials, waits configured
  for 2 s throughout (what a suite meets when the service under test changes);
* multi: as suite at 2 s, with three tickers (0.5, 1, 2 s) writing each trial's events.

A trial emits 1-5 events for a fresh correlation id and every strategy waits for them at once,
beside each other, each with its own client: ours (``wait_for_audit_events``, defaults: writer
``"auto"``, the writer's interval), fixed 0.5 s polling, tenacity's exponential backoff
(0.1 s doubling to 2 s). ``time.sleep(5)`` then one query is computed from the visibility
times, not slept. Lateness is the moment a strategy returned minus the moment the trial's last
event became visible (the largest ``visible_at`` of its records; both on ``time.monotonic()``,
which the event loop uses); requests are counted per correlation id with httpx event hooks.

Run: ``.venv/bin/python tests/benchmarks/bench_wait.py [--quick] [--json PATH]``. A full run
takes about 9 minutes; ``--quick`` about 2. Record ``uptime`` with the figures: a loaded machine
shows as event-loop lag (reported) and inflates every lateness.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import random
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import httpx
import tenacity

from kubernaut_audit import AsyncAuditClient, AuditWaitTimeout
from kubernaut_audit.emitters import AsyncBufferedEmitter, AsyncSinceLastWriteEmitter
from kubernaut_audit.emulator import Emulator, make_event

Kind = Literal["ticker", "since-last-write"]
KINDS: tuple[Kind, ...] = ("ticker", "since-last-write")
INTERVALS = (0.1, 1.0, 2.0, 5.0)
SCENARIOS = ("cold", "suite", "idle")
Emitter = AsyncBufferedEmitter | AsyncSinceLastWriteEmitter

SLEEP_BASELINE = 5.0
#: Baselines give up after this long; ours uses its own default timeout (3 × interval + 5 s).
GIVE_UP = 25.0
EVENT_TYPES = (
    "gateway.signal.received",
    "aiagent.llm.request",
    "aianalysis.phase.transition",
    "workflowexecution.execution.started",
    "orchestrator.lifecycle.completed",
)
LAG_TICK = 0.005
#: The switch scenario: (writer kind, its interval, trials) in turn; waits assume 2 s.
SWITCH_PLAN: tuple[tuple[Kind, float, int], ...] = (
    ("ticker", 2.0, 12),
    ("since-last-write", 2.0, 12),
    ("ticker", 2.0, 12),
    ("since-last-write", 1.0, 12),
    ("ticker", 1.0, 12),
)
SWITCH_ASSUMED = 2.0
MULTI_INTERVALS = (0.5, 1.0, 2.0)

OURS = "ours"
SLEEP5 = "time.sleep(5) + 1 query"
POLL_500 = "fixed 0.5 s polling"
TENACITY = "tenacity exp 0.1..2 s"
STRATEGIES = (OURS, POLL_500, TENACITY)
#: For information: ours without each worker's first waits (nothing learned yet).
WARM_UP = 3

Waiter = Callable[[AsyncAuditClient, str, int, float], Awaitable[int]]


# -- the strategies: each returns how many events of the correlation id it saw -------------------


async def _count(client: AsyncAuditClient, cid: str) -> int:
    page = await client.query_audit_events(correlation_id=cid, limit=1000)
    return len(page.events)


async def poll_500(client: AsyncAuditClient, cid: str, k: int, interval: float) -> int:
    seen = 0
    with anyio.move_on_after(GIVE_UP):
        # Polling on a fixed period is the point of this baseline.
        while (seen := await _count(client, cid)) < k:  # noqa: ASYNC110
            await anyio.sleep(0.5)
    return seen


async def tenacity_exponential(client: AsyncAuditClient, cid: str, k: int, interval: float) -> int:
    retrying = tenacity.AsyncRetrying(
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        stop=tenacity.stop_after_delay(GIVE_UP),
        retry=tenacity.retry_if_result(lambda seen: seen is not None and seen < k),
        sleep=anyio.sleep,
    )
    try:
        seen: int = await retrying(_count, client, cid)
    except tenacity.RetryError as exc:
        seen = exc.last_attempt.result()
    return seen


#: Our waits' poll histories, kept to explain the late ones in the JSON document.
HISTORIES: dict[str, str] = {}


async def ours(client: AsyncAuditClient, cid: str, k: int, interval: float) -> int:
    try:
        got = await client.wait_for_audit_events(cid, min_count=k, flush_interval=interval)
    except AuditWaitTimeout as exc:
        HISTORIES[cid] = _history(exc.polls)
        return len(exc.events)
    HISTORIES[cid] = _history(got.stats.history)
    return len(got)


def _history(polls: Sequence[Any]) -> str:
    """Each poll as its kind and time from the start, ``*`` when it saw new rows."""
    return " ".join(f"{p.kind}@{p.at:.3f}{'*' if p.new else ''}" for p in polls)


WAITERS: dict[str, Waiter] = {OURS: ours, POLL_500: poll_500, TENACITY: tenacity_exponential}


# -- measurement -------------------------------------------------------------------------------


@dataclass(slots=True)
class WaitRecord:
    """One strategy's wait in one trial; times on ``time.monotonic()``."""

    strategy: str
    correlation_id: str
    k: int
    worker: int
    index: int
    start: float
    returned: float
    seen: int
    visible: float | None = None
    requests: int = 0
    segment: str = ""

    @property
    def missed(self) -> bool:
        return self.seen < self.k or self.visible is None

    @property
    def lateness(self) -> float | None:
        return None if self.missed or self.visible is None else self.returned - self.visible

    @property
    def offset(self) -> float | None:
        """Seconds from the start of the trial until its last event became visible."""
        return None if self.visible is None else self.visible - self.start


class Meter:
    """Counts one strategy's queries per correlation id, and times them (httpx event hooks)."""

    def __init__(self) -> None:
        self.by_cid: Counter[str] = Counter()
        self.latencies: list[float] = []
        self._sent: dict[int, float] = {}

    async def _on_request(self, request: httpx.Request) -> None:
        self._sent[id(request)] = time.monotonic()
        cid = request.url.params.get("correlation_id")
        if request.method == "GET" and cid:
            self.by_cid[cid] += 1

    async def _on_response(self, response: httpx.Response) -> None:
        sent = self._sent.pop(id(response.request), None)
        if sent is not None:
            self.latencies.append(time.monotonic() - sent)

    def http_client(self, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
        hooks: dict[str, list[Callable[..., Any]]] = {
            "request": [self._on_request],
            "response": [self._on_response],
        }
        return httpx.AsyncClient(event_hooks=hooks, transport=transport)


class SharedPool(httpx.AsyncBaseTransport):
    """Lends one connection pool to many short-lived emitters (a new httpx client builds an SSL
    context: about 30 ms of CPU, which at many cold emitters a second saturates the loop)."""

    def __init__(self, pool: httpx.AsyncBaseTransport) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        pass  # the pool outlives the emitter


async def loop_lag(samples: list[float]) -> None:
    """Record how late a short sleep wakes up, for as long as it runs."""
    while True:
        before = time.monotonic()
        await anyio.sleep(LAG_TICK)
        samples.append(time.monotonic() - before - LAG_TICK)


# -- the writers, in a process of their own -------------------------------------------------------


def _services(conn: multiprocessing.connection.Connection) -> None:
    """The services under test: emitters on one event loop of their own, driven over a pipe.

    A writer shares no event loop (and no GIL) with the waits it is measured against, as a
    service in its own process does: a busy client delays its polls, never the writes.
    """
    with anyio.from_thread.start_blocking_portal() as portal:
        emitters: dict[int, Emitter] = {}
        running: dict[int, AbstractContextManager[Any]] = {}
        holders: dict[str, list[int]] = {}
        pool = portal.call(_open_pool)
        while True:
            command, *args = conn.recv()
            if command == "stop":
                break
            try:
                _serve_command(conn, portal, command, args, emitters, running, holders, pool)
            except Exception:
                conn.send(("__error__", traceback.format_exc()))


def _serve_command(
    conn: multiprocessing.connection.Connection,
    portal: anyio.from_thread.BlockingPortal,
    command: str,
    args: list[Any],
    emitters: dict[int, Emitter],
    running: dict[int, AbstractContextManager[Any]],
    holders: dict[str, list[int]],
    pool: SharedPool,
) -> None:
    if command == "open":
        wid, kind, url, interval, phase = args
        emitter = _make_emitter(kind, url, interval, phase, pool)
        running[wid] = portal.wrap_async_context_manager(emitter)
        running[wid].__enter__()
        emitters[wid] = emitter
        conn.send(None)
    elif command == "emit":
        wids, cid, types = args
        for i, event_type in enumerate(types):
            wid = wids[i % len(wids)]
            portal.call(emitters[wid].emit, make_event(cid, event_type))
        holders[cid] = sorted(set(wids))
        conn.send(None)
    elif command == "visible":
        (cid,) = args
        records = [
            r for w in holders.get(cid, []) for r in emitters[w].records if r.correlation_id == cid
        ]
        if any(r.dropped for r in records):
            conn.send(("dropped", None))
        elif records and all(r.visible_at is not None for r in records):
            conn.send(("visible", max(r.visible_at or 0.0 for r in records)))
        else:
            conn.send(("pending", None))
    elif command == "close":
        (wid,) = args
        running.pop(wid).__exit__(None, None, None)
        conn.send(None)


async def _open_pool() -> SharedPool:
    return SharedPool(httpx.AsyncHTTPTransport())


def _make_emitter(kind: str, url: str, interval: float, phase: float, pool: SharedPool) -> Emitter:
    if kind == "ticker":
        return AsyncBufferedEmitter(url, transport=pool, flush_interval=interval, phase=phase)
    return AsyncSinceLastWriteEmitter(url, transport=pool, flush_interval=interval)


class Services:
    """The main process's handle on the writers' process (one request at a time)."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self._conn = conn
        self._lock = anyio.Lock()
        self._next = 0

    async def _call(self, *message: Any) -> Any:
        async with self._lock:
            return await anyio.to_thread.run_sync(self._roundtrip, message)

    def _roundtrip(self, message: tuple[Any, ...]) -> Any:
        self._conn.send(message)
        if not self._conn.poll(60):  # closing a writer drains it: 30 s at most
            raise RuntimeError(f"the writers' process did not answer {message[0]!r}")
        answer = self._conn.recv()
        if isinstance(answer, tuple) and answer and answer[0] == "__error__":
            raise RuntimeError(f"the writers' process failed:\n{answer[1]}")
        return answer

    async def open(self, kind: str, url: str, interval: float, rng: random.Random) -> int:
        """A started writer (a ticker of random phase); its id."""
        self._next += 1
        wid = self._next
        await self._call("open", wid, kind, url, interval, rng.uniform(0, interval))
        return wid

    async def emit(self, wids: Sequence[int], cid: str, types: Sequence[str]) -> None:
        await self._call("emit", list(wids), cid, list(types))

    async def close(self, wid: int) -> None:
        await self._call("close", wid)

    async def visibility(self, cid: str) -> float | None:
        """When the last event of ``cid`` became visible (its POST returned); None if
        dropped."""
        with anyio.move_on_after(GIVE_UP):
            while True:
                state, value = await self._call("visible", cid)
                if state != "pending":
                    return float(value) if state == "visible" else None
                await anyio.sleep(0.01)
        return None

    @asynccontextmanager
    async def writer(
        self, kind: str, url: str, interval: float, rng: random.Random
    ) -> AsyncIterator[int]:
        wid = await self.open(kind, url, interval, rng)
        try:
            yield wid
        finally:
            with anyio.CancelScope(shield=True):
                await self.close(wid)


@contextmanager
def served_writers() -> Iterator[multiprocessing.connection.Connection]:
    """The writers' process, started and stopped."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_services, args=(child,), daemon=True)
    process.start()
    try:
        yield parent
    finally:
        parent.send(("stop",))
        process.join(30)
        if process.is_alive():
            process.terminate()


# -- cells and trials ----------------------------------------------------------------------------


@dataclass(slots=True)
class Cell:
    """One writer kind, interval and scenario: workers running trials."""

    kind: str
    interval: float
    scenario: str
    workers: int
    trials: int
    records: list[WaitRecord] = field(default_factory=list)
    meters: dict[str, Meter] = field(default_factory=dict)
    visible: dict[str, float | None] = field(default_factory=dict)
    seconds: float = 0.0
    lag_p99_ms: float = math.nan
    """Event-loop lag while the cell's phase ran (a loaded loop makes every wait late)."""

    @property
    def name(self) -> str:
        return f"{self.kind} {self.interval:g}s {self.scenario}"


class Strategies:
    """One client per strategy, each with its meter; ours keeps what it learns across trials."""

    def __init__(
        self, url: str, cell: Cell, stack: AsyncExitStack, pool: SharedPool | None = None
    ) -> None:
        self.url, self.cell, self.stack, self.pool = url, cell, stack, pool
        self.clients: dict[str, AsyncAuditClient] = {}

    async def open(self) -> Strategies:
        for name in STRATEGIES:
            meter = self.cell.meters.setdefault(name, Meter())
            http = await self.stack.enter_async_context(meter.http_client(self.pool))
            self.clients[name] = await self.stack.enter_async_context(
                AsyncAuditClient(base_url=self.url, http_client=http)
            )
        return self


async def trial(
    cell: Cell,
    strategies: Strategies,
    services: Services,
    writers: Sequence[int],
    rng: random.Random,
    worker: int,
    index: int,
    assumed: float,
    tg: anyio.abc.TaskGroup,
    segment: str = "",
) -> None:
    """Emit 1-5 events, start every strategy's wait beside the others, return when ours did
    (the baselines finish in ``tg``)."""
    k = rng.randint(1, 5)
    cid = f"bench-{uuid.uuid4().hex}"
    first = rng.randrange(len(writers))
    # Round-robin over the writers (one writer: all of it to that one).
    order = [writers[(first + i) % len(writers)] for i in range(len(writers))]
    await services.emit(order, cid, [EVENT_TYPES[i % 5] for i in range(k)])
    start = time.monotonic()
    done = anyio.Event()

    async def one(name: str) -> None:
        seen = await WAITERS[name](strategies.clients[name], cid, k, assumed)
        record = WaitRecord(name, cid, k, worker, index, start, time.monotonic(), seen)
        record.segment = segment
        cell.records.append(record)
        if name == OURS:
            done.set()

    # The baselines wait beside every other trial only: they cost three times ours in queries,
    # and a saturated event loop would make every figure late.
    for name in STRATEGIES if index % 2 == 0 else (OURS,):
        tg.start_soon(one, name)
    await done.wait()
    cell.visible[cid] = await services.visibility(cid)


async def run_cell(url: str, services: Services, cell: Cell, seed: int) -> None:
    started = time.monotonic()
    rng = random.Random(seed)
    async with AsyncExitStack() as stack, anyio.create_task_group() as workers:
        if cell.scenario == "cold":
            pool = SharedPool(await stack.enter_async_context(httpx.AsyncHTTPTransport()))
            for w in range(cell.workers):
                workers.start_soon(cold_worker, url, services, cell, pool, w, rng.getrandbits(64))
        else:
            for w in range(cell.workers):
                workers.start_soon(suite_worker, url, services, cell, w, rng.getrandbits(64))
    cell.seconds = time.monotonic() - started


async def cold_worker(
    url: str, services: Services, cell: Cell, pool: SharedPool, worker: int, seed: int
) -> None:
    """Each trial: a fresh writer, and fresh clients (ours knows nothing of any writer)."""
    rng = random.Random(seed)
    for index in range(cell.trials):
        async with AsyncExitStack() as stack:
            fresh = await Strategies(url, cell, stack, pool).open()
            async with (
                anyio.create_task_group() as waits,
                services.writer(cell.kind, url, cell.interval, rng) as wid,
            ):
                await trial(cell, fresh, services, [wid], rng, worker, index, cell.interval, waits)


async def suite_worker(url: str, services: Services, cell: Cell, worker: int, seed: int) -> None:
    rng = random.Random(seed)
    async with AsyncExitStack() as own:
        strategies = await Strategies(url, cell, own).open()
        if cell.scenario == "switch":
            async with anyio.create_task_group() as waits:
                await switch_trials(url, services, cell, strategies, rng, worker, waits)
            return
        intervals = MULTI_INTERVALS if cell.scenario == "multi" else (cell.interval,)
        writers = [
            await own.enter_async_context(services.writer(cell.kind, url, iv, rng))
            for iv in intervals
        ]
        # The baselines' waits end (their task group joins) before the writers close.
        async with anyio.create_task_group() as waits:
            lo, hi = 0.0, cell.interval
            if cell.scenario == "idle":
                lo, hi = cell.interval + 0.1, 2 * cell.interval + 0.1
            for index in range(cell.trials):
                await anyio.sleep(rng.uniform(lo, hi))  # the test's own work
                await trial(
                    cell, strategies, services, writers, rng, worker, index, cell.interval, waits
                )


async def switch_trials(
    url: str,
    services: Services,
    cell: Cell,
    strategies: Strategies,
    rng: random.Random,
    worker: int,
    waits: anyio.abc.TaskGroup,
) -> None:
    index = 0
    for kind, interval, trials in SWITCH_PLAN:
        segment = f"{kind} {interval:g}s"
        async with services.writer(kind, url, interval, rng) as wid:
            for _ in range(max(2, round(trials * cell.trials / 12))):
                await anyio.sleep(rng.uniform(0, interval))
                await trial(
                    cell,
                    strategies,
                    services,
                    [wid],
                    rng,
                    worker,
                    index,
                    SWITCH_ASSUMED,
                    waits,
                    segment,
                )
                index += 1


async def run_phase(
    url: str, services: Services, cells: Sequence[Cell], seed: int, lag: list[float]
) -> float:
    started = time.monotonic()
    rng = random.Random(seed)
    mine: list[float] = []
    async with anyio.create_task_group() as outer:
        outer.start_soon(loop_lag, mine)
        async with anyio.create_task_group() as tg:
            for cell in cells:
                tg.start_soon(run_cell, url, services, cell, rng.getrandbits(64))
        outer.cancel_scope.cancel()
    lag.extend(mine)
    for cell in cells:
        cell.lag_p99_ms = round(quantile(mine, 0.99) * 1000, 1)
        for record in cell.records:
            record.requests = cell.meters[record.strategy].by_cid[record.correlation_id]
            record.visible = cell.visible.get(record.correlation_id)
    return time.monotonic() - started


# -- the emulator ----------------------------------------------------------------------------


def _serve(conn: multiprocessing.connection.Connection) -> None:
    with Emulator(admin=True) as emulator, emulator.serve_in_thread() as url:
        conn.send(url)
        conn.recv()  # until told to stop


@contextmanager
def served_emulator() -> Iterator[str]:
    """The emulator on a loopback port in a child process (whose CPU is then the other core's
    rather than the event loop's under test)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the emulator process did not start")
        yield str(parent.recv())
    finally:
        parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()


# -- statistics and reporting ------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (as numpy's default); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(records: Sequence[WaitRecord], *, computed_sleep: bool = False) -> dict[str, Any]:
    if computed_sleep:
        offsets = [r.offset for r in records if r.offset is not None]
        late = [SLEEP_BASELINE - o for o in offsets if o <= SLEEP_BASELINE]
        waits, missed, requests = len(offsets), len(offsets) - len(late), [1] * len(offsets)
    else:
        late = [x for r in records if (x := r.lateness) is not None]
        waits, missed = len(records), sum(r.missed for r in records)
        requests = [r.requests for r in records]
    ms = [x * 1000 for x in late]
    return {
        "waits": waits,
        "missed": missed,
        "lateness_ms": {
            "p50": round(quantile(ms, 0.5), 1),
            "p95": round(quantile(ms, 0.95), 1),
            "max": round(max(ms, default=math.nan), 1),
        },
        "late_over_300ms": sum(x > 300 for x in ms),
        "requests_per_wait": {
            "mean": round(sum(requests) / max(len(requests), 1), 2),
            "max": max(requests, default=0),
        },
    }


def cell_rows(cell: Cell) -> dict[str, dict[str, Any]]:
    by = {s: [r for r in cell.records if r.strategy == s] for s in STRATEGIES}
    rows = {
        SLEEP5: summary(by[OURS], computed_sleep=True),
        POLL_500: summary(by[POLL_500]),
        TENACITY: summary(by[TENACITY]),
        OURS: summary(by[OURS]),
    }
    if cell.scenario != "cold":
        rows[f"{OURS} (from wait {WARM_UP + 1})"] = summary(
            [r for r in by[OURS] if r.index >= WARM_UP]
        )
    return rows


def _fmt(value: float, digits: int = 0) -> str:
    return "-" if isinstance(value, float) and math.isnan(value) else f"{value:,.{digits}f}"


def print_table(cells: Sequence[Cell], rows: dict[str, dict[str, dict[str, Any]]]) -> None:
    head = (
        f"{'writer, interval, scenario':<30} {'strategy':<26} {'waits':>5} {'miss':>4} "
        f"{'p50':>6} {'p95':>6} {'max':>6} {'>300':>4} {'req':>6}"
    )
    print(head)
    print("-" * len(head))
    for cell in cells:
        print(
            f"{cell.name}: {cell.workers} worker(s), {cell.seconds:.0f}s, loop lag p99 "
            f"{cell.lag_p99_ms:g} ms"
        )
        for strategy, s in rows[cell.name].items():
            late = s["lateness_ms"]
            print(
                f"{cell.name:<30} {strategy:<26} {s['waits']:>5} {s['missed']:>4} "
                f"{_fmt(late['p50']):>6} {_fmt(late['p95']):>6} {_fmt(late['max']):>6} "
                f"{s['late_over_300ms']:>4} {_fmt(s['requests_per_wait']['mean'], 2):>6}"
            )
        print()
    print(
        "lateness in ms (return - last event visible); >300: waits more than 300 ms late; "
        "req: queries per wait (mean).\n"
        f"'{SLEEP5}' is computed from the visibility times of the trials (5 s - offset), not "
        f"slept. '{OURS} (from wait {WARM_UP + 1})' leaves out each worker's first {WARM_UP} "
        "waits (information only; the goals use every wait)."
    )


@dataclass(frozen=True, slots=True)
class Goal:
    cell: str
    text: str
    measured: str
    ok: bool


def goals(rows: dict[str, dict[str, dict[str, Any]]], switch: Cell | None) -> list[Goal]:
    out: list[Goal] = []

    def ours_of(name: str) -> dict[str, Any] | None:
        return rows.get(name, {}).get(OURS)

    def lateness(name: str, p95: float | None, top: float | None, req: float | None) -> None:
        s = ours_of(name)
        if s is None:
            return
        late, mean = s["lateness_ms"], s["requests_per_wait"]["mean"]
        if p95 is not None:
            out.append(
                Goal(name, f"p95 <= {p95:g} ms", f"{late['p95']:.0f} ms", late["p95"] <= p95)
            )
        if top is not None:
            out.append(
                Goal(name, f"max <= {top:g} ms", f"{late['max']:.0f} ms", late["max"] <= top)
            )
        if req is not None:
            out.append(Goal(name, f"requests <= {req:g}", f"{mean:.2f}", mean <= req))

    lateness("since-last-write 2s suite", 60, 300, 5)
    lateness("since-last-write 5s suite", 80, 400, 6)
    lateness("since-last-write 0.1s suite", 40, 200, None)
    lateness("since-last-write 2s idle", 80, 300, None)
    lateness("ticker 2s cold", 150, 300, 8)
    lateness("ticker 2s suite", 50, 300, 3.2)
    for name, by in rows.items():
        if (
            name.startswith("ticker")
            and "multi" not in name
            and name
            not in (
                "ticker 2s cold",
                "ticker 2s suite",
            )
        ):
            s = by[OURS]
            top = s["lateness_ms"]["max"]
            out.append(Goal(name, "max <= 300 ms", f"{top:.0f} ms", top <= 300))
    if switch is not None:
        worst = 0
        for segment, _, _ in switch_segments():
            late = [
                x
                for r in switch.records
                if r.strategy == OURS and r.segment == segment and (x := r.lateness) is not None
            ]
            worst = max(worst, sum(x > 0.3 for x in late))
        out.append(
            Goal(
                "switch",
                "no segment has more than one wait > 300 ms late",
                f"at most {worst} per segment",
                worst <= 1,
            )
        )
    missed = sum(by[OURS]["missed"] for by in rows.values())
    out.append(Goal("all", "no missed wait (ours)", f"{missed} missed", missed == 0))
    return out


def switch_segments() -> list[tuple[str, str, int]]:
    return [(f"{k} {iv:g}s", k, n) for k, iv, n in SWITCH_PLAN]


def print_goals(items: Sequence[Goal]) -> None:
    print(f"\ngoals for '{OURS}':")
    width = max(len(g.text) for g in items)
    for g in items:
        print(f"  {g.cell:<28} {g.text:<{width}}  {g.measured:<22} {'met' if g.ok else 'NOT MET'}")


# -- main ---------------------------------------------------------------------------------------


#: Trials per worker of a cell, by interval and scenario (a quick run does a quarter): enough
#: waits for a p95 within about three minutes a phase.
TRIALS = {
    0.1: {"cold": 80, "suite": 80, "idle": 80},
    1.0: {"cold": 60, "suite": 60, "idle": 40},
    # Suites long enough that their first waits (before the writer is learned) weigh as they
    # do in a real suite: the goals are about a suite, not its start.
    2.0: {"cold": 60, "suite": 100, "idle": 30, "multi": 50},
    5.0: {"cold": 30, "suite": 45, "idle": 15},
}


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    seed: int

    def cell(self, kind: str, interval: float, scenario: str) -> Cell:
        trials = TRIALS[interval][scenario]
        if self.quick:
            trials = max(4, trials // 4)
        workers = 2 if scenario == "idle" and interval >= 5 else 1
        return Cell(kind, interval, scenario, workers, trials)


def plan(config: Config) -> list[list[Cell]]:
    """Phases run one after another, the cells of a phase side by side: few enough at once
    that the event loop under test stays responsive. The 0.1 s cells poll hard and go first,
    two at a time; the 5 s cells (slow, light) run beside the 1 s ones."""
    phases = [[config.cell(kind, 0.1, scenario) for kind in KINDS] for scenario in SCENARIOS]
    phases.append(
        [
            config.cell(kind, interval, scenario)
            for interval in (1.0, 5.0)
            for kind in KINDS
            for scenario in SCENARIOS
        ]
    )
    phases.append(
        [
            *(config.cell(kind, 2.0, scenario) for kind in KINDS for scenario in SCENARIOS),
            config.cell("ticker", 2.0, "multi"),
            Cell("mixed", SWITCH_ASSUMED, "switch", 1, 4 if config.quick else 12),
        ]
    )
    return phases


async def run(
    config: Config, url: str, conn: multiprocessing.connection.Connection
) -> tuple[list[Cell], list[float], float]:
    # Lateness subtracts the writers' times (time.monotonic, in their process: the clock is
    # system-wide) from return times; under asyncio the loop's clock, which waits schedule by,
    # is the same clock.
    if abs(anyio.current_time() - time.monotonic()) > 0.01:
        raise RuntimeError("the event loop's clock is not time.monotonic()")
    cells: list[Cell] = []
    lag: list[float] = []
    seconds = 0.0
    services = Services(conn)
    for number, phase in enumerate(plan(config)):
        took = await run_phase(url, services, phase, config.seed + number, lag)
        seconds += took
        print(f"  phase {number + 1}: {len(phase)} cells, {took:.0f}s", file=sys.stderr)
        cells.extend(phase)
    return cells, lag, seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", metavar="PATH", help="also write the JSON document here")
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    config = Config(quick=args.quick, seed=args.seed)
    load_before = os.getloadavg()

    with served_emulator() as url, served_writers() as conn:
        cells, lag, seconds = anyio.run(run, config, url, conn, backend="asyncio")

    rows = {cell.name: cell_rows(cell) for cell in cells}
    switch = next((c for c in cells if c.scenario == "switch"), None)
    if switch is not None:
        for segment, _, _ in switch_segments():
            seg = [r for r in switch.records if r.segment == segment]
            rows[f"switch: {segment}"] = {
                OURS: summary([r for r in seg if r.strategy == OURS]),
                POLL_500: summary([r for r in seg if r.strategy == POLL_500]),
            }
    verdicts = goals(rows, switch)
    print_table(cells, rows)
    for name in [n for n in rows if n.startswith("switch: ")]:
        s = rows[name][OURS]
        print(
            f"{name:<40} ours: p50 {_fmt(s['lateness_ms']['p50'])} max "
            f"{_fmt(s['lateness_ms']['max'])} ms, >300 ms: {s['late_over_300ms']}, "
            f"{s['requests_per_wait']['mean']:.2f} req"
        )
    print_goals(verdicts)
    lag_ms = [x * 1000 for x in lag]
    load_after = os.getloadavg()
    document = {
        "benchmark": "wait",
        "config": {
            "quick": config.quick,
            "seed": config.seed,
            "k": "random 1..5 per trial",
            "cells": {c.name: {"workers": c.workers, "trials_per_worker": c.trials} for c in cells},
            "switch_plan": [
                {"writer": k, "interval_s": iv, "trials": n} for k, iv, n in SWITCH_PLAN
            ],
            "switch_waits_assume_s": SWITCH_ASSUMED,
            "emulator": "uvicorn on loopback, in a child process",
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "event_loop_lag_ms": {
                "p50": round(quantile(lag_ms, 0.5), 2),
                "p99": round(quantile(lag_ms, 0.99), 2),
                "max": round(max(lag_ms, default=math.nan), 2),
            },
        },
        "runtime_s": round(seconds, 1),
        "late_waits": [
            {
                "cell": c.name,
                "segment": r.segment,
                "index": r.index,
                "k": r.k,
                "lateness_ms": round((r.lateness or 0) * 1000),
                "visible_after_s": round(r.offset or 0, 3),
                "polls": HISTORIES.get(r.correlation_id, ""),
            }
            for c in cells
            for r in c.records
            if r.strategy == OURS and (r.lateness or 0) > 0.3
        ],
        "cells": rows,
        "cell_runs": {
            c.name: {"seconds": round(c.seconds, 1), "loop_lag_p99_ms": c.lag_p99_ms} for c in cells
        },
        "goals": [
            {"cell": g.cell, "goal": g.text, "measured": g.measured, "met": g.ok} for g in verdicts
        ],
    }
    text = json.dumps(document, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(
        f"runtime {seconds:.0f}s; load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f}; event-loop lag p99 {quantile(lag_ms, 0.99):.1f} ms",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
