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
