"""The waits behind ``wait_for_audit_events`` and ``assert_no_audit_events`` (``_wait_api``):
correlation-scoped waiting that knows how the audit writer flushes (``_schedule``) and fails with
an explanation (``_polling``). They take any :class:`~._polling.WaitClient`, never a client class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

import anyio

from . import _config
from ._exceptions import AuditWaitTimeout, UnexpectedAuditEvents
from ._expectation import Criteria, Expectation, Selection
from ._planner import WRITE_ALLOWANCE, AbsencePlanner, Poll, WaitPlanner
from ._polling import PollHook, PollRecord, WaitClient, _chronological, _Poller
from ._tracebacks import hide_audit_errors
from ._writers import WriterKind, check_writer
from .models import AuditEvent

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

#: Intervals in the default timeout: one for the ticker to fire, one for a set split across two
#: flushes, one of slack.
TIMEOUT_INTERVALS = 3
#: Seconds added to the default timeout: the writer's own retries of a failed write (about
#: 1 s + 2 s) on a slow machine.
TIMEOUT_SLACK = 5.0


def default_timeout(flush_interval: float) -> float:
    """The default wait timeout: ``3 × flush_interval + 5`` seconds.

    One interval for the ticker to fire, one for a set split across two flushes, one of slack,
    and 5 s for the writer's own retries of a failed write (about 1 s + 2 s) on a slow machine.
    """
    return TIMEOUT_INTERVALS * flush_interval + TIMEOUT_SLACK


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


class WaitResult(list[AuditEvent]):
    """The events a wait returns (oldest first), with ``stats`` on how the wait went.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Renamed from ``AuditEvents`` (deprecated; the same class), one letter from
       :class:`AuditEvent`.
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
    writer: WriterKind


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
    writer: WriterKind | None = None,
    **criteria: Unpack[Criteria],
) -> WaitResult:
    """The async implementation behind every face of ``wait_for_audit_events``."""
    expectation = Expectation.build(correlation_id, **criteria)
    interval = _interval(flush_interval, client)
    kind = client.writer if writer is None else check_writer(writer)
    if timeout is None:
        timeout = default_timeout(interval)
    elif not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    p = _Poller(
        client,
        expectation,
        flush_interval=interval,
        deadline=anyio.current_time() + timeout,
        on_poll=on_poll,
    )
    planner = WaitPlanner(
        start=p.start,
        deadline=p.deadline,
        flush_interval=interval,
        model=client._wait_state.writer(interval).for_wait(kind, p.start),
        settle=settle,
    )
    satisfied_at: float | None = None
    step: Poll = planner.first()
    while True:
        await anyio.sleep_until(step.at)
        seen = await p.poll(step.kind)
        matched = p.matched()
        problem = expectation.excess(matched, exact_types=settle)
        if problem is not None:
            planner.observe(seen)
            raise p.failure(UnexpectedAuditEvents, f"unexpected audit events ({problem})")
        satisfied = not expectation.unmet(matched)
        if satisfied and satisfied_at is None:
            satisfied_at = seen.answered - p.start
        following = planner.next(seen, satisfied=satisfied)
        if isinstance(following, Poll):
            step = following
        elif following.reason == "satisfied":
            assert satisfied_at is not None
            return _result(p, matched, satisfied_at)
        else:
            raise p.failure(AuditWaitTimeout, "timed out waiting for audit events")


def _interval(flush_interval: float | None, client: WaitClient) -> float:
    if flush_interval is None:
        return client.flush_interval
    return _config.check_seconds(flush_interval, name="flush_interval")


def _result(p: _Poller, matched: list[AuditEvent], satisfied_at: float) -> WaitResult:
    stats = WaitStats(
        polls=len(p.polls),
        elapsed=p.elapsed(),
        first_seen=p.first_seen,
        satisfied=satisfied_at,
        history=tuple(p.polls),
    )
    return WaitResult(_chronological(matched), stats)


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
    planner = AbsencePlanner(
        start=start,
        end=end,
        deadline=p.deadline,
        flush_interval=interval,
        model=client._wait_state.writer(interval).for_wait(client.writer, start),
    )
    step: Poll = planner.first()
    while True:
        await anyio.sleep_until(step.at)
        seen = await p.poll(step.kind)
        if p.matched():
            planner.observe(seen)
            raise p.failure(UnexpectedAuditEvents, "audit events arrived where none were expected")
        following = planner.next(seen)
        if isinstance(following, Poll):
            step = following
        elif following.reason == "satisfied":
            return
        else:
            raise p.failure(
                AuditWaitTimeout, "could not confirm the absence of audit events (polls failed)"
            )
