"""Sans-I/O core: query parameters, body decoding and status mapping, shared by every face."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypedDict, TypeVar

import pydantic

from ._config import EXCERPT_BYTES, MAX_PAGE_LIMIT
from ._exceptions import (
    DataStorageError,
    RequestInfo,
    ResponseDecodeError,
    ResponseValidationError,
    status_error_class,
)
from ._generated.models import EventCategory, EventOutcome, RFC7807Problem

T = TypeVar("T")

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
class Filters:
    """Validated query filters. Construct through :func:`make_filters`."""

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
) -> Filters:
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
    return Filters(
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


def excerpt(body: bytes, limit: int = EXCERPT_BYTES) -> str:
    """A bounded, printable excerpt of a body for error messages."""
    text = body[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > limit else "")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when absent or unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    request: RequestInfo,
) -> DataStorageError:
    """Map an error response to its typed exception, keeping the problem report or raw text."""
    problem: RFC7807Problem | None = None
    raw: str | None = None
    content_type = headers.get("content-type")
    if body and _is_json_type(content_type):
        try:
            problem = RFC7807Problem.model_validate_json(body)
        except pydantic.ValidationError:
            problem = None
    if problem is None and body:
        raw = excerpt(body)
    retry_after = parse_retry_after(headers.get("retry-after"))
    summary = f"{status_code}"
    if problem is not None:
        summary += f" {problem.title}"
        if problem.detail:
            summary += f": {problem.detail}"
        if problem.field_errors:
            summary += " (" + "; ".join(f"{k}: {v}" for k, v in problem.field_errors.items()) + ")"
    elif raw:
        summary += f": {raw.strip()[:200]}"
    cls = status_error_class(status_code)
    return cls(
        f"Data Storage answered {summary} to {request}",
        request=request,
        status_code=status_code,
        problem=problem,
        body=raw,
        retry_after=retry_after,
    )


def decode_json(
    adapter: pydantic.TypeAdapter[T],
    body: bytes,
    *,
    status_code: int,
    content_type: str | None,
    request: RequestInfo,
    require_json_type: bool = True,
) -> T:
    """Decode a success body through ``adapter``: typed decode and validation errors."""
    if require_json_type and not _is_json_type(content_type):
        raise ResponseDecodeError(
            f"expected JSON from {request}, got {content_type or 'no content type'} "
            f"({len(body)} bytes): {excerpt(body, 200)!r}",
            request=request,
            status_code=status_code,
            content_type=content_type,
            excerpt=excerpt(body),
        )
    try:
        return adapter.validate_json(body)
    except pydantic.ValidationError as exc:
        if any(err["type"].startswith("json_") for err in exc.errors()):
            raise ResponseDecodeError(
                f"malformed JSON from {request} ({len(body)} bytes): {excerpt(body, 200)!r}",
                request=request,
                status_code=status_code,
                content_type=content_type,
                excerpt=excerpt(body),
            ) from exc
        raise ResponseValidationError(
            f"unexpected response shape from {request}: {exc.error_count()} error(s), "
            f"first: {_first_error(exc)}",
            request=request,
        ) from exc


def _first_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}"


def dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
