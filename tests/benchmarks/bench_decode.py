"""Decode cost of a 1,000-event query page: json.loads vs the SDK's typed decode, and end to end.

Run: ``.venv/bin/python tests/benchmarks/bench_decode.py [--rounds N]``. Prints a table and one
JSON line. Goal: the typed decode within 1.5x of ``json.loads`` on the same body.

Typed payloads (issue 7): when the upstream spec is present (``../shared/reference/`` or env
``DATA_STORAGE_SPEC``) and the ``codegen`` extra is installed, payload models are generated into
a temporary directory and the decode with ``payloads=`` is measured, on this page and on a
1,000-event page covering every upstream event type. Goal: <= 2x ``json.loads``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio

from kubernaut_audit import AsyncAuditClient, RetryPolicy

# The adapter the client decodes pages with.
from kubernaut_audit._operations import QUERY_ADAPTER as _QUERY_ADAPTER

EVENT_TYPES = [
    ("gateway.signal.received", "gateway", "received"),
    ("signalprocessing.enrichment.completed", "signalprocessing", "enriched"),
    ("aianalysis.analysis.completed", "analysis", "completed"),
    ("workflowexecution.workflow.started", "workflowexecution", "started"),
    ("orchestrator.lifecycle.transitioned", "orchestration", "transitioned"),
    ("notification.message.sent", "notification", "sent"),
]


def event_data(rng: random.Random, event_type: str) -> dict[str, Any]:
    # A few hundred bytes of nested payload, keys sorted as the server returns them.
    data: dict[str, Any] = {
        "event_type": event_type,
        "namespace": f"team-{rng.randint(1, 40)}",
        "signal_name": rng.choice(["HighCPU", "PodCrashLooping", "DiskPressure", "OOMKilled"]),
        "fingerprint": uuid.UUID(int=rng.getrandbits(128)).hex,
        "labels": {
            "app": rng.choice(["checkout", "payments", "search"]),
            "severity": rng.choice(["critical", "warning"]),
            "pod": f"web-{rng.randint(1000, 9999)}-abcde",
        },
        "duration_seconds": round(rng.uniform(0.1, 90.0), 3),
        "attempt": rng.randint(1, 5),
        "resources": [{"kind": "Deployment", "name": f"svc-{i}"} for i in range(rng.randint(1, 3))],
    }
    return dict(sorted(data.items()))


def build_page(count: int = 1000, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    events = []
    for i in range(count):
        event_type, category, action = EVENT_TYPES[i % len(EVENT_TYPES)]
        ts = start - timedelta(microseconds=rng.randint(0, 10**11))
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "event_timestamp": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "event_date": ts.date().isoformat(),
            "event_type": event_type,
            "version": "1.0",
            "event_category": category,
            "event_action": action,
            "event_outcome": rng.choice(["success", "success", "failure", "pending"]),
            "correlation_id": f"rr-{rng.randint(1, 50):04d}",
            "parent_event_id": None,
            "parent_event_date": None,
            "resource_type": category,
            "resource_id": f"rr-{i:05d}",
            "namespace": "kubernaut-system",
            "severity": "info",
            "actor_id": f"{category}-service",
            "actor_type": "service",
            "retention_days": 2555,
            "is_sensitive": False,
            "event_hash": uuid.UUID(int=rng.getrandbits(128)).hex * 2,
            "previous_event_hash": uuid.UUID(int=rng.getrandbits(128)).hex * 2,
            "legal_hold": False,
            "legal_hold_reason": "",
            "legal_hold_placed_by": "",
            "legal_hold_placed_at": None,
            "event_data": event_data(rng, event_type),
        }
        events.append(event)
    body = {
        "data": events,
        "pagination": {"limit": count, "offset": 0, "total": count, "has_more": False},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def median_ms(fn: Callable[[], object], rounds: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


class _Handler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def end_to_end_ms(body: bytes, rounds: int) -> float:
    _Handler.body = body
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"

        async def run() -> float:
            async with AsyncAuditClient(base_url=url, retry=RetryPolicy(attempts=1)) as client:
                samples = []
                for i in range(rounds + 3):
                    started = time.perf_counter()
                    page = await client.query_audit_events(limit=1000)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert len(page) == 1000
                    if i >= 3:  # warm-up: connection set-up and first-use costs
                        samples.append(elapsed)
                return statistics.median(samples)

        return anyio.run(run)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def interleaved_ms(fns: list[Callable[[], object]], rounds: int, warmup: int = 3) -> list[float]:
    """Median ms of each function, run in turn each round: load on the machine hits all alike."""
    samples: list[list[float]] = [[] for _ in fns]
    for i in range(warmup + rounds):
        for fn, out in zip(fns, samples, strict=True):
            started = time.perf_counter()
            fn()
            if i >= warmup:
                out.append((time.perf_counter() - started) * 1000)
    return [statistics.median(s) for s in samples]


def typed_payloads(body: bytes, rounds: int) -> tuple[list[tuple[str, str]], Any]:
    """Rows and JSON for the decode with a registry generated from the upstream spec."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/payload_samples
    import payload_samples

    spec_path = payload_samples.upstream_spec_path()
    if spec_path is None or importlib.util.find_spec("datamodel_code_generator") is None:
        return [("(d) typed payloads", "skipped")], None
    import yaml

    from kubernaut_audit._codegen import render

    with tempfile.TemporaryDirectory() as tmp:
        module_path = Path(tmp) / "bench_ds_payloads.py"
        module_path.write_text(render(spec_path))
        module_spec = importlib.util.spec_from_file_location("bench_ds_payloads", module_path)
        assert module_spec is not None
        assert module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules["bench_ds_payloads"] = module
        module_spec.loader.exec_module(module)
    registry = module.REGISTRY

    def decode_with_registry(data: bytes) -> list[Any]:
        # What the client does per page with payloads=: decode, then hand out the registry.
        events = _QUERY_ADAPTER.validate_json(data).data or []
        registry._attach(events)
        return events

    def decode_and_read(data: bytes) -> None:
        for event in decode_with_registry(data):
            _ = event.payload

    spec = yaml.safe_load(spec_path.read_bytes())
    every = payload_samples.page(payload_samples.typed_page_events(spec, 1000))
    typed = decode_with_registry(every)
    assert all(type(e.payload) is registry[e.event_type] for e in typed)
    loads, plain, same = interleaved_ms(
        [
            lambda: json.loads(body),
            lambda: _QUERY_ADAPTER.validate_json(body),
            lambda: decode_with_registry(body),
        ],
        rounds,
    )
    every_loads, every_plain, every_lazy, every_read = interleaved_ms(
        [
            lambda: json.loads(every),
            lambda: _QUERY_ADAPTER.validate_json(every),
            lambda: decode_with_registry(every),
            lambda: decode_and_read(every),
        ],
        rounds,
    )
    rows = [
        ("(d) decode with payloads= (this page)", f"{same:.2f} ms"),
        ("ratio d/a, measured in turn with a, b (goal <= 2)", f"{same / loads:.2f}x"),
        ("  (a, b in the same rounds)", f"{loads:.2f}/{plain:.2f}"),
        (f"every upstream event type ({len(registry)}), page", f"{len(every) / 1024:.0f} KiB"),
        ("(e) json.loads", f"{every_loads:.2f} ms"),
        ("(f) SDK decode, no registry", f"{every_plain:.2f} ms"),
        ("(g) decode with payloads=", f"{every_lazy:.2f} ms"),
        ("ratio g/e (goal <= 2)", f"{every_lazy / every_loads:.2f}x"),
        ("(h) (g) + read every typed payload", f"{every_read:.2f} ms"),
        ("ratio h/e", f"{every_read / every_loads:.2f}x"),
    ]
    summary = {
        "event_types": len(registry),
        "same_page_json_loads_ms": round(loads, 3),
        "same_page_plain_decode_ms": round(plain, 3),
        "same_page_decode_ms": round(same, 3),
        "same_page_ratio": round(same / loads, 3),
        "every_type_body_bytes": len(every),
        "every_type_json_loads_ms": round(every_loads, 3),
        "every_type_decode_ms": round(every_plain, 3),
        "every_type_registry_decode_ms": round(every_lazy, 3),
        "every_type_registry_ratio": round(every_lazy / every_loads, 3),
        "every_type_read_all_ms": round(every_read, 3),
        "every_type_read_all_ratio": round(every_read / every_loads, 3),
        "goal_met": max(same / loads, every_lazy / every_loads) <= 2.0,
    }
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    body = build_page()
    page = _QUERY_ADAPTER.validate_json(body)
    assert page.data is not None
    assert len(page.data) == 1000
    loads = median_ms(lambda: json.loads(body), args.rounds)
    typed = median_ms(lambda: _QUERY_ADAPTER.validate_json(body), args.rounds)
    e2e = end_to_end_ms(body, args.rounds)
    ratio = typed / loads
    payload_rows, payload_summary = typed_payloads(body, args.rounds)
    rows = [
        ("body size", f"{len(body) / 1024:.0f} KiB"),
        ("(a) json.loads", f"{loads:.2f} ms"),
        ("(b) SDK decode (TypeAdapter.validate_json)", f"{typed:.2f} ms"),
        ("ratio b/a (goal <= 1.5)", f"{ratio:.2f}x"),
        ("(c) end to end over loopback HTTP", f"{e2e:.2f} ms"),
        *payload_rows,
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")
    print(
        json.dumps(
            {
                "events": 1000,
                "body_bytes": len(body),
                "json_loads_ms": round(loads, 3),
                "sdk_decode_ms": round(typed, 3),
                "ratio": round(ratio, 3),
                "end_to_end_ms": round(e2e, 3),
                "goal_met": ratio <= 1.5,
                "typed_payloads": payload_summary,
            }
        )
    )


if __name__ == "__main__":
    main()
