"""The Data Storage audit API as a Starlette app, with faults injected around the handlers.

A request meets what the service's own chain does, in its order: the body cap (413 by
``Content-Length``), on ``/api/v1`` the auth middleware when auth is on (401/403 before any
400), then the route: 405 for a method it lacks, the validation middleware (opaque 400), the
route's own RBAC verb (403; handlers call `require` once the body passed validation), the typed
decoder and the handler. Handlers read the caller's identity from ``X-Auth-Request-User``
(`USER_HEADER`), which the auth middleware sets from the token.

The route table is a list of `Endpoint`s: a path and, per method, an `Operation` (the route
name counted in stats and selected by ``Faults.routes``, and the handler). Handlers return the
response and the correlation ids the request was about.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._auth import API_PREFIX, USER_HEADER, authenticate, require
from ._events import (
    Incoming,
    Refused,
    check_events,
    decode_events,
    parse_json,
    screen,
    to_row,
)
from ._faults import Faults, InsertHook, QueryParams
from ._samples import make_event
from ._schema import DecodeFailure, SchemaViolation
from ._state import State, new_event_id
from ._store import Filters
from ._times import format_timestamp, parse_bound, to_micros
from ._trail import Trail
from ._wire import (
    JSON,
    SNIFFED_TEXT,
    Cut,
    WireResponse,
    go_dumps,
    invalid_parameters,
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
MAX_LIMIT: Final = 1000
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OUTCOMES: Final = frozenset({"success", "failure", "pending"})
_DETAIL_KEY = re.compile(r"^[a-zA-Z0-9_]+$")
# strconv.ParseInt(s, 0, 64), which the validation middleware parses integers with: base
# prefixes, a bare leading 0 for octal, underscores between digits.
_GO_INT = re.compile(
    r"[+-]?(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+|0(_?[0-7])*|[1-9](_?[0-9])*)"
)
_SCANNED_INT = re.compile(r"[+-]?[0-9]+")
_EXTRA: Final = {"x_emulator_extra": {"note": "a field no spec lists"}}
_UNKNOWN_ENUMS: Final = {
    "event_category": "quantumcomputing",
    "event_outcome": "partially_succeeded",
    "event_type": "future.service.event_happened",
}
_FILTERS = ("correlation_id", "event_type", "event_category", "event_outcome", "severity")

Outcome = tuple[WireResponse, Iterable[str]]
Handler = Callable[[Request], Awaitable[Outcome]]


@dataclasses.dataclass(frozen=True)
class Operation:
    """One method of an endpoint: its route name (stats, ``Faults.routes``) and handler."""

    route: str
    handler: Handler


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A path of the API (Starlette syntax, ``{name}`` for path parameters) and its methods."""

    path: str
    methods: Mapping[str, Operation]


def build_app(state: State, *, admin: bool, trail: Trail) -> ASGIApp:
    """Return the ASGI app serving ``state`` and ``trail``'s audit-trail operations; the admin
    routes exist only when ``admin``."""
    api = _Api(state)
    endpoints = api.endpoints() + [
        Endpoint(path, {method: Operation(name, handler) for method in methods})
        for path, methods, name, handler in trail.routes()
    ]
    routes = [Route(e.path, _Dispatch(e, api)) for e in endpoints]
    if admin:
        admin_routes = {**api.admin_routes(), f"{ADMIN_PREFIX}/tamper": trail.admin_tamper}
        routes += [Route(path, _Plain(handler)) for path, handler in admin_routes.items()]

    async def on_404(request: Request, exc: Exception) -> Response:
        return not_found()

    app = Starlette(routes=routes, exception_handlers={404: on_404})
    app.router.redirect_slashes = False  # chi answers 404 for a trailing slash
    return _Front(app, state, endpoints)


class _Front:
    """What runs before routing: the body cap, then on ``/api/v1`` the auth middleware."""

    def __init__(self, app: ASGIApp, state: State, endpoints: Sequence[Endpoint]) -> None:
        self._app = app
        self._state = state
        self._names = {
            (e.path, method): op.route for e in endpoints for method, op in e.methods.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        early = self._early(scope)
        if early is None:
            await self._app(scope, receive, send)
            return
        route = self._names.get((scope["path"], scope["method"]))
        if route is not None:
            self._state.count(route, early.status_code, ())
        await early(scope, receive, send)

    def _early(self, scope: Scope) -> WireResponse | None:
        if scope["method"] in _BODY_METHODS and _declared_length(scope) > MAX_BODY_BYTES:
            return too_large()
        path: str = scope["path"]
        users = self._state.users
        if users is not None and (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            return authenticate(scope, users, down=self._state.faults.auth_unavailable)
        return None


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return -1


class _Dispatch:
    """An endpoint as an ASGI app taking every method: it answers 405 itself, the way chi does.

    Starlette routes a plain function for GET only; an ASGI callable it routes for any method.
    """

    def __init__(self, endpoint: Endpoint, api: _Api) -> None:
        self._endpoint = endpoint
        self._api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        operation = self._endpoint.methods.get(request.method)
        if operation is None:
            response: Response = method_not_allowed(self._endpoint.methods)
        else:
            response = await self._api.guarded(operation.route, request, operation.handler)
        await response(scope, receive, send)


class _Plain:
    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._handler(Request(scope, receive, send))
        await response(scope, receive, send)


def _first(params: QueryParams, name: str) -> str | None:
    """A parameter's value; empty counts as absent, as the service reads it."""
    return params.get(name) or None


def too_large() -> WireResponse:
    """The body cap's 413."""
    return problem(
        413,
        "request-too-large",
        "Request Entity Too Large",
        "Request body exceeds the maximum allowed size.",
    )


def invalid_request(*, many: bool) -> WireResponse:
    """The write handlers' 400 for a body their typed decoder cannot parse."""
    detail = (
        "The request body must be a valid JSON array of audit event objects"
        if many
        else "The request body could not be parsed as valid JSON"
    )
    return problem(400, "invalid_request", "Invalid Request", detail)


def invalid_event_data(detail: str) -> WireResponse:
    """The write handlers' 400 for an ``event_data`` their map conversion cannot hold."""
    return problem(400, "invalid_event_data", "Invalid Event Data", detail)


def refused(detail: str) -> WireResponse:
    """A write handler's own 400 (plain form, no ``instance``)."""
    return problem(400, "validation-error", "Validation Error", detail)


class _Api:
    def __init__(self, state: State) -> None:
        self.state = state

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                EVENTS_PATH,
                {"GET": Operation("query", self._query), "POST": Operation("write", self._write)},
            ),
            Endpoint(BATCH_PATH, {"POST": Operation("batch", self._batch)}),
            Endpoint("/readyz", {"GET": Operation("readyz", self._readyz)}),
        ]

    def admin_routes(self) -> dict[str, Callable[[Request], Awaitable[Response]]]:
        return {
            f"{ADMIN_PREFIX}/faults": self.admin_faults,
            f"{ADMIN_PREFIX}/stats": self.admin_stats,
            f"{ADMIN_PREFIX}/reset": self.admin_reset,
            f"{ADMIN_PREFIX}/replay": self.admin_replay,
        }

    # -- fault injection around every handler ---------------------------------------------

    async def guarded(self, route: str, request: Request, handler: Handler) -> Response:
        state = self.state
        state.replay_if_due()
        faults = state.faults
        active = route in faults.routes
        correlation_ids: Iterable[str] = ()
        response = None
        if active:
            await self._delay(faults)
            response = self._injected_error(faults)
        if response is None:
            response, correlation_ids = await handler(request)
            if active:
                response.cut = self._cut(faults)
                response.slow = faults.slow_body
        state.count(route, response.status_code, correlation_ids)
        return response

    async def _delay(self, faults: Faults) -> None:
        delay = faults.latency
        if faults.latency_jitter > 0:
            delay += self.state.uniform(-faults.latency_jitter, faults.latency_jitter)
        if delay > 0:
            await anyio.sleep(delay)

    def _injected_error(self, faults: Faults) -> WireResponse | None:
        chance = self.state.chance
        retry_after = [("Retry-After", faults.retry_after)] if faults.retry_after else []
        if chance(faults.proxy_502_rate):
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
            return WireResponse(html, 502, content_type="text/html")
        if chance(faults.rate_429):
            return problem(
                429,
                "rate-limit-exceeded",
                "Too Many Requests",
                "rate limit exceeded, retry later",
                headers=[("Retry-After", faults.retry_after or "1")],
            )
        if chance(faults.error_503_rate):
            return problem(
                503,
                "service-unavailable",
                "Service Unavailable",
                "the service is temporarily unavailable",
                headers=retry_after,
            )
        if chance(faults.error_500_rate):
            return problem(500, "internal-error", "Internal Server Error", "unexpected failure")
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
        limit_text = _first(params, "limit")
        offset_text = _first(params, "offset")
        outcome = _first(params, "event_outcome")
        detail_key = _first(params, "detail_key")
        detail_value = _first(params, "detail_value")
        # The validation middleware.
        if (
            not _go_int_within(limit_text, 1, MAX_LIMIT)
            or not _go_int_within(offset_text, 0, None)
            or (outcome is not None and outcome not in _OUTCOMES)
            or (detail_key is not None and not _DETAIL_KEY.search(detail_key))
        ):
            return schema_violation(request), ()
        correlation_id = _first(params, "correlation_id")
        seen = [correlation_id] if correlation_id else []
        # The handler: it reads the values again, with its own parsers.
        now = self.state.clock()
        bounds: dict[str, int | None] = {}
        unparsable = (detail_key is None) != (detail_value is None)
        for name in ("since", "until"):
            text = _first(params, name)
            moment = parse_bound(text, now) if text is not None else None
            unparsable = unparsable or (text is not None and moment is None)
            bounds[name] = to_micros(moment) if moment is not None else None
        limit = _scanned_int(limit_text) if limit_text is not None else DEFAULT_LIMIT
        offset = _scanned_int(offset_text) if offset_text is not None else 0
        if unparsable or limit is None or offset is None:
            return invalid_parameters("query"), seen
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return invalid_parameters("pagination"), seen
        if self.state.faults.database_down:
            return self._database_error(request, "Failed to query audit events from database"), seen
        filters = Filters(
            **{name: _first(params, name) for name in _FILTERS},
            since_us=bounds["since"],
            until_us=bounds["until"],
            detail_key=detail_key,
            detail_value=detail_value,
        )
        # Two statements with nothing tying them together, as the service runs them.
        total = self.state.store.count(filters)
        self._insert(self.state.faults.insert_between_count_and_data, params)
        rows = self.state.store.select(filters, limit=limit, offset=offset)
        body = self._page(rows, limit, offset, total)
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
            rows = [go_dumps(event) for event in events]
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
        return f'{{"data":[{data}],"pagination":{meta}{envelope_extra}}}\n'.encode()

    async def _checked_write(
        self, request: Request, *, many: bool
    ) -> tuple[list[Incoming] | WireResponse, list[str]]:
        """The chain in front of a write handler: body, validation, RBAC ``create``, decoder."""
        body = await _read_capped(request)
        if body is None or not _is_json(request.headers.get("content-type")):
            return schema_violation(request), []
        try:
            items = check_events(parse_json(body), self.state.payloads, many=many)
        except SchemaViolation:
            return schema_violation(request), []
        seen = list(dict.fromkeys(str(item["correlation_id"]) for item in items))
        denied = require(request, "create")
        if denied is not None:
            return denied, seen
        try:
            return decode_events(items, self.state.payloads), seen
        except DecodeFailure:
            return invalid_request(many=many), seen

    async def _write(self, request: Request) -> Outcome:
        checked, seen = await self._checked_write(request, many=False)
        if isinstance(checked, WireResponse):
            return checked, seen
        [event] = checked
        try:
            screen(event, now=self.state.clock())
        except Refused as exc:
            if exc.reason == "unconvertible":
                return invalid_event_data(
                    "The event_data field could not be processed; check JSON structure and "
                    "field types"
                ), seen
            detail = {
                "window": "audit event request failed validation",
                "event_data": "event_data exceeds size or nesting depth limits",
            }[exc.reason]
            return refused(detail), seen
        parent_date = self.state.parent_date(event)
        if event.parent_set and parent_date is None:
            return refused("parent event does not exist"), seen
        user = request.headers.get(USER_HEADER)
        row = to_row(event, event_id=new_event_id(), user=user, parent_date=parent_date)
        faults = self.state.faults
        if faults.database_down or self.state.chance(faults.dlq_rate):
            self.state.park([row])
            accepted = {"status": "accepted", "message": "audit event queued for async processing"}
            return json_response(accepted, 202), seen
        self.state.store.insert([row])
        created = {
            "event_id": row["event_id"],
            "event_timestamp": format_timestamp(row["ts_us"] // 1_000_000 * 1_000_000),
            "message": "Audit event created successfully",
        }
        return json_response(created, 201), seen

    async def _batch(self, request: Request) -> Outcome:
        checked, seen = await self._checked_write(request, many=True)
        if isinstance(checked, WireResponse):
            return checked, seen
        events = checked
        if not events:
            return refused("batch cannot be empty"), seen
        if len(events) > MAX_BATCH_EVENTS:
            return problem(
                400,
                "batch-size-exceeded",
                "Batch Size Exceeded",
                f"batch size {len(events)} exceeds maximum allowed batch size of "
                f"{MAX_BATCH_EVENTS}",
                instance=request.url.path,
            ), seen
        now = self.state.clock()
        for index, event in enumerate(events):
            try:
                screen(event, now=now)
            except Refused as exc:
                if exc.reason == "unconvertible":
                    detail = f"event at index {index} has invalid event_data"
                    return invalid_event_data(detail), seen
                detail = {
                    "window": f"event at index {index} failed validation",
                    "event_data": (
                        f"event at index {index}: event_data exceeds size or nesting depth limits"
                    ),
                }[exc.reason]
                return refused(detail), seen
        # Parents are looked up in the database, before the batch is written: a parent sent in
        # the same batch does not count.
        parents = [self.state.parent_date(event) for event in events]
        for index, (event, parent_date) in enumerate(zip(events, parents, strict=True)):
            if event.parent_set and parent_date is None:
                return refused(f"event at index {index}: parent event does not exist"), seen
        user = request.headers.get(USER_HEADER)
        rows = [
            to_row(event, event_id=new_event_id(), user=user, parent_date=parent_date)
            for event, parent_date in zip(events, parents, strict=True)
        ]
        if self.state.faults.database_down:
            self.state.park(rows)
            accepted = {
                "status": "accepted",
                "message": f"{len(rows)} audit events queued for async processing via DLQ",
                "count": len(rows),
            }
            return json_response(accepted, 202), seen
        ids = self.state.store.insert(rows)
        created = {"event_ids": ids, "message": f"{len(ids)} audit events created successfully"}
        return json_response(created, 201), seen

    # -- admin ----------------------------------------------------------------------------

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                changes = json.loads(await request.body())
                self.state.faults = self.state.faults.updated(changes)
            except (TypeError, ValueError, AttributeError) as exc:
                return problem(400, "bad-request", "Bad Request", str(exc))
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
    def _database_error(request: Request, detail: str) -> WireResponse:
        return problem(500, "database-error", "Database Error", detail, instance=request.url.path)


def _go_int_within(text: str | None, low: int, high: int | None) -> bool:
    """Whether the validation middleware accepts an integer parameter (absent passes)."""
    if text is None:
        return True
    if not _GO_INT.fullmatch(text):
        return False
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").replace("_", "")
    if digits[:2].lower() in ("0x", "0o", "0b"):
        value = int(digits, 0)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    value *= sign
    if not -(2**63) <= value < 2**63:
        return False
    return value >= low and (high is None or value <= high)


def _scanned_int(text: str) -> int | None:
    """``fmt.Sscanf(text, "%d", &n)``, as the handler reads limit and offset: a leading decimal
    run (``0x10`` reads as 0, ``1_000`` as 1), or None when there is none."""
    found = _SCANNED_INT.match(text)
    return int(found.group()) if found else None


def _is_json(content_type: str | None) -> bool:
    """Whether the validation middleware finds the spec's ``application/json`` body for it."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip() == "application/json"


async def _read_capped(request: Request) -> bytes | None:
    """The request body, or None once a streamed body passes the 5 MiB cap."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
