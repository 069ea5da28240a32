"""The write path (check, decode, fill defaults, normalise) and the read path (render) of events."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from kubernaut_audit._generated.models import EventCategory, EventOutcome

from ._schema import (
    Schema,
    SchemaViolation,
    Spec,
    decode,
    discriminated,
    load_document,
    parse_date_time,
    union_members,
    validate,
)
from ._times import format_midnight, format_timestamp, to_micros
from ._wire import go_dumps, go_dumps_plain

DEFAULT_RETENTION_DAYS: Final = 2555
MAX_EVENT_DATA_BYTES: Final = 256 * 1024
MAX_EVENT_DATA_DEPTH: Final = 10
PAST_WINDOW: Final = timedelta(days=7)
FUTURE_WINDOW: Final = timedelta(minutes=60)
_SERVICE_ACCOUNT_PREFIX: Final = "system:serviceaccount:"
_FRACTION = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})\.\d+([Zz]|[+-]\d{2}:\d{2})",
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
#: Below this an integral float64's shortest digits are its exact value: printed as an int.
_EXACT_DIGITS: Final = 1e16

_STRING: Final = {"type": "string"}
_OPTIONAL_STRING: Final = {"type": "string", "nullable": True}
#: ``AuditEventRequest`` as our spec (openapi/) declares it, ``event_data`` aside: the shapes of
#: payloads are the business of `Payloads`. tests/emulator check it against the spec.
REQUEST_SCHEMA: Final[Schema] = {
    "type": "object",
    "required": [
        "version",
        "event_type",
        "event_timestamp",
        "event_category",
        "event_action",
        "event_outcome",
        "correlation_id",
        "event_data",
    ],
    "properties": {
        "version": {"type": "string", "minLength": 1, "maxLength": 20},
        "event_type": {"type": "string", "minLength": 1, "maxLength": 100},
        "event_timestamp": {"type": "string", "format": "date-time"},
        "event_category": {
            "type": "string",
            "minLength": 1,
            "maxLength": 50,
            "enum": [member.value for member in EventCategory.__members__.values()],
        },
        "event_action": {"type": "string", "minLength": 1, "maxLength": 50},
        "event_outcome": {
            "type": "string",
            "enum": [member.value for member in EventOutcome.__members__.values()],
        },
        "actor_type": _STRING,
        "actor_id": _STRING,
        "actor_ip": {"type": "string", "maxLength": 45},
        "resource_type": _STRING,
        "resource_id": _STRING,
        "correlation_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "parent_event_id": {"type": "string", "format": "uuid", "nullable": True},
        "namespace": _OPTIONAL_STRING,
        "cluster_id": _OPTIONAL_STRING,
        "severity": _OPTIONAL_STRING,
        "duration_ms": {"type": "integer", "nullable": True},
        "parent_event_date": {"type": "string", "format": "date-time", "nullable": True},
        "error_code": _OPTIONAL_STRING,
        "error_message": _OPTIONAL_STRING,
        "retention_days": {"type": "integer", "nullable": True},
        "is_sensitive": {"type": "boolean", "nullable": True},
        "event_data": {"type": "object"},
    },
}
#: Our spec's ``AuditEventData``: what the emulator checks of a payload without a spec to go by.
OPEN_PAYLOAD_SCHEMA: Final[Schema] = {
    "type": "object",
    "additionalProperties": True,
    "required": ["event_type"],
    "properties": {"event_type": _STRING},
}
_ENVELOPE: Final = Spec({})

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


class Payloads:
    """What the emulator knows of ``event_data`` shapes: a spec's discriminated union, or nothing.

    With a spec, a payload must name a known ``event_type`` and fit its schema, and members the
    schema does not declare are dropped, as the service does. Without one, any payload with an
    ``event_type`` is taken whole (the emulator cannot know the event types of your Data Storage
    version).

    Args:
        source: An OpenAPI document (mapping, JSON or YAML file) whose ``AuditEventRequest``
            declares ``event_data`` as a ``oneOf`` discriminated on ``event_type``.
    """

    def __init__(self, source: str | Path | Mapping[str, Any] | None = None) -> None:
        self.spec = Spec(load_document(source)) if source is not None else None
        self._union: Schema = OPEN_PAYLOAD_SCHEMA
        if self.spec is not None:
            self._union = _event_data_union(self.spec)

    @property
    def event_types(self) -> frozenset[str] | None:
        """The known event types, or None when any is taken."""
        if self.spec is None:
            return None
        return frozenset(union_members(self._union))

    def check(self, value: Any, where: str) -> None:
        """The middleware's check of a payload; raises SchemaViolation."""
        validate(self.spec or _ENVELOPE, self._union, value, where)

    def decode(self, value: dict[str, Any], where: str) -> dict[str, Any]:
        """The payload as the typed decoder hands it on; raises DecodeFailure."""
        if self.spec is None:
            return {key: _strip_fractions(item) for key, item in value.items()}
        chosen = discriminated(self.spec, self._union, value, where)
        assert chosen is not None  # check() passed
        decoded = decode(self.spec, chosen, value, where)
        # The discriminator is written by the union's encoder, declared by the schema or not.
        return {"event_type": value["event_type"], **decoded}


def _event_data_union(spec: Spec) -> Schema:
    try:
        request = spec.resolve(spec.document["components"]["schemas"]["AuditEventRequest"])
        union = spec.resolve(request["properties"]["event_data"])
        union["discriminator"]["propertyName"]
    except (KeyError, TypeError):
        raise ValueError(
            "the spec has no AuditEventRequest.event_data union discriminated on event_type"
        ) from None
    return union


@dataclasses.dataclass(frozen=True)
class Incoming:
    """One event as the typed decoder hands it to the handler.

    Attributes:
        fields: The envelope members the writer sent (``event_data`` apart), decoded.
        timestamp: ``event_timestamp``, parsed.
        data: ``event_data`` as decoded (before the float64 round trip).
    """

    fields: Mapping[str, Any]
    timestamp: datetime
    data: dict[str, Any]

    @property
    def correlation_id(self) -> str:
        return str(self.fields["correlation_id"])

    @functools.cached_property
    def stored_data(self) -> str:
        """``event_data`` as the service stores and reads it back (`encode_data`)."""
        return encode_data(self.data)

    @property
    def parent_set(self) -> bool:
        """Whether ``parent_event_id`` was sent at all (null counts: the zero UUID)."""
        return "parent_event_id" in self.fields


class Refused(ValueError):
    """A handler-level refusal of one event: ``reason`` is ``window``, ``event_data`` (too
    large or too deep) or ``unconvertible`` (a number no float64 holds)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_json(body: bytes) -> Any:
    """The request body as JSON values, as Go decodes it (a lone surrogate escape becomes
    U+FFFD); raises SchemaViolation when it is not JSON."""
    try:
        value = json.loads(body, parse_constant=_not_json)
    except ValueError:
        raise SchemaViolation("the body is not JSON") from None
    return _replace_surrogates(value) if _ESCAPED_SURROGATE.search(body) else value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    return value


def check_events(value: Any, payloads: Payloads, *, many: bool) -> list[dict[str, Any]]:
    """The middleware's check of a write body (one event or an array of them).

    Returns the events with defaults filled; raises SchemaViolation.
    """
    items = value if many else [value]
    if many and not isinstance(value, list):
        raise SchemaViolation("$: not an array")
    for index, item in enumerate(items):
        where = f"$[{index}]" if many else "$"
        validate(_ENVELOPE, REQUEST_SCHEMA, item, where)
        payloads.check(item["event_data"], f"{where}.event_data")
    return list(items)


def decode_events(items: Sequence[dict[str, Any]], payloads: Payloads) -> list[Incoming]:
    """What the typed decoder makes of checked events; raises DecodeFailure."""
    events = []
    for index, item in enumerate(items):
        where = f"$[{index}]"
        fields = {
            name: decode(_ENVELOPE, REQUEST_SCHEMA["properties"][name], value, f"{where}.{name}")
            for name, value in item.items()
            if name in REQUEST_SCHEMA["properties"] and name != "event_data"
        }
        timestamp = parse_date_time(item["event_timestamp"], f"{where}.event_timestamp")
        data = payloads.decode(item["event_data"], f"{where}.event_data")
        events.append(Incoming(fields, timestamp, data))
    return events


def parse_mapping(event: Mapping[str, Any], payloads: Payloads) -> Incoming:
    """Check and decode one event given as a dict (JSON values, or datetimes and UUIDs).

    Raises ValueError (SchemaViolation or DecodeFailure) naming the failure.
    """
    value = parse_json(json.dumps(event, default=str).encode())
    [checked] = check_events(value, payloads, many=False)
    [incoming] = decode_events([checked], payloads)
    return incoming


def screen(event: Incoming, *, now: datetime | None) -> None:
    """The write handler's own checks of one event; raises `Refused`.

    ``now`` enables the timestamp window (the last 7 days to 60 minutes ahead).
    """
    if now is not None and not now - PAST_WINDOW <= event.timestamp <= now + FUTURE_WINDOW:
        raise Refused("window")
    try:
        stored = event.stored_data
    except OverflowError:
        raise Refused("unconvertible") from None
    # Measured on the stored form: the service measures what its decoder re-encodes, which
    # differs only in how integers past 2**53 are spelt.
    if len(stored.encode()) > MAX_EVENT_DATA_BYTES or _depth(event.data) > (MAX_EVENT_DATA_DEPTH):
        raise Refused("event_data")


def to_row(
    event: Incoming, *, event_id: str, user: str | None, parent_date: date | None = None
) -> dict[str, Any]:
    """Build the stored row of an event: defaults filled, ``event_data`` normalised.

    ``user`` is the caller's identity (``X-Auth-Request-User``); ``parent_date`` the parent
    row's date, when the parent was looked up.
    """
    fields = event.fields
    person = user if user and not user.startswith(_SERVICE_ACCOUNT_PREFIX) else None
    category = str(fields["event_category"])
    micros = to_micros(event.timestamp)
    retention = fields.get("retention_days")
    return {
        "event_id": event_id,
        "ts_us": micros,
        "event_date": event.timestamp.astimezone(UTC).date().isoformat(),
        "event_type": fields["event_type"],
        "version": fields["version"],
        "event_category": category,
        "event_action": fields["event_action"],
        "event_outcome": fields["event_outcome"],
        "correlation_id": fields["correlation_id"],
        "parent_event_id": fields.get("parent_event_id"),
        "parent_event_date": _parent_date(fields, parent_date),
        "resource_type": fields.get("resource_type", category),
        "resource_id": fields.get("resource_id", fields["correlation_id"]),
        "namespace": fields.get("namespace"),
        "cluster_id": fields.get("cluster_id"),
        "severity": fields.get("severity", "info"),
        "duration_ms": fields.get("duration_ms"),
        "error_code": fields.get("error_code"),
        "error_message": fields.get("error_message"),
        "actor_id": fields.get("actor_id", person or f"{category}-service"),
        "actor_type": fields.get("actor_type", "user" if person else "service"),
        "actor_ip": fields.get("actor_ip"),
        "retention_days": (
            retention if retention is not None and retention > 0 else DEFAULT_RETENTION_DAYS
        ),
        "is_sensitive": bool(fields.get("is_sensitive")),
        "event_data": event.stored_data,
    }


def _parent_date(fields: Mapping[str, Any], looked_up: date | None) -> str | None:
    if looked_up is not None:
        return looked_up.isoformat()
    sent = fields.get("parent_event_date")
    # A DATE column keeps the calendar day of the time as sent, in its own offset.
    return datetime.fromisoformat(sent).date().isoformat() if sent is not None else None


def inet(text: str | None) -> str | None:
    """``actor_ip`` as PostgreSQL's inet prints it back (a host keeps no /32 or /128)."""
    if not text:
        return text
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        return text
    if interface.network.prefixlen == interface.max_prefixlen:
        return str(interface.ip)
    return str(interface)


def encode_data(data: Mapping[str, Any]) -> str:
    """``event_data`` as the service stores and reads it back (through jsonb and a Go map).

    Keys come out sorted and numbers as float64.
    """
    odd: list[float] = []
    normal = _normalise(data, odd)
    # Python's C encoder prints these numbers as Go does; the rare others need Go's formatting.
    return go_dumps(normal) if odd else go_dumps_plain(normal)


def _normalise(value: Any, odd: list[float]) -> Any:
    """Keys sorted, numbers through float64 (integral ones as ints); floats whose Python form
    differs from Go's are collected in ``odd``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        if number.is_integer() and abs(number) < _EXACT_DIGITS:
            return int(number)  # also turns jsonb's absent -0 into 0
        if not 1e-4 <= abs(number) < 1e16:
            odd.append(number)
        return number
    if isinstance(value, dict):
        return {key: _normalise(value[key], odd) for key in sorted(value)}
    if isinstance(value, list):
        return [_normalise(item, odd) for item in value]
    return value


def _strip_fractions(value: Any) -> Any:
    """Without payload schemas, treat every date-time-looking string as a typed date-time."""
    if isinstance(value, str):
        return _FRACTION.sub(r"\1\2", value) if "." in value and ":" in value else value
    if isinstance(value, dict):
        return {key: _strip_fractions(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip_fractions(item) for item in value]
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
    """Encode a rendered event as Go does, splicing its stored ``event_data`` text in."""
    head = go_dumps_plain({key: value for key, value in event.items() if key != "event_data"})
    return f'{head[:-1]},"event_data":{event["event_data"]}}}'
