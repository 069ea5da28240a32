"""The audit-trail routes (export, verify-chain, legal hold, reconstruct) and the tamper hook.

Handlers return ``(response, correlation ids)`` so that the app's fault and statistics
wrapper treats them like the query and write routes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from . import _export, _legal_hold, _reconstruct, _verify_chain
from ._auth import require
from ._events import encode_data
from ._gohttp import (
    USER_HEADER,
    BodyError,
    encoded,
    handler_problem,
    parse_rfc3339,
    path_param,
    read_body,
)
from ._signing import Signer
from ._state import State
from ._times import to_micros
from ._wire import WireResponse, json_response, method_not_allowed, not_found, problem

EXPORT_PATH: Final = "/api/v1/audit/export"
VERIFY_PATH: Final = "/api/v1/audit/verify-chain"
LEGAL_HOLD_PATH: Final = "/api/v1/audit/legal-hold"
RELEASE_PREFIX: Final = "/api/v1/audit/legal-hold/"
RECONSTRUCT_PREFIX: Final = "/api/v1/audit/remediation-requests/"
RECONSTRUCT_SUFFIX: Final = "/reconstruct"

Outcome = tuple[WireResponse, Iterable[str]]
Handler = Callable[[Request], Awaitable[Outcome]]

#: Columns the tamper hook may change, and how a JSON value becomes the stored one.
_TEXT = [
    "event_type",
    "version",
    "event_category",
    "event_action",
    "event_outcome",
    "correlation_id",
    "resource_type",
    "resource_id",
    "namespace",
    "cluster_id",
    "severity",
    "error_code",
    "error_message",
    "actor_id",
    "actor_type",
    "actor_ip",
    "hash_algorithm",
]
_NULLABLE_TEXT = ("event_hash", "previous_event_hash")


class Trail:
    """The audit-trail operations of one emulator: its signer, its map-order randomness."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.signer = Signer()
        self.rng = random.Random()

    def routes(self) -> list[tuple[str, tuple[str, ...], str, Handler]]:
        """``(path, methods, route name, handler)`` for the app to register."""
        return [
            (EXPORT_PATH, ("GET",), "export", self.export),
            (VERIFY_PATH, ("POST",), "verify_chain", self.verify_chain),
            (LEGAL_HOLD_PATH, ("GET", "POST"), "legal_hold", self.legal_hold),
            (RELEASE_PREFIX + "{correlation_id:path}", ("DELETE",), "legal_hold", self.release),
            (
                RECONSTRUCT_PREFIX + "{correlation_id:path}" + RECONSTRUCT_SUFFIX,
                ("POST",),
                "reconstruct",
                self.reconstruct,
            ),
        ]

    def _now(self) -> datetime:
        return self.state.clock()

    def _down(self) -> bool:
        return self.state.faults.database_down

    # -- handlers ---------------------------------------------------------------------------

    async def export(self, request: Request) -> Outcome:
        response = _export.export(
            request,
            store=self.state.store,
            chain=self.state.store.chain,
            signer=self.signer,
            now=self._now(),
            rng=self.rng,
            database_down=self._down(),
        )
        cid = request.query_params.get("correlation_id")
        return response, [cid] if cid else []

    async def verify_chain(self, request: Request) -> Outcome:
        try:
            body = await read_body(
                request,
                required=("correlation_id",),
                fields=("correlation_id",),
                decode_error=handler_problem(
                    400,
                    "invalid-request-body",
                    "Invalid Request Body",
                    "The request body could not be parsed as JSON",
                ),
                verb="create",
            )
        except BodyError as exc:
            return exc.response, []
        cid = body["correlation_id"]
        refused = _verify_chain.check_correlation_id(cid)
        if refused is not None:
            return refused, []
        response = _verify_chain.verify(
            cid,
            store=self.state.store,
            chain=self.state.store.chain,
            now=self._now(),
            database_down=self._down(),
        )
        return response, [cid]

    async def legal_hold(self, request: Request) -> Outcome:
        if request.method == "GET":
            return _legal_hold.holds(store=self.state.store, database_down=self._down()), []
        try:
            body = await read_body(
                request,
                required=("correlation_id", "reason"),
                fields=("correlation_id", "reason"),
                decode_error=_invalid_request(),
                verb="update",
            )
        except BodyError as exc:
            return exc.response, []
        cid, reason = body["correlation_id"], body["reason"]
        if cid == "":
            return handler_problem(
                400,
                "missing-correlation-id",
                "Missing Correlation ID",
                "correlation_id is required",
            ), []
        if reason == "":
            return handler_problem(400, "missing-reason", "Missing Reason", "reason is required"), [
                cid
            ]
        user = request.headers.get(USER_HEADER, "")
        if not user:
            return _legal_hold.unauthorized(), [cid]
        response = _legal_hold.place(
            cid, reason, user, store=self.state.store, now=self._now(), database_down=self._down()
        )
        return response, [cid]

    async def release(self, request: Request) -> Outcome:
        cid = path_param(request, RELEASE_PREFIX)
        if "/" in cid:
            return not_found(), []  # chi matches one raw segment
        try:
            body = await read_body(
                request,
                required=("release_reason",),
                fields=("release_reason",),
                decode_error=_invalid_request(),
                verb="update",
            )
        except BodyError as exc:
            return exc.response, []
        if cid == "":
            return handler_problem(
                400,
                "missing-correlation-id",
                "Missing Correlation ID",
                "correlation_id is required in URL path",
            ), []
        reason = body["release_reason"]
        if reason == "":
            return handler_problem(
                400,
                "missing-release-reason",
                "Missing Release Reason",
                "release_reason is required",
            ), [cid]
        user = request.headers.get(USER_HEADER, "")
        if not user:
            return _legal_hold.unauthorized(), [cid]
        response = _legal_hold.release(
            cid, reason, user, store=self.state.store, now=self._now(), database_down=self._down()
        )
        return response, [cid]

    async def reconstruct(self, request: Request) -> Outcome:
        cid = path_param(request, RECONSTRUCT_PREFIX, RECONSTRUCT_SUFFIX)
        if "/" in cid or cid == "":
            return not_found(), []
        denied = require(request, "create")
        if denied is not None:
            return denied, [cid]
        if self._down():
            return _failure(
                _reconstruct.Failure(
                    500,
                    "reconstruction/query-failed",
                    "Reconstruction Query Failed",
                    "An internal error occurred. Check server logs for details.",
                )
            ), [cid]
        marks = ",".join("?" for _ in _reconstruct.EVENT_TYPES)
        rows = self.state.store.rows(
            f"correlation_id = ? AND event_type IN ({marks})",
            [cid, *_reconstruct.EVENT_TYPES],
            limit=_reconstruct.MAX_EVENTS,
        )
        try:
            body = _reconstruct.reconstruct(cid, rows, self._now())
        except _reconstruct.Failure as failure:
            return _failure(failure), [cid]
        return encoded(body), [cid]

    # -- the tamper hook ----------------------------------------------------------------------

    def tamper(self, event_id: str, changes: Mapping[str, Any]) -> None:
        """Change a stored row behind the service's back (for tests of verification).

        Raises:
            KeyError: no row has this event id.
            ValueError: a column that cannot be changed, or a value of the wrong type.
        """
        self.state.store.update({event_id: _stored_columns(changes)})

    async def admin_tamper(self, request: Request) -> Response:
        if request.method != "POST":
            return method_not_allowed(("POST",))
        try:
            body = json.loads(await request.body())
            self.tamper(str(body["event_id"]), body.get("changes", {}))
        except KeyError as exc:
            return problem(404, "not-found", "Not Found", f"no stored event {exc}")
        except (TypeError, ValueError, AttributeError) as exc:
            return problem(400, "bad-request", "Bad Request", str(exc))
        return json_response({"event_id": body["event_id"], "changed": sorted(body["changes"])})


def _invalid_request() -> WireResponse:
    return handler_problem(
        400, "invalid-request", "Invalid Request", "request body is not valid JSON"
    )


def _failure(failure: _reconstruct.Failure) -> WireResponse:
    return handler_problem(failure.status, failure.kind, failure.title, failure.detail)


def _stored_columns(changes: Mapping[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for name, value in changes.items():
        if (
            (name in _TEXT and isinstance(value, str))
            or (name in _NULLABLE_TEXT and (value is None or isinstance(value, str)))
            or (name in ("duration_ms", "retention_days") and type(value) is int)
        ):
            stored[name] = value
        elif name == "is_sensitive" and isinstance(value, bool):
            stored[name] = int(value)
        elif name == "event_data" and isinstance(value, dict):
            stored[name] = encode_data(value)
        elif name == "event_timestamp" and isinstance(value, str | datetime):
            moment = parse_rfc3339(value) if isinstance(value, str) else value
            if moment is None or moment.tzinfo is None:
                raise ValueError(f"event_timestamp={value!r} is not an RFC 3339 time")
            stored["ts_us"] = to_micros(moment)
        else:
            raise ValueError(f"cannot set {name}={value!r}")
    return stored
