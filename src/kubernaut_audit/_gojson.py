"""JSON text exactly as Go's ``encoding/json`` writes it (the bytes Data Storage hashes and signs).

Python's ``json`` differs from Go on every point that matters to a hash: Go escapes ``<``, ``>``,
``&``, U+2028 and U+2029; it writes float64 numbers in its own shortest form (``1e-7`` where
Python writes ``1e-07``, ``10000000000000000`` where Python writes ``1e+16``, ``3`` where Python
writes ``3.0``); it sorts map keys by their bytes; and it replaces invalid UTF-8 (a lone
surrogate, here) with the escape ``\\ufffd``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
#: A number token in compact JSON that Go may write differently: a float, or a long integer.
#: (Text inside strings can match too; that only costs the slower exact path.)
_FLOATY = re.compile(r"[:,\[]\s*-?\d+(?:\.\d|[eE])|[:,\[]\s*-?\d{16,}")
#: The string and number tokens of compact JSON (strings first, so digits inside them are kept).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?')
#: Integers beyond this went through a float64 on the Go side (event_data numbers always do).
_EXACT_INT = 2**53


def _escaped(out: str) -> str:
    """JSON text from Python's encoder with Go's extra escapes (ASCII fast path first)."""
    if "<" in out or ">" in out or "&" in out:
        out = out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if not out.isascii():
        if "\u2028" in out or "\u2029" in out:
            out = out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        if _SURROGATE.search(out):
            # Go writes each invalid UTF-8 byte as the escape \ufffd; a lone surrogate is what
            # Python has where Go would have had invalid bytes.
            out = _SURROGATE.sub(lambda _: "\\ufffd", out)
    return out


def go_string(text: str) -> str:
    """A JSON string literal as Go writes it (HTML-safe escaping, non-ASCII raw)."""
    out: str = encode_basestring(text)
    return _escaped(out)


def go_float(value: float) -> str:
    """A float64 as Go's encoding/json writes it: shortest digits, ``e`` only outside
    [1e-6, 1e21), a two-digit negative exponent shortened (``1e-7``, ``1e+21``, ``2.5``)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{value!r} has no JSON form (Go refuses it too)")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    # repr() gives the shortest digits that round-trip, as Go's strconv does.
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    head = "-" if sign else ""
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        power = exponent + len(text) - 1
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        if power < 0:
            return f"{head}{mantissa}e-{-power}"  # Go trims e-07 to e-7
        return f"{head}{mantissa}e+{power:02d}"
    if exponent >= 0:
        return head + text + "0" * exponent
    point = len(text) + exponent
    if point > 0:
        return f"{head}{text[:point]}.{text[point:]}"
    return f"{head}0.{'0' * -point}{text}"


def go_number(value: int | float) -> str:
    """A JSON number that went through Go's ``float64`` (every number inside event_data)."""
    if isinstance(value, int) and -_EXACT_INT <= value <= _EXACT_INT:
        return str(value)
    return go_float(float(value))


class _Literal:
    """A number already written as Go writes it, carried through ``json.dumps``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_MARK = "\x00gojson:"
_MARKED = re.compile(r'"\\u0000gojson:([^"\\]*)"')


def _float_literal(text: str) -> _Literal:
    return _Literal(go_float(float(text)))


def _int_literal(text: str) -> int | _Literal:
    value = int(text)
    return value if -_EXACT_INT <= value <= _EXACT_INT else _Literal(go_number(value))


def _go_token(match: re.Match[str]) -> str:
    token = match.group(0)
    if token[0] == '"':
        return token
    if "." in token or "e" in token or "E" in token:
        return go_float(float(token))
    return token if len(token) < 16 else go_number(int(token))


def _mark(value: Any) -> str:
    if isinstance(value, _Literal):
        return _MARK + value.text
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def go_document(text: str) -> str:
    """A JSON document re-encoded as Go encodes the ``any`` it decodes into: object keys
    sorted, numbers through float64, strings escaped as Go escapes them.

    Encoding and decoding stay in the C ``json`` module; only numbers that Go writes
    differently pass through Python code.
    """
    exact = not text.startswith(("{", "[")) or _FLOATY.search(text) is not None
    if exact:
        value = json.loads(text, parse_float=_float_literal, parse_int=_int_literal)
    else:
        value = json.loads(text)
    out = json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_mark
    )
    if exact and "\\u0000gojson:" in out:
        out = _MARKED.sub(lambda match: match.group(1), out)
    return _escaped(out)


def go_value(value: Any) -> str:
    """A decoded JSON value (``dict``, ``list``, ``str``, numbers, ``bool``, ``None``) as Go
    encodes the ``map[string]any`` it would decode into: object keys sorted, numbers as float64.
    """
    if isinstance(value, str):
        return go_string(value)
    text = json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    if not text.startswith(("{", "[")):
        return go_document(text)
    if _FLOATY.search(text):
        text = _TOKENS.sub(_go_token, text)
    return _escaped(text)


def go_time(moment: datetime) -> str:
    """A ``time.Time`` in UTC as Go's JSON writes it: RFC 3339 with the fraction's trailing
    zeros trimmed (Python keeps microseconds, as Data Storage stores them)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no instant; attach a time zone")
    t = moment.astimezone(UTC)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"
