"""PageWalker: every event once while rows arrive between and inside page requests."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kubernaut_audit import (
    AsyncAuditClient,
    AuditEvent,
    AuditEventPage,
    EventCategory,
    EventOutcome,
)
from kubernaut_audit._pagination import PageWalker

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DATA = {"event_type": "t"}


def make_event(seconds: float) -> AuditEvent:
    # model_construct: the walker needs ids and timestamps, not validation, and 200+ seeds
    # must stay fast.
    return AuditEvent.model_construct(
        event_id=uuid.uuid4(),
        event_timestamp=T0 + timedelta(seconds=seconds),
        event_type="t",
        event_category=EventCategory.GATEWAY,
        event_outcome=EventOutcome.SUCCESS,
        event_action="received",
        correlation_id="rr-1",
        event_data=DATA,
        version="1.0",
    )


def sort_key(event: AuditEvent) -> tuple[datetime, str]:
    return (event.event_timestamp, str(event.event_id))


@dataclass
class QuirkyServer:
    """Data Storage's paging as the real service does it: a COUNT, then the page, no snapshot.

    Before a request's count, or between its count and its data statement, rows may arrive:
    newer than all (the head) or older than some already read (a late row in the middle).
    """

    rng: random.Random
    rows: list[AuditEvent] = field(default_factory=list)
    budget: int = 0
    last_count_rows: set[uuid.UUID] = field(default_factory=set)
    requests: int = 0

    def _insert_some(self) -> None:
        if self.budget <= 0 or self.rng.random() > 0.35:
            return
        self.budget -= 1
        for _ in range(self.rng.randint(1, 3)):
            newest = max((e.event_timestamp for e in self.rows), default=T0)
            if self.rng.random() < 0.5:
                seconds = (newest - T0).total_seconds() + self.rng.uniform(0.001, 5)
            else:
                seconds = self.rng.uniform(-100, (newest - T0).total_seconds())
            self.rows.append(make_event(seconds))

    def query(self, limit: int, offset: int) -> AuditEventPage:
        self.requests += 1
        self._insert_some()  # before the count
        total = len(self.rows)
        self.last_count_rows = {e.event_id for e in self.rows if e.event_id is not None}
        self._insert_some()  # between count and data
        ordered = sorted(self.rows, key=sort_key, reverse=True)
        data = ordered[offset : offset + limit]
        return AuditEventPage(
            events=data,
            limit=limit,
            offset=offset,
            total=total,
            has_more=offset + len(data) < total,
        )


def walk(server: QuirkyServer, page_size: int) -> list[AuditEvent]:
    walker = PageWalker(page_size=page_size)
    out: list[AuditEvent] = []
    while (nxt := walker.next_request()) is not None:
        out.extend(walker.feed(server.query(*nxt)))
        assert server.requests < 1000, "the walk does not end"
    return out


@pytest.mark.parametrize("seed", range(300))
def test_randomised_walk_yields_every_event_exactly_once(seed: int) -> None:
    """Rows arriving at the head, in the middle and between count and data: each event once."""
    rng = random.Random(seed)
    server = QuirkyServer(rng=rng, budget=rng.randint(0, 3))
    server.rows = [make_event(rng.uniform(0, 1000)) for _ in range(rng.randint(0, 40))]
    before = {e.event_id for e in server.rows}
    got = walk(server, page_size=rng.randint(1, 12))
    ids = [e.event_id for e in got]
    assert len(ids) == len(set(ids)), "an event was yielded twice"
    assert before <= set(ids), "an event stored before the walk was lost"
    assert server.last_count_rows <= set(ids), "an event counted by the last check was lost"
    assert set(ids) <= {e.event_id for e in server.rows}


def test_head_insert_shifts_page_without_duplicate() -> None:
    """A newer row arriving between pages repeats an item, which is yielded only once."""
    events = [make_event(100 - i) for i in range(4)]
    walker = PageWalker(page_size=2)
    first = walker.feed(AuditEventPage(events[:2], 2, 0, 4, True))
    # A new head row pushed events[1] onto the second page.
    second = walker.feed(AuditEventPage(events[1:3], 2, 2, 5, True))
    third = walker.feed(AuditEventPage(events[3:], 2, 4, 5, False))
    assert [e.event_id for e in first + second + third] == [e.event_id for e in events]


def test_late_middle_row_found_by_count_check() -> None:
    """A late row landing in a region already read is found by the count check and re-walk."""
    events = [make_event(100 - i) for i in range(4)]
    late = make_event(99.5)  # sorts between events[0] and events[1], already read
    walker = PageWalker(page_size=2)
    assert walker.next_request() == (2, 0)
    walker.feed(AuditEventPage(events[:2], 2, 0, 4, True))
    assert walker.next_request() == (2, 2)
    shifted = sorted([*events, late], key=sort_key, reverse=True)
    walker.feed(AuditEventPage(shifted[2:4], 2, 2, 5, True))
    walker.feed(AuditEventPage(shifted[4:], 2, 4, 5, False))
    assert walker.next_request() == (1, 0)  # the count check
    assert walker.feed(AuditEventPage(shifted[:1], 1, 0, 5, True)) == []
    assert walker.next_request() == (2, 0)  # count 5 > 4 seen: walk again
    fresh: list[AuditEvent] = []
    for offset in (0, 2, 4):
        fresh += walker.feed(AuditEventPage(shifted[offset : offset + 2], 2, offset, 5, False))
    assert [e.event_id for e in fresh] == [late.event_id]
    assert walker.next_request() == (1, 0)
    walker.feed(AuditEventPage(shifted[:1], 1, 0, 5, False))
    assert walker.next_request() is None


def test_single_short_page_needs_no_count_check() -> None:
    """One short page read everything in one statement: the walk ends without a check."""
    walker = PageWalker(page_size=10)
    walker.feed(AuditEventPage([make_event(1)], 10, 0, 1, False))
    assert walker.next_request() is None


def test_passes_bounded() -> None:
    """A count that never settles stops after max_passes passes."""
    walker = PageWalker(page_size=2, max_passes=2)
    requests = 0
    while (nxt := walker.next_request()) is not None:
        requests += 1
        limit, offset = nxt
        count = 1 if limit == 1 else (2 if offset == 0 else 1)
        events = [make_event(requests * 10 + i) for i in range(count)]
        walker.feed(AuditEventPage(events, limit, offset, 10_000, True))
        assert requests < 100
    assert requests == 6  # two pages and a count check, twice


def test_empty_result_ends_walk() -> None:
    """An empty first page ends the walk with nothing yielded."""
    walker = PageWalker(page_size=5)
    assert walker.feed(AuditEventPage([], 5, 0, 0, False)) == []
    assert walker.next_request() is None


# -- through the client ----------------------------------------------------------------------


def as_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "event_id": str(event.event_id),
        "event_timestamp": event.event_timestamp.isoformat(),
        "version": "1.0",
        "event_type": "gateway.signal.received",
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": "rr-1",
        "event_data": {"event_type": "gateway.signal.received"},
    }


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(10))
async def test_client_walk_over_quirky_server(seed: int) -> None:
    """iter_audit_events against a quirky MockTransport server yields each event once."""
    rng = random.Random(seed)
    server = QuirkyServer(rng=rng, budget=3)
    server.rows = [make_event(rng.uniform(0, 1000)) for _ in range(25)]
    before = {e.event_id for e in server.rows}
    sent_limits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params.get("offset", "0"))
        sent_limits.append(request.url.params["limit"])
        page = server.query(limit, offset)
        return httpx.Response(
            200,
            json={
                "data": [as_json(e) for e in page.events],
                "pagination": {
                    "limit": limit,
                    "offset": offset,
                    "total": page.total,
                    "has_more": page.has_more,
                },
            },
        )

    async with AsyncAuditClient(
        base_url="http://ds.test", transport=httpx.MockTransport(handler)
    ) as client:
        ids = [
            e.event_id async for e in client.iter_audit_events(correlation_id="rr-1", page_size=4)
        ]
    assert len(ids) == len(set(ids))
    assert before <= set(ids)
    assert server.last_count_rows <= set(ids)
    assert all(limit in {"4", "1"} for limit in sent_limits)
