"""What went wrong, as the SDK's exceptions: error answers (status → class, RFC 7807 problem or
raw excerpt, ``Retry-After``) and the httpx failures of an exchange. Pure: nothing is sent here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import pydantic

from ._config import EXCERPT_BYTES
from ._exceptions import (
    DataStorageError,
    RequestInfo,
    ResponseTooLargeError,
    TransportConnectionError,
    TransportError,
    TransportTimeoutError,
    status_error_class,
)
from ._generated.models import RFC7807Problem


def excerpt(body: bytes, limit: int = EXCERPT_BYTES) -> str:
    """A bounded, printable excerpt of a body for error messages."""
    text = body[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > limit else "")


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` or any ``+json`` media type (parameters ignored)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


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
    if body and is_json_type(content_type):
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


def transport_error(
    exc: httpx.TransportError | httpx.StreamError, request: RequestInfo
) -> TransportError:
    """The SDK's error for an exchange that got no complete answer.

    ``request_sent`` is False only when no connection was made (a refused or timed-out
    connect, or no pooled connection free): nothing reached the server.
    """
    if isinstance(exc, httpx.ConnectError):
        return TransportConnectionError(
            f"could not reach Data Storage for {request}: {type(exc).__name__}: {exc}",
            request=request,
            request_sent=False,
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransportTimeoutError(
            f"could not reach Data Storage for {request}: {type(exc).__name__}: {exc}",
            request=request,
            request_sent=False,
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransportTimeoutError(
            f"timed out waiting for Data Storage on {request}: {type(exc).__name__}",
            request=request,
        )
    return TransportConnectionError(
        f"connection to Data Storage broke during {request}: {type(exc).__name__}: {exc}",
        request=request,
    )


def deadline_passed(request: RequestInfo) -> TransportError:
    """The error of a try the deadline cut short while it was waiting for the answer."""
    return TransportTimeoutError(
        f"Data Storage did not finish answering {request} before the deadline", request=request
    )


def no_time_left(request: RequestInfo) -> TransportError:
    """The error of a try that could not start: the deadline had passed (nothing was sent)."""
    return TransportTimeoutError(f"no time left for {request}", request=request, request_sent=False)


def declared_too_large(headers: Mapping[str, str], max_bytes: int) -> bool:
    """Whether the answer's ``Content-Length`` already says it is over the cap."""
    declared = headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) > max_bytes


def too_large(
    request: RequestInfo,
    *,
    status_code: int,
    headers: Mapping[str, str],
    head: bytes,
    max_bytes: int,
) -> ResponseTooLargeError:
    """The error of an answer cut off at ``max_response_bytes`` (``head``: what was read)."""
    return ResponseTooLargeError(
        f"response to {request} is larger than max_response_bytes={max_bytes}",
        request=request,
        status_code=status_code,
        content_type=headers.get("content-type"),
        excerpt=head.decode("utf-8", errors="replace"),
    )
