"""Soak: does the SDK keep working, lose nothing and stay flat against a hostile server?

For ``--minutes`` (default 5) the emulator, served over loopback in a child process, answers
10 % of requests with 503, drops 5 % of connections halfway through the body and adds 0–200 ms
of latency. Eight buffered emitters (2 s flush, the services' writer) write the events, and
200 concurrent waiters each emit 1–3 events of a fresh correlation id through one of them and
wait for them with ``wait_for_audit_events``. Every 10 s the bench samples its own RSS and its
open connections to the server.

At the end the writers are drained, and the whole store is walked with ``iter_audit_events``
(faults still on) and compared with the writers' records and with a fault-free count:

* lost by writer: the emitter gave up on the batch after 3 failed attempts (allowed);
* duplicated by writer: the server stored a batch whose answer was lost, and the emitter
  wrote it again (allowed; waits count "at least k");
* lost or duplicated by the SDK: a stored row the walk did not yield, or yielded twice (bugs);
* waits: each must return its events, or time out when the writer dropped them or stored them
  only after the wait's deadline; anything else is wrong.

Then 100,000 events are planted directly in the store and iterated with ``iter_audit_events``
while the peak RSS is sampled (goal: under 100 MB over the baseline).

Run: ``.venv/bin/python tests/benchmarks/bench_soak.py [--minutes M] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import multiprocessing.connection
import platform
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx

from kubernaut_audit import AsyncAuditClient, AuditError, AuditWaitTimeout, RetryDetails
from kubernaut_audit.emitters import AsyncBufferedEmitter
from kubernaut_audit.emulator import Emulator, make_event

FLUSH = 2.0
FAULTS: dict[str, Any] = {
    "error_503_rate": 0.10,
    "drop_connection_rate": 0.05,
    "latency": 0.1,
    "latency_jitter": 0.1,  # 0–200 ms
    "seed": 6,
}
EVENT_TYPES = (
    "gateway.signal.received",
    "signalprocessing.enrichment.completed",
    "aianalysis.phase.transition",
    "workflowexecution.execution.started",
    "orchestrator.lifecycle.completed",
)
SAMPLE_EVERY = 10.0
ROTATE_EVERY = 30.0
BULK_CID = "soak-bulk"

Key = tuple[str, str]  # (correlation_id, event_type): unique per emitted event


# -- the emulator in a child process ----------------------------------------------------------


def _serve(conn: multiprocessing.connection.Connection) -> None:
    with Emulator(admin=True) as emulator, emulator.serve_in_thread() as url:
        conn.send(url)
        while True:
            command = conn.recv()
            if command[0] == "insert":
                _, count, cid = command
                start = datetime.now(UTC) - timedelta(days=1)
                for first in range(0, count, 5000):
                    emulator.insert_events(
                        make_event(
                            cid,
                            EVENT_TYPES[n % len(EVENT_TYPES)],
                            event_timestamp=(start + timedelta(milliseconds=n)).isoformat(),
                        )
                        for n in range(first, min(first + 5000, count))
                    )
                conn.send(count)
            else:
                return


@contextmanager
def served_emulator() -> Iterator[tuple[str, multiprocessing.connection.Connection]]:
    """The emulator on a loopback port in a child process (the second core's CPU), and a pipe
    to ask it to plant events."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the emulator process did not start")
        yield str(parent.recv()), parent
    finally:
        parent.send(("stop",))
        process.join(10)
        if process.is_alive():
            process.terminate()


async def set_faults(url: str, faults: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        # The admin route takes a partial update; reset first so the update is the whole set.
        (await http.post("/_emulator/reset")).raise_for_status()
        (await http.put("/_emulator/faults", json=faults)).raise_for_status()


# -- process figures --------------------------------------------------------------------------


def rss_mb(field_name: str = "VmRSS") -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


def open_connections(port: int) -> int:
    """Established TCP connections to the server's port (client ends, any local process)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                    if remote_port == port and parts[3] in ("01", "08"):  # ESTABLISHED, CLOSE_WAIT
                        count += 1
        except FileNotFoundError:
            continue
    return count


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -- the soak ---------------------------------------------------------------------------------


@dataclass(slots=True)
class WaitRecord:
    cid: str
    types: tuple[str, ...]
    started: float
    ended: float
    outcome: str  # "ok", "timeout" or an exception type name
    got: frozenset[str] = frozenset()
    polls: int = 0
    last_poll: str = ""  # a timed-out wait's last poll: when, how long, its error


@dataclass(slots=True)
class Written:
    """What one emitter did with one event (kept instead of the emitter's full records)."""

    visible_at: float | None
    dropped: bool


@dataclass
class Soak:
    url: str
    minutes: float
    writers_n: int
    waiters_n: int
    seed: int
    waits: list[WaitRecord] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    slots: list[AsyncBufferedEmitter] = field(default_factory=list)
    written: dict[Key, Written] = field(default_factory=dict)
    posts: int = 0
    failed_posts: int = 0

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def on_retry(self, details: RetryDetails) -> None:
        self.retries[type(details.error).__name__] += 1

    async def waiter(self, index: int, client: AsyncAuditClient, stop_at: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        await anyio.sleep(rng.uniform(0, FLUSH))  # do not start in lockstep
        while time.monotonic() < stop_at:
            cid = f"soak-{uuid.uuid4().hex[:12]}"
            types = tuple(rng.sample(EVENT_TYPES, rng.randint(1, 3)))
            writer = self.slots[rng.randrange(len(self.slots))]
            for event_type in types:
                writer.emit(make_event(cid, event_type))
            record = WaitRecord(cid, types, time.monotonic(), math.nan, "")
            try:
                got = await client.wait_for_audit_events(cid, min_count=len(types))
            except AuditWaitTimeout as exc:
                record.outcome = "timeout"
                record.got = frozenset(e.event_type for e in exc.events)
                record.polls = len(exc.polls)
                last = exc.polls[-1] if exc.polls else None
                if last is not None:
                    record.last_poll = f"at {last.at:.2f}s took {last.duration:.2f}s {last.error}"
            except AuditError as exc:
                record.outcome = type(exc).__name__
            else:
                record.outcome = "ok"
                record.got = frozenset(e.event_type for e in got)
                record.polls = got.stats.polls
            record.ended = time.monotonic()
            self.waits.append(record)
            await anyio.sleep(rng.uniform(0, 0.5))  # the test's own work

    async def writer(self, slot: int, generation: int, retire: anyio.Event) -> None:
        """One emitter's life: take over the slot, write until retired, drain, keep a digest of
        its records. Emitters are replaced every ROTATE_EVERY seconds because they keep every
        record in memory, which would hide the SDK's own memory use."""
        emitter = AsyncBufferedEmitter(
            self.url, flush_interval=FLUSH, seed=self.seed * 10_000 + slot * 100 + generation
        )
        async with emitter:
            self.slots[slot] = emitter
            await retire.wait()
        self.posts += emitter.counters.posts
        self.failed_posts += emitter.counters.failed_posts
        for r in emitter.records:
            self.written[(r.correlation_id, r.event_type)] = Written(r.visible_at, r.dropped)

    async def writers(self, tg: anyio.abc.TaskGroup, stop: anyio.Event) -> None:
        generation = 0
        retire = [anyio.Event() for _ in range(self.writers_n)]
        while True:
            for slot in range(self.writers_n):
                new = anyio.Event()
                tg.start_soon(self.writer, slot, generation, new)
                await anyio.sleep(0.01)  # the new emitter takes over the slot ...
                retire[slot].set()  # ... before the old one drains
                retire[slot] = new
            generation += 1
            with anyio.move_on_after(ROTATE_EVERY):
                await stop.wait()
            if stop.is_set():
                for event in retire:
                    event.set()
                return

    async def sampler(self, started: float, stop: anyio.Event, client: AsyncAuditClient) -> None:
        lag_max = 0.0
        next_sample = started + SAMPLE_EVERY
        while not stop.is_set():
            before = time.monotonic()
            await anyio.sleep(0.05)
            lag_max = max(lag_max, time.monotonic() - before - 0.05)
            if time.monotonic() >= next_sample:
                next_sample += SAMPLE_EVERY
                sample = {
                    "t": round(time.monotonic() - started, 1),
                    "rss_mb": round(rss_mb(), 1),
                    "connections": open_connections(self.port),
                    "waits_done": len(self.waits),
                    "requests": self.requests,
                    "wait_state_entries": len(client._wait_state.latest),
                    "loop_lag_max_ms": round(lag_max * 1000, 1),
                }
                lag_max = 0.0
                self.samples.append(sample)
                print("  " + "  ".join(f"{k}={v}" for k, v in sample.items()), flush=True)

    async def run(self) -> dict[str, Any]:
        await set_faults(self.url, FAULTS)

        async def count_request(request: httpx.Request) -> None:
            self.requests += 1

        http = httpx.AsyncClient(event_hooks={"request": [count_request]}, follow_redirects=True)
        client = AsyncAuditClient(base_url=self.url, http_client=http, retry_hooks=[self.on_retry])
        started = time.monotonic()
        stop_at = started + self.minutes * 60
        stop = anyio.Event()
        self.slots = [AsyncBufferedEmitter(self.url) for _ in range(self.writers_n)]  # placeholders
        async with http, client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.sampler, started, stop, client)
                tg.start_soon(self.writers, tg, stop)
                await anyio.sleep(0.5)  # every slot has a running emitter
                async with anyio.create_task_group() as waiters:
                    for index in range(self.waiters_n):
                        waiters.start_soon(self.waiter, index, client, stop_at)
                stop.set()
            # Leaving the task group drained every emitter.
            soak_seconds = time.monotonic() - started
            # The whole store, walked with the faults still on.
            walk_started = time.monotonic()
            walked = [e async for e in client.iter_audit_events() if e.correlation_id != BULK_CID]
            walk_seconds = time.monotonic() - walk_started
            await set_faults(self.url, {})
            everything = (await client.query_audit_events(limit=1)).total
            bulk = (await client.query_audit_events(correlation_id=BULK_CID, limit=1)).total
            total = everything - bulk
        return self.report(walked, total, soak_seconds, walk_seconds)

    def report(
        self,
        walked: list[Any],
        total: int,
        soak_seconds: float,
        walk_seconds: float,
    ) -> dict[str, Any]:
        ids = Counter(str(e.event_id) for e in walked)
        in_store: Counter[Key] = Counter((e.correlation_id, e.event_type) for e in walked)
        records = self.written
        writer_figures: Counter[str] = Counter()
        for key, r in records.items():
            copies = in_store.get(key, 0)
            if r.visible_at is not None:
                writer_figures["stored"] += 1
                if copies == 0:
                    writer_figures["stored_but_missing"] += 1  # a real loss
                elif copies > 1:
                    writer_figures["duplicated_by_writer"] += 1
            elif copies:
                writer_figures["dropped_but_stored"] += 1  # stored; every answer lost
                if copies > 1:
                    writer_figures["duplicated_by_writer"] += 1
            else:
                writer_figures["lost_by_writer"] += 1
        writer_figures["emitted"] = len(records)
        writer_figures["posts"] = self.posts
        writer_figures["failed_posts"] = self.failed_posts

        outcomes: Counter[str] = Counter()
        wrong: list[str] = []
        durations: list[float] = []
        for wait in self.waits:
            durations.append(wait.ended - wait.started)
            verdict = self._judge(wait, records)
            outcomes[verdict] += 1
            if verdict.startswith("WRONG") and len(wrong) < 10:
                seen_at = [records[(wait.cid, t)].visible_at for t in wait.types]
                before_end = [round(wait.ended - v, 2) for v in seen_at if v is not None]
                wrong.append(
                    f"{wait.cid} {wait.outcome} got={sorted(wait.got)} want={wait.types} "
                    f"stored {before_end}s before the end, {wait.polls} polls, "
                    f"last {wait.last_poll}"
                )

        rss = [s["rss_mb"] for s in self.samples]
        conns = [s["connections"] for s in self.samples]
        half = len(rss) // 2
        return {
            "minutes": self.minutes,
            "writers": self.writers_n,
            "waiters": self.waiters_n,
            "faults": FAULTS,
            "soak_seconds": round(soak_seconds, 1),
            "waits": len(self.waits),
            "wait_outcomes": dict(outcomes),
            "wrong_examples": wrong,
            "wait_seconds_p50": round(quantile(durations, 0.5), 3),
            "wait_seconds_p95": round(quantile(durations, 0.95), 3),
            "wait_seconds_max": round(max(durations, default=math.nan), 3),
            "sdk_requests": self.requests,
            "sdk_requests_per_s": round(self.requests / soak_seconds, 1),
            "sdk_retries": dict(self.retries),
            "writer": dict(writer_figures),
            "store_rows_fault_free_count": total,
            "walk_rows": len(walked),
            "walk_seconds": round(walk_seconds, 2),
            "lost_by_sdk": total - len(ids),
            "duplicated_by_sdk": len(walked) - len(ids),
            "unknown_rows": sum(1 for key in in_store if key not in records),
            "samples": self.samples,
            "rss_mb_first_half_max": max(rss[:half], default=math.nan),
            "rss_mb_second_half_max": max(rss[half:], default=math.nan),
            "connections_min_max": [min(conns, default=0), max(conns, default=0)],
        }

    @staticmethod
    def _judge(wait: WaitRecord, records: dict[Key, Written]) -> str:
        recs = [records[(wait.cid, t)] for t in wait.types]
        if wait.outcome == "ok":
            if wait.got == set(wait.types):
                return "ok"
            return "WRONG: returned other events"
        if wait.outcome != "timeout":
            return f"WRONG: {wait.outcome}"
        if any(r.dropped for r in recs):
            return "timeout (writer dropped a batch)"
        if any(r.visible_at is None or r.visible_at > wait.ended for r in recs):
            return "timeout (writer stored after the deadline)"
        return "WRONG: timed out though every event was stored in time"


# -- 100,000 events ---------------------------------------------------------------------------


async def iterate_bulk(
    url: str, conn: multiprocessing.connection.Connection, n: int
) -> dict[str, Any]:
    await set_faults(url, {})
    started = time.monotonic()
    conn.send(("insert", n, BULK_CID))
    conn.recv()
    planted = time.monotonic() - started
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    async with AsyncAuditClient(base_url=url) as client:
        await client.query_audit_events(correlation_id=BULK_CID, limit=1)  # warm up imports
        baseline = rss_mb()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        count = 0
        seen: set[str] = set()
        async for event in client.iter_audit_events(correlation_id=BULK_CID):
            count += 1
            seen.add(str(event.event_id))
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
    return {
        "events": n,
        "planted_seconds": round(planted, 1),
        "iterated": count,
        "unique": len(seen),
        "iterate_seconds": round(seconds, 2),
        "events_per_s": round(count / seconds),
        "rss_baseline_mb": round(baseline, 1),
        "rss_peak_mb": round(peak[0], 1),
        "rss_peak_delta_mb": round(peak[0] - baseline, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0, help="soak duration (5)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--bulk", type=int, default=100_000, help="events to iterate (100000)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    print(f"soak: {args.minutes} min, {args.writers} writers, {args.waiters} waiters, {FAULTS}")
    with served_emulator() as (url, conn):
        print(f"iterating {args.bulk} events ...", flush=True)
        bulk = anyio.run(iterate_bulk, url, conn, args.bulk)  # first, on a fresh heap
        soak = Soak(url, args.minutes, args.writers, args.waiters, args.seed)
        result = anyio.run(soak.run)
        result["bulk"] = bulk
    result["python"] = platform.python_version()

    print(f"\nwaits: {result['waits']} in {result['soak_seconds']} s")
    for outcome, n in sorted(result["wait_outcomes"].items()):
        print(f"  {outcome:<55} {n}")
    print(
        f"  duration p50 {result['wait_seconds_p50']} s, p95 {result['wait_seconds_p95']} s, "
        f"max {result['wait_seconds_max']} s"
    )
    print(
        f"sdk: {result['sdk_requests']} requests ({result['sdk_requests_per_s']}/s), "
        f"retries {result['sdk_retries']}"
    )
    print(f"writer: {result['writer']}")
    print(
        f"store: {result['store_rows_fault_free_count']} rows; walk yielded "
        f"{result['walk_rows']} in {result['walk_seconds']} s; lost by SDK "
        f"{result['lost_by_sdk']}, duplicated by SDK {result['duplicated_by_sdk']}"
    )
    print(
        f"rss MB: first half max {result['rss_mb_first_half_max']}, second half max "
        f"{result['rss_mb_second_half_max']}; connections min/max {result['connections_min_max']}"
    )
    bulk = result["bulk"]
    print(
        f"bulk: {bulk['iterated']} events ({bulk['unique']} unique) in {bulk['iterate_seconds']} s"
        f", peak RSS +{bulk['rss_peak_delta_mb']} MB over {bulk['rss_baseline_mb']} MB"
    )
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    wrong = sum(n for k, n in result["wait_outcomes"].items() if k.startswith("WRONG"))
    if wrong or result["lost_by_sdk"] or result["duplicated_by_sdk"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
