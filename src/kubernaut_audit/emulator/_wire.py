"""Responses framed and encoded as the service's Go code writes them, with body faults applied.

Every JSON body the service sends goes through ``json.NewEncoder(w).Encode``: compact, struct
fields in declaration order and map keys sorted, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped,
non-ASCII raw, float64 numbers in Go's shortest form, and a trailing newline.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kubernaut_audit._gojson import go_float, go_string

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


# -- Go's encoding/json ----------------------------------------------------------------------

_C_ENCODE: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode
_HTML_UNSAFE: Final = re.compile("[<>&\u2028\u2029]")
_HTML_ESCAPES: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_dumps_plain(value: Any) -> str:
    """`go_dumps` of a value whose floats Python prints as Go does (none, say), at C speed.

    Its strings must hold no lone surrogate (the request decoding replaces them).
    """
    text: str = _C_ENCODE(value)
    return text.translate(_HTML_ESCAPES) if _HTML_UNSAFE.search(text) else text


def go_dumps(value: Any) -> str:
    """Compact JSON as encoding/json writes it; mappings keep their order (a struct's fields;
    sort a Go map's keys first) and every float is printed as a float64."""
    if isinstance(value, str):
        return go_string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, Mapping):
        items = ",".join(f"{go_string(key)}:{go_dumps(item)}" for key, item in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_dumps(item) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def encoded(value: Any) -> bytes:
    """What ``json.NewEncoder(w).Encode(value)`` writes: the JSON text and a newline."""
    return (go_dumps(value) + "\n").encode()


# -- responses -------------------------------------------------------------------------------


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
    """A JSON body encoded as Go encodes a struct (``payload``'s key order is kept)."""
    return WireResponse(encoded(payload), status_code, content_type=JSON, headers=headers)


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    **extensions: Any,
) -> WireResponse:
    """An RFC 7807 problem written from a Go map: its keys come out sorted.

    ``kind`` is appended to ``https://kubernaut.ai/problems/`` unless it is already a URI
    (``about:blank``).
    """
    payload: dict[str, Any] = {
        "type": kind if ":" in kind else PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        **extensions,
    }
    if instance is not None:
        payload["instance"] = instance
    body = (go_dumps_plain(dict(sorted(payload.items()))) + "\n").encode()
    return WireResponse(body, status, content_type=PROBLEM_JSON, headers=headers)


def schema_violation(request: Request) -> WireResponse:
    """The validation middleware's opaque 400, whatever the violation.

    With an ``X-Request-ID`` the body names the request path as ``instance`` and the id comes
    back as a header (never in the body).
    """
    request_id = request.headers.get("x-request-id")
    return problem(
        400,
        "validation-error",
        "Validation Error",
        "The request did not pass OpenAPI schema validation",
        instance=request.url.path if request_id else None,
        headers=[("X-Request-ID", request_id)] if request_id else (),
    )


def invalid_parameters(field: str) -> WireResponse:
    """The query handler's 400 (``field`` is ``query`` or ``pagination``)."""
    message = f"invalid {field} parameters"
    resource = "query parameters"
    return problem(
        400,
        "validation-error",
        "Validation Error",
        f"Validation failed for {resource}: {field} - {message}",
        instance=f"/audit/{resource}",
        field_errors={field: message},
        resource=resource,
    )


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
