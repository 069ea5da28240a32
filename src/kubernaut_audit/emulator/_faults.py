"""Fault injection settings for the emulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

#: Query parameters of the request that triggered an insertion (empty values included).
QueryParams: TypeAlias = Mapping[str, str]
#: Returns the events (dicts as a writer sends them) to insert into the store.
InsertHook: TypeAlias = Callable[[QueryParams], Iterable[Mapping[str, Any]]]

#: Routes faults can target; ``Faults.routes`` selects among them.
ROUTES = ("query", "write", "batch", "readyz")


@dataclasses.dataclass
class Faults:
    """What the emulator does wrong, and how often; everything is off by default.

    Rates are probabilities in ``[0, 1]`` drawn per request from a ``random.Random(seed)``
    (reseeded whenever a ``Faults`` is assigned to an emulator). Request faults apply to the
    routes named in ``routes``; ``/readyz`` answers only to ``not_ready``.

    Attributes:
        latency: Seconds added before answering.
        latency_jitter: Up to this many seconds added or removed from ``latency`` at random.
        error_500_rate: Answer 500 (internal-error problem).
        error_503_rate: Answer 503 (service-unavailable problem), with ``retry_after`` if set.
        rate_429: Answer 429 as the rate limiter does, with ``Retry-After: retry_after or "1"``.
        retry_after: The ``Retry-After`` value sent with 503 and 429.
        proxy_502_rate: Answer 502 with an HTML body, as a proxy in front of the service would.
        drop_connection_rate: Send part of the body, then drop the connection.
        truncated_body_rate: Declare a ``Content-Length`` larger than the body sent.
        malformed_json_rate: Send a well-framed response whose JSON is cut short.
        slow_body: Seconds to wait between body chunks (a trickling response).
        extra_fields: Add unknown fields to every event, the envelope and the pagination.
        unknown_enums: Replace ``event_category``, ``event_outcome`` and ``event_type`` of every
            returned event with values no spec lists.
        insert_between_pages: After each query response, insert this many new events (for the
            query's ``correlation_id``, timestamped now), or the events a hook returns.
        insert_between_count_and_data: The same, between the count and the data statement.
        not_ready: ``/readyz`` answers 503.
        database_down: Queries answer 500 (database-error); writes are parked in the
            dead-letter queue (202) and replayed once the database is back.
        auth_unavailable: With auth on, the token check fails as when the Kubernetes API is
            unreachable: every ``/api/v1`` request with a bearer token answers 500.
        dlq_rate: Park this share of single writes in the dead-letter queue (202).
        dlq_replay_interval: Seconds between dead-letter queue replays (the service: 30).
        routes: Route names the request faults apply to: ``query``, ``write``, ``batch``.
        seed: Seed of the random draws, for reproducible runs.
    """

    latency: float = 0.0
    latency_jitter: float = 0.0
    error_500_rate: float = 0.0
    error_503_rate: float = 0.0
    rate_429: float = 0.0
    retry_after: str | None = None
    proxy_502_rate: float = 0.0
    drop_connection_rate: float = 0.0
    truncated_body_rate: float = 0.0
    malformed_json_rate: float = 0.0
    slow_body: float = 0.0
    extra_fields: bool = False
    unknown_enums: bool = False
    insert_between_pages: int | InsertHook = 0
    insert_between_count_and_data: int | InsertHook = 0
    not_ready: bool = False
    database_down: bool = False
    auth_unavailable: bool = False
    dlq_rate: float = 0.0
    dlq_replay_interval: float = 30.0
    routes: tuple[str, ...] = ("query", "write", "batch")
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the settings as JSON values; a hook shows as the string ``"<hook>"``."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if callable(value):
                value = "<hook>"
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """Return a copy with ``changes`` (JSON values) applied.

        Raises ValueError for an unknown name and TypeError or ValueError for a bad value.
        """
        names = {field.name: field for field in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown fault {name!r}")
            clean[name] = _coerce(name, getattr(self, name), value)
        return dataclasses.replace(self, **clean)


def _coerce(name: str, current: object, value: object) -> object:
    if name == "routes":
        if not isinstance(value, list) or not all(item in ROUTES for item in value):
            raise ValueError(f"routes must be a list drawn from {list(ROUTES)}")
        return tuple(value)
    if name in ("retry_after", "seed"):
        if value is not None and not isinstance(value, str if name == "retry_after" else int):
            raise ValueError(f"{name} has the wrong type")
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a boolean")
        return value
    if name.startswith("insert_between"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a count >= 0")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0")
    return float(value)
