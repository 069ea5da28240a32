"""When to poll, as pure functions of time: the cold schedule, the interface of a writer model
(:class:`WriterModel`) and the ticker-grid model (:class:`CadenceTracker`). The planner
(``_planner``) combines them.

Events reach Data Storage in batches on the writer's ticker (ADR-038), so an event emitted
just before a wait starts becomes visible within one flush interval plus the write time.

* Cold schedule (no model to follow): poll every ``0.075 × flush_interval`` (at most 150 ms)
  while events are due (one interval plus the write allowance from the start, or from the last
  poll that saw part of the set, or from a missed prediction), then back off
  exponentially with full jitter, capped at one interval: the writer is retrying or the server
  is slow, and polling hard would only add load.
* Learned cadence: a batch becomes visible all at once, on the ticker's grid. Each time a poll
  sees new rows that the previous poll did not, the moment they appeared lies between the two
  polls; those windows, taken modulo the interval, narrow down the grid's phase. Once three
  narrow windows agree, a wait polls right after the next predicted flush instead of densely, and
  falls back to the cold schedule the moment a prediction misses.

The since-last-write model and the inference of which writer a wait faces live in
``_writers``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal, Protocol

#: Due-phase poll period as a fraction of the flush interval: an event is noticed within
#: 7.5 % of an interval of becoming visible (150 ms at 2 s), at about 13 queries per interval.
STEP_FRACTION = 0.075
#: The due-phase step never goes below this (seconds): a tiny interval must not turn a wait
#: into a busy loop against the server.
MIN_STEP = 0.01
#: Nor above this (seconds), the 2 s writer's step: lateness must not grow with the interval (a
#: 5 s writer is polled as often as a 2 s one while events are due).
MAX_STEP = 0.15
#: Windows at most this fraction of the interval wide count as evidence about the phase.
INFORMATIVE_FRACTION = 0.25
#: A phase estimate wider than this fraction of the interval predicts too little to act on.
CONFIDENT_FRACTION = 0.25
#: How long after the predicted flush a poll is sent (seconds).
PREDICTION_MARGIN = 0.004
#: How long before a predicted window a staleness check is sent (seconds).
CHECK_LEAD = 0.03
#: Write moments jitter by a few milliseconds (the writer's POST, the server's insert): a narrow
#: window this close beside the estimate still agrees with it (seconds).
TOLERANCE = 0.012
#: Agreeing windows (from different turns of the grid) before predictions are trusted.
CONFIRMATIONS = 3
#: A window narrower than this (seconds) is not probed further: the decisive poll sent after it
#: is at most this late.
TARGET_WIDTH = 0.025
#: A tick the estimate put this shortly before a poll that saw nothing may still be on its way
#: (a slow POST, a loaded writer or server): it gets one look this long after its window
#: (seconds) rather than a wait for the next tick, an interval later.
LATE_LOOK = 0.05
#: ...at most this fraction of the interval (a short interval's next tick comes sooner).
LATE_LOOK_FRACTION = 0.25
#: Without a narrow observation for this many intervals, the estimate may be stale: a check is
#: sent before the next predicted window.
STALE_AFTER_INTERVALS = 1.5

#: What a predicted poll expects to see (the planner judges the prediction by it):
#: ``"probe"`` anything (it narrows the estimate), ``"check"`` nothing new (new rows there came
#: off the prediction), ``"decisive"`` the predicted rows (finding none disproves it).
PredictionKind = Literal["probe", "check", "decisive"]


class WriterModel(Protocol):
    """What the planner knows of how a writer makes rows visible: learned from observations,
    asked for predictions. :class:`CadenceTracker` (a ticker's grid) is one such model.
    """

    @property
    def confident(self) -> bool:
        """Whether predictions may be followed now."""
        ...

    def rows_appeared(self, after: float | None, until: float, count: int) -> None:
        """``count`` rows no poll had shown became visible at a moment in ``(after, until]``
        (``after`` None: not known); event-loop times."""
        ...

    def missed(self) -> None:
        """A prediction did not hold: distrust the model until it is confirmed again."""
        ...

    def after_rows(self, now: float) -> float | None:
        """A poll answered at ``now`` saw part of a wait's set: when to look again for the rest
        of the same write (None: the write was atomic, the rest comes with a later one)."""
        ...

    def predict(self, now: float, began: float) -> tuple[float, PredictionKind]:
        """When to poll next, and what that poll expects, for a wait that began at ``began``."""
        ...


def cold_step(flush_interval: float) -> float:
    """The cold schedule's poll period while events are due."""
    return min(max(flush_interval * STEP_FRACTION, MIN_STEP), MAX_STEP)


@dataclass(frozen=True, slots=True)
class ColdSchedule:
    """The schedule used while nothing is known about the writer's ticker."""

    flush_interval: float
    write_allowance: float

    @property
    def step(self) -> float:
        return cold_step(self.flush_interval)

    @property
    def due_for(self) -> float:
        """How long after the origin events are still due (no backoff before that)."""
        return self.flush_interval + self.write_allowance

    @property
    def cap(self) -> float:
        return max(self.flush_interval, self.step)

    def next_poll(
        self, *, origin: float, last_poll: float, overdue_polls: int, rng: random.Random
    ) -> float:
        """Absolute time of the next poll after one sent at ``last_poll``.

        ``origin`` is when events became due (the wait's start, a poll that saw part of the
        set, or a missed prediction);
        ``overdue_polls`` counts the polls already made after the due phase ended.
        """
        nxt = last_poll + self.step
        if nxt <= origin + self.due_for:
            return nxt
        bound = min(self.cap, self.step * 2 ** (overdue_polls + 1))
        # Never sooner than half a step: jitter spreads polls out, it must not bunch them.
        return last_poll + max(rng.uniform(0.0, bound), self.step / 2)


class CadenceTracker:
    """Learns the phase of a writer's flush grid from when new rows became visible.

    The estimate is an arc ``[lo, lo + width]`` on the circle of circumference ``interval``:
    visibility moments are expected at times ``t`` with ``t mod interval`` in that arc.
    """

    def __init__(
        self,
        interval: float,
        *,
        tolerance: float = TOLERANCE,
        confident_after: int = CONFIRMATIONS,
        target_width: float = TARGET_WIDTH,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.tolerance = tolerance
        self.confident_after = confident_after
        self.target_width = target_width
        self.lo: float | None = None
        self.width = 0.0
        self.agreeing = 0
        self.resets = 0
        self.last_rows: float | None = None
        self.last_narrow: float | None = None
        self._counted_at = -math.inf

    @property
    def confident(self) -> bool:
        return (
            self.lo is not None
            and self.agreeing >= self.confident_after
            and self.width <= self.interval * CONFIDENT_FRACTION
        )

    def observe(self, after: float, until: float) -> None:
        """New rows appeared at some moment in ``(after, until]`` (event-loop times).

        Only an informative window (at most a quarter interval) can start an estimate, replace a
        contradicted one or count as agreement (once per half interval). A wider one (a
        prediction that found rows after a long gap) can still narrow the estimate, or cast
        doubt on it, but never confirms it: it would contain the estimate either way.
        """
        span = until - after
        if span <= 0 or span >= self.interval:
            return  # a full turn of the circle or more says nothing about the phase
        start = after % self.interval
        informative = span <= self.interval * INFORMATIVE_FRACTION
        if informative:
            self.last_narrow = until
        if self.lo is None:
            if informative:
                self._reset(start, span, until)
            return
        piece = self._overlap(start, span, 0.0)
        if piece is None and informative:
            # Write times jitter by a few ms: a narrow window just beside the estimate agrees.
            piece = self._overlap(start, span, self.tolerance)
        if piece is None:
            if informative:
                self.resets += 1
                self._reset(start, span, until)
            else:
                self.missed()
            return
        self.lo = piece[0] % self.interval
        self.width = piece[1] - piece[0]
        # Agreement must come from other turns of the grid: windows close together in time agree
        # trivially (concurrent waits, or several writers flushing at about the same moment).
        if informative and until - self._counted_at >= self.interval / 2:
            self.agreeing += 1
            self._counted_at = until

    def _overlap(self, start: float, span: float, slack: float) -> tuple[float, float] | None:
        """Hull of where the window meets the estimate (widened by ``slack``), or None."""
        assert self.lo is not None
        los: list[float] = []
        his: list[float] = []
        for shift in (-self.interval, 0.0, self.interval):
            lo = max(self.lo - slack, start + shift)
            hi = min(self.lo + self.width + slack, start + shift + span)
            if hi >= lo:
                los.append(lo)
                his.append(hi)
        return (min(los), max(his)) if los else None

    def rows_appeared(self, after: float | None, until: float, count: int) -> None:
        """New rows became visible in ``(after, until]``: a window on the grid's phase."""
        self.saw_rows(until)
        if after is not None:
            self.observe(after, until)

    def saw_rows(self, at: float) -> None:
        """A poll answered at ``at`` showed rows no poll had shown before."""
        self.last_rows = at if self.last_rows is None else max(self.last_rows, at)

    def missed(self) -> None:
        """A decisive poll found nothing: distrust the estimate until it is confirmed again."""
        self.agreeing = 0

    def after_rows(self, now: float) -> float | None:
        """A ticker writes a batch in one request: the rest of a set comes with a later tick."""
        return None

    def _reset(self, lo: float, width: float, at: float) -> None:
        self.lo = lo
        self.width = width
        self.agreeing = 1
        self._counted_at = at

    def next_window(self, now: float) -> tuple[float, float]:
        """The next predicted visibility window ``(start, end)`` whose end lies after ``now``."""
        assert self.lo is not None
        k = math.floor((now - self.lo - self.width) / self.interval) + 1
        start = self.lo + k * self.interval
        return start, start + self.width

    def late_look(self, now: float) -> tuple[float, PredictionKind] | None:
        """A ``"probe"`` :data:`LATE_LOOK` (at most a quarter interval) after the window that
        passed last, while that is still ahead and no poll has seen that window's rows: the
        tick may be late (None: no such window)."""
        start, end = self.next_window(now)
        start, end = start - self.interval, end - self.interval
        look = min(LATE_LOOK, self.interval * LATE_LOOK_FRACTION)
        seen = self.last_rows
        if now >= end + look or (seen is not None and seen >= start - self.tolerance):
            return None
        return end + look, "probe"

    def target(self, now: float, began: float) -> tuple[float, float]:
        """The window :meth:`predict` aims at: the next one ending after ``now``, or the one
        after it when its flush was already seen before the wait began at ``began``."""
        start, end = self.next_window(now)
        seen = self.last_rows
        if seen is not None and seen <= began and start - self.tolerance <= seen:
            start, end = start + self.interval, end + self.interval
        return start, end

    def predict(self, now: float, began: float) -> tuple[float, PredictionKind]:
        """When to poll next to catch the next flush with the least lateness, for a wait that
        began at ``began``, and the kind of that poll:

        * ``"probe"``: a late look for a tick that just passed unseen (see :meth:`late_look`),
          or the middle of a window still wider than ``target_width`` (halves it);
        * ``"check"``: just before the window, when no narrow observation came for 1.5
          intervals (in a steady suite, every other wait); rows seen there arrived off the
          grid, so the estimate is stale;
        * ``"decisive"``: just after the window; a miss there disproves the prediction.

        A window whose flush was already seen before the wait began is skipped: the wait's
        events come in a later one.
        """
        late = self.late_look(now)
        if late is not None:
            return late
        start, end = self.target(now, began)
        stale = (
            self.last_narrow is None
            or now - self.last_narrow > STALE_AFTER_INTERVALS * self.interval
        )
        check = start - CHECK_LEAD
        if stale and check > now:
            return check, "check"
        mid = (start + end) / 2
        if self.width > self.target_width + 1e-9 and mid > now:
            return mid, "probe"
        return end + PREDICTION_MARGIN, "decisive"
