"""Writer models and the inference of which writer the waits face: pure, read as tables of
plain numbers (event-loop times in seconds), no event loop, no clock.

Sightings are generated from the two writers' rules (see ``_writers``): a ticker's batch becomes
visible at a tick of its grid; a since-last-write writer writes one interval (plus up to a turn
of its 0.1 s loop) after its previous write ended, or at once when idle.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator

import pytest

from kubernaut_audit import ConfigurationError
from kubernaut_audit._schedule import LATE_LOOK, PREDICTION_MARGIN, cold_step
from kubernaut_audit._schedule import TOLERANCE as TICKER_TOLERANCE
from kubernaut_audit._writers import (
    CHECK_GAP,
    CHECK_LEAD,
    IDLE_REACH,
    LOOP_PERIOD,
    POST_ALLOWANCE,
    SLW_CONFIDENT_AFTER,
    SLW_RECONFIRM_AFTER,
    TOLERANCE,
    TRICKLE_STEP,
    SinceLastWriteModel,
    Window,
    WriterKnowledge,
    WriterView,
    check_writer,
    window_step,
)

I = 2.0  # noqa: E741 - the flush interval, as in the behaviour document
BUSY_SPAN = LOOP_PERIOD + POST_ALLOWANCE

# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["ticker", "since-last-write", "auto", " auto "])
def test_writer_kinds_are_accepted(value: str) -> None:
    """The three kinds (surrounding blanks aside) are valid."""
    assert check_writer(value) == value.strip()


@pytest.mark.parametrize("value", ["grid", "Ticker", "", None, 1])
def test_other_writer_kinds_are_refused_naming_the_setting(value: object) -> None:
    """Anything else is a ConfigurationError naming the setting it came from."""
    with pytest.raises(ConfigurationError, match="--audit-writer must be one of"):
        check_writer(value, name="--audit-writer")


def test_the_window_step_is_a_fifth_of_the_interval_up_to_50_ms() -> None:
    """Polls inside a predicted window are at most 50 ms apart, whatever the interval."""
    assert [window_step(i) for i in (0.01, 0.1, 1.0, 5.0)] == pytest.approx(
        [0.01, 0.02, 0.05, 0.05]
    )


# -- the since-last-write model --------------------------------------------------------------


def slw(*sightings: tuple[float, float]) -> SinceLastWriteModel:
    model = SinceLastWriteModel(I)
    for after, until in sightings:
        model.observe(after, until)
    return model


@pytest.mark.parametrize(
    ("began", "expected"),
    [
        # busy: the events wait until one interval after the last write ended (10.0..10.04]
        (10.5, Window(12.0, 10.04 + I + BUSY_SPAN, idle=False)),
        # within the busy window: written at once, or at the latest when the busy write falls
        (12.1, Window(12.1, 12.1 + IDLE_REACH, idle=False)),
        # idle even for the latest end of the last write: at once, and alone
        (13.0, Window(13.0, 13.0 + IDLE_REACH, idle=True)),
    ],
)
def test_the_next_write_follows_the_last_one_or_comes_at_once(
    began: float, expected: Window
) -> None:
    """A wait that began while the writer was busy expects the write one interval after the
    last; one that began when it was idle expects it at once."""
    assert slw((10.0, 10.04)).window(began) == expected


def test_nothing_is_predicted_before_a_write_was_seen_narrowly() -> None:
    """No sighting, or only a vague one, predicts nothing."""
    assert slw().window(0.0) is None
    assert slw((10.0, 11.5)).window(12.0) is None


def test_a_new_write_cannot_have_begun_before_one_interval_after_the_last() -> None:
    """A sighting reaching back to the wait's first poll is cut at lo + interval."""
    model = slw((10.0, 10.04), (10.5, 12.05))
    assert (model.lo, model.hi) == pytest.approx((12.0 - TOLERANCE, 12.05))


def test_rows_of_one_write_posted_one_by_one_extend_it() -> None:
    """Sightings moments apart belong to one write: its end moves, not the next write."""
    model = slw((10.0, 10.04), (10.03, 10.07))
    assert (model.lo, model.hi) == pytest.approx((10.03, 10.07))


def test_a_write_sooner_than_one_interval_starts_the_model_over() -> None:
    """Two writes closer than one interval are not this writer's (another writer, or it
    changed): the model starts over from the later one."""
    model = slw((10.0, 10.04), (10.5, 10.54))
    assert (model.lo, model.hi) == (10.5, 10.54)


def test_the_last_write_is_never_placed_after_the_last_sighting() -> None:
    """Whatever mix of writers the sightings come from, the model's last write ends no later
    than the last sighting, so the window it predicts is at most one interval (plus a turn of
    the loop and a POST) away."""
    model = SinceLastWriteModel(I)
    rng = random.Random(5)
    t = latest = 0.0
    for _ in range(200):
        interval = rng.choice([0.5, 1.0, 2.0])
        phase = rng.uniform(0, interval)
        visible = phase + interval * math.ceil((t + rng.uniform(0, I) - phase) / interval)
        model.observe(visible - 0.04, visible)
        latest = max(latest, visible)
        assert model.lo is not None
        assert model.hi is not None
        assert model.lo <= model.hi <= latest
        window = model.window(visible)
        assert window is None or window.start <= visible + I + BUSY_SPAN
        t = visible


def test_rows_on_an_idle_writers_first_poll_were_written_at_once() -> None:
    """Rows a wait's first poll saw, the writer idle when it began: written as it began."""
    model = slw((10.0, 10.04))
    model.observe_first_poll(20.003, began=20.0)
    assert (model.lo, model.hi) == pytest.approx((20.0 - TOLERANCE, 20.003))


def test_rows_on_a_busy_writers_first_poll_say_nothing() -> None:
    """Rows a wait's first poll saw while the writer was busy came at an unknown moment."""
    model = slw((10.0, 10.04))
    model.observe_first_poll(11.0, began=11.0)
    assert (model.lo, model.hi) == (10.0, 10.04)


@pytest.mark.parametrize(
    ("sighting", "began", "first", "follow_up", "expected"),
    [
        # one interval after the last write: a share of the busy window
        ((12.0, 12.04), 10.5, True, False, 0.04 / (0.04 + BUSY_SPAN + TOLERANCE)),
        # two writes closer than one interval: impossible
        ((11.0, 11.04), 10.5, True, False, 0.0),
        # idle at the wait's start: the write comes at once
        ((20.0, 20.04), 20.0, True, False, 0.04 / (IDLE_REACH + 2 * TOLERANCE)),
        # idle, yet the wait's first rows came much later: no evidence (the uninformed odds)
        ((20.9, 20.94), 20.0, True, False, 0.04 / I),
        # the rest of a write seen moments after its first rows: expected
        ((10.03, 10.07), 10.0, False, True, 1.0),
        # rows of the same write seen by another wait: no evidence
        ((10.03, 10.07), 10.0, True, False, None),
        # a sighting that reaches back over the last write: no evidence
        ((9.0, 14.0), 9.0, True, False, None),
    ],
)
def test_how_probable_the_model_made_a_sighting(
    sighting: tuple[float, float],
    began: float,
    first: bool,
    follow_up: bool,
    expected: float | None,
) -> None:
    """The likelihood of a sighting under the model, given its state before it."""
    got = slw((10.0, 10.04)).likelihood(*sighting, began=began, first=first, follow_up=follow_up)
    assert got == (None if expected is None else pytest.approx(expected))


# -- inference ---------------------------------------------------------------------------------


def ticker_sightings(
    n: int, *, phase: float = 0.7, step: float = 0.04, seed: int = 1
) -> Iterator[tuple[float, float, float]]:
    """(after, until, began) of consecutive waits on a ticker: each wait begins at a random
    moment, its batch is visible at the next tick, seen by a poll within ``step``."""
    rng = random.Random(seed)
    t = 0.0
    for _ in range(n):
        began = t + rng.uniform(0, I)
        tick = phase + I * math.ceil((began - phase) / I) + 0.003
        until = tick + rng.uniform(0, step)
        yield until - step, until, began
        t = until


def slw_sightings(
    n: int, *, think: tuple[float, float] = (0.0, I), step: float = 0.04, seed: int = 2
) -> Iterator[tuple[float, float, float]]:
    """(after, until, began) of consecutive waits on a since-last-write writer."""
    rng = random.Random(seed)
    t = end = 0.0
    for _ in range(n):
        began = t + rng.uniform(*think)
        if began >= end + I:
            visible = began + 0.003  # idle: at once
        else:
            visible = end + I + rng.uniform(0, LOOP_PERIOD) + 0.003
        end = visible
        until = visible + rng.uniform(0, step)
        yield until - step, until, began
        t = until


def feed(known: WriterKnowledge, sightings: Iterator[tuple[float, float, float]]) -> list[str]:
    believed = []
    for after, until, began in sightings:
        known.observe(after, until, began=began, first=True)
        believed.append(str(known.believed("auto")))
    return believed


def test_a_ticker_is_recognised() -> None:
    """Windows on a grid, from different turns of it: the ticker model is believed."""
    believed = feed(WriterKnowledge(I), ticker_sightings(12))
    assert believed[4:] == ["ticker"] * 8


def test_a_busy_since_last_write_writer_is_recognised() -> None:
    """Writes one interval (plus up to a loop turn) after the previous: the phase drifts, the
    grid is contradicted, since-last-write is believed."""
    believed = feed(WriterKnowledge(I), slw_sightings(20))
    assert believed[6:] == ["since-last-write"] * 14


def test_an_idle_since_last_write_writer_is_recognised() -> None:
    """Each wait's event written right as it began: since-last-write."""
    believed = feed(WriterKnowledge(I), slw_sightings(12, think=(I + 0.2, 2 * I)))
    assert believed[4:] == ["since-last-write"] * 8


def test_several_writers_leave_the_waits_on_the_cold_schedule() -> None:
    """Writes at moments no single writer explains: neither model is believed."""
    known = WriterKnowledge(I)
    rng = random.Random(5)
    t, believed = 0.0, []
    for _ in range(40):
        interval = rng.choice([0.5, 1.0, 2.0])
        phase = rng.uniform(0, interval)
        began = t + rng.uniform(0, I)
        visible = phase + interval * math.ceil((began - phase) / interval) + 0.003
        known.observe(visible - 0.04, visible, began=began, first=True)
        believed.append(known.believed("auto"))
        t = visible
    assert believed.count(None) >= 30


def test_a_switch_from_ticker_to_since_last_write_is_followed() -> None:
    """After the writer changes kind, the new model is believed within a few writes."""
    known = WriterKnowledge(I)
    before = list(ticker_sightings(12))
    feed(known, iter(before))
    last = before[-1][1]
    later = ((a + last, u + last, b + last) for a, u, b in slw_sightings(12, seed=7))
    believed = feed(known, later)
    assert believed[5:] == ["since-last-write"] * 7


def test_more_of_a_set_moments_later_is_no_reason_to_believe_since_last_write() -> None:
    """Rows moments after a set's first part rule out an atomic ticker batch, but several
    writers flushing close together explain them as well as since-last-write does: its score
    and streak do not move, the ticker's streak ends."""
    known = WriterKnowledge(I)
    feed(known, ticker_sightings(6))
    view = known.for_wait("auto", 50.0)
    view.rows_appeared(50.0, 50.04, 1)
    slw_before = (known.score["since-last-write"], known.streak["since-last-write"])
    view.rows_appeared(50.03, 50.06, 1)
    assert (known.score["since-last-write"], known.streak["since-last-write"]) == slw_before
    assert known.streak["ticker"] == 0


def test_once_contradicted_since_last_write_needs_more_sightings_to_be_believed() -> None:
    """Two sightings in a row may agree with since-last-write by chance when several writers
    feed the client: after any contradiction it takes SLW_RECONFIRM_AFTER in a row."""
    n = 8
    fresh = feed(WriterKnowledge(I), slw_sightings(n))
    burned_knowledge = WriterKnowledge(I)
    burned_knowledge.missed("since-last-write", early=True)
    burned = feed(burned_knowledge, slw_sightings(n))
    # sighting 0 is not judged (nothing predicted it): believed once 1..needed agreed
    assert fresh.index("since-last-write") == SLW_CONFIDENT_AFTER
    assert burned.index("since-last-write") == SLW_RECONFIRM_AFTER
    assert burned[SLW_RECONFIRM_AFTER:] == ["since-last-write"] * (n - SLW_RECONFIRM_AFTER)


def test_rows_found_early_withdraw_the_model() -> None:
    """Rows before the predicted window contradict the model: it is not believed until
    sightings confirm it again."""
    known = WriterKnowledge(I)
    feed(known, slw_sightings(10))
    assert known.believed("auto") == "since-last-write"
    known.missed("since-last-write", early=True)
    assert known.believed("auto") is None


def test_a_window_without_rows_costs_trust_only_mildly() -> None:
    """No write in the predicted window (a slow writer, or writes unseen) is no proof
    against the model: it stays believed, its streak unbroken."""
    known = WriterKnowledge(I)
    feed(known, slw_sightings(10))
    streak = known.streak["since-last-write"]
    known.missed("since-last-write", early=False)
    assert known.believed("auto") == "since-last-write"
    assert known.streak["since-last-write"] == streak + 1


@pytest.mark.parametrize(
    ("writer", "sightings", "expected"),
    [
        ("ticker", 1, None),  # the grid needs three agreeing windows
        ("ticker", 4, "ticker"),
        ("since-last-write", 1, "since-last-write"),  # one narrow write is enough
    ],
)
def test_a_named_writer_is_planned_with_as_soon_as_it_can_predict(
    writer: str, sightings: int, expected: str | None
) -> None:
    """writer= skips the inference: its model plans once it can predict anything."""
    known = WriterKnowledge(I)
    source = ticker_sightings if writer == "ticker" else slw_sightings
    for after, until, began in source(sightings):
        known.observe(after, until, began=began, first=True)
    assert known.believed(writer) == expected  # type: ignore[arg-type]


def test_a_named_writer_is_not_planned_with_right_after_a_miss() -> None:
    """Even named, a model whose prediction just missed waits for a sighting."""
    known = WriterKnowledge(I)
    feed(known, slw_sightings(3))
    known.missed("since-last-write", early=True)
    assert known.believed("since-last-write") is None
    assert known.slw.hi is not None
    written = known.slw.hi + I + 0.05  # the next write, one interval after the last
    known.observe(written - 0.04, written, began=known.slw.hi + 0.5, first=True)
    assert known.believed("since-last-write") == "since-last-write"


# -- one wait's view ---------------------------------------------------------------------------


def believing_slw() -> WriterKnowledge:
    known = WriterKnowledge(I)
    feed(known, slw_sightings(10))
    assert known.believed("auto") == "since-last-write"
    return known


def predictions(view: WriterView, began: float) -> list[tuple[float, str]]:
    polls: list[tuple[float, str]] = [view.predict(began, began)]
    while polls[-1][1] != "decisive":
        polls.append(view.predict(polls[-1][0], began))
    return polls


def test_a_far_window_is_checked_probed_then_decided_at_its_end() -> None:
    """A check just before a window that is far off (nothing may be there yet), probes every
    window step through it, a decisive poll at its end."""
    known = believing_slw()
    assert known.slw.hi is not None
    began = known.slw.hi + 0.3
    window = known.slw.window(began)
    assert window is not None
    assert not window.idle
    assert window.start - began > CHECK_GAP
    polls = predictions(known.for_wait("auto", began), began)
    step = window_step(I)
    assert polls[0][1] == "check"
    assert polls[0][0] == pytest.approx(window.start - CHECK_LEAD)
    assert [k for _, k in polls[1:-1]] == ["probe"] * (len(polls) - 2)
    assert polls[1][0] == pytest.approx(window.start + step)
    probes = [at for at, kind in polls if kind == "probe"]
    assert all(b - a == pytest.approx(step) for a, b in itertools.pairwise(probes))
    assert polls[-1][1] == "decisive"
    assert polls[-1][0] == pytest.approx(window.end)


def test_a_near_window_is_probed_without_a_check() -> None:
    """A window starting within CHECK_GAP of the wait's last poll is probed at once."""
    known = believing_slw()
    assert known.slw.lo is not None
    began = known.slw.lo + I - 0.1
    polls = predictions(known.for_wait("auto", began), began)
    assert polls[0][1] == "probe"


def test_a_ticker_window_that_passed_undecided_is_decided_at_once() -> None:
    """A probe, then a stall past the window's end: the next poll decides that window now
    (and a miss there sends the wait to dense polling) instead of aiming an interval on."""
    known = WriterKnowledge(I)
    feed(known, ticker_sightings(12))
    assert known.believed("auto") == "ticker"
    began = 100.0
    view = known.for_wait("auto", began)
    _, end = known.ticker.target(began, began)
    first = view.predict(began, began)
    assert first[0] <= end + 0.01
    late = end + 0.5
    assert view.predict(late, began) == (late, "decisive")


def test_a_ticker_tick_just_passed_unseen_gets_a_late_look_before_any_check() -> None:
    """A wait beginning moments after a predicted tick that no poll saw looks once more for
    it (it may be late) before the check of the next window, an interval away."""
    known = WriterKnowledge(I)
    feed(known, ticker_sightings(12))
    assert known.believed("auto") == "ticker"
    assert known.ticker.last_rows is None or known.ticker.last_rows < 90
    _, end = known.ticker.next_window(100.0)
    began = end + 0.003
    view = known.for_wait("auto", began)
    at, kind = view.predict(began, began)
    assert at == pytest.approx(end + LATE_LOOK)
    assert kind == "probe"
    assert view.predict(end + LATE_LOOK, began)[1] == "check"


def test_after_part_of_a_set_a_believed_ticker_is_hedged_with_cold_steps() -> None:
    """A ticker's batch is atomic, so the rest of a set seen in part comes from another writer
    or later, at no predicted moment: the wait polls every cold step until the grid's next
    window is nearer, then decides that window as usual."""
    known = WriterKnowledge(I)
    feed(known, ticker_sightings(12))
    start, end = known.ticker.next_window(100.0)
    began = start - 0.5
    view = known.for_wait("auto", began)
    view.rows_appeared(start - 0.005, end + 0.005, 2)
    assert known.believed("auto") == "ticker"
    polls = [view.predict(end + 0.025, began)]
    while polls[-1][1] == "probe":
        polls.append(view.predict(polls[-1][0], began))
    probes = [end + 0.025] + [at for at, kind in polls if kind == "probe"]
    assert len(probes) > 10
    assert all(b - a == pytest.approx(cold_step(I)) for a, b in itertools.pairwise(probes))
    assert polls[-1][0] == pytest.approx(end + I + PREDICTION_MARGIN)
    assert polls[-1][1] == "decisive"


def test_a_busy_write_may_still_be_posting_the_rest() -> None:
    """Rows of a busy write: look again in a moment, it POSTs one event at a time."""
    known = believing_slw()
    assert known.slw.lo is not None
    began = known.slw.lo + 0.3
    view = known.for_wait("auto", began)
    arrived = known.slw.lo + I + 0.05
    view.rows_appeared(arrived - 0.04, arrived, 2)
    assert view.after_rows(arrived) == pytest.approx(arrived + TRICKLE_STEP)


def test_part_of_a_set_is_looked_for_again_even_under_a_believed_ticker() -> None:
    """A ticker's batch is atomic, yet one quick look is cheap insurance against a wrong
    belief (which would cost an interval) and tells the writers apart."""
    known = WriterKnowledge(I)
    feed(known, ticker_sightings(12))
    assert known.believed("auto") == "ticker"
    assert known.for_wait("auto", 100.0).after_rows(100.0) == pytest.approx(100.0 + TRICKLE_STEP)


def test_a_named_ticker_takes_no_second_look() -> None:
    """writer="ticker": batches are atomic by the caller's word."""
    assert WriterKnowledge(I).for_wait("ticker", 100.0).after_rows(100.0) is None


def test_rows_in_consecutive_polls_are_a_follow_up() -> None:
    """A view tells the knowledge when its previous poll saw rows too (one-by-one writes),
    which the ticker model cannot explain."""
    known = WriterKnowledge(I)
    feed(known, ticker_sightings(6))
    view = known.for_wait("auto", 50.0)
    before = dict(known.score)
    view.rows_appeared(50.0, 50.04, 1)
    view.rows_appeared(50.03, 50.06, 1)  # sent before the previous answer: a follow-up
    assert (
        known.score["ticker"] - before["ticker"]
        < known.score["since-last-write"] - before["since-last-write"]
    )
    assert known.ticker.tolerance == TICKER_TOLERANCE
