"""The Data Storage audit API as a Starlette app, with faults injected around the handlers."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._events import Invalid, parse_body, to_row
from ._faults import Faults, InsertHook, QueryParams
from ._samples import make_event
from ._state import State, new_event_id
from ._store import Filters
from ._times import format_timestamp, parse_bound, to_micros
from ._trail import Trail
from ._wire import (
    JSON,
    SNIFFED_TEXT,
    Cut,
    WireResponse,
    json_response,
    method_not_allowed,
    not_found,
    problem,
    schema_violation,
)

EVENTS_PATH: Final = "/api/v1/audit/events"
BATCH_PATH: Final = "/api/v1/audit/events/batch"
ADMIN_PREFIX: Final = "/_emulator"
MAX_BODY_BYTES: Final = 5 * 1024 * 1024
MAX_BATCH_EVENTS: Final = 500
DEFAULT_LIMIT: Final = 50
_RESOURCE: Final = "audit_events"
_USER_HEADER: Final = "x-auth-request-user"
_OUTCOMES: Final = frozenset({"success", "failure", "pending"})
_INTEGER = re.compile(r"[+-]?\d+")
_DETAIL_KEY = re.compile(r"[a-zA-Z0-9_]+")
_EXTRA: Final = {"x_emulator_extra": {"note": "a field no spec lists"}}
_UNKNOWN_ENUMS: Final = {
    "event_category": "quantumcomputing",
    "event_outcome": "partially_succeeded",
    "event_type": "future.service.event_happened",
}
_FILTERS = ("correlation_id", "event_type", "event_category", "event_outcome", "severity")

Outcome = tuple[WireResponse, Iterable[str]]
Handler = Callable[[Request], Awaitable[Outcome]]


def build_app(state: State, *, admin: bool) -> Starlette:
    """Return the ASGI app serving ``state``; the admin routes exist only when ``admin``."""
    api = _Api(state)
    endpoints: dict[str, Callable[[Request], Awaitable[Response]]] = {
        EVENTS_PATH: api.events,
        BATCH_PATH: api.batch,
        "/readyz": api.readyz,
    }
    trail = Trail(state)
    for path, methods, name, handler in trail.routes():
        endpoints[path] = api.route(methods, name, handler)
    if admin:
        endpoints |= {
            f"{ADMIN_PREFIX}/faults": api.admin_faults,
            f"{ADMIN_PREFIX}/stats": api.admin_stats,
            f"{ADMIN_PREFIX}/reset": api.admin_reset,
            f"{ADMIN_PREFIX}/replay": api.admin_replay,
            f"{ADMIN_PREFIX}/tamper": trail.admin_tamper,
        }
    routes = [Route(path, _AnyMethod(endpoint)) for path, endpoint in endpoints.items()]

    async def on_404(request: Request, exc: Exception) -> Response:
        return not_found()

    app = Starlette(routes=routes, exception_handlers={404: on_404})
    app.router.redirect_slashes = False  # chi answers 404 for a trailing slash
    app.state.trail = trail
    return app


class _AnyMethod:
    """An endpoint taking every method: it answers 405 itself, the way chi does.

    Starlette routes a plain function for GET only; an ASGI callable it routes for any method.
    """

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


def _first(params: QueryParams, name: str) -> str | None:
    """A parameter's value; empty counts as absent, as the service reads it."""
    return params.get(name) or None


class _Api:
    def __init__(self, state: State) -> None:
        self.state = state

    # -- routes ---------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._guarded("query", request, self._query)
        if request.method == "POST":
            return await self._guarded("write", request, self._write)
        return method_not_allowed(("GET", "POST"))

    async def batch(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._guarded("batch", request, self._batch)
        return method_not_allowed(("POST",))

    async def readyz(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._guarded("readyz", request, self._readyz)
        return method_not_allowed(("GET",))

    def route(
        self, methods: tuple[str, ...], name: str, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint answering ``methods`` through ``handler`` (faults and counts included)."""

        async def endpoint(request: Request) -> Response:
            if request.method in methods:
                return await self._guarded(name, request, handler)
            return method_not_allowed(methods)

        return endpoint

    # -- fault injection around every handler ---------------------------------------------

    async def _guarded(self, route: str, request: Request, handler: Handler) -> Response:
        state = self.state
        state.replay_if_due()
        faults = state.faults
        active = route in faults.routes
        correlation_ids: Iterable[str] = ()
        response = None
        if active:
            await self._delay(faults)
            response = self._injected_error(request, faults)
        if response is None:
            response, correlation_ids = await handler(request)
            if active:
                response.cut = self._cut(faults)
                response.slow = faults.slow_body
        request_id = request.headers.get("x-request-id")
        if request_id:
            response.add_header("X-Request-ID", request_id)
        state.count(route, response.status_code, correlation_ids)
        return response

    async def _delay(self, faults: Faults) -> None:
        delay = faults.latency
        if faults.latency_jitter > 0:
            delay += self.state.uniform(-faults.latency_jitter, faults.latency_jitter)
        if delay > 0:
            await anyio.sleep(delay)

    def _injected_error(self, request: Request, faults: Faults) -> WireResponse | None:
        chance = self.state.chance
        retry_after = [("Retry-After", faults.retry_after)] if faults.retry_after else []
        if chance(faults.proxy_502_rate):
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
            return WireResponse(html, 502, content_type="text/html")
        if chance(faults.rate_429):
            return problem(
                request,
                429,
                "rate-limit-exceeded",
                "Too Many Requests",
                "rate limit exceeded, retry later",
                headers=[("Retry-After", faults.retry_after or "1")],
            )
        if chance(faults.error_503_rate):
            return problem(
                request,
                503,
                "service-unavailable",
                "Service Unavailable",
                "the service is temporarily unavailable",
                headers=retry_after,
            )
        if chance(faults.error_500_rate):
            return problem(
                request, 500, "internal-error", "Internal Server Error", "unexpected failure"
            )
        return None

    def _cut(self, faults: Faults) -> Cut | None:
        chance = self.state.chance
        if chance(faults.drop_connection_rate):
            return Cut.DROP
        if chance(faults.truncated_body_rate):
            return Cut.TRUNCATE
        if chance(faults.malformed_json_rate):
            return Cut.MALFORM
        return None

    def _insert(self, setting: int | InsertHook, params: QueryParams) -> None:
        if callable(setting):
            events = list(setting(params))
        else:
            correlation_id = _first(params, "correlation_id") or "emulator-inserted"
            event_type = _first(params, "event_type") or "gateway.signal.received"
            now = self.state.clock()
            stamp = format_timestamp(to_micros(now))
            events = [
                make_event(correlation_id, event_type, event_timestamp=stamp)
                for _ in range(setting)
            ]
        if events:
            self.state.insert_events(events)

    # -- handlers -------------------------------------------------------------------------

    async def _readyz(self, request: Request) -> Outcome:
        # The service writes JSON without a Content-Type; Go sniffs it as plain text.
        if self.state.faults.not_ready:
            body = b'{"status":"not_ready","reason":"database connection unavailable"}'
            return WireResponse(body, 503, content_type=SNIFFED_TEXT), ()
        return WireResponse(b'{"status":"ready"}', 200, content_type=SNIFFED_TEXT), ()

    async def _query(self, request: Request) -> Outcome:
        # Go's Query().Get takes the first of repeated parameters; Starlette keeps the last.
        params = {name: request.query_params.getlist(name)[0] for name in request.query_params}
        limit = _first(params, "limit")
        offset = _first(params, "offset")
        outcome = _first(params, "event_outcome")
        detail_key = _first(params, "detail_key")
        detail_value = _first(params, "detail_value")
        if (
            not _in_range(limit, 1, 1000)
            or not _in_range(offset, 0, None)
            or (outcome is not None and outcome not in _OUTCOMES)
            or (detail_key is not None and not _DETAIL_KEY.fullmatch(detail_key))
        ):
            return schema_violation(request), ()
        correlation_id = _first(params, "correlation_id")
        seen = [correlation_id] if correlation_id else []
        errors: dict[str, str] = {}
        if (detail_key is None) != (detail_value is None):
            errors["detail_key"] = "detail_key and detail_value must be provided together"
        bounds: dict[str, int | None] = {}
        now = self.state.clock()
        for name in ("since", "until"):
            text = _first(params, name)
            moment = parse_bound(text, now) if text is not None else None
            if text is not None and moment is None:
                errors[name] = f"invalid {name} format: {text!r}"
            bounds[name] = to_micros(moment) if moment is not None else None
        if errors:
            return self._handler_error(request, errors), seen
        if self.state.faults.database_down:
            return self._database_error(request, "failed to query audit events"), seen
        filters = Filters(
            **{name: _first(params, name) for name in _FILTERS},
            since_us=bounds["since"],
            until_us=bounds["until"],
            detail_key=detail_key,
            detail_value=detail_value,
        )
        page_limit = int(limit) if limit is not None else DEFAULT_LIMIT
        page_offset = int(offset) if offset is not None else 0
        # Two statements with nothing tying them together, as the service runs them.
        total = self.state.store.count(filters)
        self._insert(self.state.faults.insert_between_count_and_data, params)
        rows = self.state.store.select(filters, limit=page_limit, offset=page_offset)
        body = self._page(rows, page_limit, page_offset, total)
        self._insert(self.state.faults.insert_between_pages, params)
        return WireResponse(body, 200, content_type=JSON), seen

    def _page(self, rows: list[str], limit: int, offset: int, total: int) -> bytes:
        faults = self.state.faults
        if faults.unknown_enums or faults.extra_fields:
            events = [json.loads(row) for row in rows]
            for event in events:
                if faults.unknown_enums:
                    event.update(_UNKNOWN_ENUMS)
                if faults.extra_fields:
                    event.update(_EXTRA)
            rows = [
                json.dumps(event, separators=(",", ":"), ensure_ascii=False) for event in events
            ]
        pagination: dict[str, Any] = {
            "limit": limit,
            "offset": offset,
            "total": total,
            "has_more": offset + len(rows) < total,
        }
        envelope_extra = ""
        if faults.extra_fields:
            pagination.update(_EXTRA)
            envelope_extra = "," + json.dumps(_EXTRA, separators=(",", ":"))[1:-1]
        data = ",".join(rows)
        meta = json.dumps(pagination, separators=(",", ":"))
        return f'{{"data":[{data}],"pagination":{meta}{envelope_extra}}}'.encode()

    async def _write(self, request: Request) -> Outcome:
        body = await _read_capped(request)
        if body is None:
            return self._too_large(request), ()
        try:
            [event] = parse_body(body, many=False)
        except Invalid:
            return schema_violation(request), ()
        seen = [event.correlation_id]
        try:
            row = to_row(
                event,
                event_id=new_event_id(),
                user=request.headers.get(_USER_HEADER),
                now=self.state.clock(),
            )
        except Invalid as exc:
            return self._handler_error(request, exc.field_errors or {}), seen
        faults = self.state.faults
        if faults.database_down or self.state.chance(faults.dlq_rate):
            self.state.park([row])
            accepted = {"status": "accepted", "message": "audit event queued for processing"}
            return self._json(accepted, 202), seen
        self.state.store.insert([row])
        created = {
            "event_id": row["event_id"],
            "event_timestamp": format_timestamp(row["ts_us"]),
            "message": "audit event created",
        }
        return self._json(created, 201), seen

    async def _batch(self, request: Request) -> Outcome:
        body = await _read_capped(request)
        if body is None:
            return self._too_large(request), ()
        try:
            events = parse_body(body, many=True)
        except Invalid:
            return schema_violation(request), ()
        seen = {event.correlation_id for event in events}
        if not events or len(events) > MAX_BATCH_EVENTS:
            message = f"a batch holds 1 to {MAX_BATCH_EVENTS} events, not {len(events)}"
            return self._handler_error(request, {"events": message}), seen
        user = request.headers.get(_USER_HEADER)
        now = self.state.clock()
        rows = []
        errors: dict[str, str] = {}
        for index, event in enumerate(events):
            try:
                rows.append(to_row(event, event_id=new_event_id(), user=user, now=now))
            except Invalid as exc:
                for name, message in (exc.field_errors or {}).items():
                    errors[f"events[{index}].{name}"] = message
        if errors:
            return self._handler_error(request, errors), seen
        if self.state.faults.database_down:
            return self._database_error(request, "failed to write audit events batch"), seen
        ids = self.state.store.insert(rows)
        created = {"event_ids": ids, "message": f"{len(ids)} audit events created"}
        return self._json(created, 201), seen

    # -- admin ----------------------------------------------------------------------------

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                changes = json.loads(await request.body())
                self.state.faults = self.state.faults.updated(changes)
            except (TypeError, ValueError, AttributeError) as exc:
                return problem(request, 400, "bad-request", "Bad Request", str(exc))
        elif request.method != "GET":
            return method_not_allowed(("GET", "PUT"))
        return json_response(self.state.faults.to_json())

    async def admin_stats(self, request: Request) -> Response:
        if request.method != "GET":
            return method_not_allowed(("GET",))
        return json_response(self.state.stats().to_json())

    async def admin_reset(self, request: Request) -> Response:
        if request.method != "POST":
            return method_not_allowed(("POST",))
        self.state.faults = Faults()
        self.state.reset_stats()
        return json_response({"faults": self.state.faults.to_json()})

    async def admin_replay(self, request: Request) -> Response:
        if request.method != "POST":
            return method_not_allowed(("POST",))
        return json_response({"replayed": self.state.replay()})

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _json(payload: Mapping[str, Any], status: int) -> WireResponse:
        return json_response(payload, status)

    @staticmethod
    def _handler_error(request: Request, errors: Mapping[str, str]) -> WireResponse:
        return problem(
            request,
            400,
            "validation-error",
            "Validation Error",
            "one or more fields are invalid",
            field_errors=errors,
            resource=_RESOURCE,
        )

    @staticmethod
    def _database_error(request: Request, detail: str) -> WireResponse:
        return problem(request, 500, "database-error", "Database Error", detail)

    @staticmethod
    def _too_large(request: Request) -> WireResponse:
        detail = f"request body exceeds {MAX_BODY_BYTES} bytes"
        return problem(request, 413, "payload-too-large", "Payload Too Large", detail)


def _in_range(text: str | None, low: int, high: int | None) -> bool:
    if text is None:
        return True
    if not _INTEGER.fullmatch(text):
        return False
    value = int(text)
    return value >= low and (high is None or value <= high)


async def _read_capped(request: Request) -> bytes | None:
    """The request body, or None once it passes the service's 5 MiB cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
