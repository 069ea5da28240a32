"""What the audit-trail handlers share: Go's JSON bodies, problem bodies, request parsing.

The export, verify-chain, legal-hold and reconstruct handlers write their bodies with
``json.NewEncoder`` (struct order, ``<>&`` escaped, a trailing newline) and their errors as
``{type, title, status, detail}``. In front of them, the OpenAPI validator refuses bodies and
parameters that break the spec with its one opaque 400; behind it, Go's decoder matches JSON
keys case-insensitively (the last one wins), so a body can pass the validator and still fail
the handler's own decoding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import quote, unquote

from starlette.requests import Request

from kubernaut_audit._gojson import go_float, go_string

from ._auth import require
from ._wire import JSON, PROBLEM_BASE, PROBLEM_JSON, WireResponse, schema_violation

INTERNAL_DETAIL: Final = "An internal error occurred. Check server logs for details."
USER_HEADER: Final = "x-auth-request-user"
_RFC3339_FORMAT = re.compile(
    r"\d{4}-(0[0-9]|10|11|12)-([0-2][0-9]|30|31)T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"
)
_RFC3339_PARTS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|([+-])(\d{2}):(\d{2}))"
)
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
#: Bytes Go's url package leaves unescaped in a path.
_PATH_SAFE = "-_.~$&+,/:;=@"


class RawJSON(str):
    """JSON text written as it is (a value another encoder produced)."""

    __slots__ = ()


def go_json(value: Any) -> str:
    """JSON as Go's encoder writes a struct or ordered map: keys in the order given."""
    if isinstance(value, RawJSON):
        return str(value)
    if isinstance(value, str):
        return go_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{go_string(k)}:{go_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def encoded(value: Any, status: int = 200) -> WireResponse:
    """A success body as ``json.NewEncoder(w).Encode`` writes it."""
    return WireResponse((go_json(value) + "\n").encode(), status, content_type=JSON)


def handler_problem(status: int, kind: str, title: str, detail: str) -> WireResponse:
    """An error as the handlers write it: type, title, status, detail; no instance."""
    body = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
    return WireResponse((go_json(body) + "\n").encode(), status, content_type=PROBLEM_JSON)


def go_time(moment: datetime, *, nano: bool = True) -> str:
    """``time.Time`` as Go prints it: RFC3339Nano (fraction trimmed) or RFC3339 (none)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nano and moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset()
    if offset is None or offset == timedelta(0):
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def date_time_format_ok(text: str) -> bool:
    """The validator's date-time format check (a capital T, and Z or an offset)."""
    return _RFC3339_FORMAT.fullmatch(text) is not None


def parse_rfc3339(text: str) -> datetime | None:
    """Go's ``time.Parse(time.RFC3339, text)``: real dates and times only, offset kept."""
    match = _RFC3339_PARTS.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone, sign, oh, om = match.groups()
    micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
    tz: timezone = UTC
    if zone != "Z":
        if int(oh) >= 24 or int(om) >= 60:
            return None
        delta = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-delta if sign == "-" else delta)
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError:  # Feb 30, hour 24, second 60...
        return None


def kin_int(text: str) -> int | None:
    """An integer as the validator reads it: Go's ParseInt base 0 (``0x``, ``0o``, ``0b``, a
    leading ``0`` for octal, ``_`` between digits), within int64."""
    body, sign = text, 1
    if body and body[0] in "+-":
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    if not body or not body.isascii() or body[0] in "+- " or body.strip() != body:
        return None
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
        body = "0o" + body[1:]
    try:
        value = sign * int(body, 0)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


def go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi``: decimal digits with an optional sign, nothing else."""
    if re.fullmatch(r"[+-]?\d+", text) is None or not text.isascii():
        return None
    return int(text)


def go_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``, or None when it refuses the text."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    return None


def first_params(request: Request) -> dict[str, str]:
    """Each query parameter's first value, as Go's ``Query().Get`` reads it."""
    return {name: request.query_params.getlist(name)[0] for name in request.query_params}


def path_param(request: Request, prefix: str, suffix: str = "") -> str:
    """The path segment after ``prefix`` as chi hands it to the handler.

    chi routes on the raw path when its escaping differs from Go's own, and then does not
    decode the segment (``a%2Fb`` stays ``a%2Fb``).
    """
    raw_path: bytes = request.scope.get("raw_path") or quote(request.url.path).encode()
    raw = raw_path.decode("latin-1").split("?", 1)[0]
    segment = raw[len(prefix) : len(raw) - len(suffix)] if suffix else raw[len(prefix) :]
    decoded_path = unquote(raw, errors="strict")
    if quote(decoded_path, safe=_PATH_SAFE) != raw:
        return segment
    return unquote(segment)


class BodyError(Exception):
    """A body the validator or the handler's decoder refuses."""

    def __init__(self, response: WireResponse) -> None:
        super().__init__("request body refused")
        self.response = response


async def read_body(
    request: Request,
    *,
    required: tuple[str, ...],
    fields: tuple[str, ...],
    decode_error: WireResponse,
    verb: str | None = None,
) -> dict[str, str]:
    """Validate a JSON object body of string fields as the validator, then decode it as Go.

    Raises BodyError with the validator's opaque 400 (no JSON content type, no body, invalid
    JSON, a required field missing, a declared field not a string) or with ``decode_error``
    (a case-variant key of the wrong type, which only Go's decoder sees). Between the two,
    the route's own RBAC ``verb`` when auth is on (a 403).
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    raw = await request.body()
    if media != "application/json" or not raw:
        raise BodyError(schema_violation(request))
    try:
        body = json.loads(raw)
    except ValueError:
        raise BodyError(schema_violation(request)) from None
    if not isinstance(body, dict):
        raise BodyError(schema_violation(request))
    for name in fields:
        if name in body and not isinstance(body[name], str):
            raise BodyError(schema_violation(request))
    if any(name not in body for name in required):
        raise BodyError(schema_violation(request))
    denied = require(request, verb) if verb is not None else None
    if denied is not None:
        raise BodyError(denied)
    decoded = dict.fromkeys(fields, "")
    for key, value in body.items():
        for name in fields:
            if key.casefold() == name.casefold():
                if not isinstance(value, str):
                    raise BodyError(decode_error)
                decoded[name] = value
    return decoded
