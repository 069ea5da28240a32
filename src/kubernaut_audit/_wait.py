"""wait_for_audit_events and assert_no_audit_events: correlation-scoped polling that knows how the
audit writer flushes (see ``_schedule``), and failures that explain themselves.

Every poll asks for *all* events of the correlation id and filters on the client side, so that
concurrent waits on one correlation id can share one in-flight query, and a failure can say
what did arrive besides what was expected.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, Unpack, overload

import anyio

from . import _config
from ._core import Filters, make_filters
from ._exceptions import AuditError, AuditWaitTimeout, UnexpectedAuditEvents
from ._pagination import PageWalker
from ._retry import RetryPolicy, is_transient
from ._schedule import CadenceTracker, ColdSchedule
from .models import AuditEvent, EventCategory, EventOutcome

if TYPE_CHECKING:
    from ._client import AsyncAuditClient
    from ._sync import AuditClient

logger = logging.getLogger("kubernaut_audit")

#: Time allowed for the writer's POST to complete after its ticker fires (seconds).
WRITE_ALLOWANCE = 0.25
#: The last poll of a wait is sent this long before the deadline, so it can still count.
_FINAL_POLL_GUARD = 0.05
_SHOW_IDS = 5
#: A query sent this long before another wait's poll was due answers that poll too (seconds).
_SHARE_WINDOW = 0.005


def default_timeout(flush_interval: float) -> float:
    """The default wait timeout: ``3 × flush_interval + 5`` seconds.

    One interval for the ticker to fire, one for a set split across two flushes, one of slack,
    and 5 s for the writer's own retries of a failed write (about 1 s + 2 s) on a slow machine.
    """
    return 3 * flush_interval + 5.0


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


@dataclass(frozen=True, slots=True)
class WaitStats:
    """How a successful wait went.

    .. versionadded:: 0.1.0
    """

    polls: int
    elapsed: float
    """Seconds from the start of the wait to its return."""
    first_seen: float | None
    """Seconds from the start until the first matching event was seen."""
    satisfied: float
    """Seconds from the start until the expectation first held."""
    history: tuple[PollRecord, ...]


class AuditEvents(list[AuditEvent]):
    """The events a wait returns (oldest first), with ``stats`` on how the wait went.

    .. versionadded:: 0.1.0
    """

    stats: WaitStats

    def __init__(self, events: Sequence[AuditEvent], stats: WaitStats) -> None:
        super().__init__(events)
        self.stats = stats


PollHook = Callable[[PollRecord], None]
Predicate = Callable[[AuditEvent], bool]


class WaitOptions(TypedDict, total=False):
    """Keyword arguments of :func:`wait_for_audit_events` after the correlation id."""

    event_type: str
    event_category: str | EventCategory
    event_outcome: str | EventOutcome
    severity: str
    min_count: int
    count: int
    event_types: Sequence[str] | Mapping[str, int]
    where: Predicate
    timeout: float
    flush_interval: float
    settle: bool
    on_poll: PollHook


class AbsenceOptions(TypedDict, total=False):
    """Keyword arguments of :func:`assert_no_audit_events` after the correlation id."""

    event_type: str
    event_category: str | EventCategory
    event_outcome: str | EventOutcome
    severity: str
    where: Predicate
    during: float
    flush_interval: float
    on_poll: PollHook


def _count_arg(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a wait waits for; validated before any request."""

    filters: Filters
    where: Predicate | None = None
    min_count: int = 1
    count: int | None = None
    event_types: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        correlation_id: str,
        event_type: str | None = None,
        event_category: str | EventCategory | None = None,
        event_outcome: str | EventOutcome | None = None,
        severity: str | None = None,
        min_count: int = 1,
        count: int | None = None,
        event_types: Sequence[str] | Mapping[str, int] | None = None,
        where: Predicate | None = None,
    ) -> Expectation:
        if not isinstance(correlation_id, str) or not correlation_id.strip():
            raise ValueError(
                "correlation_id is required and must be a non-empty string: waiting without "
                "it would match other tests' events"
            )
        filters = make_filters(
            correlation_id=correlation_id,
            event_type=event_type,
            event_category=event_category,
            event_outcome=event_outcome,
            severity=severity,
        )
        min_count = _count_arg("min_count", min_count, minimum=0)
        if count is not None:
            count = _count_arg("count", count, minimum=0)
            if min_count > count:
                raise ValueError(f"min_count={min_count} cannot exceed count={count}")
        types: dict[str, int] = {}
        if event_types is not None:
            if isinstance(event_types, str):
                raise TypeError("event_types takes a list of types or a mapping type -> count")
            if isinstance(event_types, Mapping):
                types = {
                    str(t): _count_arg(f"event_types[{t!r}]", n, minimum=1)
                    for t, n in event_types.items()
                }
            else:
                types = dict.fromkeys(map(str, event_types), 1)
            if not types or any(not t for t in types):
                raise ValueError("event_types must list at least one non-empty type")
            if event_type is not None and set(types) != {event_type}:
                raise ValueError(
                    f"event_type={event_type!r} filters out the other types of event_types"
                )
        if where is not None and not callable(where):
            raise TypeError("where must be a callable taking an AuditEvent")
        return cls(filters, where, min_count, count, types)

    def matches(self, event: AuditEvent) -> bool:
        f = self.filters
        if f.event_type is not None and event.event_type != f.event_type:
            return False
        if f.event_category is not None and str(event.event_category) != f.event_category:
            return False
        if f.event_outcome is not None and str(event.event_outcome) != f.event_outcome:
            return False
        if f.severity is not None and event.severity != f.severity:
            return False
        return self.where is None or bool(self.where(event))

    def unmet(self, matched: Sequence[AuditEvent]) -> list[str]:
        """What is still missing (empty when the expectation holds)."""
        missing: list[str] = []
        need = self.count if self.count is not None else self.min_count
        if len(matched) < need:
            missing.append(f"{need - len(matched)} more event(s)")
        seen = Counter(e.event_type for e in matched)
        for t, n in self.event_types.items():
            if seen[t] < n:
                missing.append(f"{n - seen[t]} more {t!r}")
        return missing

    def excess(self, matched: Sequence[AuditEvent], *, exact_types: bool) -> str | None:
        """Why the matched set can never satisfy the expectation, or None."""
        if self.count is not None and len(matched) > self.count:
            return f"expected exactly {self.count} matching event(s), {len(matched)} arrived"
        if exact_types and self.event_types:
            seen = Counter(e.event_type for e in matched)
            extra = {t: n for t, n in seen.items() if n > self.event_types.get(t, 0)}
            if extra:
                parts = ", ".join(
                    f"{t!r} ×{n} (allowed {self.event_types.get(t, 0)})" for t, n in extra.items()
                )
                return f"unexpected events arrived: {parts}"
        return None

    def describe(self) -> str:
        f = self.filters
        if self.count is not None:
            what = f"exactly {self.count} event(s)"
        else:
            what = f"at least {self.min_count} event(s)"
        conds = [
            f"{k}={v!r}"
            for k, v in (
                ("event_type", f.event_type),
                ("event_category", f.event_category),
                ("event_outcome", f.event_outcome),
                ("severity", f.severity),
            )
            if v is not None
        ]
        if self.where is not None:
            conds.append(f"where={getattr(self.where, '__name__', 'predicate')}")
        if conds:
            what += " with " + ", ".join(conds)
        if self.event_types:
            what += "; of each type: " + ", ".join(
                f"{t!r} ×{n}" for t, n in self.event_types.items()
            )
        return what


# -- state shared by the waits of one client ----------------------------------------------------


class _Inflight:
    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.received = sent
        self.done = anyio.Event()
        self.events: list[AuditEvent] | None = None
        self.error: AuditError | None = None


class _SharedState:
    """Per client: the learned flush cadence, and per correlation id the latest query (in flight
    or answered), which waits polling at the same moment share."""

    def __init__(self) -> None:
        self.trackers: dict[float, CadenceTracker] = {}
        self.latest: dict[str, _Inflight] = {}

    def tracker(self, interval: float) -> CadenceTracker:
        tracker = self.trackers.get(interval)
        if tracker is None:
            tracker = self.trackers[interval] = CadenceTracker(interval)
        return tracker

    def remember(self, cid: str, query: _Inflight) -> None:
        if len(self.latest) > 1024:
            horizon = query.sent - 60.0
            for key in [k for k, q in self.latest.items() if q.done.is_set() and q.sent < horizon]:
                del self.latest[key]
        self.latest[cid] = query


def _shared(client: AsyncAuditClient) -> _SharedState:
    if client._wait_state is None:
        client._wait_state = _SharedState()
    state: _SharedState = client._wait_state
    return state


async def _fetch_correlation(
    client: AsyncAuditClient, filters: Filters, deadline: float, retry: RetryPolicy
) -> tuple[list[AuditEvent], float, float, bool]:
    """All events of the correlation id: (events, sent, received, shared).

    A query of another wait is shared when it is in flight, or was sent no more than
    ``_SHARE_WINDOW`` before this poll was due: its answer is as fresh as our own would be.
    """
    shared = _shared(client)
    cid = filters.correlation_id
    assert cid is not None
    now = anyio.current_time()
    latest = shared.latest.get(cid)
    if latest is not None and (not latest.done.is_set() or latest.sent >= now - _SHARE_WINDOW):
        await latest.done.wait()
        if latest.events is not None:
            return latest.events, latest.sent, latest.received, True
        if latest.error is not None:
            raise latest.error
        # Its owner was cancelled before an answer: ask ourselves.
    own = _Inflight(now)
    shared.remember(cid, own)
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


# -- the poll loop ------------------------------------------------------------------------------


class _Poller:
    """One wait's bookkeeping: what was seen, the poll history, the last error."""

    def __init__(
        self,
        client: AsyncAuditClient,
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
        self.prev_sent: float | None = None
        self.tracker = _shared(client).tracker(flush_interval)
        self.retry = RetryPolicy(
            attempts=3, timeout=math.inf, initial=0.1, max_backoff=flush_interval
        )
        self._query_filters = Filters(correlation_id=expectation.filters.correlation_id)

    @property
    def correlation_id(self) -> str:
        cid = self.expectation.filters.correlation_id
        assert cid is not None
        return cid

    def matched(self) -> list[AuditEvent]:
        return [e for e in self.seen.values() if self.expectation.matches(e)]

    async def poll(self) -> int | None:
        """One poll; returns how many events were new, or None when it met a transient error."""
        sent = anyio.current_time()
        error: AuditError | None = None
        new = 0
        shared = False
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
                if new:
                    self.tracker.saw_rows(q_received)
                    if self.prev_sent is not None:
                        self.tracker.observe(self.prev_sent, q_received)
                self.prev_sent = q_sent
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
        )
        self.polls.append(record)
        logger.debug(
            "audit wait %s poll %d: %d event(s), %d new, %d matching%s",
            self.correlation_id,
            record.number,
            record.events,
            new,
            record.matched,
            f" ({record.error})" if record.error else "",
        )
        if self.on_poll is not None:
            self.on_poll(record)
        return None if error is not None or scope.cancelled_caught else new

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
    return (
        "the expectation was only partly met: the rest may have been dropped by the writer after "
        "failed writes, or it is slower than assumed (raise timeout= or flush_interval=)"
    )


async def wait_async(
    client: AsyncAuditClient,
    correlation_id: str,
    *,
    event_type: str | None = None,
    event_category: str | EventCategory | None = None,
    event_outcome: str | EventOutcome | None = None,
    severity: str | None = None,
    min_count: int = 1,
    count: int | None = None,
    event_types: Sequence[str] | Mapping[str, int] | None = None,
    where: Predicate | None = None,
    timeout: float | None = None,
    flush_interval: float | None = None,
    settle: bool = False,
    on_poll: PollHook | None = None,
) -> AuditEvents:
    """The async implementation behind every face of ``wait_for_audit_events``."""
    expectation = Expectation.build(
        correlation_id=correlation_id,
        event_type=event_type,
        event_category=event_category,
        event_outcome=event_outcome,
        severity=severity,
        min_count=min_count,
        count=count,
        event_types=event_types,
        where=where,
    )
    interval = _interval(flush_interval, client)
    if timeout is None:
        timeout = default_timeout(interval)
    elif not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    cold = ColdSchedule(interval, WRITE_ALLOWANCE)
    p = _Poller(
        client,
        expectation,
        flush_interval=interval,
        deadline=anyio.current_time() + timeout,
        on_poll=on_poll,
    )
    rng = random.Random()
    predicting = p.tracker.confident
    origin = p.start
    overdue = 0
    satisfied_at: float | None = None
    settle_until: float | None = None
    next_at = p.start
    kind = ""
    final = False

    while True:
        await anyio.sleep_until(next_at)
        sent = anyio.current_time()
        new = await p.poll()
        now = anyio.current_time()
        matched = p.matched()
        problem = expectation.excess(matched, exact_types=settle)
        if problem is not None:
            raise p.failure(UnexpectedAuditEvents, f"unexpected audit events ({problem})")
        if not expectation.unmet(matched):
            if satisfied_at is None:
                satisfied_at = now - p.start
            if not settle:
                return _result(p, matched, satisfied_at)
            if settle_until is None or new:
                settle_until = min(now + cold.due_for, p.deadline - _FINAL_POLL_GUARD)
            if now >= settle_until or final:
                return _result(p, matched, satisfied_at)
            next_at = settle_until
            continue
        if final or now >= p.deadline:
            raise p.failure(AuditWaitTimeout, "timed out waiting for audit events")
        if predicting and (
            new is None or (kind == "decisive" and not new) or (kind == "check" and new)
        ):
            # Rows off the predicted grid, a missed prediction, or a failing server: distrust
            # the estimate and follow the cold schedule from here.
            if new is not None:
                p.tracker.missed()
            predicting, origin, overdue = False, now, 0
        kind = ""
        if predicting:
            next_at, kind = p.tracker.plan(now, p.start)
        else:
            next_at = cold.next_poll(origin=origin, last_poll=sent, overdue_polls=overdue, rng=rng)
            if next_at > origin + cold.due_for:
                overdue += 1
        latest = p.deadline - _FINAL_POLL_GUARD
        if next_at >= latest:
            next_at, final = max(latest, now), True


def _interval(flush_interval: float | None, client: AsyncAuditClient) -> float:
    interval = client.flush_interval if flush_interval is None else flush_interval
    if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
        raise ValueError(f"flush_interval must be a positive number of seconds, got {interval!r}")
    return float(interval)


def _result(p: _Poller, matched: list[AuditEvent], satisfied_at: float) -> AuditEvents:
    stats = WaitStats(
        polls=len(p.polls),
        elapsed=p.elapsed(),
        first_seen=p.first_seen,
        satisfied=satisfied_at,
        history=tuple(p.polls),
    )
    return AuditEvents(_chronological(matched), stats)


async def assert_none_async(
    client: AsyncAuditClient,
    correlation_id: str,
    *,
    event_type: str | None = None,
    event_category: str | EventCategory | None = None,
    event_outcome: str | EventOutcome | None = None,
    severity: str | None = None,
    where: Predicate | None = None,
    during: float | None = None,
    flush_interval: float | None = None,
    on_poll: PollHook | None = None,
) -> None:
    """The async implementation behind every face of ``assert_no_audit_events``."""
    expectation = Expectation.build(
        correlation_id=correlation_id,
        event_type=event_type,
        event_category=event_category,
        event_outcome=event_outcome,
        severity=severity,
        min_count=0,
        count=0,
        where=where,
    )
    interval = _interval(flush_interval, client)
    window = interval + WRITE_ALLOWANCE if during is None else during
    if not window >= 0:
        raise ValueError(f"during must be >= 0 seconds, got {during!r}")
    start = anyio.current_time()
    end = start + window
    # The last poll must be able to finish inside a generous bound even if the server is slow.
    p = _Poller(
        client,
        expectation,
        flush_interval=interval,
        deadline=end + default_timeout(interval),
        on_poll=on_poll,
    )
    step = interval / 2
    next_at = start
    while True:
        await anyio.sleep_until(next_at)
        new = await p.poll()
        if p.matched():
            raise p.failure(UnexpectedAuditEvents, "audit events arrived where none were expected")
        now = anyio.current_time()
        if now >= end and new is not None:
            return
        if now >= p.deadline:
            raise p.failure(
                AuditWaitTimeout, "could not confirm the absence of audit events (polls failed)"
            )
        next_at = min(now + step, end) if now < end else now + step


# -- the public functions, for either face ------------------------------------------------------


@overload
def wait_for_audit_events(
    client: AuditClient, correlation_id: str, **options: Unpack[WaitOptions]
) -> AuditEvents: ...
@overload
def wait_for_audit_events(
    client: AsyncAuditClient, correlation_id: str, **options: Unpack[WaitOptions]
) -> Coroutine[Any, Any, AuditEvents]: ...
def wait_for_audit_events(
    client: AuditClient | AsyncAuditClient, correlation_id: str, **options: Unpack[WaitOptions]
) -> AuditEvents | Coroutine[Any, Any, AuditEvents]:
    """Wait until the audit events a test expects are queryable, and return them.

    Blocks with an :class:`AuditClient`; returns an awaitable with an :class:`AsyncAuditClient`.
    Only events of ``correlation_id`` are ever considered. The first query goes out at once;
    later ones follow a schedule built from the writer's ``flush_interval`` (see the README).

    Args:
        correlation_id: required and non-empty.
        event_type, event_category, event_outcome, severity: only events matching these count.
        min_count: at least this many matching events (default 1).
        count: exactly this many matching events; more fails at once.
        event_types: every listed type at least once, or a mapping type -> count.
        where: a predicate on an event; only events it accepts count.
        timeout: seconds; default ``3 × flush_interval + 5``.
        flush_interval: the writer's flush interval; default the client's (2.0 s).
        settle: once the expectation holds, keep watching for one flush interval plus the write
            time and fail if more than ``count``, or types not in ``event_types``, arrive.
        on_poll: called with a :class:`PollRecord` after every poll.

    Returns:
        The matching events, oldest first, with ``.stats`` (:class:`WaitStats`).

    Raises:
        AuditWaitTimeout: (an ``AssertionError``) the expectation was not met in time; its
            message says what arrived, how many polls were made and the last error.
        UnexpectedAuditEvents: (an ``AssertionError``) more or other events than allowed.
        DataStorageError: a permanent error (400, 401, 403, 404) ends the wait at once.

    .. versionadded:: 0.1.0
    """
    from ._client import AsyncAuditClient
    from ._sync import AuditClient

    if isinstance(client, AsyncAuditClient):
        return wait_async(client, correlation_id, **options)
    if isinstance(client, AuditClient):
        return client.wait_for_audit_events(correlation_id, **options)
    raise TypeError(f"client must be an AuditClient or AsyncAuditClient, not {type(client)!r}")


@overload
def assert_no_audit_events(
    client: AuditClient, correlation_id: str, **options: Unpack[AbsenceOptions]
) -> None: ...
@overload
def assert_no_audit_events(
    client: AsyncAuditClient, correlation_id: str, **options: Unpack[AbsenceOptions]
) -> Coroutine[Any, Any, None]: ...
def assert_no_audit_events(
    client: AuditClient | AsyncAuditClient, correlation_id: str, **options: Unpack[AbsenceOptions]
) -> Coroutine[Any, Any, None] | None:
    """Pass only if no matching audit event appears for ``correlation_id``.

    Watches for ``during`` seconds, by default one flush interval plus the write time, so the
    check cannot pass merely because it looked before the writer flushed.

    Raises:
        UnexpectedAuditEvents: (an ``AssertionError``) a matching event appeared.

    .. versionadded:: 0.1.0
    """
    from ._client import AsyncAuditClient
    from ._sync import AuditClient

    if isinstance(client, AsyncAuditClient):
        return assert_none_async(client, correlation_id, **options)
    if isinstance(client, AuditClient):
        client.assert_no_audit_events(correlation_id, **options)
        return None
    raise TypeError(f"client must be an AuditClient or AsyncAuditClient, not {type(client)!r}")
