"""Issue 6, item 18: iter_audit_events against the emulator while rows arrive at the head, in
the middle (older timestamps) and between the count and the data statements.

What is checked is what ``_pagination`` documents: every event stored before the walk began is
yielded, no event is yielded twice, and, since the walk ends with a count check that re-reads
while the count shows rows it has not yielded, every row the last count statement counted is
yielded too (the inserts here are bounded, so the walk never runs out of passes).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubernaut_audit import AsyncAuditClient
from kubernaut_audit.emulator import Emulator, Faults, make_event

pytestmark = pytest.mark.anyio
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)

#: 1,000 walks in all, spread over parametrised cases of their own seed so that each case stays
#: a few CPU seconds (and ``-n 2`` can share them out) on a loaded 2-core machine.
CASES = 20
RUNS = 50


class Walk:
    """One randomised run: rows planted before the walk, more inserted by the emulator's hooks
    while the walk pages, each row tagged through ``resource_id``."""

    def __init__(self, rng: random.Random, correlation_id: str) -> None:
        self.rng = rng
        self.cid = correlation_id
        self.base = datetime.now(UTC) - timedelta(hours=2)
        self.newest = self.base
        self.tags = itertools.count()
        self.present: set[str] = set()
        self.counted: set[str] = set()
        self.budget = rng.randint(0, 3)

    def event(self, moment: datetime) -> dict[str, Any]:
        tag = f"{self.cid}-{next(self.tags)}"
        self.present.add(tag)
        self.newest = max(self.newest, moment)
        stamp = moment.isoformat().replace("+00:00", "Z")
        return make_event(self.cid, event_timestamp=stamp, resource_id=tag)

    def initial(self) -> list[dict[str, Any]]:
        count = self.rng.randint(0, 30)
        return [
            self.event(self.base + timedelta(seconds=self.rng.uniform(0, 3000)))
            for _ in range(count)
        ]

    def arrivals(self, params: Mapping[str, str]) -> Iterable[Mapping[str, Any]]:
        """Rows arriving now: sometimes, newer than all (the head) or older (the middle)."""
        if params.get("correlation_id") != self.cid or self.budget <= 0:
            return []
        if self.rng.random() > 0.4:
            return []
        self.budget -= 1
        rows = []
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.5:
                moment = self.newest + timedelta(seconds=self.rng.uniform(0.001, 5))
            else:
                span = (self.newest - self.base).total_seconds()
                moment = self.base + timedelta(seconds=self.rng.uniform(-100, span))
            rows.append(self.event(moment))
        return rows

    def between_count_and_data(self, params: Mapping[str, str]) -> Iterable[Mapping[str, Any]]:
        if params.get("correlation_id") == self.cid:
            self.counted = set(self.present)  # what this request's COUNT(*) saw
        return self.arrivals(params)


@pytest.mark.slow
@asyncio_only
@pytest.mark.parametrize("case", range(CASES))
async def test_1000_randomised_walks_yield_every_event_exactly_once(case: int) -> None:
    """Over 1,000 randomised walks (50 per case) with rows arriving at the head, in the middle
    and between count and data, every event stored before the walk and every row the final
    count saw is yielded, and none twice."""
    rng = random.Random(f"walks-{case}")
    emu = Emulator()
    disturbed = 0
    for run in range(RUNS):
        walk = Walk(rng, f"rr-walk-{case}-{run}")
        before = {_tag(e) for e in _plant(emu, walk.initial())}
        budget = walk.budget
        emu.faults = Faults(
            insert_between_pages=walk.arrivals,
            insert_between_count_and_data=walk.between_count_and_data,
        )
        async with AsyncAuditClient(transport=emu.transport()) as client:
            got = [
                e.resource_id or ""
                async for e in client.iter_audit_events(
                    correlation_id=walk.cid, page_size=rng.randint(1, 7)
                )
            ]
        emu.faults = Faults()
        assert len(got) == len(set(got)), f"run {run}: an event was yielded twice"
        assert before <= set(got), f"run {run}: an event stored before the walk was lost"
        assert walk.counted <= set(got), f"run {run}: a row the last count saw was lost"
        assert set(got) <= walk.present, f"run {run}: an event nobody stored"
        disturbed += walk.budget < budget
    requests = emu.stats.requests
    emu.close()
    assert requests > 3 * RUNS  # the walks really paged
    assert disturbed > RUNS // 4  # and rows really arrived during many of them


def _plant(emu: Emulator, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if events:
        emu.insert_events(events)
    return events


def _tag(event: Mapping[str, Any]) -> str:
    return str(event["resource_id"])
