"""A scriptable fake Data Storage for wait tests: events become visible at event-loop times."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

_counter = itertools.count()


def event(
    correlation_id: str,
    event_type: str = "gateway.signal.received",
    *,
    outcome: str = "success",
    category: str = "gateway",
    **extra: Any,
) -> dict[str, Any]:
    """A stored event as the server returns it."""
    n = next(_counter)
    return {
        "event_id": str(uuid.uuid4()),
        "event_timestamp": f"2026-11-24T08:00:{n % 60:02d}.{n:06d}Z",
        "event_date": "2026-11-24",
        "event_type": event_type,
        "version": "1.0",
        "event_category": category,
        "event_action": event_type.rsplit(".", 1)[-1],
        "event_outcome": outcome,
        "correlation_id": correlation_id,
        "event_data": {"event_type": event_type},
        **extra,
    }


@dataclass
class FakeDataStorage:
    """Serves GET /api/v1/audit/events from rows that turn visible at given loop times."""

    rows: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    #: Statuses to answer with before serving normally (consumed one per request).
    failures: list[int] = field(default_factory=list)
    #: Called per request; may return a response to answer with instead.
    override: Callable[[httpx.Request], httpx.Response | None] | None = None

    def add(self, at: float, *events: dict[str, Any]) -> None:
        self.rows.extend((at, e) for e in events)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def client_kwargs(self) -> dict[str, Any]:
        return {"base_url": "http://ds.test", "transport": self.transport()}

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None and (answer := self.override(request)) is not None:
            return answer
        if self.failures:
            status = self.failures.pop(0)
            return httpx.Response(
                status,
                json={"type": "about:blank", "title": "failure", "status": status},
                headers={"content-type": "application/problem+json"},
            )
        now = anyio.current_time()
        cid = request.url.params.get("correlation_id")
        visible = [e for at, e in self.rows if at <= now and e["correlation_id"] == cid]
        visible.sort(key=lambda e: (e["event_timestamp"], e["event_id"]), reverse=True)
        limit = int(request.url.params.get("limit", "50"))
        offset = int(request.url.params.get("offset", "0"))
        page = visible[offset : offset + limit]
        return httpx.Response(
            200,
            json={
                "data": page,
                "pagination": {
                    "limit": limit,
                    "offset": offset,
                    "total": len(visible),
                    "has_more": offset + len(page) < len(visible),
                },
            },
        )
