"""A consistent walk over limit/offset pages that move while we read them.

The server orders by (event_timestamp, event_id) descending and pages by offset, with no
snapshot between requests: a newer row arriving mid-walk shifts later pages (the next page
repeats an item), and a late row with an older timestamp can land in a region already read.

Guarantee: every event stored before the walk began is yielded exactly once; no event is yielded
twice. An event that arrives during the walk is yielded at most once; when the walk spans
several pages it ends with a count check, and while the count shows rows it has not yielded
(up to ``max_passes`` passes) it walks again and yields only the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from .models import AuditEvent, AuditEventPage


@dataclass(slots=True)
class PageWalker:
    """Decides the next ``(limit, offset)`` and filters each page down to unseen events."""

    page_size: int
    verify: bool = True
    max_passes: int = 5
    seen: set[UUID | str] = field(default_factory=set)
    _offset: int = 0
    _pages_this_pass: int = 0
    _passes: int = 1
    _checking: bool = False
    _done: bool = False

    def next_request(self) -> tuple[int, int] | None:
        """``(limit, offset)`` of the next request, or None when the walk is over."""
        if self._done:
            return None
        if self._checking:
            return (1, 0)
        return (self.page_size, self._offset)

    def feed(self, page: AuditEventPage) -> list[AuditEvent]:
        """Take a response; return the events not yielded before, in page order."""
        if self._checking:
            self._checking = False
            if page.total <= len(self.seen) or self._passes >= self.max_passes:
                self._done = True
            else:
                self._passes += 1
                self._offset = 0
                self._pages_this_pass = 0
            return []
        fresh: list[AuditEvent] = []
        for event in page.events:
            key: UUID | str = event.event_id if event.event_id is not None else _identity(event)
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(event)
        self._pages_this_pass += 1
        if len(page.events) >= self.page_size:
            self._offset += self.page_size
            return fresh
        # A short page ends the pass. A single short page read everything in one statement, so
        # nothing can have been skipped; after several pages, confirm with a fresh count.
        if self.verify and (self._pages_this_pass > 1 or self._passes > 1):
            self._checking = True
        else:
            self._done = True
        return fresh


def _identity(event: AuditEvent) -> str:
    # Servers always send event_id; this keeps an id-less row from being collapsed with others.
    return f"{event.event_timestamp.isoformat()}|{event.event_type}|{event.event_hash}"
