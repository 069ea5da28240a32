"""``GET /api/v1/audit/export`` as the service answers it.

One page, ordered by ``(event_timestamp, event_id)``; its events regrouped by correlation id
with the groups in no stable order; ``hash_chain_valid`` computed on that page alone (each
group's first event is checked against ``""``); counts of this page only; every time cut to
whole seconds; a signature over six summary fields (not the events); redaction after all that.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from starlette.requests import Request

from kubernaut_audit._gojson import go_value

from ._gohttp import (
    INTERNAL_DETAIL,
    USER_HEADER,
    RawJSON,
    date_time_format_ok,
    encoded,
    first_params,
    go_atoi,
    go_bool,
    go_time,
    handler_problem,
    kin_int,
    parse_rfc3339,
    utc,
)
from ._hashchain import ChainError, HashChain
from ._redact import redact_data, redact_text
from ._signing import ALGORITHM, Signer, detached
from ._store import Store
from ._times import from_micros, to_micros
from ._wire import WireResponse, schema_violation

MAX_LIMIT: Final = 10_000
DEFAULT_LIMIT: Final = 1_000


def _validated(request: Request) -> dict[str, str] | None:
    """The parameters if the OpenAPI validator lets them through, else None."""
    params = {name: value for name, value in first_params(request).items() if value != ""}
    for name in ("start_time", "end_time"):
        if name in params and not date_time_format_ok(params[name]):
            return None
    if params.get("format", "json") != "json":
        return None
    for name in ("include_detached_signature", "redact_pii"):
        if name in params and go_bool(params[name]) is None:
            return None
    for name, low, high in (("offset", 0, None), ("limit", 1, MAX_LIMIT)):
        if name in params:
            value = kin_int(params[name])
            if value is None or value < low or (high is not None and value > high):
                return None
    return params


def _invalid_parameters() -> WireResponse:
    return handler_problem(
        400, "export/invalid-parameters", "Validation Error", "invalid query parameters"
    )


def _query_failed() -> WireResponse:
    return handler_problem(500, "export/query-failed", "Export Failed", INTERNAL_DETAIL)


def float32_text(value: float) -> str:
    """A percentage as float32 in its shortest form, as the service's encoder writes it
    (``100``, ``66.666664``); percentages of at most 10000 events never need an exponent."""
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            return format(Decimal(text), "f")
    return repr(single)


def export(
    request: Request,
    *,
    store: Store,
    chain: HashChain,
    signer: Signer,
    now: datetime,
    rng: random.Random,
    database_down: bool,
) -> WireResponse:
    """Answer one export request."""
    params = _validated(request)
    if params is None:
        return schema_violation(request)
    exported_by = request.headers.get(USER_HEADER, "")
    if not exported_by:
        return handler_problem(
            401,
            "export/unauthorized",
            "Unauthorized",
            "X-Auth-Request-User header required for audit export",
        )
    bounds: dict[str, datetime] = {}
    for name in ("start_time", "end_time"):
        if name in params:
            moment = parse_rfc3339(params[name])
            if moment is None:
                return _invalid_parameters()
            bounds[name] = moment
    offset = go_atoi(params.get("offset", "0"))
    limit = go_atoi(params.get("limit", str(DEFAULT_LIMIT)))
    if offset is None or offset < 0 or limit is None or limit < 1:
        return _invalid_parameters()
    if limit > MAX_LIMIT:
        return handler_problem(
            413,
            "export/limit-exceeded",
            "Payload Too Large",
            f"Export limit exceeds maximum of {MAX_LIMIT} events. Use pagination.",
        )
    if database_down:
        return _query_failed()
    where: list[str] = []
    args: list[int | str] = []
    if "start_time" in bounds:
        where.append("ts_us >= ?")
        args.append(to_micros(bounds["start_time"]))
    if "end_time" in bounds:
        where.append("ts_us <= ?")
        args.append(to_micros(bounds["end_time"]))
    for name in ("correlation_id", "event_category"):
        if name in params:
            where.append(f"{name} = ?")
            args.append(params[name])
    rows = store.rows(" AND ".join(where), args, limit=limit, offset=offset)
    if any(row["event_hash"] is None or row["previous_event_hash"] is None for row in rows):
        return _query_failed()  # a NULL hash cannot be scanned into the export's strings
    try:
        checked, tampered = _verify_page(rows, chain, rng)
    except ChainError:
        return _query_failed()
    verified_at = utc(now)
    exported_at = utc(now)
    valid = len(rows) - len(tampered)
    signed = go_value(
        {
            "broken_chain_events": len(tampered),
            "export_timestamp": go_time(exported_at),
            "tampered_event_ids": tampered,
            "total_events": len(rows),
            "valid_chain_events": valid,
            "verification_timestamp": go_time(verified_at),
        }
    ).encode()
    signature = signer.sign(signed)
    redact = params.get("redact_pii") == "true"
    filters: dict[str, Any] = {}
    for name in ("start_time", "end_time"):
        if name in bounds:
            filters[name] = go_time(bounds[name], nano=False)
    for name in ("correlation_id", "event_category"):
        if name in params:
            filters[name] = params[name]
    filters |= {"offset": offset, "limit": limit}
    percentage = 100.0 if not rows else valid / len(rows) * 100
    body: dict[str, Any] = {
        "export_metadata": {
            "export_timestamp": go_time(exported_at, nano=False),
            "export_format": params.get("format", "json"),
            "query_filters": filters,
            "total_events": len(rows),
            "signature": signature,
            "signature_algorithm": ALGORITHM,
            "certificate_fingerprint": signer.fingerprint,
            "exported_by": redact_text(exported_by) if redact else exported_by,
        },
        "events": [_event(row, valid_flag, redact, rng) for row, valid_flag in checked],
        "hash_chain_verification": {
            "total_events_verified": len(rows),
            "valid_chain_events": valid,
            "broken_chain_events": len(tampered),
            "chain_integrity_percentage": RawJSON(float32_text(percentage)),
            "verification_timestamp": go_time(verified_at, nano=False),
            "tampered_event_ids": tampered,
        },
    }
    if params.get("include_detached_signature") == "true":
        body["detached_signature"] = detached(signature, signer.fingerprint)
    return encoded(body)


def _verify_page(
    rows: list[dict[str, Any]], chain: HashChain, rng: random.Random
) -> tuple[list[tuple[dict[str, Any], bool]], list[str]]:
    """Each row with its page-local validity, groups in random order; the tampered ids."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["correlation_id"], []).append(row)
    order = list(groups)
    rng.shuffle(order)  # Go's map iteration order
    checked: list[tuple[dict[str, Any], bool]] = []
    tampered: list[str] = []
    for correlation_id in order:
        previous = ""
        for row in groups[correlation_id]:
            stored, claimed = row["event_hash"], row["previous_event_hash"]
            if stored == "" and claimed == "":
                valid = True  # rows written before the chain existed
            elif claimed != previous:
                valid = False
            else:
                valid = chain.expected(row, previous) == stored
            if not valid:
                tampered.append(row["event_id"])
            checked.append((row, valid))
            previous = stored
    return checked, tampered


def _event(row: Mapping[str, Any], valid: bool, redact: bool, rng: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": row["event_id"],
        "version": row["version"],
        "event_type": row["event_type"],
        "event_timestamp": go_time(from_micros(row["ts_us"]), nano=False),
        "event_category": row["event_category"],
        "event_action": row["event_action"],
        "event_outcome": row["event_outcome"],
        "correlation_id": row["correlation_id"],
    }
    data = json.loads(row["event_data"]) if row["event_data"] is not None else None
    if data is not None:
        if redact:
            data = redact_data(data)
        keys = list(data)
        rng.shuffle(keys)  # the top level is encoded from a Go map; nested values are sorted
        event["event_data"] = {key: RawJSON(go_value(data[key])) for key in keys}
    event |= {
        "event_hash": row["event_hash"],
        "previous_event_hash": row["previous_event_hash"],
        "hash_chain_valid": valid,
        "legal_hold": bool(row["legal_hold"]),
    }
    return event
