"""Legal holds as the service places, lists and releases them.

Placing sets the hold, reason, holder and time on every row of the correlation id (again
overwrites them; rows stored later are not held). Releasing clears the held rows and appends
`` [Released: <reason>]`` to their reason, keeping holder and time; with nothing held it is a
404, so releasing twice is one too. The holder is the ``X-Auth-Request-User`` header as the
authentication middleware leaves it: the token's user, never what the client sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._gohttp import encoded, go_time, handler_problem, utc
from ._store import Store
from ._times import format_timestamp, to_micros
from ._wire import WireResponse


def unauthorized() -> WireResponse:
    return handler_problem(
        401,
        "unauthorized",
        "Unauthorized",
        "X-Auth-Request-User header is required for legal hold operations (missing authentication)",
    )


def _database_error(detail: str) -> WireResponse:
    return handler_problem(500, "database-error", "Database Error", detail)


def place(
    correlation_id: str,
    reason: str,
    user: str,
    *,
    store: Store,
    now: datetime,
    database_down: bool,
) -> WireResponse:
    if database_down:
        return _database_error("Failed to check correlation_id")
    rows = store.rows("correlation_id = ?", [correlation_id])
    if not rows:
        return handler_problem(
            404, "not-found", "Not Found", f"No events found for correlation_id: {correlation_id}"
        )
    placed_at = utc(now)
    stored_at = format_timestamp(to_micros(placed_at))  # the database keeps microseconds
    store.update(
        {
            row["event_id"]: {
                "legal_hold": 1,
                "legal_hold_reason": reason,
                "legal_hold_placed_by": user,
                "legal_hold_placed_at": stored_at,
            }
            for row in rows
        }
    )
    return encoded(
        {
            "correlation_id": correlation_id,
            "events_affected": len(rows),
            "placed_by": user,
            "placed_at": go_time(placed_at),
            "reason": reason,
        }
    )


def release(
    correlation_id: str,
    reason: str,
    user: str,
    *,
    store: Store,
    now: datetime,
    database_down: bool,
) -> WireResponse:
    if database_down:
        return _database_error("Failed to check legal hold")
    held = store.rows("correlation_id = ? AND legal_hold = 1", [correlation_id])
    if not held:
        return handler_problem(
            404,
            "not-found",
            "Not Found",
            f"No legal hold found for correlation_id: {correlation_id}",
        )
    store.update(
        {
            row["event_id"]: {
                "legal_hold": 0,
                "legal_hold_reason": f"{row['legal_hold_reason']} [Released: {reason}]",
            }
            for row in held
        }
    )
    return encoded(
        {
            "correlation_id": correlation_id,
            "events_released": len(held),
            "released_by": user,
            "released_at": go_time(utc(now)),
        }
    )


def holds(*, store: Store, database_down: bool) -> WireResponse:
    if database_down:
        return _database_error("Failed to query legal holds")
    groups: dict[tuple[str, str, str, str], int] = {}
    for row in store.rows("legal_hold = 1"):
        key = (
            row["correlation_id"],
            row["legal_hold_placed_by"],
            row["legal_hold_placed_at"] or "",
            row["legal_hold_reason"],
        )
        groups[key] = groups.get(key, 0) + 1
    ordered = sorted(groups.items(), key=lambda item: _stamp(item[0][2]), reverse=True)
    listed: list[dict[str, Any]] = [
        {
            "correlation_id": cid,
            "events_affected": count,
            "placed_by": placed_by,
            "placed_at": placed_at or "0001-01-01T00:00:00Z",
            "reason": reason,
        }
        for (cid, placed_by, placed_at, reason), count in ordered
    ]
    return encoded({"holds": listed, "total": len(listed)})


def _stamp(text: str) -> str:
    # Stored times trim their fraction; pad it so that text order is time order.
    if not text:
        return ""
    head, _, tail = text.rstrip("Z").partition(".")
    return f"{head}.{tail:0<6}"
