"""Realistic minimal payloads synthesised from a spec's schemas, and query pages made of them.

Shared by tests/test_codegen.py and tests/benchmarks/bench_decode.py. Each payload holds what
its schema requires (recursively) and nothing else, with the value kinds the server writes.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_SPEC = ROOT.parent / "shared" / "reference" / "data-storage-v1.yaml"


def upstream_spec_path() -> Path | None:
    """The upstream Data Storage spec: env DATA_STORAGE_SPEC, else ../shared/reference/."""
    override = os.environ.get("DATA_STORAGE_SPEC")
    path = Path(override) if override else UPSTREAM_SPEC
    return path if path.is_file() else None


def _deref(spec: dict[str, Any], schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def sample(spec: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    """A minimal valid instance of ``schema``: required members only, first enum values."""
    schema = _deref(spec, schema)
    if not isinstance(schema, dict) or depth > 12:
        return "x"
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = sample(spec, part, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return sample(spec, schema[key][0], depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return next(v for v in schema["enum"] if v is not None)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {
            name: sample(spec, properties.get(name, {}), depth + 1)
            for name in sorted(schema.get("required") or ())
        }
    if kind == "array":
        return [sample(spec, schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-06-01T12:00:00Z"  # the server drops sub-seconds inside event_data
    if fmt == "date":
        return "2026-06-01"
    if fmt == "uuid":
        return str(uuid.UUID(int=depth + 1))
    return "x" * max(int(schema.get("minLength", 1)), 1)


def discriminator_mapping(spec: dict[str, Any]) -> dict[str, str]:
    """``event_type`` → payload schema name, read straight from AuditEventRequest.event_data."""
    union = spec["components"]["schemas"]["AuditEventRequest"]["properties"]["event_data"]
    mapping: dict[str, str] = union["discriminator"]["mapping"]
    return {event_type: ref.rsplit("/", 1)[-1] for event_type, ref in mapping.items()}


def payload_for(spec: dict[str, Any], event_type: str, schema_name: str) -> dict[str, Any]:
    """The payload a service would write for ``event_type``: keys sorted, as the server returns."""
    body = sample(spec, spec["components"]["schemas"][schema_name])
    body["event_type"] = event_type
    return dict(sorted(body.items()))


def envelope(index: int, event_type: str, event_data: dict[str, Any]) -> dict[str, Any]:
    """A stored event as the query returns it."""
    ts = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(milliseconds=index)
    return {
        "event_id": str(uuid.UUID(int=index + 1)),
        "event_timestamp": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "event_date": ts.date().isoformat(),
        "event_type": event_type,
        "version": "1.0",
        "event_category": event_type.split(".", 1)[0],
        "event_action": event_type.rsplit(".", 1)[-1][:50],
        "event_outcome": "success",
        "correlation_id": f"rr-{index % 50:04d}",
        "parent_event_id": None,
        "parent_event_date": None,
        "resource_type": "RemediationRequest",
        "resource_id": f"rr-{index:05d}",
        "severity": "info",
        "actor_id": "service",
        "actor_type": "service",
        "retention_days": 2555,
        "is_sensitive": False,
        "event_hash": "ab" * 32,
        "previous_event_hash": "cd" * 32,
        "legal_hold": False,
        "legal_hold_reason": "",
        "legal_hold_placed_by": "",
        "legal_hold_placed_at": None,
        "event_data": event_data,
    }


def page(events: list[dict[str, Any]]) -> bytes:
    """A query response body holding ``events``."""
    count = len(events)
    pagination = {"limit": max(count, 1), "offset": 0, "total": count, "has_more": False}
    return json.dumps({"data": events, "pagination": pagination}, separators=(",", ":")).encode()


def typed_page_events(spec: dict[str, Any], count: int = 1000) -> list[dict[str, Any]]:
    """``count`` stored events cycling through every event type of the spec's mapping."""
    mapping = discriminator_mapping(spec)
    payloads = {t: payload_for(spec, t, name) for t, name in sorted(mapping.items())}
    types = sorted(payloads)
    if count < len(types):
        raise ValueError(f"{count} events cannot cover {len(types)} event types")
    return [
        envelope(i, types[i % len(types)], payloads[types[i % len(types)]]) for i in range(count)
    ]
