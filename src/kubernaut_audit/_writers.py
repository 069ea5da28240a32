"""Writer models: when will the audit writer make the next rows visible?

Two writers are in the field, and they write at different moments:

* ``"ticker"`` (the Go services' ``pkg/audit``): a fixed grid that writes do not move, the whole
  batch in one request, so it becomes visible at once. Modelled by
  :class:`~._schedule.CadenceTracker` (the grid's phase).
* ``"since-last-write"`` (HAPI's ``BufferedAuditStore``): a loop that waits up to 0.1 s for the
  next event writes once one interval has passed *since its previous write*, events POSTed one
  by one. A busy writer writes one interval (plus up to one turn of its loop) after its previous
  write; an idle one writes a new event at once. Modelled by :class:`SinceLastWriteModel` (when
  the last write ended).

:class:`WriterKnowledge` feeds every sighting of new rows to both models, keeps score of which
one the sightings contradict, and says which to plan with: the one named by ``writer=``, or
under ``"auto"`` the one the sightings support. A wait's planner talks to it through a
:class:`WriterView`, the :class:`~._schedule.WriterModel` of that wait. Everything here is a
pure function of the times it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

from ._exceptions import ConfigurationError
from ._schedule import INFORMATIVE_FRACTION, CadenceTracker, PredictionKind, cold_step
from ._tracebacks import hide_audit_errors

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

WriterKind = Literal["ticker", "since-last-write", "auto"]
"""How the audit writer the waits face writes (``"auto"``: work it out from what is seen)."""
WRITER_KINDS: Final[tuple[WriterKind, ...]] = get_args(WriterKind)
Model = Literal["ticker", "since-last-write"]

#: The since-last-write writer waits this long for the next event per turn of its loop (s).
LOOP_PERIOD: Final = 0.1
#: Allowed for a write's first POST to make its row visible (seconds).
POST_ALLOWANCE: Final = 0.05
#: An idle since-last-write writer makes a new event visible within this long (seconds).
IDLE_REACH: Final = LOOP_PERIOD + POST_ALLOWANCE
#: Sightings at most this far apart belong to one write (its events are POSTed one by one);
#: never more than half the interval.
SAME_WRITE_GAP: Final = 0.25
#: A sighting this far outside a prediction still agrees with it (timer and loop jitter, s).
TOLERANCE: Final = 0.012
#: Judged sightings in a row since-last-write must explain before ``"auto"`` plans with it: one
#: while none has contradicted it (so that a suite's first waits on an idle writer are not all
#: cold), the larger number once any has (several writers feeding one client explain a couple of
#: sightings in a row by chance, and a wrong belief costs a split set an interval)...
SLW_CONFIDENT_AFTER: Final = 1
SLW_RECONFIRM_AFTER: Final = 4
#: ...and the ticker's grid (besides its own confidence).
TICKER_CONFIDENT_AFTER: Final = 3
#: The least probability a sighting is scored with (a contradiction's, whose log is the
#: penalty).
FLOOR: Final = 0.02
#: Each sighting scales the scores so far by this (older evidence fades: writers change).
FORGET: Final = 0.8
#: A model whose score trails the other's by this much is not planned with.
MARGIN: Final = 1.5
#: The odds a prediction that found no write in its window is scored with: a mild penalty.
LATE_ODDS: Final = 0.5
#: Poll step inside a predicted since-last-write window: this fraction of the interval...
WINDOW_STEP_FRACTION: Final = 0.2
#: ...at most this long, whatever the interval (seconds): lateness must not grow with it.
WINDOW_STEP_MAX: Final = 0.05
#: Poll step while a write carrying part of a set may still be POSTing the rest (seconds).
TRICKLE_STEP: Final = 0.02
#: A predicted window starting more than this after the previous poll is checked first
#: (seconds): a poll just before it must see nothing yet, or the model is wrong. Without it a
#: writer that changed (written earlier than predicted) would make wait after wait late.
CHECK_GAP: Final = 0.3
#: How long before a checked window its check is sent (seconds).
CHECK_LEAD: Final = 0.03


def check_writer(value: object, *, name: str = "writer") -> WriterKind:
    """``value`` if it names a writer kind, else a ConfigurationError naming ``name`` (an
    argument, an option or an environment variable)."""
    if isinstance(value, str):
        value = value.strip()
    if value not in WRITER_KINDS:
        kinds = ", ".join(repr(k) for k in WRITER_KINDS)
        raise ConfigurationError(f"{name} must be one of {kinds}, got {value!r}")
    return value


def window_step(interval: float) -> float:
    """Poll step inside a predicted since-last-write window."""
    return min(max(interval * WINDOW_STEP_FRACTION, 0.01), WINDOW_STEP_MAX)


@dataclass(frozen=True, slots=True)
class Window:
    """Where the next write's first row should become visible: ``(start, end]``."""

    start: float
    end: float
    idle: bool
    """True when the writer was surely idle when the wait began: its next write is "at once"."""


class SinceLastWriteModel:
    """When the last write of a since-last-write writer ended, from sightings of new rows.

    A sighting ``(after, until]`` says that rows became visible at some moment in it, so the
    write that carried them ended after ``after``: ``lo``, the latest such ``after``, bounds the
    end of the last write from below, and the next write cannot begin before ``lo + interval``.
    ``hi``, the latest ``until``, is where the last write is believed to have ended at the
    latest (rows of other correlation ids may have followed unseen).
    """

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.lo: float | None = None
        self.hi: float | None = None

    @property
    def same_write_gap(self) -> float:
        return min(SAME_WRITE_GAP, self.interval / 2)

    @property
    def informative(self) -> float:
        """The widest sighting that still pins down when a write happened."""
        return max(self.interval * INFORMATIVE_FRACTION, 2 * window_step(self.interval))

    def observe(self, after: float, until: float) -> None:
        """Rows a wait had not seen became visible in ``(after, until]``."""
        lo, hi = self.lo, self.hi
        if lo is None or hi is None:
            self.lo, self.hi = after, until
            return
        if until > hi + self.same_write_gap:
            earliest = lo + self.interval - TOLERANCE
            if until < earliest:
                # Two writes closer than one interval: not this model's writer (another writer,
                # or the writer changed). Start over from this write; carrying the bound on
                # would push the last write's end past the present.
                self.lo, self.hi = after, until
                return
            # A new write: under this model it cannot have begun before one interval after the
            # last one (a wait's sighting often reaches back to its first poll).
            after = max(after, earliest)
        self.lo, self.hi = max(lo, after), max(hi, until)

    def observe_first_poll(self, until: float, *, began: float) -> None:
        """A wait's first poll, answered at ``until``, saw rows: written at some unknown moment
        before. If the writer was idle when the wait began, they were written at once, after the
        wait's events were emitted (about when it began); else they say nothing about when."""
        if self.hi is None or began >= self.hi + self.interval:
            start = began - TOLERANCE
            self.lo = start if self.lo is None else max(self.lo, start)
            self.hi = until if self.hi is None else max(self.hi, until)

    def likelihood(
        self, after: float, until: float, *, began: float, first: bool, follow_up: bool
    ) -> float | None:
        """How probable this model made a sighting, before seeing it (None: no evidence).

        Args:
            began: when the wait that saw it began (its events were emitted about then).
            first: these are the first rows that wait saw.
            follow_up: the wait's previous poll also saw new rows, moments before.
        """
        lo, hi = self.lo, self.hi
        if lo is None or hi is None:
            return None
        if until <= hi + self.same_write_gap:
            # The same write. Its rows are POSTed one by one, so a wait may see part of its
            # set and, moments later, the rest: expected here, impossible for an atomic batch.
            return 1.0 if follow_up else None
        if after < hi:
            return None  # a window reaching back over the last write: ambiguous
        chained = (
            lo + self.interval - TOLERANCE,
            hi + self.interval + LOOP_PERIOD + POST_ALLOWANCE,
        )
        if until < chained[0]:
            return 0.0  # two writes closer than one interval: impossible
        at_once = (began - TOLERANCE, began + IDLE_REACH + TOLERANCE)
        if not first or began < chained[0]:
            # Busy (the events were buffered before one interval had passed since the last
            # write, or the rest of a split set): written one interval after the last write.
            regions = [chained]
        elif began >= hi + self.interval:
            regions = [at_once]  # idle: written at once
        else:
            regions = [chained, at_once]
        p = max(_share(after, until, *region) for region in regions)
        if p == 0 and after >= max(end for _, end in regions):
            # Later than predicted: a slow writer, or writes unseen in between. That says
            # nothing against the model (only an early write does): the uninformed odds.
            return min((until - after) / self.interval, 1.0)
        return p

    def window(self, began: float) -> Window | None:
        """Where the next write should become visible, for a wait that began at ``began``;
        None while nothing narrow enough is known about the last write."""
        lo, hi = self.lo, self.hi
        if lo is None or hi is None or hi - lo > max(self.informative, 2 * self.same_write_gap):
            return None
        busy_start = lo + self.interval
        busy_end = hi + self.interval + LOOP_PERIOD + POST_ALLOWANCE
        if began < busy_start:
            return Window(busy_start, busy_end, idle=False)
        # Idle at the wait's start (or possibly so): the events are written at once.
        return Window(began, max(busy_end, began + IDLE_REACH), idle=began >= busy_end)


def _share(after: float, until: float, start: float, end: float) -> float:
    """The share of ``[start, end]`` that ``(after, until]`` covers."""
    return max(min(until, end) - max(after, start), 0.0) / (end - start)


def _ticker_likelihood(
    tracker: CadenceTracker, after: float, until: float, *, follow_up: bool
) -> float | None:
    """How probable the tracker's grid estimate made a sighting (None: no estimate yet)."""
    if tracker.lo is None:
        return None
    if follow_up and until - after <= tracker.interval * INFORMATIVE_FRACTION:
        return 0.0  # more of a set moments after the first part: no atomic batch does that
    span = until - after
    if span >= tracker.interval:
        return 1.0
    lo = tracker.lo - tracker.tolerance
    width = tracker.width + 2 * tracker.tolerance
    start = after % tracker.interval
    covered = sum(
        max(min(start + shift + span, lo + width) - max(start + shift, lo), 0.0)
        for shift in (-tracker.interval, 0.0, tracker.interval)
    )
    return min(covered / width, 1.0)


class WriterKnowledge:
    """What a client's waits have learned about the writer of one flush interval.

    Shared by every wait of the client that assumes that interval; fed each sighting of new
    rows; asked which model to plan with. Each model keeps a score: the log of how probable it
    made each sighting before seeing it (floored at :data:`FLOOR`, a contradiction), with older
    sightings fading by :data:`FORGET` per sighting. A model the sightings keep contradicting
    loses; of two that explain them, the sharper one wins.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.ticker = CadenceTracker(interval)
        self.slw = SinceLastWriteModel(interval)
        self.score: dict[Model, float] = {"ticker": 0.0, "since-last-write": 0.0}
        self.streak: dict[Model, int] = {"ticker": 0, "since-last-write": 0}
        """Judged sightings in a row that did not contradict the model."""
        self.contradicted = False
        """The last judged sighting (or prediction) contradicted since-last-write."""
        self.ever_contradicted = False
        """Some judged sighting (or prediction) contradicted since-last-write."""

    def observe(
        self, after: float, until: float, *, began: float, first: bool, follow_up: bool = False
    ) -> None:
        """Rows a wait (begun at ``began``) had not seen became visible in ``(after, until]``.

        Args:
            first: these are the first rows that wait saw.
            follow_up: the wait's previous poll also saw new rows, moments before.
        """
        odds: dict[Model, float | None] = {
            "ticker": _ticker_likelihood(self.ticker, after, until, follow_up=follow_up),
            "since-last-write": self.slw.likelihood(
                after, until, began=began, first=first, follow_up=follow_up
            ),
        }
        if all(p is not None for p in odds.values()):
            for model, p in odds.items():
                assert p is not None
                if follow_up and model == "since-last-write":
                    # More of a set moments after its first part: since-last-write explains it,
                    # but so do several writers flushing close together. Evidence against an
                    # atomic ticker only, never a reason to believe since-last-write.
                    continue
                self._score(model, p)
        self.ticker.observe(after, until)
        self.slw.observe(after, until)

    def _score(self, model: Model, p: float) -> None:
        self.score[model] = FORGET * self.score[model] + math.log(max(p, FLOOR))
        self.streak[model] = self.streak[model] + 1 if p > 0 else 0
        if model == "since-last-write":
            self.contradicted = p == 0
            self.ever_contradicted |= self.contradicted

    def observe_first_poll(self, until: float, *, began: float) -> None:
        """The first poll of a wait (begun at ``began``), answered at ``until``, saw rows."""
        self.slw.observe_first_poll(until, began=began)

    def saw_rows(self, at: float) -> None:
        """A poll answered at ``at`` showed rows no poll had shown before."""
        self.ticker.saw_rows(at)

    def for_wait(self, writer: WriterKind, began: float) -> WriterView:
        """The face of this knowledge a wait begun at ``began`` plans with."""
        return WriterView(self, writer, began)

    def missed(self, model: Model, *, early: bool) -> None:
        """A prediction of ``model`` did not hold: rows came ``early`` (before the window it
        predicted: a contradiction), or none came in it (late: a slow writer, or a wrong
        model; the sighting that follows will tell)."""
        if model == "ticker":
            self.ticker.missed()
        self._score(model, 0.0 if early else LATE_ODDS)

    def believed(self, writer: WriterKind) -> Model | None:
        """The model to plan with: the one ``writer`` names while it can predict, or under
        ``"auto"`` one that the last sightings did not contradict and whose score does not trail
        by :data:`MARGIN` (of two such, the one ahead). None: plan without a model (the cold
        schedule)."""
        ticker_ok = self.ticker.confident
        slw_ok = self.slw.window(-math.inf) is not None and not self.contradicted
        if writer == "ticker":
            return "ticker" if ticker_ok else None
        if writer == "since-last-write":
            return "since-last-write" if slw_ok else None
        lead = self.score["ticker"] - self.score["since-last-write"]
        # The grid tracker counts agreement in its own way, which windows as wide as the cold
        # schedule's can give it by chance at long intervals: the sightings judged here must
        # not have contradicted the grid lately either.
        ticker_ok = ticker_ok and lead > -MARGIN and self.streak["ticker"] >= TICKER_CONFIDENT_AFTER
        needed = SLW_RECONFIRM_AFTER if self.ever_contradicted else SLW_CONFIDENT_AFTER
        slw_ok = slw_ok and self.streak["since-last-write"] >= needed and lead < MARGIN
        if ticker_ok and slw_ok:
            return "ticker" if lead >= 0 else "since-last-write"
        if ticker_ok:
            return "ticker"
        if slw_ok:
            return "since-last-write"
        return None


class WriterView:
    """One wait's face of a client's :class:`WriterKnowledge`: the
    :class:`~._schedule.WriterModel` its planner asks, for the writer kind the wait names.

    It feeds the knowledge what the wait saw (with what only the wait knows: when it began,
    whether these are its first rows, whether its previous poll saw rows too), and plans with
    whichever model the knowledge believes at each poll.
    """

    def __init__(self, knowledge: WriterKnowledge, writer: WriterKind, began: float) -> None:
        self.knowledge = knowledge
        self.writer = writer
        self.began = began
        self.predicted_by: Model | None = None
        """The model behind the last prediction (a miss is charged to it)."""
        self._prev_until: float | None = None
        self._checked: float | None = None
        self._aimed: tuple[float, float] | None = None
        self._decided = True
        self._last_kind: PredictionKind | None = None

    @property
    def confident(self) -> bool:
        """Whether a model may be followed now."""
        return self.knowledge.believed(self.writer) is not None

    def rows_appeared(self, after: float | None, until: float, count: int) -> None:
        """``count`` rows this wait had not seen became visible in ``(after, until]``."""
        self._decided = True  # whatever window was aimed at, its rows came
        known = self.knowledge
        first = self._prev_until is None
        known.saw_rows(until)
        if after is None:
            known.observe_first_poll(until, began=self.began)
        else:
            follow_up = self._prev_until is not None and after < self._prev_until
            known.observe(after, until, began=self.began, first=first, follow_up=follow_up)
        self._prev_until = until

    def after_rows(self, now: float) -> float | None:
        """When to look again for the rest of a set of which a poll answered at ``now`` saw
        a part: soon, while the write may still be POSTing it one event at a time. Also under
        a believed ticker (whose batches are atomic): if the belief is wrong, this look costs
        one query where trusting it would cost an interval, and what it sees tells the two
        writers apart. None only when the wait names the ticker."""
        return None if self.writer == "ticker" else now + TRICKLE_STEP

    def _check(self, now: float, start: float) -> tuple[float, PredictionKind] | None:
        """A look just before a predicted window that is far off: under a right model nothing
        can be there yet, and rows found there disprove it (the writer changed, say), so that
        one late wait is not followed by others."""
        if start - now <= CHECK_GAP or self._checked == start:
            return None
        self._checked = start
        return start - CHECK_LEAD, "check"

    def _hedge(self, now: float, start: float) -> tuple[float, PredictionKind] | None:
        """A ``"probe"`` one cold step on while this wait saw part of its set less than an
        interval ago and the grid's next window is further: a ticker's batch is atomic, so the
        rest comes from another writer (a flow's events come from several services) or was
        emitted later, at a moment no grid predicts."""
        last = self._prev_until
        if last is None or now - last >= self.knowledge.interval:
            return None
        at = now + cold_step(self.knowledge.interval)
        return (at, "probe") if at < start else None

    def missed(self) -> None:
        """The last prediction did not hold: charge it to the model that made it (rows at a
        check came early; none at a decisive poll came late)."""
        if self.predicted_by is not None:
            self.knowledge.missed(self.predicted_by, early=self._last_kind == "check")

    def predict(self, now: float, began: float) -> tuple[float, PredictionKind]:
        """The next poll under the believed model (see :meth:`_predict`)."""
        at, kind = self._predict(now, began)
        self._last_kind = kind
        return at, kind

    def _predict(self, now: float, began: float) -> tuple[float, PredictionKind]:
        """The next poll under the believed model, and what it expects. Ticker: a late look for
        a tick that just passed unseen, cold-step probes while part of the set came less than an
        interval ago (see :meth:`_hedge`), a ``"check"`` just before a predicted window that is
        far off, then the grid's own plan. Since-last-write: the check, then ``"probe"`` polls
        every :func:`window_step` through the window and a ``"decisive"`` one at its end."""
        model = self.knowledge.believed(self.writer)
        self.predicted_by = model
        if model == "ticker":
            tracker = self.knowledge.ticker
            target = tracker.target(now, began)
            if self._aimed is not None and target != self._aimed and not self._decided:
                # The window aimed at passed before a decisive poll (a probe, then a stall):
                # decide it now rather than skip to the next one an interval later.
                self._aimed, self._decided = None, True
                return now, "decisive"
            if target != self._aimed:
                self._aimed, self._decided = target, False
            planned = (
                tracker.late_look(now)
                or self._hedge(now, target[0])
                or self._check(now, target[0])
                or tracker.predict(now, began)
            )
            self._decided = self._decided or planned[1] == "decisive"
            return planned
        window = self.knowledge.slw.window(began)
        step = window_step(self.knowledge.interval)
        if window is None or now >= window.end:
            return now + step, "decisive"  # the window passed unseen: one look, then a miss
        checked = self._check(now, window.start)
        if checked is not None:
            return checked
        # The next point of the window's grid after now (a hair of slack: now often sits on a
        # point, computed with a rounding error either way).
        k = max(math.floor((now - window.start) / step + 1e-6), 0) + 1
        at = window.start + k * step
        if at >= window.end:
            return window.end, "decisive"
        return at, "probe"
