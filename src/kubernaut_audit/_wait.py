"""The waits behind ``wait_for_audit_events`` and ``assert_no_audit_events`` (``_wait_api``):
correlation-scoped waiting that knows how the audit writer flushes (``_schedule``) and fails with
an explanation (``_polling``). They take any :class:`~._polling.WaitClient`, never a client class.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

import anyio

from ._exceptions import AuditWaitTimeout, UnexpectedAuditEvents
from ._expectation import Criteria, Expectation, Selection
from ._polling import PollHook, PollRecord, WaitClient, _chronological, _Poller
from ._schedule import ColdSchedule
from .models import AuditEvent

#: Time allowed for the writer's POST to complete after its ticker fires (seconds).
WRITE_ALLOWANCE = 0.25
#: The last poll of a wait is sent this long before the deadline, so it can still count.
_FINAL_POLL_GUARD = 0.05


def default_timeout(flush_interval: float) -> float:
    """The default wait timeout: ``3 × flush_interval + 5`` seconds.

    One interval for the ticker to fire, one for a set split across two flushes, one of slack,
    and 5 s for the writer's own retries of a failed write (about 1 s + 2 s) on a slow machine.
    """
    return 3 * flush_interval + 5.0


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


class WaitOptions(Criteria, total=False):
    """Keyword arguments of :func:`wait_for_audit_events` after the correlation id."""

    timeout: float
    flush_interval: float
    settle: bool
    on_poll: PollHook


class AbsenceOptions(Selection, total=False):
    """Keyword arguments of :func:`assert_no_audit_events` after the correlation id."""

    during: float
    flush_interval: float
    on_poll: PollHook


async def wait_async(
    client: WaitClient,
    correlation_id: str,
    *,
    timeout: float | None = None,
    flush_interval: float | None = None,
    settle: bool = False,
    on_poll: PollHook | None = None,
    **criteria: Unpack[Criteria],
) -> AuditEvents:
    """The async implementation behind every face of ``wait_for_audit_events``."""
    expectation = Expectation.build(correlation_id, **criteria)
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
        # Never ask again sooner than the server took to answer: a slow or saturated server is
        # not helped by more queries (a no-op against a healthy one, which answers in ms).
        next_at = max(next_at, now + (now - sent))
        latest = p.deadline - _FINAL_POLL_GUARD
        if next_at >= latest:
            next_at, final = max(latest, now), True


def _interval(flush_interval: float | None, client: WaitClient) -> float:
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
    client: WaitClient,
    correlation_id: str,
    *,
    during: float | None = None,
    flush_interval: float | None = None,
    on_poll: PollHook | None = None,
    **selection: Unpack[Selection],
) -> None:
    """The async implementation behind every face of ``assert_no_audit_events``."""
    expectation = Expectation.build(correlation_id, min_count=0, count=0, **selection)
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
