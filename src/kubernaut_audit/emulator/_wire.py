"""Responses framed as Go's net/http frames them, with the body faults applied on the way out."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

#: Go's ResponseWriter buffers this much; a longer body goes out chunked, without Content-Length.
GO_BUFFER: Final = 2048
#: Chunk size while trickling a slow body.
SLOW_CHUNK: Final = 512
#: Scope extension set by the emulator's own servers (absent in-process).
SERVED: Final = "kubernaut_audit.emulator.served"
PROBLEM_BASE: Final = "https://kubernaut.ai/problems/"
JSON: Final = "application/json"
PROBLEM_JSON: Final = "application/problem+json"
SNIFFED_TEXT: Final = "text/plain; charset=utf-8"


class Cut(enum.Enum):
    """How a response body goes wrong."""

    DROP = "drop"  # the connection closes halfway through the body
    TRUNCATE = "truncate"  # Content-Length promises more than is sent
    MALFORM = "malform"  # well framed, but the JSON stops halfway


class WireResponse(Response):
    """A response sent as the service sends it, optionally broken by a fault."""

    def __init__(
        self,
        body: bytes,
        status_code: int = 200,
        *,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-type", content_type.encode())] if content_type else []
        self.raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers]
        self.cut: Cut | None = None
        self.slow = 0.0

    def add_header(self, name: str, value: str) -> None:
        self.raw_headers.append((name.lower().encode(), value.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body
        headers = list(self.raw_headers)
        if self.cut is Cut.MALFORM:
            body = body[: len(body) // 2]
        if len(body) <= GO_BUFFER or self.cut is Cut.TRUNCATE:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        if self.cut in (Cut.DROP, Cut.TRUNCATE):
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            if SERVED not in scope.get("extensions", {}):
                # In-process there is no socket to close; raise what httpx raises when the
                # peer goes away mid-body.
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            return  # uvicorn closes the connection of an unfinished response
        # The service encodes a page in one write, so one chunk unless trickling.
        step = SLOW_CHUNK if self.slow > 0 else max(len(body), 1)
        pieces = [body[at : at + step] for at in range(0, len(body), step)] or [b""]
        for index, piece in enumerate(pieces):
            if self.slow > 0:
                await anyio.sleep(self.slow)
            more = index < len(pieces) - 1
            await send({"type": "http.response.body", "body": piece, "more_body": more})


def json_response(
    payload: Any, status_code: int = 200, *, headers: Iterable[tuple[str, str]] = ()
) -> WireResponse:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return WireResponse(body, status_code, content_type=JSON, headers=headers)


def problem(
    request: Request,
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    field_errors: Mapping[str, str] | None = None,
    resource: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> WireResponse:
    """An RFC 7807 problem as the service's handlers write it."""
    payload: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if field_errors is not None:
        payload["field_errors"] = dict(field_errors)
    if resource is not None:
        payload["resource"] = resource
    body = json.dumps(payload, separators=(",", ":")).encode()
    return WireResponse(body, status, content_type=PROBLEM_JSON, headers=headers)


def schema_violation(request: Request) -> WireResponse:
    """The validation middleware's opaque 400, whatever the violation."""
    payload: dict[str, Any] = {
        "type": PROBLEM_BASE + "validation-error",
        "title": "Validation Error",
        "status": 400,
        "detail": "The request did not pass OpenAPI schema validation",
    }
    request_id = request.headers.get("x-request-id")
    if request_id:
        payload["instance"] = request_id
    body = json.dumps(payload, separators=(",", ":")).encode()
    return WireResponse(body, 400, content_type=PROBLEM_JSON)


def not_found() -> WireResponse:
    return WireResponse(
        b"404 page not found\n",
        404,
        content_type=SNIFFED_TEXT,
        headers=[("X-Content-Type-Options", "nosniff")],
    )


def method_not_allowed(allowed: Iterable[str]) -> WireResponse:
    # chi adds one Allow header per method the route has, and writes no body.
    return WireResponse(b"", 405, headers=[("Allow", method) for method in allowed])
