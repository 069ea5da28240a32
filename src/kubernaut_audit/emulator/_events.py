"""The write path (validate, fill defaults, normalise) and the read path (render) of events."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from pydantic import ConfigDict, TypeAdapter, ValidationError

from kubernaut_audit._generated import models as _models
from kubernaut_audit._generated.models import AuditEventRequest

from ._times import format_midnight, format_timestamp, to_micros

DEFAULT_RETENTION_DAYS: Final = 2555
MAX_EVENT_DATA_BYTES: Final = 256 * 1024
MAX_EVENT_DATA_DEPTH: Final = 10
PAST_WINDOW: Final = timedelta(days=7)
FUTURE_WINDOW: Final = timedelta(minutes=60)
_SERVICE_ACCOUNT_PREFIX: Final = "system:serviceaccount:"
_FRACTION = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})\.\d+([Zz]|[+-]\d{2}:\d{2})",
)

#: Columns in the order the service prints them; ``_OMIT_EMPTY`` ones only when set.
_HEAD = (
    "event_id",
    "event_timestamp",
    "event_date",
    "event_type",
    "version",
    "event_category",
    "event_action",
    "event_outcome",
    "correlation_id",
    "parent_event_id",
    "parent_event_date",
)
_OMIT_EMPTY = (
    "resource_type",
    "resource_id",
    "namespace",
    "cluster_id",
    "severity",
    "duration_ms",
    "error_code",
    "error_message",
    "actor_id",
    "actor_type",
    "actor_ip",
)
_TAIL = (
    "retention_days",
    "is_sensitive",
    "event_hash",
    "previous_event_hash",
    "legal_hold",
    "legal_hold_reason",
    "legal_hold_placed_by",
    "legal_hold_placed_at",
)
#: Columns a writer fills, in the order they feed the hash.
WRITTEN_COLUMNS: Final = (
    "event_id",
    "ts_us",
    "event_date",
    "event_type",
    "version",
    "event_category",
    "event_action",
    "event_outcome",
    "correlation_id",
    "parent_event_id",
    "parent_event_date",
    *_OMIT_EMPTY,
    "retention_days",
    "is_sensitive",
    "event_data",
)


class _Incoming(AuditEventRequest):
    # The service ignores top-level members its schema does not declare; the rest of the
    # validation is the generated request model's, in strict mode (no "5" for 5).
    model_config = ConfigDict(extra="ignore")


_Incoming.model_rebuild(_types_namespace=vars(_models))

_ONE: Final = TypeAdapter(_Incoming)
_MANY: Final = TypeAdapter(list[_Incoming])


class Invalid(ValueError):
    """A request the service refuses with 400.

    Without ``field_errors`` it is the validation middleware's opaque refusal; with them, the
    handler's.
    """

    def __init__(self, field_errors: dict[str, str] | None = None, detail: str = "") -> None:
        super().__init__(detail or "invalid request")
        self.field_errors = field_errors
        self.detail = detail


def parse_body(body: bytes, *, many: bool) -> list[AuditEventRequest]:
    """Validate a write body against the generated request model, or raise `Invalid`."""
    try:
        if many:
            return list(_MANY.validate_json(body, strict=True))
        return [_ONE.validate_json(body, strict=True)]
    except ValidationError:
        raise Invalid() from None


def parse_mapping(event: Mapping[str, Any]) -> AuditEventRequest:
    """Validate one event given as a dict (JSON values, or datetimes and UUIDs)."""
    return parse_body(json.dumps(event, default=str).encode(), many=False)[0]


def to_row(
    event: AuditEventRequest, *, event_id: str, user: str | None, now: datetime | None
) -> dict[str, Any]:
    """Build the stored row of an event: defaults filled, event_data normalised.

    ``now`` enables the timestamp window check; `Invalid` carries handler field errors.
    """
    if now is not None:
        if event.event_timestamp < now - PAST_WINDOW:
            raise Invalid({"event_timestamp": "event_timestamp is more than 7 days in the past"})
        if event.event_timestamp > now + FUTURE_WINDOW:
            raise Invalid({"event_timestamp": "event_timestamp is more than 60 minutes ahead"})
    data = event.event_data.model_dump()
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if len(raw.encode()) > MAX_EVENT_DATA_BYTES:
        raise Invalid({"event_data": "event_data exceeds 262144 bytes"})
    if _depth(data) > MAX_EVENT_DATA_DEPTH:
        raise Invalid({"event_data": "event_data nesting exceeds depth 10"})
    person = user if user and not user.startswith(_SERVICE_ACCOUNT_PREFIX) else None
    category = str(event.event_category)
    micros = to_micros(event.event_timestamp)
    parent_date = event.parent_event_date
    severity = event.severity if "severity" in event.model_fields_set else "info"
    return {
        "event_id": event_id,
        "ts_us": micros,
        "event_date": event.event_timestamp.astimezone(UTC).date().isoformat(),
        "event_type": event.event_type,
        "version": event.version,
        "event_category": category,
        "event_action": event.event_action,
        "event_outcome": str(event.event_outcome),
        "correlation_id": event.correlation_id,
        "parent_event_id": str(event.parent_event_id) if event.parent_event_id else None,
        "parent_event_date": (
            parent_date.astimezone(UTC).date().isoformat() if parent_date else None
        ),
        "resource_type": event.resource_type or category,
        "resource_id": event.resource_id or event.correlation_id,
        "namespace": event.namespace,
        "cluster_id": event.cluster_id,
        "severity": severity,
        "duration_ms": event.duration_ms,
        "error_code": event.error_code,
        "error_message": event.error_message,
        "actor_id": event.actor_id or (person or f"{category}-service"),
        "actor_type": event.actor_type or ("user" if person else "service"),
        "actor_ip": event.actor_ip,
        "retention_days": (
            event.retention_days
            if event.retention_days is not None and event.retention_days > 0
            else DEFAULT_RETENTION_DAYS
        ),
        "is_sensitive": bool(event.is_sensitive),
        "event_data": encode_data(data),
    }


def encode_data(data: Mapping[str, Any]) -> str:
    """Normalise ``event_data`` as the service's round trip through Go and jsonb does.

    Keys come out sorted, numbers pass through float64 and date-time strings lose their
    sub-seconds. The service also drops keys its typed payload schemas do not declare; the
    emulator cannot know those schemas (and must not refuse unknown event types), so it keeps
    every key.
    """
    return json.dumps(_normalise(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number) and number.is_integer() and abs(number) < 1e21:
            return int(number)
        return number
    if isinstance(value, str):
        return _FRACTION.sub(r"\1\2", value)
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def render(row: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of a stored row, fields in the service's order, empty ones omitted.

    ``event_data`` stays the stored JSON text under that key; `dump_event` splices it in.
    """
    out: dict[str, Any] = {}
    for name in _HEAD:
        out[name] = row.get(name)
    out["event_timestamp"] = format_timestamp(row["ts_us"])
    if row["parent_event_date"] is not None:
        out["parent_event_date"] = format_midnight(date.fromisoformat(row["parent_event_date"]))
    for name in _OMIT_EMPTY:
        value = row[name]
        if value is not None and value != "":
            out[name] = value
    for name in _TAIL:
        out[name] = row[name]
    out["is_sensitive"] = bool(row["is_sensitive"])
    out["legal_hold"] = bool(row["legal_hold"])
    out["event_data"] = row["event_data"]
    return out


def dump_event(event: Mapping[str, Any]) -> str:
    """Encode a rendered event compactly, splicing its stored ``event_data`` text in."""
    head = {key: value for key, value in event.items() if key != "event_data"}
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)
    return f'{text[:-1]},"event_data":{event["event_data"]}}}'
