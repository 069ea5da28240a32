"""Sans-I/O core: what a request is and how its answer is read, shared by every face.

Nothing here sends, awaits or reads a clock (the client passes ``now`` in), so every rule is a
plain function to test. An :class:`Operation` is a request plus the decoder of its answer; the
operations themselves are built in ``_operations``, and the client sends them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import pydantic

from ._error_map import excerpt, is_json_type, no_time_left
from ._exceptions import RequestInfo, ResponseDecodeError, ResponseValidationError
from ._retry import NO_RETRY, RetryPolicy
from ._tracebacks import hide_audit_errors

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

T = TypeVar("T")

#: What every request accepts: a JSON answer, or an RFC 7807 problem.
ACCEPT = "application/json, application/problem+json"


@dataclass(frozen=True, slots=True)
class Response:
    """An answer read in full (the client streams it under its size cap)."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    request: RequestInfo

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


@dataclass(frozen=True, slots=True)
class Operation(Generic[T]):
    """One request and how to read its answer.

    Attributes:
        method, path, params, body: the request (``path`` below the base URL).
        decode: reads a success answer (error statuses never reach it).
        idempotent: may be retried after it may have reached the server.
        write: a write, retried under :func:`write_policy` of the client's policy.
    """

    method: str
    path: str
    decode: Callable[[Response], T]
    params: Sequence[tuple[str, str | int]] = ()
    body: bytes | None = None
    idempotent: bool = True
    write: bool = False


def request_headers(
    extra: Mapping[str, str],
    request_id: str,
    *,
    token: str | None,
    user: str | None,
    has_body: bool,
) -> dict[str, str]:
    """The headers of one try: the caller's, then ours (which win)."""
    headers = dict(extra)
    headers["X-Request-ID"] = request_id
    headers["Accept"] = ACCEPT
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if user is not None:
        headers["X-Auth-Request-User"] = user
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


def bounded_timeout(
    timeout: httpx.Timeout, *, deadline: float | None, now: float, request: RequestInfo
) -> httpx.Timeout:
    """The client's timeouts, each cut to the time left before ``deadline`` (event-loop time).

    Raises:
        TransportTimeoutError: no time is left (nothing was sent).
    """
    if deadline is None:
        return timeout
    left = deadline - now
    if left <= 0:
        raise no_time_left(request)

    def cap(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


def retry_deadline(policy: RetryPolicy, *, now: float, deadline: float | None) -> float | None:
    """The deadline of a request's tries under ``policy``: the caller's, or sooner.

    The policy's budget bounds the tries as well as the sleeps: a body trickled just under the
    read timeout would otherwise hold one try open for as long as the server likes.
    """
    if not math.isfinite(policy.timeout):
        return deadline
    budget = now + policy.timeout
    return budget if deadline is None else min(deadline, budget)


def write_policy(policy: RetryPolicy) -> RetryPolicy:
    """The policy of a write: the client's when it retries at all, else a single try."""
    return policy if policy.attempts > 1 else NO_RETRY


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
    if require_json_type and not is_json_type(content_type):
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


def decode(adapter: pydantic.TypeAdapter[T], response: Response) -> T:
    """:func:`decode_json` of a whole :class:`Response`."""
    return decode_json(
        adapter,
        response.body,
        status_code=response.status_code,
        content_type=response.content_type,
        request=response.request,
    )


def _first_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}"


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the server reads it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
