"""Query filters and page bounds: validated before any request, rendered as query parameters."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from ._config import MAX_PAGE_LIMIT
from ._generated.models import EventCategory, EventOutcome

TimeBound = datetime | timedelta | str

_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DAYS = re.compile(r"^\d+d$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DETAIL_KEY = re.compile(r"^[a-zA-Z0-9_]+$")


def format_time_bound(name: str, value: TimeBound) -> str:
    """Render ``since``/``until`` in a form the server accepts, refusing anything ambiguous."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name} must be timezone-aware (a naive datetime is ambiguous); "
                "use datetime.now(UTC) or attach a tzinfo"
            )
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds <= 0:
            raise ValueError(f"{name} as a timedelta must be positive, got {value!r}")
        return f"{math.ceil(seconds)}s"
    if isinstance(value, str):
        text = value.strip()
        if any(p.match(text) for p in (_GO_DURATION, _DAYS, _RFC3339, _LOCAL_DATETIME, _DATE)):
            return text
        raise ValueError(
            f"{name}={value!r} is not a form the server accepts: a duration such as '90m', '24h' "
            "or '7d', an RFC 3339 time, 'YYYY-MM-DDTHH:MM:SS' (UTC) or 'YYYY-MM-DD'"
        )
    raise TypeError(f"{name} must be a datetime, timedelta or str, not {type(value).__name__}")


class AuditFilters(TypedDict, total=False):
    """The query filters, as keyword arguments. All optional; they combine with AND."""

    correlation_id: str
    event_type: str
    event_category: str | EventCategory
    event_outcome: str | EventOutcome
    severity: str
    since: TimeBound
    until: TimeBound
    detail_key: str
    detail_value: str


@dataclass(frozen=True, slots=True)
class QueryFilters:
    """Validated query filters (the SDK's; the emulator has its own). Build with
    :func:`make_filters`."""

    correlation_id: str | None = None
    event_type: str | None = None
    event_category: str | None = None
    event_outcome: str | None = None
    severity: str | None = None
    since: str | None = None
    until: str | None = None
    detail_key: str | None = None
    detail_value: str | None = None

    def params(self) -> list[tuple[str, str]]:
        return [(f.name, v) for f in fields(self) if (v := getattr(self, f.name)) is not None]


def _text_filter(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, EventCategory | EventOutcome):
        value = value.value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if value == "" or value.strip() != value:
        # The server reads an empty value as "no filter" and would return every test's events.
        raise ValueError(
            f"{name} must be a non-empty string without surrounding blanks, got {value!r}"
        )
    return value


def make_filters(
    *,
    correlation_id: str | None = None,
    event_type: str | None = None,
    event_category: str | EventCategory | None = None,
    event_outcome: str | EventOutcome | None = None,
    severity: str | None = None,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    detail_key: str | None = None,
    detail_value: str | None = None,
) -> QueryFilters:
    """Validate filters before any request is made."""
    outcome = _text_filter("event_outcome", event_outcome)
    if outcome is not None and outcome not in {o.value for o in EventOutcome}:
        allowed = ", ".join(o.value for o in EventOutcome)
        raise ValueError(f"event_outcome={outcome!r} is not one of: {allowed}")
    key = _text_filter("detail_key", detail_key)
    value = _text_filter("detail_value", detail_value)
    if (key is None) != (value is None):
        raise ValueError("detail_key and detail_value must be given together")
    if key is not None and not _DETAIL_KEY.match(key):
        raise ValueError(f"detail_key={key!r} may hold only letters, digits and underscores")
    cid = _text_filter("correlation_id", correlation_id)
    if cid is not None and len(cid) > 255:
        raise ValueError(f"correlation_id is {len(cid)} characters; the server allows 255")
    return QueryFilters(
        correlation_id=cid,
        event_type=_text_filter("event_type", event_type),
        event_category=_text_filter("event_category", event_category),
        event_outcome=outcome,
        severity=_text_filter("severity", severity),
        since=format_time_bound("since", since) if since is not None else None,
        until=format_time_bound("until", until) if until is not None else None,
        detail_key=key,
        detail_value=value,
    )


def check_page_bounds(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {MAX_PAGE_LIMIT}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be an int >= 0, got {offset!r}")


def page_params(filters: QueryFilters, limit: int, offset: int) -> list[tuple[str, str | int]]:
    """The query parameters of one page: the filters, ``limit`` always, ``offset`` when not 0."""
    params: list[tuple[str, str | int]] = [*filters.params(), ("limit", limit)]
    if offset:
        params.append(("offset", offset))
    return params
