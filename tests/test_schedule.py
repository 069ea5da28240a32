"""The poll schedule and the cadence tracker are pure: tested with plain numbers."""

from __future__ import annotations

import random

import pytest

from kubernaut_audit._schedule import (
    CHECK_LEAD,
    LATE_LOOK,
    PREDICTION_MARGIN,
    CadenceTracker,
    ColdSchedule,
)


def _plan(t: CadenceTracker, now: float, began: float) -> tuple[object, str]:
    when, kind = t.predict(now, began=began)
    return when, kind


def _on_grid_at_0_6() -> CadenceTracker:
    """A 2 s tracker that saw two narrow windows at phase 0.60..0.62."""
    t = CadenceTracker(2.0, target_width=0.05)
    t.observe(0.60, 0.62)
    t.observe(2.60, 2.62)
    return t


def test_cold_step_scales_with_flush_interval() -> None:
    """The due-phase step is 7.5 % of the interval, clamped to [10 ms, 150 ms]: a 5 s writer
    is polled as often as a 2 s one while events are due."""
    assert ColdSchedule(2.0, 0.25).step == pytest.approx(0.15)
    assert ColdSchedule(0.05, 0.25).step == 0.01
    assert ColdSchedule(5.0, 0.25).step == 0.15
    assert ColdSchedule(60.0, 0.25).step == 0.15


def test_cold_schedule_polls_evenly_while_events_are_due() -> None:
    """Within one interval plus the write allowance, polls are one step apart, no jitter."""
    s = ColdSchedule(2.0, 0.25)
    rng = random.Random(1)
    t, polls = 0.0, []
    while t < s.due_for - s.step:
        t = s.next_poll(origin=0.0, last_poll=t, overdue_polls=0, rng=rng)
        polls.append(t)
    gaps = {round(b - a, 9) for a, b in zip([0.0, *polls], polls, strict=False)}
    assert gaps == {round(s.step, 9)}


def test_cold_schedule_backs_off_with_full_jitter_up_to_the_cap() -> None:
    """Once overdue, gaps are random within an exponentially growing bound capped at F."""
    s = ColdSchedule(2.0, 0.25)
    rng = random.Random(7)
    for overdue in range(12):
        bound = min(s.cap, s.step * 2 ** (overdue + 1))
        for _ in range(200):
            gap = s.next_poll(origin=0.0, last_poll=10.0, overdue_polls=overdue, rng=rng) - 10.0
            assert s.step / 2 - 1e-9 <= gap <= max(bound, s.step / 2) + 1e-9
    assert s.cap == 2.0


def test_tracker_learns_phase_from_agreeing_windows() -> None:
    """Three narrow windows that agree modulo the interval make the tracker confident."""
    t = CadenceTracker(2.0)
    t.observe(0.60, 0.75)
    t.observe(2.60, 2.80)
    assert not t.confident
    t.observe(4.65, 4.72)
    assert t.confident
    assert t.lo == pytest.approx(0.65)
    assert t.width == pytest.approx(0.07)


def test_windows_close_in_time_count_once() -> None:
    """Agreement must come from other turns of the grid: windows seen within half an interval
    of each other (concurrent waits, several writers) narrow the estimate but count once."""
    t = CadenceTracker(2.0)
    for k in range(6):
        t.observe(0.60 + 0.01 * k, 0.70 + 0.01 * k)
    assert t.agreeing == 1
    assert not t.confident
    t.observe(2.62, 2.70)
    t.observe(4.62, 4.70)
    assert t.confident


def test_wide_windows_narrow_but_never_confirm() -> None:
    """A window wider than a quarter interval contains the estimate whether or not it is
    right: it may narrow the estimate but does not count as agreement."""
    t = CadenceTracker(2.0, tolerance=0.0)
    t.observe(0.60, 0.75)
    for k in range(1, 6):
        t.observe(2.0 * k - 1.0, 2.0 * k + 0.70)
    assert not t.confident
    assert t.agreeing == 1
    assert t.lo == pytest.approx(0.60)
    assert t.width == pytest.approx(0.10)


def test_tracker_resets_on_a_contradicting_window() -> None:
    """A narrow window that misses the estimate replaces it and drops confidence."""
    t = CadenceTracker(2.0)
    t.observe(0.60, 0.75)
    t.observe(2.60, 2.75)
    t.observe(5.50, 5.60)
    assert not t.confident
    assert t.resets == 1
    assert t.lo == pytest.approx(1.5)


def test_tracker_ignores_windows_spanning_a_whole_interval() -> None:
    """A window as long as the interval carries no phase information."""
    t = CadenceTracker(2.0)
    t.observe(0.0, 2.5)
    assert t.lo is None


def test_tracker_narrows_with_a_long_one_sided_window() -> None:
    """A window longer than half the interval still cuts the estimate where it applies."""
    t = CadenceTracker(2.0, tolerance=0.0)
    t.observe(0.70, 0.76)
    t.observe(2.70, 2.76)
    t.observe(4.766, 6.731)  # a miss just after 4.76 then a hit at 6.731
    assert t.lo == pytest.approx(0.70)
    assert t.width == pytest.approx(0.031)


def test_plan_probes_the_middle_of_a_wide_window_then_its_end() -> None:
    """Wide estimate: probe mid-window (not decisive); then poll just after the end."""
    t = CadenceTracker(2.0, target_width=0.025)
    t.observe(0.60, 0.70)
    t.observe(2.60, 2.70)
    assert _plan(t, 3.0, began=3.0) == (pytest.approx(4.65), "probe")
    assert _plan(t, 4.66, began=3.0) == (pytest.approx(4.70 + PREDICTION_MARGIN), "decisive")


def test_plan_skips_a_window_already_seen_flushing() -> None:
    """A wait that began after the current window's batch was seen aims at the next one."""
    t = _on_grid_at_0_6()
    t.saw_rows(4.615)
    assert _plan(t, 4.616, began=4.616) == (pytest.approx(6.62 + PREDICTION_MARGIN), "decisive")
    assert _plan(t, 4.605, began=4.605) == (pytest.approx(4.62 + PREDICTION_MARGIN), "decisive")


def test_plan_looks_once_more_for_a_tick_that_just_passed_unseen() -> None:
    """A wait whose first poll came just after a predicted tick that no poll has seen: the
    tick may be late (a slow POST), so one probe goes LATE_LOOK after its window before the
    plan aims at the next tick, an interval on."""
    t = _on_grid_at_0_6()
    t.saw_rows(2.62)
    assert _plan(t, 4.625, began=4.623) == (pytest.approx(4.62 + LATE_LOOK), "probe")
    after = 4.62 + LATE_LOOK + 0.002
    assert _plan(t, after, began=4.623) == (pytest.approx(6.62 + PREDICTION_MARGIN), "decisive")


def test_a_short_interval_looks_a_quarter_interval_late_at_most() -> None:
    """At 0.1 s the late look comes 25 ms after the window, before the next tick's."""
    t = CadenceTracker(0.1, tolerance=0.002, target_width=0.005)
    t.observe(0.030, 0.032)
    t.observe(0.130, 0.132)
    t.saw_rows(0.132)
    assert _plan(t, 1.0325, began=1.0323) == (pytest.approx(1.032 + 0.025), "probe")


def test_plan_takes_no_late_look_at_a_tick_already_seen() -> None:
    """Rows seen from that tick: it came, the wait's events come with the next one."""
    t = _on_grid_at_0_6()
    t.saw_rows(4.61)
    assert _plan(t, 4.625, began=4.623) == (pytest.approx(6.62 + PREDICTION_MARGIN), "decisive")


def test_plan_checks_before_the_window_when_the_estimate_is_stale() -> None:
    """Without a narrow observation for 1.5 intervals, a check goes just before the window."""
    t = _on_grid_at_0_6()
    assert _plan(t, 9.0, began=9.0) == (pytest.approx(10.60 - CHECK_LEAD), "check")
    assert _plan(t, 10.58, began=9.0) == (pytest.approx(10.62 + PREDICTION_MARGIN), "decisive")


def test_a_miss_withdraws_confidence() -> None:
    """After a decisive miss the tracker must be confirmed again before predicting."""
    t = CadenceTracker(2.0)
    for k in range(3):
        t.observe(0.60 + 2 * k, 0.62 + 2 * k)
    assert t.confident
    t.missed()
    assert not t.confident


def test_next_window_is_the_first_ending_after_now() -> None:
    """Predictions step whole intervals and never return a window already over."""
    t = CadenceTracker(2.0)
    t.observe(0.60, 0.62)
    for now in (0.0, 0.61, 0.63, 7.3, 100.0):
        start, end = t.next_window(now)
        assert end > now >= end - 2.0
        assert (start - 0.60) / 2.0 == pytest.approx(round((start - 0.60) / 2.0))


def test_tracker_rejects_a_non_positive_interval() -> None:
    """An interval of zero makes no grid."""
    with pytest.raises(ValueError, match="interval"):
        CadenceTracker(0.0)
