"""How fast the emulator answers over loopback: is it ever the bottleneck of a test suite?

Serves the emulator with uvicorn in a background thread and, from a separate process (so the
load generator does not share the server's GIL), measures
(a) queries per second for one correlation id holding 50 events, from concurrent clients, and
(b) events per second written in batches of 100.
Prints a table, then one JSON line. Run: ``.venv/bin/python tests/benchmarks/bench_emulator.py``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import time
import uuid

import anyio
import httpx

from kubernaut_audit.emulator import Emulator, make_event

EVENTS = "/api/v1/audit/events"
BATCH = "/api/v1/audit/events/batch"


async def queries_per_second(url: str, correlation_id: str, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        params: dict[str, str | int] = {"correlation_id": correlation_id, "limit": 50}
        async with httpx.AsyncClient(base_url=url) as http:
            while time.perf_counter() < deadline:
                response = await http.get(EVENTS, params=params)
                assert len(response.json()["data"]) == 50
                done += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(worker)
    return done / (time.perf_counter() - start)


async def events_per_second(url: str, batches: int, size: int) -> float:
    payloads = [
        json.dumps([make_event(f"bench-{uuid.uuid4().hex[:8]}") for _ in range(size)]).encode()
        for _ in range(batches)
    ]
    async with httpx.AsyncClient(base_url=url) as http:
        start = time.perf_counter()
        for payload in payloads:
            response = await http.post(
                BATCH, content=payload, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 201, response.text
        elapsed = time.perf_counter() - start
    return batches * size / elapsed


def _run_queries(url: str, correlation_id: str, clients: int, seconds: float) -> float:
    return anyio.run(queries_per_second, url, correlation_id, clients, seconds)


def _run_writes(url: str, batches: int, size: int) -> float:
    return anyio.run(events_per_second, url, batches, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()

    emulator = Emulator()
    correlation_id = f"bench-{uuid.uuid4().hex[:8]}"
    emulator.insert_events([make_event(correlation_id) for _ in range(50)])
    spawn = multiprocessing.get_context("spawn")
    with (
        emulator.serve_in_thread() as url,
        concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as load,
    ):
        qps = load.submit(_run_queries, url, correlation_id, args.clients, args.seconds).result()
        eps = load.submit(_run_writes, url, args.batches, 100).result()
    emulator.close()

    rows = [
        (f"queries/s, 50-event page, {args.clients} clients", f"{qps:,.0f}"),
        ("events/s written, batches of 100", f"{eps:,.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>8}")
    print(
        json.dumps(
            {
                "benchmark": "emulator",
                "queries_per_second": round(qps, 1),
                "query_clients": args.clients,
                "events_per_second": round(eps, 1),
                "batch_size": 100,
            }
        )
    )


if __name__ == "__main__":
    main()
