"""What the emitters report: one record per emitted event, running totals, and their ledger."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from kubernaut_audit._generated.models import AuditEventRequest


@dataclasses.dataclass(frozen=True)
class EmittedRecord:
    """What became of one emitted event.

    Attributes:
        correlation_id: The event's correlation id.
        event_type: The event's type.
        emitted_at: When ``emit()`` took it, on the emitter's timer (``time.monotonic()`` by
            default).
        visible_at: When the POST that stored it returned, on the same timer; None until then.
        event_id: The id the server gave it, when the response carried one.
        attempts: POSTs made for its batch so far.
        dropped: Whether the emitter gave up on it (refused, out of attempts, or after close).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Lives in ``kubernaut_audit.emitters``.
    """

    correlation_id: str
    event_type: str
    emitted_at: float
    visible_at: float | None = None
    event_id: str | None = None
    attempts: int = 0
    dropped: bool = False


@dataclasses.dataclass(frozen=True)
class EmitterCounters:
    """Running totals of a buffered emitter.

    Attributes:
        emitted: Events ``emit()`` took.
        stored: Events a POST stored.
        dropped: Events the emitter gave up on.
        buffered: Events waiting for a write.
        posts: POSTs made, retries included.
        failed_posts: POSTs that did not store their batch.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Lives in ``kubernaut_audit.emitters``.
    """

    emitted: int
    stored: int
    dropped: int
    buffered: int
    posts: int
    failed_posts: int


class Entry:
    """One emitted event and what has become of it so far (mutated under the ledger's lock)."""

    __slots__ = ("attempts", "dropped", "emitted_at", "event", "event_id", "visible_at")

    def __init__(self, event: dict[str, Any], emitted_at: float) -> None:
        self.event = event
        self.emitted_at = emitted_at
        self.visible_at: float | None = None
        self.event_id: str | None = None
        self.attempts = 0
        self.dropped = False

    def record(self) -> EmittedRecord:
        return EmittedRecord(
            correlation_id=str(self.event.get("correlation_id", "")),
            event_type=str(self.event.get("event_type", "")),
            emitted_at=self.emitted_at,
            visible_at=self.visible_at,
            event_id=self.event_id,
            attempts=self.attempts,
            dropped=self.dropped,
        )


def as_dict(event: Mapping[str, Any] | AuditEventRequest) -> dict[str, Any]:
    """The JSON object of an event given as a mapping or a request model."""
    if isinstance(event, AuditEventRequest):
        return event.model_dump(mode="json", exclude_unset=True)
    return dict(event)


class Ledger:
    """Every emitted entry, the buffer of unwritten ones and the POST counts, behind one lock.

    ``emit()`` may run on any thread while the writer runs on the emitter's event loop, so each
    method takes the lock; none of them blocks on I/O.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._buffer: list[Entry] = []
        self._posts = 0
        self._failed_posts = 0

    def push(self, entry: Entry, *, closed: bool) -> int:
        """Record an entry, buffered unless ``closed`` (then dropped); return the buffer size."""
        with self._lock:
            self._entries.append(entry)
            if closed:
                entry.dropped = True
            else:
                self._buffer.append(entry)
            return len(self._buffer)

    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    def take(self, batch_size: int, *, full_batches_only: bool = False) -> list[Entry]:
        """Remove and return up to ``batch_size`` buffered entries, oldest first."""
        with self._lock:
            if full_batches_only and len(self._buffer) < batch_size:
                return []
            batch = self._buffer[:batch_size]
            del self._buffer[:batch_size]
            return batch

    def count_post(self, batch: list[Entry], attempt: int) -> None:
        with self._lock:
            self._posts += 1
            for entry in batch:
                entry.attempts = attempt

    def count_failed_post(self) -> None:
        with self._lock:
            self._failed_posts += 1

    def mark_stored(self, batch: list[Entry], ids: list[str], now: float) -> None:
        with self._lock:
            for index, entry in enumerate(batch):
                entry.visible_at = now
                entry.event_id = ids[index] if index < len(ids) else None

    def mark_dropped(self, batch: list[Entry]) -> None:
        with self._lock:
            for entry in batch:
                entry.dropped = True

    def drop_unwritten(self) -> None:
        """Empty the buffer and mark every entry not stored as dropped (on close)."""
        with self._lock:
            self._buffer.clear()
            for entry in self._entries:
                if entry.visible_at is None:
                    entry.dropped = True

    def records(self) -> list[EmittedRecord]:
        with self._lock:
            return [entry.record() for entry in self._entries]

    def counters(self) -> EmitterCounters:
        with self._lock:
            return EmitterCounters(
                emitted=len(self._entries),
                stored=sum(entry.visible_at is not None for entry in self._entries),
                dropped=sum(entry.dropped for entry in self._entries),
                buffered=len(self._buffer),
                posts=self._posts,
                failed_posts=self._failed_posts,
            )
