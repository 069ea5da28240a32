"""Timestamps as the service parses and prints them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # Go accepts both micro signs
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DAYS = re.compile(r"(\d+)d")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
)
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def format_timestamp(micros: int) -> str:
    """UTC, 0-6 fraction digits with trailing zeros trimmed, and ``Z``: Go's RFC3339Nano."""
    moment = from_micros(micros)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def parse_go_duration(text: str) -> float | None:
    """Seconds of a Go ``time.ParseDuration`` string (``90m``, ``1h30m``, ``-2.5s``), or None."""
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "0":
        return 0.0
    if not body or _GO_PART.sub("", body):
        return None
    return sign * sum(float(num) * _GO_UNITS[unit] for num, unit in _GO_PART.findall(body))


def parse_bound(text: str, now: datetime) -> datetime | None:
    """Parse a ``since``/``until`` value the way the service does, or return None."""
    if _DAYS.fullmatch(text):
        return now - timedelta(days=int(text[:-1]))
    seconds = parse_go_duration(text)
    if seconds is not None:
        return now - timedelta(seconds=seconds)
    try:
        if _RFC3339.fullmatch(text):
            return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        if _NAIVE.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        if _DATE.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None
    return None
