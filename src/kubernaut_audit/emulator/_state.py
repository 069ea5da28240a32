"""What an emulator instance knows: its store, faults, dead-letter queue and counters."""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from ._auth import TokenUser, token_users
from ._events import Incoming, Payloads, parse_mapping, screen, to_row
from ._faults import Faults
from ._hashchain import HashChain
from ._store import Store

Clock = Callable[[], datetime]


@dataclasses.dataclass(frozen=True)
class EmulatorStats:
    """A snapshot of the requests an emulator answered since it started or was reset.

    Attributes:
        requests: Requests to the audit routes and ``/readyz`` (not the admin routes).
        by_route: Requests per route name: ``query``, ``write``, ``batch``, ``readyz``.
        by_correlation_id: Requests per correlation id: queries filtering on it, and writes
            carrying at least one event of it (counted once per request).
        by_status: Responses per HTTP status code.
        dead_letter_queue: Events parked in the dead-letter queue now.
    """

    requests: int = 0
    by_route: Mapping[str, int] = dataclasses.field(default_factory=dict)
    by_correlation_id: Mapping[str, int] = dataclasses.field(default_factory=dict)
    by_status: Mapping[int, int] = dataclasses.field(default_factory=dict)
    dead_letter_queue: int = 0

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON values (status codes become string keys)."""
        return {
            "requests": self.requests,
            "by_route": dict(self.by_route),
            "by_correlation_id": dict(self.by_correlation_id),
            "by_status": {str(code): n for code, n in self.by_status.items()},
            "dead_letter_queue": self.dead_letter_queue,
        }


def utc_now() -> datetime:
    return datetime.now(UTC)


class State:
    """Shared by the app's handlers; safe to use from any thread."""

    def __init__(
        self,
        *,
        db: str,
        faults: Faults | None,
        clock: Clock | None,
        hash_key: bytes | None = None,
        payloads: Payloads | None = None,
        tokens: Mapping[str, str | TokenUser] | None = None,
    ) -> None:
        self.store = Store(db, chain=HashChain(hash_key))
        self.clock: Clock = clock or utc_now
        self.payloads = payloads or Payloads()
        self.users = token_users(tokens) if tokens is not None else None
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self.rng = random.Random(self._faults.seed)
        self._routes: collections.Counter[str] = collections.Counter()
        self._correlations: collections.Counter[str] = collections.Counter()
        self._statuses: collections.Counter[int] = collections.Counter()
        self._dlq: list[dict[str, Any]] = []
        self._last_replay = time.monotonic()

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self.rng = random.Random(faults.seed)

    def chance(self, rate: float) -> bool:
        """Draw a fault with probability ``rate``; no draw is spent on a zero rate."""
        if rate <= 0:
            return False
        with self._lock:
            return self.rng.random() < rate

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self.rng.uniform(low, high)

    def count(self, route: str, status: int, correlation_ids: Iterable[str]) -> None:
        with self._lock:
            self._routes[route] += 1
            self._statuses[status] += 1
            self._correlations.update(set(correlation_ids))

    def stats(self) -> EmulatorStats:
        with self._lock:
            return EmulatorStats(
                requests=sum(self._routes.values()),
                by_route=dict(self._routes),
                by_correlation_id=dict(self._correlations),
                by_status=dict(self._statuses),
                dead_letter_queue=len(self._dlq),
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._routes.clear()
            self._correlations.clear()
            self._statuses.clear()

    def insert_events(
        self, events: Iterable[Mapping[str, Any]], *, user: str | None = None
    ) -> list[str]:
        """Validate, fill defaults and store events, skipping the timestamp window check.

        A parent that exists gives its date; one that does not is taken on trust.
        """
        rows = []
        for event in events:
            incoming = parse_mapping(event, self.payloads)
            screen(incoming, now=None)
            rows.append(
                to_row(
                    incoming,
                    event_id=new_event_id(),
                    user=user,
                    parent_date=self.parent_date(incoming),
                )
            )
        return self.store.insert(rows)

    def parent_date(self, event: Incoming) -> date | None:
        """The stored date of the event's parent, or None (no parent, or none stored)."""
        parent = event.fields.get("parent_event_id") if event.parent_set else None
        return self.store.event_date(parent) if parent is not None else None

    def park(self, rows: Iterable[dict[str, Any]]) -> None:
        """Put rows in the dead-letter queue."""
        with self._lock:
            self._dlq.extend(rows)

    def replay(self) -> int:
        """Store what the dead-letter queue holds, unless the database is down; return how many."""
        with self._lock:
            self._last_replay = time.monotonic()
            if self._faults.database_down or not self._dlq:
                return 0
            rows, self._dlq = self._dlq, []
        self.store.insert(rows)
        return len(rows)

    def replay_if_due(self) -> None:
        # The service's DLQ consumer runs on a timer. Every observation of the store goes
        # through a request, so replaying lazily at the start of one is indistinguishable.
        if time.monotonic() - self._last_replay >= self._faults.dlq_replay_interval:
            self.replay()


def new_event_id() -> str:
    return str(uuid.uuid4())
