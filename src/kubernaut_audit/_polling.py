"""One wait's polls: what a wait needs from a client (:class:`WaitClient`), the per-client
:class:`WaitState` waits share, the poll bookkeeping, and the failure message that explains
what did arrive.

Every poll asks for *all* events of the correlation id and filters on the client side, so that
concurrent waits on one correlation id can share one query, and a failure can say what arrived
besides what was expected.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio

from . import _config
from ._exceptions import AuditError, AuditWaitTimeout, UnexpectedAuditEvents
from ._expectation import Expectation
from ._pagination import PageWalker
from ._planner import Observation
from ._query import QueryFilters
from ._retry import RetryPolicy, is_transient
from ._tracebacks import hide_audit_errors
from ._writers import WriterKind, WriterKnowledge
from .models import AuditEvent, AuditEventPage

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

logger = logging.getLogger("kubernaut_audit")

#: Event ids a failure message lists before "(+N more)".
_SHOW_IDS = 5
#: A query sent this long before another wait's poll was due answers that poll too (seconds).
_SHARE_WINDOW = 0.005
#: Answers kept per client before old ones are swept (a sweep per query past this is cheap).
_KEEP_ANSWERS = 64
#: A swept answer is at least this old (seconds): far older than any share window.
_SWEEP_AGE = 1.0
#: Each poll's own retries of a transient error: at most this many tries, the first backoff
#: bound this long (seconds), the bound capped at one flush interval. Within a wait, a poll that
#: keeps failing is better followed by the next poll than retried harder; the wait's deadline
#: bounds everything, so the client's ``retry=`` (built for one-off queries) does not apply.
POLL_RETRY_ATTEMPTS = 3
POLL_RETRY_INITIAL = 0.1


def poll_retry_policy(flush_interval: float) -> RetryPolicy:
    """The retry policy of a wait's polls (see ``POLL_RETRY_ATTEMPTS``)."""
    return RetryPolicy(
        attempts=POLL_RETRY_ATTEMPTS,
        timeout=math.inf,
        initial=POLL_RETRY_INITIAL,
        max_backoff=flush_interval,
    )


@dataclass(frozen=True, slots=True)
class PollRecord:
    """One poll of a wait, for diagnostics and per-poll hooks.

    .. versionadded:: 0.1.0
    """

    number: int
    at: float
    """Seconds from the start of the wait when the poll was sent."""
    duration: float
    """Seconds the poll took."""
    events: int
    """Events known for the correlation id after this poll (matching or not)."""
    new: int
    """Events this poll saw for the first time."""
    matched: int
    """Events matching the expectation's filters after this poll."""
    by_type: tuple[tuple[str, int], ...] = ()
    """Events known after this poll, counted by event type (most frequent first)."""
    error: str | None = None
    """The transient error this poll met, if any."""
    shared: bool = False
    """True when another wait's in-flight query answered this poll."""
    kind: str = ""
    """Why the poll was sent: ``"first"``; ``"due"`` (while events are due) or ``"backoff"``
    (once overdue); ``"probe"``, ``"check"`` or ``"decisive"`` (predicted from the writer's
    learned cadence); ``"settle"`` (the end of ``settle=``'s quiet window); ``"final"`` (just
    before the deadline); ``"watch"`` (a poll of ``assert_no_audit_events``).

    .. versionadded:: 0.2.0
    """


PollHook = Callable[[PollRecord], None]


class _Inflight:
    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.received = sent
        self.done = anyio.Event()
        self.events: list[AuditEvent] | None = None
        self.error: AuditError | None = None


class WaitState:
    """What the waits on one client share: what they learned of the writer (one
    :class:`~._writers.WriterKnowledge` per assumed interval) and, per correlation id, the latest
    query (in flight or answered), which waits polling at the same moment share. Each client
    owns one."""

    def __init__(self) -> None:
        self.writers: dict[float, WriterKnowledge] = {}
        self.latest: dict[str, _Inflight] = {}

    def writer(self, interval: float) -> WriterKnowledge:
        """What the client's waits learned of a writer of this flush interval."""
        known = self.writers.get(interval)
        if known is None:
            known = self.writers[interval] = WriterKnowledge(interval)
        return known

    def remember(self, cid: str, query: _Inflight) -> None:
        # An answer is shared only while in flight or for _SHARE_WINDOW after it was asked for:
        # older ones are dropped, so memory stays bounded by the waits running now.
        if len(self.latest) > _KEEP_ANSWERS:
            horizon = query.sent - _SWEEP_AGE
            for key in [k for k, q in self.latest.items() if q.done.is_set() and q.sent < horizon]:
                del self.latest[key]
        self.latest[cid] = query


class WaitClient(Protocol):
    """What the waiting code needs from a client (``AsyncAuditClient`` provides it).

    The two private members are the package's own contract between the client and its waits,
    not API: a client fetches one page of a query, and owns the :class:`WaitState` its waits
    share.
    """

    @property
    def base_url(self) -> str:
        """Named in failure hints."""
        ...

    @property
    def flush_interval(self) -> float:
        """The writer's flush interval waits assume when the call names none."""
        ...

    @property
    def writer(self) -> WriterKind:
        """The writer kind waits assume when the call names none."""
        ...

    @property
    def _wait_state(self) -> WaitState: ...

    async def _fetch_page(
        self,
        filters: QueryFilters,
        limit: int,
        offset: int,
        *,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> AuditEventPage: ...


async def _fetch_correlation(
    client: WaitClient, filters: QueryFilters, deadline: float, retry: RetryPolicy
) -> tuple[list[AuditEvent], float, float, bool]:
    """All events of the correlation id: (events, sent, received, shared).

    A query of another wait is shared when it is in flight, or was sent no more than
    ``_SHARE_WINDOW`` before this poll was due: its answer is as fresh as our own would be.
    """
    state = client._wait_state
    cid = filters.correlation_id
    assert cid is not None
    now = anyio.current_time()
    latest = state.latest.get(cid)
    if latest is not None and (not latest.done.is_set() or latest.sent >= now - _SHARE_WINDOW):
        await latest.done.wait()
        if latest.events is not None:
            return latest.events, latest.sent, latest.received, True
        if latest.error is not None:
            raise latest.error
        # Its owner was cancelled before an answer: ask ourselves.
    own = _Inflight(now)
    state.remember(cid, own)
    try:
        walker = PageWalker(page_size=_config.MAX_PAGE_LIMIT, verify=False)
        events: list[AuditEvent] = []
        while (nxt := walker.next_request()) is not None:
            page = await client._fetch_page(filters, *nxt, deadline=deadline, retry=retry)
            events.extend(walker.feed(page))
        own.received = anyio.current_time()
        own.events = events
        return events, own.sent, own.received, False
    except AuditError as exc:
        own.error = exc
        raise
    finally:
        own.done.set()


def _key(event: AuditEvent) -> str:
    return str(event.event_id) if event.event_id is not None else repr(event.model_dump())


def _chronological(events: Sequence[AuditEvent]) -> list[AuditEvent]:
    return sorted(events, key=lambda e: (e.event_timestamp, str(e.event_id)))


class _Poller:
    """One wait's bookkeeping: what was seen, the poll history, the last error."""

    def __init__(
        self,
        client: WaitClient,
        expectation: Expectation,
        *,
        flush_interval: float,
        deadline: float,
        on_poll: PollHook | None,
    ) -> None:
        self.client = client
        self.expectation = expectation
        self.flush_interval = flush_interval
        self.start = anyio.current_time()
        self.deadline = deadline
        self.on_poll = on_poll
        self.seen: dict[str, AuditEvent] = {}
        self.polls: list[PollRecord] = []
        self.last_error: AuditError | None = None
        self.last_change: float | None = None
        self.first_seen: float | None = None
        self.retry = poll_retry_policy(flush_interval)
        self._query_filters = QueryFilters(correlation_id=expectation.filters.correlation_id)

    @property
    def correlation_id(self) -> str:
        cid = self.expectation.filters.correlation_id
        assert cid is not None
        return cid

    def matched(self) -> list[AuditEvent]:
        return [e for e in self.seen.values() if self.expectation.matches(e)]

    async def poll(self, kind: str = "") -> Observation:
        """One poll (sent for the reason ``kind``): what it saw, for the planner."""
        sent = anyio.current_time()
        error: AuditError | None = None
        new = 0
        shared = False
        q_sent, q_received = sent, sent
        with anyio.move_on_after(max(self.deadline - sent, 0)) as scope:
            try:
                events, q_sent, q_received, shared = await _fetch_correlation(
                    self.client, self._query_filters, self.deadline, self.retry
                )
            except AuditError as exc:
                if not is_transient(exc, idempotent=True):
                    raise
                error = exc
            else:
                for event in events:
                    key = _key(event)
                    if key not in self.seen:
                        self.seen[key] = event
                        new += 1
        now = anyio.current_time()
        if scope.cancelled_caught:
            error = self.last_error or error
        if error is not None:
            self.last_error = error
        matched = self.matched()
        if new:
            self.last_change = now - self.start
        if matched and self.first_seen is None:
            self.first_seen = now - self.start
        record = PollRecord(
            number=len(self.polls) + 1,
            at=sent - self.start,
            duration=now - sent,
            events=len(self.seen),
            new=new,
            matched=len(matched),
            by_type=tuple(Counter(e.event_type for e in self.seen.values()).most_common()),
            error=f"{type(error).__name__}: {error}" if error else None,
            shared=shared,
            kind=kind,
        )
        self.polls.append(record)
        logger.debug(
            "audit wait %s poll %d (%s): %d event(s), %d new, %d matching%s",
            self.correlation_id,
            record.number,
            kind,
            record.events,
            new,
            record.matched,
            f" ({record.error})" if record.error else "",
        )
        if self.on_poll is not None:
            self.on_poll(record)
        answered = anyio.current_time()
        if error is not None or scope.cancelled_caught:
            return Observation.failed(sent, answered)
        return Observation(sent, answered, new, q_sent, q_received)

    def elapsed(self) -> float:
        return anyio.current_time() - self.start

    def failure(
        self, cls: type[AuditWaitTimeout | UnexpectedAuditEvents], headline: str
    ) -> Exception:
        events = _chronological(list(self.seen.values()))
        matched = _chronological(self.matched())
        return cls(
            _diagnose(self, headline, events, matched),
            correlation_id=self.correlation_id,
            expectation=self.expectation.describe(),
            events=events,
            matched=matched,
            polls=list(self.polls),
            elapsed=self.elapsed(),
            last_error=self.last_error,
            flush_interval=self.flush_interval,
        )


def _counts(values: Sequence[str]) -> str:
    return ", ".join(f"{v} ×{n}" for v, n in Counter(values).most_common()) or "-"


def _diagnose(
    p: _Poller, headline: str, events: list[AuditEvent], matched: list[AuditEvent]
) -> str:
    exp = p.expectation
    lines = [
        f"{headline} for correlation_id={p.correlation_id!r} after {p.elapsed():.2f}s "
        f"({len(p.polls)} polls, writer flush interval {p.flush_interval:g}s assumed)",
        f"  expected: {exp.describe()}",
        f"  arrived:  {len(events)} event(s) for this correlation id, {len(matched)} matching",
    ]
    if events:
        lines.append(f"    by type:    {_counts([e.event_type for e in events])}")
        lines.append(f"    by outcome: {_counts([str(e.event_outcome) for e in events])}")
        ids = ", ".join(str(e.event_id) for e in events[:_SHOW_IDS])
        more = f" (+{len(events) - _SHOW_IDS} more)" if len(events) > _SHOW_IDS else ""
        lines.append(f"    first ids:  {ids}{more}")
    if matched:
        missing = exp.unmet(matched)
        if missing:
            lines.append(f"  missing:  {', '.join(missing)}")
    if p.last_change is not None:
        lines.append(f"  last change: {p.last_change:.2f}s after the start")
    if p.last_error is not None:
        lines.append(f"  last error:  {type(p.last_error).__name__}: {p.last_error}")
    lines.append(f"  hint: {_hint(p, events, matched)}")
    return "\n".join(lines)


def _hint(p: _Poller, events: list[AuditEvent], matched: list[AuditEvent]) -> str:
    if p.last_error is not None and not events:
        return (
            "polls failed and nothing arrived; is Data Storage at "
            f"{p.client.base_url} up and reachable?"
        )
    if not events:
        return (
            "no event at all arrived for this correlation id: was the service under test "
            "given this correlation id, and does it write to the Data Storage at "
            f"{p.client.base_url}? A buffered writer flushes every {p.flush_interval:g}s."
        )
    if not matched:
        return "events arrived but none matched the filters: compare the types and outcomes above"
    allowed = p.expectation.count
    if allowed is not None and len(matched) > allowed:
        if allowed == 0:
            return (
                "an event the check forbids was written (type and id above): by the service "
                "under test, or by another test using this correlation id"
            )
        return (
            f"more matching events arrived than the {allowed} expected: a write repeated "
            "after a retry, or the service under test triggered twice"
        )
    return (
        "the expectation was only partly met: the rest may have been dropped by the writer after "
        "failed writes, or it is slower than assumed (raise timeout= or flush_interval=)"
    )
