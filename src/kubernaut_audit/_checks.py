"""Declared audit checks: plain data saying what a test expects of one correlation id, and the
pure rules that turn what the polls of that correlation id saw into a verdict per check.

A :class:`AuditCheck` is built (and validated) when it is declared and holds no client, fixture or
clock. It is *armed* when verification starts (after a test's body): a :class:`CheckRun` then
knows its deadline and, after each poll, says whether the check passed, failed or needs more
polls, and when it next needs one. The polling itself is ``_checkpoll``'s.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Unpack

from ._exceptions import AuditError, AuditWaitError, AuditWaitTimeout, UnexpectedAuditEvents
from ._expectation import Criteria, Expectation, Selection
from ._planner import FINAL_POLL_GUARD, WRITE_ALLOWANCE, Observation
from ._wait import default_timeout
from .models import AuditEvent

_SHOW_IDS = 5

Outcome = Literal["pending", "passed", "failed"]


class ExpectOptions(Criteria, total=False):
    """Keyword arguments of ``expect``: the criteria of a wait, plus how long and whether to
    settle."""

    settle: bool
    timeout: float
    flush_interval: float


class ExpectNoneOptions(Selection, total=False):
    """Keyword arguments of ``expect_none``: which events must not appear, and for how long."""

    during: float
    flush_interval: float


@dataclass(frozen=True, slots=True)
class Site:
    """Where a check was declared (for the failure message)."""

    filename: str
    lineno: int

    def __str__(self) -> str:
        try:
            path = os.path.relpath(self.filename)
        except ValueError:  # another drive on Windows
            path = self.filename
        return f"{path}:{self.lineno}"


def _positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """One declared audit check on one correlation id: validated plain data, no client.

    What ``expect(...)`` and ``expect_none(...)`` return. ``absent`` checks (``expect_none``) pass
    when no matching event appeared by the end of their watch window; the others pass once the
    expectation holds (and, with ``settle``, stayed within its counts for one flush interval plus
    the write time after the last arrival). The timeout and the window count from the moment
    verification starts.

    .. versionadded:: 0.2.0
    """

    correlation_id: str
    expectation: Expectation
    absent: bool = False
    settle: bool = False
    timeout: float | None = None
    """Seconds from arming to the deadline (``expect``); None: ``3 × flush_interval + 5``."""
    during: float | None = None
    """The watch window in seconds (``expect_none``); None: one flush interval + write time."""
    flush_interval: float | None = None
    """The writer's flush interval; None: the client's."""
    site: Site | None = None

    @classmethod
    def expect(
        cls,
        correlation_id: str,
        *,
        site: Site | None = None,
        settle: bool = False,
        timeout: float | None = None,
        flush_interval: float | None = None,
        **criteria: Unpack[Criteria],
    ) -> AuditCheck:
        """Validate an ``expect(...)`` declaration (raises before any request)."""
        if not isinstance(settle, bool):
            raise TypeError(f"settle must be a bool, got {settle!r}")
        return cls(
            correlation_id,
            Expectation.build(correlation_id, **criteria),
            settle=settle,
            timeout=None if timeout is None else _positive("timeout", timeout),
            flush_interval=None
            if flush_interval is None
            else _positive("flush_interval", flush_interval),
            site=site,
        )

    @classmethod
    def expect_none(
        cls,
        correlation_id: str,
        *,
        site: Site | None = None,
        during: float | None = None,
        flush_interval: float | None = None,
        **selection: Unpack[Selection],
    ) -> AuditCheck:
        """Validate an ``expect_none(...)`` declaration (raises before any request)."""
        return cls(
            correlation_id,
            Expectation.build(correlation_id, min_count=0, count=0, **selection),
            absent=True,
            during=None if during is None else _positive("during", during, allow_zero=True),
            flush_interval=None
            if flush_interval is None
            else _positive("flush_interval", flush_interval),
            site=site,
        )

    def describe(self) -> str:
        """What the check expects, in words."""
        if not self.absent:
            what = self.expectation.describe()
            return what + (", then no more (settle)" if self.settle else "")
        rest = self.expectation.describe().partition(" with ")[2]
        return "no event" + (f" with {rest}" if rest else "")


class PollView(Protocol):
    """What a failure message needs to know about the polls of the check's correlation id."""

    @property
    def base_url(self) -> str: ...
    @property
    def polls(self) -> Sequence[object]: ...
    @property
    def events(self) -> Sequence[AuditEvent]: ...
    @property
    def last_error(self) -> AuditError | None: ...
    @property
    def last_change(self) -> float | None: ...


class CheckRun:
    """One armed check: its deadline, its progress, and its verdict.

    Times are event-loop times. :meth:`observe` is called after every poll of the correlation
    id with every event seen so far; :meth:`next_poll` says when the check needs its next poll
    (None: whenever the correlation id's schedule says, while events are still awaited).
    """

    def __init__(self, check: AuditCheck, *, armed_at: float, flush_interval: float) -> None:
        self.check = check
        self.armed_at = armed_at
        self.flush_interval = flush_interval
        self.due_for = flush_interval + WRITE_ALLOWANCE
        self.window_end: float | None = None
        if check.absent:
            window = self.due_for if check.during is None else check.during
            self.window_end = armed_at + window
            # Only polls that keep failing can hold an absence check past its window.
            self.deadline = self.window_end + default_timeout(flush_interval)
        else:
            timeout = default_timeout(flush_interval) if check.timeout is None else check.timeout
            self.deadline = armed_at + timeout
        self.satisfied_at: float | None = None
        self.settle_until: float | None = None
        self.outcome: Outcome = "pending"
        self.headline = ""
        self.failure_class: type[AuditWaitError] = AuditWaitTimeout
        self.matched: list[AuditEvent] = []

    @property
    def done(self) -> bool:
        return self.outcome != "pending"

    def final(self, now: float) -> bool:
        """Whether a poll sent at ``now`` is this check's last chance."""
        return now >= self.deadline - FINAL_POLL_GUARD

    def observe(self, events: Sequence[AuditEvent], seen: Observation) -> None:
        """Take in what a poll saw: ``events`` is everything seen for the correlation id so far
        (on a failed poll, what earlier polls saw), ``seen`` when the poll went out, when it was
        answered and how many rows it saw first (None: it failed)."""
        new, sent, now = seen.new, seen.sent, seen.answered
        if self.done:
            return
        exp = self.check.expectation
        self.matched = [e for e in events if exp.matches(e)]
        final = self.final(sent)
        if self.check.absent:
            assert self.window_end is not None
            if self.matched:
                self._fail(UnexpectedAuditEvents, "audit events arrived where none were expected")
            elif new is not None and sent >= self.window_end:
                self.outcome = "passed"
            elif final or now >= self.deadline:
                self._fail(
                    AuditWaitTimeout, "could not confirm the absence of audit events (polls failed)"
                )
            return
        problem = exp.excess(self.matched, exact_types=self.check.settle)
        if problem is not None:
            self._fail(UnexpectedAuditEvents, f"unexpected audit events ({problem})")
            return
        if not exp.unmet(self.matched):
            if self.satisfied_at is None:
                self.satisfied_at = now
            if not self.check.settle:
                self.outcome = "passed"
                return
            if self.settle_until is None or new:
                # Quiet for one flush interval plus the write time after the last arrival.
                self.settle_until = min(now + self.due_for, self.deadline - FINAL_POLL_GUARD)
            if (new is not None and sent >= self.settle_until) or final:
                self.outcome = "passed"
            return
        if final or now >= self.deadline:
            self._fail(AuditWaitTimeout, "timed out waiting for audit events")

    def next_poll(self) -> float | None:
        """The moment this check needs its next poll by, or None to follow the schedule."""
        if self.done:
            return None
        if self.check.absent:
            return self.window_end
        if self.settle_until is not None:
            return self.settle_until
        return None

    def awaiting_events(self) -> bool:
        """Whether this check still waits for events to arrive (dense polling helps it)."""
        return self.outcome == "pending" and not self.check.absent and self.satisfied_at is None

    def _fail(self, cls: type[AuditWaitError], headline: str) -> None:
        self.outcome = "failed"
        self.failure_class = cls
        self.headline = headline

    def failure(self, view: PollView, *, elapsed: float) -> AuditWaitError:
        """The exception for a failed check: the usual diagnostic of a failed wait."""
        assert self.outcome == "failed"
        events = chronological(view.events)
        matched = chronological(self.matched)
        return self.failure_class(
            self._diagnose(view, events, matched, elapsed),
            correlation_id=self.check.correlation_id,
            expectation=self.check.describe(),
            events=events,
            matched=matched,
            polls=list(view.polls),
            elapsed=elapsed,
            last_error=view.last_error,
            flush_interval=self.flush_interval,
        )

    def _diagnose(
        self,
        view: PollView,
        events: list[AuditEvent],
        matched: list[AuditEvent],
        elapsed: float,
    ) -> str:
        check = self.check
        lines = [
            f"{self.headline} for correlation_id={check.correlation_id!r} after {elapsed:.2f}s "
            f"({len(view.polls)} polls, writer flush interval {self.flush_interval:g}s assumed)",
            f"  expected: {check.describe()}",
        ]
        if check.site is not None:
            lines.append(f"  declared: {check.site}")
        lines.append(
            f"  arrived:  {len(events)} event(s) for this correlation id, {len(matched)} matching"
        )
        if events:
            lines.append(f"    by type:    {_counts([e.event_type for e in events])}")
            lines.append(f"    by outcome: {_counts([str(e.event_outcome) for e in events])}")
            ids = ", ".join(str(e.event_id) for e in events[:_SHOW_IDS])
            more = f" (+{len(events) - _SHOW_IDS} more)" if len(events) > _SHOW_IDS else ""
            lines.append(f"    first ids:  {ids}{more}")
        if matched and not check.absent:
            missing = check.expectation.unmet(matched)
            if missing:
                lines.append(f"  missing:  {', '.join(missing)}")
        if view.last_change is not None:
            lines.append(f"  last change: {view.last_change:.2f}s after the start")
        if view.last_error is not None:
            lines.append(f"  last error:  {type(view.last_error).__name__}: {view.last_error}")
        lines.append(f"  hint: {self._hint(view, events, matched)}")
        return "\n".join(lines)

    def _hint(self, view: PollView, events: list[AuditEvent], matched: list[AuditEvent]) -> str:
        if self.check.absent or self.failure_class is UnexpectedAuditEvents:
            if self.failure_class is AuditWaitTimeout:
                return f"every poll failed; is Data Storage at {view.base_url} up and reachable?"
            return (
                "the code under test wrote events this check rules out: compare the types and "
                "outcomes above with what the test triggers"
            )
        if view.last_error is not None and not events:
            return (
                "polls failed and nothing arrived; is Data Storage at "
                f"{view.base_url} up and reachable?"
            )
        if not events:
            return (
                "no event at all arrived for this correlation id: was the service under test "
                "given this correlation id, and does it write to the Data Storage at "
                f"{view.base_url}? A buffered writer flushes every {self.flush_interval:g}s."
            )
        if not matched:
            return (
                "events arrived but none matched the filters: compare the types and outcomes above"
            )
        return (
            "the expectation was only partly met: the rest may have been dropped by the writer "
            "after failed writes, or it is slower than assumed (raise timeout= or flush_interval=)"
        )


def _counts(values: Sequence[str]) -> str:
    return ", ".join(f"{v} ×{n}" for v, n in Counter(values).most_common()) or "-"


def chronological(events: Sequence[AuditEvent]) -> list[AuditEvent]:
    return sorted(events, key=lambda e: (e.event_timestamp, str(e.event_id)))
