"""``POST /api/v1/audit/verify-chain`` as the service answers it.

Walks the correlation id's hashed rows by ``(event_timestamp, event_id)``, recomputing each
hash from the running previous hash with the row's own algorithm: a link mismatch and a hash
mismatch are separate entries (a moved event appears twice), the running previous hash is
always the stored one, tampering shows as 200 with ``is_valid: false``, and an unknown id is a
valid empty chain, not a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from ._gohttp import INTERNAL_DETAIL, encoded, go_time, handler_problem, utc
from ._hashchain import ChainError, HashChain
from ._store import Store
from ._times import from_micros
from ._wire import WireResponse

MAX_EVENTS: Final = 10_000
MAX_ID_BYTES: Final = 256
_LINK = "Previous hash mismatch: event claims different previous_event_hash"
_HASH = "Event hash mismatch: event data has been tampered"


def check_correlation_id(correlation_id: str) -> WireResponse | None:
    """The handler's own refusals of a decoded correlation id."""
    if correlation_id == "":
        return handler_problem(
            400,
            "missing-correlation-id",
            "Missing Required Field",
            "Field 'correlation_id' is required",
        )
    if len(correlation_id.encode()) > MAX_ID_BYTES:
        return handler_problem(
            400,
            "invalid-correlation-id",
            "Invalid Correlation ID",
            "Field 'correlation_id' exceeds maximum length of 256 characters",
        )
    return None


def verify(
    correlation_id: str, *, store: Store, chain: HashChain, now: datetime, database_down: bool
) -> WireResponse:
    """The verification of one correlation id's chain."""
    failed = handler_problem(
        500, "verify-chain/internal-error", "Verification Failed", INTERNAL_DETAIL
    )
    if database_down:
        return failed
    skipped = len(store.rows("correlation_id = ? AND event_hash IS NULL", [correlation_id]))
    rows = store.rows(
        "correlation_id = ? AND event_hash IS NOT NULL", [correlation_id], limit=MAX_EVENTS + 1
    )
    if len(rows) > MAX_EVENTS:
        return failed
    tampered: list[dict[str, Any]] = []
    verified = 0
    previous = ""
    try:
        for row in rows:
            expected = chain.expected(row, previous)
            stamp = go_time(from_micros(row["ts_us"]))
            if row["previous_event_hash"] != previous:
                tampered.append(_entry(row["event_id"], stamp, "", "", previous, _LINK))
            if row["event_hash"] != expected:
                tampered.append(
                    _entry(row["event_id"], stamp, expected, row["event_hash"], previous, _HASH)
                )
            else:
                verified += 1
            previous = row["event_hash"]
    except ChainError:
        return failed
    body: dict[str, Any] = {
        "correlation_id": correlation_id,
        "is_valid": not tampered,
        "total_events": len(rows),
        "verified_events": verified,
    }
    if skipped:
        body["skipped_null_hash"] = skipped
    if tampered:
        body["tampered_events"] = tampered
    body["verification_time"] = go_time(utc(now))
    if not rows:
        body["message"] = "No events found for correlation_id"
    else:
        body["message"] = (
            "Hash chain verification FAILED: tampering detected"
            if tampered
            else "Hash chain verified successfully: no tampering detected"
        )
        if skipped:
            body["message"] += f" ({skipped} events without hashes were excluded from verification)"
    return encoded(body)


def _entry(
    event_id: str, stamp: str, expected: str, actual: str, previous: str, message: str
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_timestamp": stamp,
        "expected_hash": expected,
        "actual_hash": actual,
        "previous_hash": previous,
        "message": message,
    }
