"""When a wait polls next: pure planners, state in, next poll out.

A planner never sleeps, reads a clock or queries. The wait loop (``_wait``) sends the poll the
planner asked for, tells it what the poll saw and when (an :class:`Observation`, in event-loop
times), and sleeps until the time of the :class:`Poll` it returns, or ends on a :class:`Stop`.
So the whole schedule is a function of those numbers, and the tests read it as a table.

What is writer-specific (when the next batch will be visible) sits behind
:class:`~._schedule.WriterModel`: the planner tells the model what each poll saw, asks it for
the next predicted poll whenever it is confident, and tells it when a prediction missed. While
it is not, and for the rest of a wait after a miss, the planner follows the cold schedule (so a
miss costs dense polling, never an interval's wait). After a poll that saw part of the set, the
model may ask for a quick second look (``"trickle"``): a writer that POSTs events one by one is
still writing the rest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from ._schedule import ColdSchedule, PredictionKind, WriterModel

#: Time allowed for the writer's POST to complete after its ticker fires (seconds).
WRITE_ALLOWANCE = 0.25
#: The last poll of a wait is sent this long before the deadline, so it can still count
#: (seconds): long enough for a healthy server to answer.
FINAL_POLL_GUARD = 0.05
#: An absence check polls every this fraction of the flush interval (no prediction: it must
#: see every flush of its window, not the first one only).
ABSENCE_STEP_FRACTION = 0.5

#: Trickle polls in a row (each after one that saw new rows) before the plan resumes.
TRICKLE_MAX = 3

#: Why a poll is sent: ``"first"`` at once; ``"due"`` every cold step while events are due;
#: ``"backoff"`` jittered, once they are overdue; ``"probe"``, ``"check"``, ``"decisive"`` as
#: the writer model predicted (see :data:`~._schedule.PredictionKind`); ``"trickle"`` right
#: after a poll that saw part of the set, for the rest of a write POSTed event by event;
#: ``"settle"`` at the end of the quiet window after the expectation held; ``"final"`` just
#: before the deadline; ``"watch"`` a poll of an absence check.
PollKind = Literal[
    "first",
    "due",
    "backoff",
    "probe",
    "check",
    "decisive",
    "trickle",
    "settle",
    "final",
    "watch",
]
_PREDICTED: frozenset[PollKind] = frozenset({"probe", "check", "decisive"})


@dataclass(frozen=True, slots=True)
class Poll:
    """Poll at ``at`` (event-loop time), for the reason ``kind``."""

    at: float
    kind: PollKind


@dataclass(frozen=True, slots=True)
class Stop:
    """End the wait: the expectation is settled, or it cannot be met (or confirmed) in time."""

    reason: Literal["satisfied", "timed out"]


@dataclass(frozen=True, slots=True)
class Observation:
    """What one poll saw, in event-loop times.

    Attributes:
        sent, answered: when this wait's poll was sent, and when it had its answer.
        new: rows it saw for the first time; None when it failed or ran out of time.
        query_sent, query_answered: the query that answered it (another wait's when shared).
    """

    sent: float
    answered: float
    new: int | None
    query_sent: float
    query_answered: float

    @classmethod
    def failed(cls, sent: float, answered: float) -> Observation:
        return cls(sent, answered, None, sent, answered)


class _Feed:
    """Tells a writer model when rows appeared: between the query before and the one that
    first showed them."""

    def __init__(self, model: WriterModel) -> None:
        self.model = model
        self.prev_query_sent: float | None = None

    def __call__(self, seen: Observation) -> None:
        if seen.new is None:
            return
        if seen.new:
            self.model.rows_appeared(self.prev_query_sent, seen.query_answered, seen.new)
        self.prev_query_sent = seen.query_sent


class WaitPlanner:
    """The schedule of one ``wait_for_audit_events``.

    Args:
        start: when the wait began; its first poll goes out then.
        deadline: when it times out.
        flush_interval: the writer's flush interval assumed.
        model: the writer model shared by the client's waits.
        settle: after the expectation holds, keep polling for a quiet window.
        rng: the jitter of the cold schedule's backoff.
    """

    def __init__(
        self,
        *,
        start: float,
        deadline: float,
        flush_interval: float,
        model: WriterModel,
        settle: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.start = start
        self.deadline = deadline
        self.latest = deadline - FINAL_POLL_GUARD
        self.cold = ColdSchedule(flush_interval, WRITE_ALLOWANCE)
        self.model = model
        self.settle = settle
        self.rng = rng or random.Random()
        self.fallen_back = False
        """A prediction missed (or a predicted poll failed): cold schedule from ``origin``."""
        self.origin = start
        self.trickles = 0
        self.overdue = 0
        self.kind: PollKind = "first"
        self.settle_until: float | None = None
        self._feed = _Feed(model)

    def first(self) -> Poll:
        """The first poll: at once."""
        return Poll(self.start, "first")

    def observe(self, seen: Observation) -> None:
        """Tell the writer model what a poll saw, when the wait ends on it without :meth:`next`
        (it failed on unexpected events)."""
        self._feed(seen)

    def next(self, seen: Observation, *, satisfied: bool) -> Poll | Stop:
        """The poll after the one ``seen`` reports; ``satisfied``: the expectation holds."""
        self._feed(seen)
        now = seen.answered
        if satisfied:
            return self._settling(seen)
        if self.kind == "final" or now >= self.deadline:
            return Stop("timed out")
        if not self.fallen_back and self.kind in _PREDICTED and self._missed(seen):
            # Rows off the predicted grid, a missed prediction, or a failing server: distrust
            # the model and follow the cold schedule, densely from here.
            if seen.new is not None:
                self.model.missed()
            self.fallen_back, self.origin, self.overdue = True, now, 0
        if seen.new:
            # Part of the set came: the flow is live, the rest is due from now (the service may
            # emit it later, or another writer hold it), not overdue from the wait's start.
            self.origin, self.overdue = max(self.origin, now), 0
        at: float
        kind: PollKind
        rest = None
        if seen.new and not self.fallen_back and self.trickles < TRICKLE_MAX:
            rest = self.model.after_rows(now)
        self.trickles = self.trickles + 1 if rest is not None else 0
        if rest is not None:
            at, kind = rest, "trickle"
        elif not self.fallen_back and self.model.confident:
            at, kind = self.model.predict(now, self.start)
            if at > now + self.cold.due_for:
                # Any writer makes due rows visible within one interval plus the write time: a
                # prediction beyond that is the model's error, and must not leave the wait blind.
                at, kind = now + self.cold.due_for, "probe"
        else:
            at = self.cold.next_poll(
                origin=self.origin, last_poll=seen.sent, overdue_polls=self.overdue, rng=self.rng
            )
            kind = "due"
            if at > self.origin + self.cold.due_for:
                kind = "backoff"
                self.overdue += 1
        # Never ask again sooner than the server took to answer: a slow or saturated server is
        # not helped by more queries (a no-op against a healthy one, which answers in ms).
        at = max(at, now + (now - seen.sent))
        if at >= self.latest:
            at, kind = max(self.latest, now), "final"
        self.kind = kind
        return Poll(at, kind)

    def _missed(self, seen: Observation) -> bool:
        kind: PredictionKind | PollKind = self.kind
        return (
            seen.new is None
            or (kind == "decisive" and not seen.new)
            or (kind == "check" and bool(seen.new))
        )

    def _settling(self, seen: Observation) -> Poll | Stop:
        if not self.settle:
            return Stop("satisfied")
        now = seen.answered
        if self.settle_until is None or seen.new:
            # Quiet for one interval plus the write time after the last new row: a flush that
            # was to bring more has come by then.
            self.settle_until = min(now + self.cold.due_for, self.latest)
        if now >= self.settle_until or self.kind == "final":
            return Stop("satisfied")
        self.kind = "settle"
        return Poll(self.settle_until, "settle")


class AbsencePlanner:
    """The schedule of one ``assert_no_audit_events``: a poll every half interval until the
    window ends, then until one poll succeeds (or the deadline passes).

    Args:
        start: when the check began; its first poll goes out then.
        end: the end of the window watched.
        deadline: when it gives up confirming.
        flush_interval: the writer's flush interval assumed.
        model: the writer model shared by the client's waits (told what the polls saw).
    """

    def __init__(
        self,
        *,
        start: float,
        end: float,
        deadline: float,
        flush_interval: float,
        model: WriterModel,
    ) -> None:
        self.start = start
        self.end = end
        self.deadline = deadline
        self.step = flush_interval * ABSENCE_STEP_FRACTION
        self._feed = _Feed(model)

    def first(self) -> Poll:
        """The first poll: at once."""
        return Poll(self.start, "first")

    def observe(self, seen: Observation) -> None:
        """Tell the writer model what a poll saw, when the check ends on it without
        :meth:`next` (it found a matching event)."""
        self._feed(seen)

    def next(self, seen: Observation) -> Poll | Stop:
        """The poll after the one ``seen`` reports (which found no matching event)."""
        self._feed(seen)
        now = seen.answered
        if now >= self.end and seen.new is not None:
            return Stop("satisfied")
        if now >= self.deadline:
            return Stop("timed out")
        at = min(now + self.step, self.end) if now < self.end else now + self.step
        return Poll(at, "watch")
