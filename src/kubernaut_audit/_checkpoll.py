"""The poller of declared checks: every armed check of one correlation id is verified by one
polling loop, and the loops of all correlation ids on a client share one schedule.

* One loop per group of checks (an expectation set): each poll asks for every event of the
  correlation id once and hands them to each check (``_checks.CheckRun``), so ``expect(count=1,
  settle=True)`` and two ``expect_none(...)`` cost one quiet window together.
* One schedule per client: the loops share the client's learned flush cadence and its
  in-flight queries (``_polling``), poll on a common grid while nothing is known about the
  writer, and when one loop sees a write, every loop still waiting for events polls at once:
  a writer that flushed one test's events flushed the others' too.

The loops run wherever their caller awaits them: inline for the async face, as tasks on the
portal of the blocking face (which is how the pytest plugin's windowed verdicts keep polling
while later tests run).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from ._checks import AuditCheck, CheckRun, chronological
from ._exceptions import AuditError, AuditWaitError
from ._expectation import Expectation
from ._planner import FINAL_POLL_GUARD, WRITE_ALLOWANCE, Observation, Poll, WaitPlanner
from ._polling import PollHook, PollRecord, WaitClient, WaitState, _Poller
from ._schedule import ColdSchedule
from .models import AuditEvent

#: A check's own poll (the end of an absence or settle window) this close before the poll the
#: planner asked for is merged into it (seconds).
_MERGE = 0.02


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of verifying a group of checks of one correlation id."""

    correlation_id: str
    checks: tuple[AuditCheck, ...]
    failures: tuple[AuditWaitError, ...]
    """One exception per failed check, in declaration order."""
    failed: tuple[AuditCheck, ...]
    """The failed checks, in the order of ``failures``."""
    events: tuple[AuditEvent, ...]
    """Every event seen for the correlation id, oldest first."""
    polls: tuple[PollRecord, ...]
    elapsed: float
    unverified: int = 0
    """Checks left without a verdict because another one failed first."""

    @property
    def passed(self) -> bool:
        return not self.failures


class SharedSchedule:
    """What the check loops of one client share besides its wait state: a common grid for cold
    polls, and a signal raised whenever one of them sees new rows."""

    def __init__(self) -> None:
        self.writes = anyio.Event()
        #: When the latest poll that saw new rows was sent (a loop whose last poll went out
        #: before that has not seen those rows).
        self.write_seen_by: float = -math.inf

    def saw_write(self, sent: float) -> None:
        self.write_seen_by = max(self.write_seen_by, sent)
        self.writes.set()
        self.writes = anyio.Event()

    @staticmethod
    def on_grid(at: float, step: float) -> float:
        """The client-wide grid point of period ``step`` nearest to ``at`` (from half a step
        before it): loops polling on a cold schedule poll at the same moments."""
        return math.ceil((at - step / 2) / step) * step


_SCHEDULES: weakref.WeakKeyDictionary[WaitState, SharedSchedule] = weakref.WeakKeyDictionary()


def _shared_schedule(client: WaitClient) -> SharedSchedule:
    state = client._wait_state
    schedule = _SCHEDULES.get(state)
    if schedule is None:
        schedule = _SCHEDULES[state] = SharedSchedule()
    return schedule


def _interval(value: float | None, client: WaitClient) -> float:
    interval = client.flush_interval if value is None else value
    if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
        raise ValueError(f"flush_interval must be a positive number of seconds, got {interval!r}")
    return float(interval)


class _View:
    """The poll history of a group, as a failure message reads it."""

    def __init__(self, client: WaitClient, poller: _Poller) -> None:
        self._client = client
        self._poller = poller

    @property
    def base_url(self) -> str:
        return self._client.base_url

    @property
    def polls(self) -> Sequence[PollRecord]:
        return self._poller.polls

    @property
    def events(self) -> Sequence[AuditEvent]:
        return list(self._poller.seen.values())

    @property
    def last_error(self) -> AuditError | None:
        return self._poller.last_error

    @property
    def last_change(self) -> float | None:
        return self._poller.last_change


async def verify_checks(
    client: WaitClient, checks: Sequence[AuditCheck], *, on_poll: PollHook | None = None
) -> Verification:
    """Arm ``checks`` (all of one correlation id) now, poll until each has a verdict, and return
    the verdicts. Never raises for a failed check; a permanent error (401, 404...) propagates."""
    if not checks:
        raise ValueError("no checks to verify")
    cids = {c.correlation_id for c in checks}
    if len(cids) != 1:
        raise ValueError(f"the checks of one group share one correlation id, got {sorted(cids)}")
    (cid,) = cids
    now = anyio.current_time()
    runs = [
        CheckRun(c, armed_at=now, flush_interval=_interval(c.flush_interval, client))
        for c in checks
    ]
    interval = min(r.flush_interval for r in runs)
    poller = _Poller(
        client,
        Expectation.build(cid, min_count=0),
        flush_interval=interval,
        deadline=max(r.deadline for r in runs),
        on_poll=on_poll,
    )
    loop = _Loop(client, runs, poller, interval)
    await loop.run()
    view = _View(client, poller)
    elapsed = poller.elapsed()
    return Verification(
        correlation_id=cid,
        checks=tuple(checks),
        failures=tuple(r.failure(view, elapsed=elapsed) for r in runs if r.outcome == "failed"),
        failed=tuple(r.check for r in runs if r.outcome == "failed"),
        events=tuple(chronological(list(poller.seen.values()))),
        polls=tuple(poller.polls),
        elapsed=elapsed,
        unverified=sum(1 for r in runs if not r.done),
    )


@dataclass(frozen=True, slots=True)
class _Step:
    """The next poll of a loop: when, why, and whether it is the one the planner asked for."""

    at: float
    kind: str
    planned: bool = False


class _Loop:
    """The polling loop of one group: the wait planner's schedule while a check awaits events
    (fed every observation of the group once), the checks' own moments otherwise (the end of
    an absence window, the end of a settle window), whichever comes first.

    Poll kinds beyond the planner's: ``"watch"`` and ``"settle"`` for the checks' own moments,
    ``"wake"`` when another loop on the client saw new rows, ``"retry"`` after a failed poll
    that a check needed, ``"final"`` just before the earliest pending deadline.
    """

    def __init__(
        self, client: WaitClient, runs: list[CheckRun], poller: _Poller, interval: float
    ) -> None:
        self.runs = runs
        self.poller = poller
        self.shared = _shared_schedule(client)
        self.cold = ColdSchedule(interval, WRITE_ALLOWANCE)
        awaited = [r.deadline for r in runs if not r.check.absent] or [poller.deadline]
        self.planner = WaitPlanner(
            start=poller.start,
            deadline=max(awaited),
            flush_interval=interval,
            model=client._wait_state.writer(interval).for_wait(client.writer, poller.start),
        )
        self.planned: _Step | None = self._step(self.planner.first())
        self.failed_polls = 0
        self.last_sent = -math.inf

    async def run(self) -> None:
        step = self.planned
        assert step is not None
        while True:
            woken = await self._sleep_until(step.at)
            seen = await self.poller.poll("wake" if woken else step.kind)
            self.last_sent = seen.sent
            if seen.new:
                self.shared.saw_write(seen.sent)
            events = list(self.poller.seen.values())
            for run in self.runs:
                run.observe(events, seen)
            if step.planned and not woken and any(run.awaiting_events() for run in self.runs):
                following = self.planner.next(seen, satisfied=False)
                self.planned = self._step(following) if isinstance(following, Poll) else None
            else:
                self.planner.observe(seen)
            if all(run.done for run in self.runs) or any(
                run.outcome == "failed" for run in self.runs
            ):
                # A failed check fails the set: the others are left unverified, not waited for.
                return
            step = self._next(seen)

    def _step(self, poll: Poll) -> _Step:
        """The planner's poll; cold-schedule polls go on the client-wide grid, so that loops
        poll together."""
        at = poll.at
        if poll.kind == "due":
            at = self.shared.on_grid(at, self.cold.step)
        return _Step(at, poll.kind, planned=True)

    async def _sleep_until(self, at: float) -> bool:
        """Sleep until ``at``; while awaiting events, wake early when another loop saw rows
        that this one's last poll cannot have seen (the writer flushed). True if woken early."""
        while True:
            now = anyio.current_time()
            if now >= at:
                return False
            if not any(run.awaiting_events() for run in self.runs):
                await anyio.sleep_until(at)
                return False
            writes = self.shared.writes
            with anyio.move_on_after(at - now):
                await writes.wait()
            if self.shared.write_seen_by > self.last_sent:
                return True

    def _next(self, seen: Observation) -> _Step:
        now = seen.answered
        pending = [run for run in self.runs if not run.done]
        awaiting = any(run.awaiting_events() for run in pending)
        self.failed_polls = self.failed_polls + 1 if seen.new is None else 0
        candidates = [
            _Step(t, "watch" if run.check.absent else "settle")
            for run in pending
            if (t := run.next_poll()) is not None
        ]
        if awaiting:
            candidates.append(self.planned or _Step(now + self.cold.step, "due"))
        step = min(candidates, key=lambda s: s.at)
        if self.planned is not None and awaiting and self.planned.at <= step.at + _MERGE:
            step = self.planned
        if step.at <= now:
            # A moment already past (a window that ended on a failed poll): retry, backing off
            # while polls keep failing.
            backoff = min(self.cold.step * 2**self.failed_polls, self.cold.cap)
            step = _Step(now + backoff, "retry")
        # Never ask again sooner than the server took to answer.
        if step.at < now + (now - seen.sent):
            step = _Step(now + (now - seen.sent), step.kind, step.planned)
        latest = min(run.deadline for run in pending) - FINAL_POLL_GUARD
        if step.at >= latest:
            step = _Step(max(latest, now), "final", step.planned)
        return step
