"""Helpers shared by the emulator's tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernaut_audit.emulator import make_event

EVENTS = "/api/v1/audit/events"
BATCH = "/api/v1/audit/events/batch"


def stamp(moment: datetime) -> str:
    """RFC 3339 text of an aware datetime."""
    return moment.isoformat().replace("+00:00", "Z")


def ago(**delta: float) -> str:
    """RFC 3339 text of a moment that far in the past."""
    return stamp(datetime.now(UTC) - timedelta(**delta))


def new_cid() -> str:
    return f"rr-{uuid.uuid4().hex[:12]}"


def event(correlation_id: str, event_type: str = "gateway.signal.received", **kw: Any) -> Any:
    return make_event(correlation_id, event_type, **kw)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


#: A small Data Storage spec of our own: an ``event_data`` union of two payloads, shaped like the
#: service's (a discriminator mapping, one payload declaring ``event_type`` and one not).
PAYLOAD_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "payloads for the emulator's tests", "version": "1"},
    "paths": {},
    "components": {
        "schemas": {
            "AuditEventRequest": {
                "type": "object",
                "properties": {
                    "event_data": {
                        "oneOf": [_ref("SignalPayload"), _ref("PhasePayload")],
                        "discriminator": {
                            "propertyName": "event_type",
                            "mapping": {
                                "gateway.signal.received": "#/components/schemas/SignalPayload",
                                "gateway.crd.created": "#/components/schemas/SignalPayload",
                                "aianalysis.phase.transition": "#/components/schemas/PhasePayload",
                            },
                        },
                    }
                },
            },
            "SignalPayload": {
                "type": "object",
                "required": ["event_type", "signal_name"],
                "properties": {
                    "event_type": {
                        "type": "string",
                        "enum": ["gateway.signal.received", "gateway.crd.created"],
                    },
                    "signal_name": {"type": "string"},
                    "occurrence_count": {"type": "integer", "format": "int32"},
                    "ratio": {"type": "number", "format": "double"},
                    "first_seen": {"type": "string", "format": "date-time"},
                    "fingerprint": {"type": "string", "format": "uuid"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "original_payload": {"type": "object", "additionalProperties": True},
                    "nested": _ref("Nested"),
                    "note": {"type": "string"},
                    "deduplicated": {"type": "boolean"},
                },
            },
            "Nested": {
                "type": "object",
                "properties": {"n": _ref("Nested"), "level": {"type": "integer"}},
            },
            "PhasePayload": {
                "type": "object",
                "required": ["old_phase", "new_phase"],
                "properties": {
                    "old_phase": {"type": "string"},
                    "new_phase": {"type": "string", "enum": ["Investigating", "Analyzing"]},
                },
            },
        }
    },
}
