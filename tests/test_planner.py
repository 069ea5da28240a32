"""The wait planners are pure: each schedule is read as a table of plain numbers (event-loop
times in seconds), no event loop, no clock."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest

from kubernaut_audit._planner import (
    FINAL_POLL_GUARD,
    WRITE_ALLOWANCE,
    AbsencePlanner,
    Observation,
    Poll,
    Stop,
    WaitPlanner,
)
from kubernaut_audit._schedule import CadenceTracker, ColdSchedule, PredictionKind

#: The cold schedule's step at the default 2 s interval (0.15 s) and its due phase (2.25 s).
COLD = ColdSchedule(2.0, WRITE_ALLOWANCE)


@dataclass
class ScriptedModel:
    """A writer model whose predictions are scripted and whose lessons are recorded."""

    confident: bool = False
    predictions: list[tuple[float, PredictionKind]] = field(default_factory=list)
    rows: list[tuple[float | None, float, int]] = field(default_factory=list)
    misses: int = 0
    #: Seconds after a poll that saw part of the set to look again (None: not at all).
    trickle: float | None = None

    def rows_appeared(self, after: float | None, until: float, count: int) -> None:
        self.rows.append((after, until, count))

    def missed(self) -> None:
        self.misses += 1

    def predict(self, now: float, began: float) -> tuple[float, PredictionKind]:
        return self.predictions.pop(0)

    def after_rows(self, now: float) -> float | None:
        return None if self.trickle is None else now + self.trickle


def seen(sent: float, new: int | None = 0, took: float = 0.0) -> Observation:
    """A poll sent at ``sent`` and answered ``took`` later by its own query."""
    if new is None:
        return Observation.failed(sent, sent + took)
    return Observation(sent, sent + took, new, sent, sent + took)


def planner(model: ScriptedModel | None = None, **options: object) -> WaitPlanner:
    settings: dict[str, object] = {"start": 0.0, "deadline": 11.0, "flush_interval": 2.0}
    settings.update(options)
    return WaitPlanner(
        model=model or ScriptedModel(),
        rng=random.Random(0),
        **settings,  # type: ignore[arg-type]
    )


def run(p: WaitPlanner, answers: list[int | None]) -> list[Poll | Stop]:
    """Feed the planner one answer per poll, each answered at once, until it stops."""
    steps: list[Poll | Stop] = [p.first()]
    for new in answers:
        last = steps[-1]
        if isinstance(last, Stop):
            break
        steps.append(p.next(seen(last.at, new), satisfied=False))
    return steps


# -- the cold schedule -----------------------------------------------------------------------


def test_first_poll_goes_out_at_once() -> None:
    """The first poll is at the start of the wait."""
    assert planner(start=5.0, deadline=16.0).first() == Poll(5.0, "first")


def test_cold_polls_step_evenly_while_events_are_due() -> None:
    """Until one interval plus the write allowance has passed, polls are one step apart."""
    steps = run(planner(), [0] * 14)
    due = [s for s in steps[1:] if isinstance(s, Poll) and s.kind == "due"]
    assert [round(s.at, 6) for s in due] == [round(COLD.step * n, 6) for n in range(1, 15)]
    assert due[-1].at <= COLD.due_for


def test_cold_polls_back_off_once_overdue() -> None:
    """Past the due phase polls are 'backoff' polls, at least half a step apart, at most F."""
    steps = run(planner(), [0] * 30)
    polls = [s for s in steps if isinstance(s, Poll)]
    late = [(a, b) for a, b in itertools.pairwise(polls) if b.kind == "backoff"]
    assert late, "the due phase never ended"
    assert all(b.at > COLD.due_for for _, b in late)
    assert all(COLD.step / 2 - 1e-9 <= b.at - a.at <= 2.0 + 1e-9 for a, b in late)


def test_part_of_the_set_makes_the_rest_due_from_then() -> None:
    """Rows of the set seen past the due phase: the flow is live (the rest may be emitted
    later, or held by another writer), so polls are due again, one step apart, for one more
    interval plus the write allowance from that poll."""
    p = planner()
    t, kind = 0.0, ""
    for _ in range(20):  # well into the backoff
        step = p.next(seen(t), satisfied=False)
        assert isinstance(step, Poll)
        t, kind = step.at, step.kind
    assert kind == "backoff"
    after = [p.next(seen(t, 1), satisfied=False)]
    while isinstance(after[-1], Poll) and after[-1].at <= t + COLD.due_for - COLD.step:
        after.append(p.next(seen(after[-1].at), satisfied=False))
    polls = [s for s in after if isinstance(s, Poll)]
    assert [s.kind for s in polls] == ["due"] * len(polls)
    assert all(b.at - a.at == pytest.approx(COLD.step) for a, b in itertools.pairwise(polls))


def test_a_slow_answer_delays_the_next_poll_as_long() -> None:
    """A poll answered 0.8 s after it was sent is followed no sooner than 0.8 s later."""
    p = planner()
    step = p.next(seen(0.0, 0, took=0.8), satisfied=False)
    assert step == Poll(1.6, "due")


@pytest.mark.parametrize(
    ("answered", "expected"),
    [
        (10.9, Poll(11.0 - FINAL_POLL_GUARD, "final")),
        (10.99, Poll(10.99, "final")),
    ],
)
def test_the_last_poll_is_sent_just_before_the_deadline(answered: float, expected: Poll) -> None:
    """A poll that would fall past the deadline's guard is sent at the guard (or now)."""
    p = planner()
    p.next(seen(0.0), satisfied=False)
    assert p.next(seen(answered), satisfied=False) == expected


def test_unmet_after_the_final_poll_times_out() -> None:
    """An expectation still unmet after the final poll ends the wait as timed out."""
    p = planner()
    final = p.next(seen(10.9), satisfied=False)
    assert isinstance(final, Poll)
    assert final.kind == "final"
    assert p.next(seen(final.at), satisfied=False) == Stop("timed out")


def test_unmet_at_the_deadline_times_out() -> None:
    """A poll answered at or after the deadline ends the wait as timed out."""
    assert planner().next(seen(11.0), satisfied=False) == Stop("timed out")


# -- the end of a wait -----------------------------------------------------------------------


def test_met_expectation_ends_the_wait() -> None:
    """Without settle, the first poll where the expectation holds ends the wait."""
    assert planner().next(seen(1.0, 1), satisfied=True) == Stop("satisfied")


def test_settle_waits_one_quiet_window() -> None:
    """With settle, the wait polls once more a due phase after the expectation held."""
    p = planner(settle=True)
    assert p.next(seen(1.0, 1), satisfied=True) == Poll(1.0 + COLD.due_for, "settle")
    assert p.next(seen(1.0 + COLD.due_for), satisfied=True) == Stop("satisfied")


def test_new_rows_while_settling_restart_the_window() -> None:
    """Rows arriving in the quiet window push its end a due phase past them."""
    p = planner(settle=True)
    p.next(seen(1.0, 1), satisfied=True)
    assert p.next(seen(3.25, 1), satisfied=True) == Poll(3.25 + COLD.due_for, "settle")


def test_settle_window_ends_at_the_final_guard() -> None:
    """The quiet window never runs past the deadline's guard."""
    p = planner(settle=True)
    assert p.next(seen(10.0, 1), satisfied=True) == Poll(11.0 - FINAL_POLL_GUARD, "settle")


# -- predictions -----------------------------------------------------------------------------


def test_a_confident_model_plans_the_polls() -> None:
    """A model confident when the wait starts sets the next poll and its kind."""
    model = ScriptedModel(confident=True, predictions=[(1.5, "check"), (1.6, "decisive")])
    p = planner(model)
    assert p.next(seen(0.0), satisfied=False) == Poll(1.5, "check")
    assert p.next(seen(1.5), satisfied=False) == Poll(1.6, "decisive")


def test_an_unconfident_model_is_not_asked() -> None:
    """A model that is not confident leaves the wait on the cold schedule."""
    model = ScriptedModel(confident=False, predictions=[(1.5, "decisive")])
    assert planner(model).next(seen(0.0), satisfied=False) == Poll(COLD.step, "due")
    assert model.predictions == [(1.5, "decisive")]


@pytest.mark.parametrize(
    ("kind", "new", "missed"),
    [
        ("decisive", 0, True),
        ("decisive", 1, False),
        ("check", 1, True),
        ("check", 0, False),
        ("probe", 0, False),
        ("probe", 1, False),
    ],
)
def test_a_prediction_is_judged_by_its_kind(kind: PredictionKind, new: int, missed: bool) -> None:
    """A decisive poll must see rows, a check must see none, a probe may see either."""
    model = ScriptedModel(confident=True, predictions=[(1.0, kind), (2.0, "decisive")])
    p = planner(model)
    p.next(seen(0.0), satisfied=False)
    step = p.next(seen(1.0, new), satisfied=False)
    assert model.misses == int(missed)
    assert step == (Poll(1.0 + COLD.step, "due") if missed else Poll(2.0, "decisive"))


def test_a_failed_poll_drops_predictions_without_blaming_the_model() -> None:
    """A failing server sends the wait to the cold schedule; the model is not told it missed."""
    model = ScriptedModel(confident=True, predictions=[(1.0, "decisive")])
    p = planner(model)
    p.next(seen(0.0), satisfied=False)
    assert p.next(seen(1.0, None), satisfied=False) == Poll(1.0 + COLD.step, "due")
    assert model.misses == 0


def test_after_a_miss_the_cold_schedule_starts_over() -> None:
    """After a miss the due phase is counted from the miss, not from the wait's start."""
    model = ScriptedModel(confident=True, predictions=[(2.0, "decisive")])
    p = planner(model)
    p.next(seen(0.0), satisfied=False)
    kinds = [p.next(seen(2.0 + COLD.step * n), satisfied=False) for n in range(14)]
    assert all(isinstance(k, Poll) and k.kind == "due" for k in kinds)


@pytest.mark.parametrize("predicted", [2.76, 7.0, 1e9])
def test_a_prediction_beyond_one_interval_is_cut_to_a_probe(predicted: float) -> None:
    """Any writer makes due rows visible within one interval plus the write time: a model
    predicting later (confused by several writers, say) gets a probe there instead, never a
    wait left without polls until its deadline."""
    model = ScriptedModel(confident=True, predictions=[(predicted, "decisive")])
    p = planner(model, deadline=30.0)
    assert p.next(seen(0.5), satisfied=False) == Poll(0.5 + COLD.due_for, "probe")


def test_a_model_confident_from_a_later_poll_plans_from_then_on() -> None:
    """Confidence is asked at every poll: what another wait taught the model counts at once."""
    model = ScriptedModel(predictions=[(1.9, "decisive")])
    p = planner(model)
    assert p.next(seen(0.0), satisfied=False) == Poll(COLD.step, "due")
    model.confident = True
    assert p.next(seen(COLD.step), satisfied=False) == Poll(1.9, "decisive")


def test_after_a_miss_the_wait_stays_cold_even_if_the_model_is_confident() -> None:
    """A wait whose prediction missed is not planned by the model again."""
    model = ScriptedModel(confident=True, predictions=[(1.0, "decisive"), (3.0, "decisive")])
    p = planner(model)
    p.next(seen(0.0), satisfied=False)
    steps = [p.next(seen(1.0 + COLD.step * n), satisfied=False) for n in range(3)]
    assert [s.kind for s in steps if isinstance(s, Poll)] == ["due"] * 3
    assert model.predictions == [(3.0, "decisive")]


def test_part_of_the_set_brings_a_trickle_poll_when_the_model_asks() -> None:
    """A poll that saw part of the set is followed after the model's trickle delay; a poll
    that saw nothing new resumes the plan."""
    model = ScriptedModel(trickle=0.02)
    p = planner(model)
    assert p.next(seen(0.0, 1), satisfied=False) == Poll(0.02, "trickle")
    assert p.next(seen(0.02, 1), satisfied=False) == Poll(0.04, "trickle")
    assert p.next(seen(0.04, 0), satisfied=False) == Poll(0.04 + COLD.step, "due")


def test_trickle_polls_stop_after_three_in_a_row() -> None:
    """Rows that keep trickling in do not turn the wait into a busy loop."""
    p = planner(ScriptedModel(trickle=0.02))
    steps = [p.next(seen(0.02 * n, 1), satisfied=False) for n in range(5)]
    assert [s.kind for s in steps if isinstance(s, Poll)] == ["trickle"] * 3 + ["due", "trickle"]


def test_no_trickle_poll_without_the_model_asking_or_after_a_miss() -> None:
    """An atomic writer's model asks for none; a wait that fell back to cold makes none."""
    assert planner(ScriptedModel()).next(seen(0.0, 1), satisfied=False) == Poll(COLD.step, "due")
    model = ScriptedModel(confident=True, predictions=[(1.0, "check")], trickle=0.02)
    p = planner(model)
    p.next(seen(0.0), satisfied=False)
    assert p.next(seen(1.0, 1), satisfied=False) == Poll(1.0 + COLD.step, "due")


def test_a_trickle_poll_is_not_judged_as_a_prediction() -> None:
    """A trickle poll that finds nothing is no missed prediction: the plan goes on."""
    model = ScriptedModel(confident=True, predictions=[(1.0, "probe"), (2.0, "decisive")])
    model.trickle = 0.02
    p = planner(model)
    p.next(seen(0.0), satisfied=False)
    assert p.next(seen(1.0, 1), satisfied=False) == Poll(1.02, "trickle")
    assert p.next(seen(1.02, 0), satisfied=False) == Poll(2.0, "decisive")
    assert model.misses == 0


# -- what the model learns -------------------------------------------------------------------


def test_the_model_learns_when_rows_appeared() -> None:
    """New rows are reported between the previous query and the answer that showed them."""
    model = ScriptedModel()
    p = planner(model)
    p.next(Observation(0.0, 0.01, 0, 0.0, 0.01), satisfied=False)
    p.next(Observation(0.155, 0.16, 2, 0.15, 0.16), satisfied=False)
    assert model.rows == [(0.0, 0.16, 2)]


def test_rows_on_the_first_poll_have_no_lower_bound() -> None:
    """Rows seen by the first poll appeared at some unknown earlier moment."""
    model = ScriptedModel()
    planner(model).next(seen(0.0, 3), satisfied=True)
    assert model.rows == [(None, 0.0, 3)]


def test_failed_polls_teach_nothing() -> None:
    """A failed poll neither reports rows nor moves the lower bound of the next window."""
    model = ScriptedModel()
    p = planner(model)
    p.next(seen(0.0), satisfied=False)
    p.next(seen(0.155, None), satisfied=False)
    p.next(seen(0.31, 1), satisfied=False)
    assert model.rows == [(0.0, 0.31, 1)]


def test_a_wait_ending_in_failure_still_teaches_the_model() -> None:
    """observe() reports the rows of a poll the wait ends on without planning another."""
    model = ScriptedModel()
    planner(model).observe(seen(0.0, 2))
    assert model.rows == [(None, 0.0, 2)]


def test_learned_cadence_drives_a_later_wait() -> None:
    """Three flushes on a 2 s grid seen by one wait let the next wait poll just after a flush."""
    tracker = CadenceTracker(2.0)
    for k in range(3):
        flush = 0.7 + 2.0 * k
        tracker.rows_appeared(flush - 0.05, flush + 0.01, 1)
    later = WaitPlanner(start=10.0, deadline=21.0, flush_interval=2.0, model=tracker)
    step = later.next(seen(10.0), satisfied=False)
    assert isinstance(step, Poll)
    assert step.kind in ("probe", "decisive", "check")
    assert 10.6 < step.at < 10.8


# -- absence ---------------------------------------------------------------------------------


def absence(model: ScriptedModel | None = None) -> AbsencePlanner:
    return AbsencePlanner(
        start=0.0, end=2.25, deadline=13.25, flush_interval=2.0, model=model or ScriptedModel()
    )


def test_absence_polls_every_half_interval_up_to_the_end() -> None:
    """An absence check polls each half interval, the last one at the end of its window."""
    p = absence()
    assert p.first() == Poll(0.0, "first")
    assert p.next(seen(0.0)) == Poll(1.0, "watch")
    assert p.next(seen(1.0)) == Poll(2.0, "watch")
    assert p.next(seen(2.0)) == Poll(2.25, "watch")


def test_absence_confirmed_by_a_poll_at_the_end() -> None:
    """A successful poll at or after the end of the window confirms the absence."""
    assert absence().next(seen(2.25)) == Stop("satisfied")


def test_absence_needs_a_successful_last_poll() -> None:
    """A failed poll past the window does not confirm: the check polls on."""
    assert absence().next(seen(2.25, None)) == Poll(3.25, "watch")


def test_absence_unconfirmed_by_the_deadline_times_out() -> None:
    """Polls failing until the deadline end the check as timed out."""
    assert absence().next(seen(13.25, None)) == Stop("timed out")


def test_absence_polls_teach_the_model() -> None:
    """What an absence check sees is reported to the writer model too."""
    model = ScriptedModel()
    p = absence(model)
    p.next(seen(0.0))
    p.observe(seen(1.0, 1))
    assert model.rows == [(0.0, 1.0, 1)]
