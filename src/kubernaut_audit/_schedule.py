"""When to poll: pure functions of time, tuned to the audit writer's flush interval.

Events reach Data Storage in batches on the writer's ticker (ADR-038), so an event emitted
just before a wait starts becomes visible within one flush interval plus the write time.

* Cold schedule (nothing known about the ticker): poll every ``0.075 × flush_interval`` while
  events are due (one interval plus the write allowance from the start), then back off
  exponentially with full jitter, capped at one interval: the writer is retrying or the server
  is slow, and polling hard would only add load.
* Learned cadence: a batch becomes visible all at once, on the ticker's grid. Each time a poll
  sees new rows that the previous poll did not, the moment they appeared lies between the two
  polls; those windows, taken modulo the interval, narrow down the grid's phase. Once two
  windows agree, a wait polls right after the next predicted flush instead of densely, and
  falls back to the cold schedule the moment a prediction misses.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

#: Due-phase poll period as a fraction of the flush interval.
STEP_FRACTION = 0.075
#: How long after the predicted flush a poll is sent (seconds).
PREDICTION_MARGIN = 0.004


@dataclass(frozen=True, slots=True)
class ColdSchedule:
    """The schedule used while nothing is known about the writer's ticker."""

    flush_interval: float
    write_allowance: float

    @property
    def step(self) -> float:
        return min(max(self.flush_interval * STEP_FRACTION, 0.01), 0.5)

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

        ``origin`` is when events became due (the wait's start, or a missed prediction);
        ``overdue_polls`` counts the polls already made after the due phase ended.
        """
        nxt = last_poll + self.step
        if nxt <= origin + self.due_for:
            return nxt
        bound = min(self.cap, self.step * 2 ** (overdue_polls + 1))
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
        tolerance: float = 0.012,
        confident_after: int = 2,
        target_width: float = 0.025,
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

    @property
    def confident(self) -> bool:
        return (
            self.lo is not None
            and self.agreeing >= self.confident_after
            and self.width <= self.interval / 4
        )

    def observe(self, after: float, until: float) -> None:
        """New rows appeared at some moment in ``(after, until]`` (event-loop times)."""
        span = until - after
        if span <= 0 or span >= self.interval:
            return  # a full turn of the circle or more says nothing about the phase
        start = after % self.interval
        if self.lo is None:
            if span < self.interval / 2:
                self._reset(start, span)
            return
        piece = self._overlap(start, span, 0.0) or self._overlap(start, span, self.tolerance)
        if piece is None:
            if span < self.interval / 2:
                self.resets += 1
                self._reset(start, span)
            return
        self.lo = piece[0] % self.interval
        self.width = piece[1] - piece[0]
        self.agreeing += 1

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

    def _reset(self, lo: float, width: float) -> None:
        self.lo = lo
        self.width = width
        self.agreeing = 1

    def next_window(self, now: float) -> tuple[float, float]:
        """The next predicted visibility window ``(start, end)`` whose end lies after ``now``."""
        assert self.lo is not None
        k = math.floor((now - self.lo - self.width) / self.interval) + 1
        start = self.lo + k * self.interval
        return start, start + self.width

    def plan(self, now: float) -> tuple[float, float | None]:
        """When to poll next to catch the next flush with the least lateness.

        Returns ``(when, window_start)``. ``window_start`` is None for a probe (a poll in the
        middle of a window still wider than ``target_width``, which halves it either way); for
        the decisive poll right after the window's end it is the window's start, so a caller can
        tell whether a miss there disproves the prediction.
        """
        start, end = self.next_window(now)
        if self.width > self.target_width:
            mid = (start + end) / 2
            if mid > now:
                return mid, None
        return end + PREDICTION_MARGIN, start
