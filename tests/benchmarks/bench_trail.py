"""Audit-trail figures: offline chain verification speed, and export iteration memory.

Run: ``.venv/bin/python tests/benchmarks/bench_trail.py [--events N] [--export N]``. Prints a
table and one JSON line.

* **Offline verification** of one 10,000-event chain (goal: under 1 s here), from events as the
  client returns them (``AuditEvent`` models) and as raw JSON objects, unkeyed and keyed.
* **Export iteration** of 100,000 events through ``iter_export`` against the emulator served
  from a child process, sampling this process's RSS (goal: bounded, as ``iter_audit_events``:
  the peak does not grow with the number of events). A 10,000-event run is measured too, so
  the two peaks can be compared.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernaut_audit import AuditClient, AuditEvent, compute_event_hash, verify_event_chain

KEY = "bench-hash-key"
EXPORT_CID = "rr-bench-export"


def event_data(rng: random.Random, n: int) -> dict[str, Any]:
    """A payload of a few hundred bytes with nesting, floats and HTML characters."""
    return {
        "event_type": "gateway.signal.received",
        "signal_type": "alert",
        "signal_name": rng.choice(["HighCPU", "PodCrashLooping", "DiskPressure"]),
        "namespace": f"team-{rng.randint(1, 40)}",
        "fingerprint": uuid.UUID(int=rng.getrandbits(128)).hex,
        "signal_labels": {"app": "checkout", "pod": f"web-{n}", "severity": "critical"},
        "signal_annotations": {"summary": "p99 > 2s <for 5m> & rising"},
        "occurrence_count": n,
        "score": rng.random(),
    }


def chain(count: int, *, key: str | None = None) -> list[dict[str, Any]]:
    """``count`` events of one correlation id, hashed and linked as Data Storage writes them."""
    rng = random.Random(7)
    start = datetime(2026, 1, 2, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    previous = ""
    for n in range(count):
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_timestamp": (start + timedelta(milliseconds=n)).isoformat(),
            "event_date": "2026-01-02",
            "event_type": "gateway.signal.received",
            "version": "1.0",
            "event_category": "gateway",
            "event_action": "received",
            "event_outcome": "success",
            "correlation_id": "rr-bench",
            "parent_event_id": None,
            "parent_event_date": None,
            "resource_type": "gateway",
            "resource_id": "rr-bench",
            "severity": "info",
            "actor_id": "gateway-service",
            "actor_type": "service",
            "retention_days": 2555,
            "is_sensitive": False,
            "legal_hold": False,
            "legal_hold_reason": "",
            "legal_hold_placed_by": "",
            "legal_hold_placed_at": None,
            "event_data": event_data(rng, n),
        }
        event["previous_event_hash"] = previous
        event["event_hash"] = previous = compute_event_hash(event, previous, key=key)
        events.append(event)
    return events


def best_of(rounds: int, fn: Callable[[], Any]) -> tuple[float, float]:
    """The best wall-clock and the best CPU time of ``rounds`` calls (on a shared machine the
    CPU time is the steadier figure)."""
    wall, cpu = [], []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return min(wall), min(cpu)


def bench_verify(count: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for keyed in (False, True):
        key = KEY if keyed else None
        raw = chain(count, key=key)
        models = [AuditEvent.model_validate(e) for e in raw]
        random.Random(3).shuffle(models)  # pages arrive newest first; the walk sorts
        for source, events in (("AuditEvent models", models), ("JSON objects", raw)):
            result = verify_event_chain(events, key=key)
            assert result.intact, result
            seconds, cpu = best_of(rounds, functools.partial(verify_event_chain, events, key=key))
            rows.append(
                {
                    "case": f"{count} events, {source}, {'hmac-sha256' if keyed else 'unkeyed'}",
                    "seconds": round(seconds, 3),
                    "cpu_seconds": round(cpu, 3),
                    "events_per_s": round(count / seconds),
                    "events_per_cpu_s": round(count / cpu),
                }
            )
    return rows


# -- export iteration memory ----------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def serve(conn: multiprocessing.connection.Connection) -> None:
    """The emulator in a process of its own, so that its memory is not ours."""
    from kubernaut_audit.emulator import Emulator, make_event

    emulator = Emulator()
    with emulator.serve_in_thread() as url:
        conn.send(url)
        while True:
            message = conn.recv()
            if message is None:
                break
            count, cid = message
            start = datetime.now(UTC) - timedelta(days=1)
            for first in range(0, count, 1000):
                batch = []
                for n in range(first, min(first + 1000, count)):
                    event = make_event(cid, "gateway.signal.received")
                    event["event_timestamp"] = (start + timedelta(milliseconds=n)).isoformat()
                    batch.append(event)
                emulator.insert_events(batch)
            conn.send(count)
    emulator.close()


def bench_export(
    conn: multiprocessing.connection.Connection, url: str, count: int, planted: int
) -> dict[str, Any]:
    cid = f"{EXPORT_CID}-{count}"
    started = time.monotonic()
    conn.send((count, cid))
    conn.recv()
    plant_seconds = time.monotonic() - started
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    with AuditClient(base_url=url, user="bench") as client:
        client.export_audit_events(correlation_id=cid, limit=1)  # warm up imports and pool
        baseline = rss_mb()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        events = pages = 0
        for page in client.iter_export(correlation_id=cid, page_size=1000):
            pages += 1
            events += len(page.events)
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
    return {
        "events": count,
        "exported": events,
        "pages": pages,
        "plant_seconds": round(plant_seconds, 1),
        "export_seconds": round(seconds, 1),
        "events_per_s": round(events / seconds),
        "rss_baseline_mb": round(baseline, 1),
        "rss_peak_mb": round(peak[0], 1),
        "rss_peak_delta_mb": round(peak[0] - baseline, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000, help="chain length (10000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, best kept (5)")
    parser.add_argument("--export", type=int, default=100_000, help="events to export (100000)")
    args = parser.parse_args(argv)

    verify = bench_verify(args.events, args.rounds)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(child,))
    server.start()
    try:
        url = parent.recv()
        exports = [bench_export(parent, url, n, 0) for n in (args.export // 10, args.export)]
    finally:
        parent.send(None)
        server.join(timeout=30)

    load = os.getloadavg()
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"\n{'offline verification':<52} {'wall s':>7} {'events/s':>9} {'CPU s':>6} "
        f"{'events/CPU s':>13}"
    )
    for row in verify:
        print(
            f"{row['case']:<52} {row['seconds']:>7} {row['events_per_s']:>9} "
            f"{row['cpu_seconds']:>6} {row['events_per_cpu_s']:>13}"
        )
    print(
        f"\n{'export iteration':<18} {'pages':>6} {'seconds':>8} {'events/s':>9} "
        f"{'RSS base MB':>12} {'peak MB':>8} {'peak delta MB':>14}"
    )
    for row in exports:
        print(
            f"{row['exported']:>10} events {row['pages']:>6} {row['export_seconds']:>8} "
            f"{row['events_per_s']:>9} {row['rss_baseline_mb']:>12} {row['rss_peak_mb']:>8} "
            f"{row['rss_peak_delta_mb']:>14}"
        )
    slowest_wall = max(row["seconds"] for row in verify)
    slowest_cpu = max(row["cpu_seconds"] for row in verify)
    print(
        f"\ngoal: verification of {args.events} events under 1 s: wall "
        f"{'met' if slowest_wall < 1 else 'NOT met'} (slowest {slowest_wall} s), CPU "
        f"{'met' if slowest_cpu < 1 else 'NOT met'} (slowest {slowest_cpu} s); export peak delta "
        f"{exports[0]['rss_peak_delta_mb']} MB at {exports[0]['events']} events vs "
        f"{exports[1]['rss_peak_delta_mb']} MB at {exports[1]['events']}"
    )
    summary = {
        "load_average": [round(x, 2) for x in load],
        "verification": verify,
        "export": exports,
        "verification_median_events_per_s": round(
            statistics.median(r["events_per_s"] for r in verify)
        ),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
