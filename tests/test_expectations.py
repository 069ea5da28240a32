"""Expectation sets (declared checks, verified together) against a scripted fake, on a fake clock.

Time is trio's MockClock (autojump): windows and deadlines are asserted exactly.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import anyio
import pytest
from fakes import FakeDataStorage, event
from trio.testing import MockClock

import kubernaut_audit as ka
from kubernaut_audit import AsyncAuditClient
from kubernaut_audit._planner import WRITE_ALLOWANCE
from kubernaut_audit._schedule import ColdSchedule
from kubernaut_audit._wait import default_timeout

pytestmark = pytest.mark.anyio

STEP = ColdSchedule(2.0, WRITE_ALLOWANCE).step
#: One flush interval plus the write time: an absence window, a settle window.
QUIET = 2.0 + WRITE_ALLOWANCE


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


@pytest.fixture
def ds() -> FakeDataStorage:
    return FakeDataStorage()


@pytest.fixture
async def client(ds: FakeDataStorage) -> Any:
    async with AsyncAuditClient(**ds.client_kwargs()) as c:
        yield c


async def test_declaring_sends_nothing(ds: FakeDataStorage, client: AsyncAuditClient) -> None:
    """expect and expect_none record a check and return at once, without a request."""
    exp = client.expectations("c1")
    check = exp.expect(event_type="a.b.c", count=1)
    exp.expect_none(event_type="x.y.z")
    assert ds.requests == []
    assert exp.checks == (check, exp.checks[1])
    assert check.correlation_id == "c1"
    assert check.expectation.count == 1


async def test_a_met_expectation_passes_on_the_first_poll(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Events already visible satisfy an expect at once: one request, no sleep."""
    ds.add(0.0, event("c1", "a.b.c"))
    start = anyio.current_time()
    exp = client.expectations("c1")
    exp.expect(event_type="a.b.c")
    await exp.verify()
    assert len(ds.requests) == 1
    assert anyio.current_time() == start


async def test_three_checks_cost_one_quiet_window(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """expect(count=1, settle=True) and two expect_none end one quiet window after the event
    arrived (three blocking calls would wait three windows), on one query per poll."""
    start = anyio.current_time()
    ds.add(start + 1.0, event("c1", "a.b.c"))
    polls: list[ka.PollRecord] = []
    exp = client.expectations("c1", on_poll=polls.append)
    exp.expect(event_type="a.b.c", count=1, settle=True)
    exp.expect_none(event_type="x.y.z")
    exp.expect_none(event_type="q.q.q")
    await exp.verify()
    seen_at = start + math.ceil(1.0 / STEP) * STEP
    assert anyio.current_time() == pytest.approx(seen_at + QUIET)
    assert len(ds.requests) == len(polls)


async def test_absence_is_confirmed_by_a_poll_at_the_end_of_its_window(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """expect_none alone polls at the start and once the window ended, then passes."""
    start = anyio.current_time()
    exp = client.expectations("c1")
    exp.expect_none()
    await exp.verify()
    assert anyio.current_time() == pytest.approx(start + QUIET)
    assert len(ds.requests) == 2


async def test_absence_window_takes_during(ds: FakeDataStorage, client: AsyncAuditClient) -> None:
    """during= sets the watch window."""
    start = anyio.current_time()
    exp = client.expectations("c1")
    exp.expect_none(during=0.5)
    await exp.verify()
    assert anyio.current_time() == pytest.approx(start + 0.5)


async def test_an_unwanted_event_fails_at_the_poll_that_sees_it(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """expect_none fails as UnexpectedAuditEvents, naming the event and where it was declared."""
    start = anyio.current_time()
    ds.add(start + 0.3, event("c1", "gateway.crd.failed"))
    exp = client.expectations("c1")
    exp.expect(event_type="gateway.signal.received", timeout=30)
    exp.expect_none(event_type="gateway.crd.failed")
    with pytest.raises(ka.UnexpectedAuditEvents) as info:
        await exp.verify()
    assert anyio.current_time() < start + 0.3 + 2 * STEP
    message = str(info.value)
    assert "expected: no event with event_type='gateway.crd.failed'" in message
    assert "declared: " in message
    assert "test_expectations.py:" in message
    assert "gateway.crd.failed ×1" in message


async def test_a_count_exceeded_fails_at_once(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """More events than count= fail without waiting for a timeout."""
    ds.add(0.0, event("c1", "a.b.c"), event("c1", "a.b.c"))
    exp = client.expectations("c1")
    exp.expect(event_type="a.b.c", count=1)
    with pytest.raises(ka.UnexpectedAuditEvents, match="expected exactly 1"):
        await exp.verify()
    assert len(ds.requests) == 1


async def test_a_missing_event_times_out_with_the_wait_diagnostic(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """An expect that never holds fails at its deadline with what arrived and a hint."""
    start = anyio.current_time()
    ds.add(0.0, event("c1", "a.b.c"))
    exp = client.expectations("c1")
    exp.expect(event_type="never.seen.type")
    with pytest.raises(ka.AuditWaitTimeout) as info:
        await exp.verify()
    assert anyio.current_time() <= start + default_timeout(2.0)
    err = info.value
    assert err.correlation_id == "c1"
    assert err.expectation == "at least 1 event(s) with event_type='never.seen.type'"
    assert [e.event_type for e in err.events] == ["a.b.c"]
    assert "none matched the filters" in str(err)


async def test_settle_extends_while_events_keep_arriving(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """A settle window restarts when a new event arrives, and a surplus then fails."""
    start = anyio.current_time()
    ds.add(start + 0.5, event("c1", "a.b.c"))
    ds.add(start + 2.0, event("c1", "a.b.d"))
    ds.add(start + 4.0, event("c1", "a.b.c"))
    exp = client.expectations("c1")
    exp.expect(event_type="a.b.c", count=1, settle=True)
    with pytest.raises(ka.UnexpectedAuditEvents, match="2 arrived"):
        await exp.verify()


async def test_a_failed_check_ends_the_set_without_waiting_for_the_others(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Once one check failed, the others are left unverified and the message says so."""
    start = anyio.current_time()
    ds.add(0.0, event("c1", "bad.event"))
    exp = client.expectations("c1")
    exp.expect(event_type="slow.event", timeout=60)
    exp.expect_none(event_type="bad.event")
    with pytest.raises(ka.UnexpectedAuditEvents) as info:
        await exp.verify()
    assert anyio.current_time() == start
    assert str(info.value).startswith(
        "1 of 2 audit expectations failed (1 left unverified once one had failed)"
    )


async def test_several_failures_raise_one_exception_with_every_diagnostic(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Checks failing at the same poll are reported together, as the first one's class."""
    ds.add(0.0, event("c1", "a.b.c"), event("c1", "a.b.c"), event("c1", "x.y.z"))
    exp = client.expectations("c1")
    exp.expect(event_type="a.b.c", count=1)
    exp.expect_none(event_type="x.y.z")
    with pytest.raises(ka.UnexpectedAuditEvents) as info:
        await exp.verify()
    message = str(info.value)
    assert message.startswith("2 of 2 audit expectations failed\n")
    assert "expected exactly 1" in message
    assert "where none were expected" in message


async def test_verify_consumes_the_declared_checks(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """After verify the set is empty; verifying an empty set sends nothing."""
    ds.add(0.0, event("c1"))
    exp = client.expectations("c1")
    exp.expect()
    await exp.verify()
    assert exp.checks == ()
    sent = len(ds.requests)
    await exp.verify()
    assert len(ds.requests) == sent


async def test_context_manager_verifies_on_a_clean_exit(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """async with ... verifies at the end of the block."""
    with pytest.raises(ka.AuditWaitTimeout):
        async with client.expectations("c1") as exp:
            exp.expect(timeout=1.0)


async def test_context_manager_drops_the_checks_when_the_block_fails(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """An exception in the block propagates and nothing is polled."""

    async def fails() -> None:
        async with client.expectations("c1") as exp:
            exp.expect(timeout=1.0)
            raise KeyError("boom")

    with pytest.raises(KeyError):
        await fails()
    assert ds.requests == []


@pytest.mark.parametrize(
    ("method", "kwargs", "error"),
    [
        ("expect", {"count": -1}, ValueError),
        ("expect", {"min_count": 3, "count": 2}, ValueError),
        ("expect", {"timeout": 0}, ValueError),
        ("expect", {"timeout": math.nan}, ValueError),
        ("expect", {"flush_interval": -1.0}, ValueError),
        ("expect", {"settle": "yes"}, TypeError),
        ("expect", {"event_types": "a.b.c"}, TypeError),
        ("expect", {"where": "not callable"}, TypeError),
        ("expect_none", {"during": -0.5}, ValueError),
        ("expect_none", {"event_outcome": "maybe"}, ValueError),
    ],
)
async def test_bad_arguments_fail_when_declared(
    ds: FakeDataStorage,
    client: AsyncAuditClient,
    method: str,
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    """Invalid checks raise at the declaring line, before any request."""
    exp = client.expectations("c1")
    with pytest.raises(error):
        getattr(exp, method)(**kwargs)
    assert exp.checks == ()
    assert ds.requests == []


@pytest.mark.parametrize("cid", ["", "  "])
async def test_a_correlation_id_is_required(client: AsyncAuditClient, cid: str) -> None:
    """A set without a correlation id would match other tests' events: refused."""
    with pytest.raises(ValueError, match="correlation_id"):
        client.expectations(cid)


async def test_a_check_is_plain_data(client: AsyncAuditClient) -> None:
    """A declared check holds no client and survives pickling."""
    check = client.expectations("c1").expect(event_types={"a.b.c": 2}, settle=True)
    copy = pickle.loads(pickle.dumps(check))
    assert copy == check
    assert copy.describe() == "at least 1 event(s); of each type: 'a.b.c' ×2, then no more (settle)"


async def test_permanent_errors_end_the_verification(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """A 404 is raised as NotFoundError at once, not retried until a deadline."""
    ds.failures = [404]
    exp = client.expectations("c1")
    exp.expect()
    with pytest.raises(ka.NotFoundError):
        await exp.verify()
    assert len(ds.requests) == 1


async def test_absence_is_not_confirmed_by_failed_polls(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """When every poll fails, expect_none ends as AuditWaitTimeout with the last error."""
    ds.failures = [503] * 10_000
    exp = client.expectations("c1")
    exp.expect_none(during=0.5)
    with pytest.raises(ka.AuditWaitTimeout, match="could not confirm the absence") as info:
        await exp.verify()
    assert isinstance(info.value.last_error, ka.ServerError)


async def test_transient_errors_are_retried_within_the_window(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """A 503 at the end of an absence window is retried; a later success confirms it."""
    start = anyio.current_time()

    def flaky(request: Any) -> Any:
        if anyio.current_time() < start + QUIET + 0.5:
            ds.failures = [503]
        return None

    ds.override = flaky
    exp = client.expectations("c1")
    exp.expect_none()
    await exp.verify()
    assert anyio.current_time() >= start + QUIET + 0.5


async def test_sets_on_different_ids_poll_together_on_a_shared_grid(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Two sets verified concurrently send their cold-schedule polls at the same moments."""
    times: dict[str, list[float]] = {"c1": [], "c2": []}
    start = anyio.current_time()
    ds.add(start + 1.0, event("c1"))
    ds.add(start + 1.0, event("c2"))

    async def verify(cid: str, delay: float) -> None:
        await anyio.sleep(delay)
        exp = client.expectations(cid, on_poll=lambda r: times[cid].append(r.at))
        exp.expect()
        await exp.verify()

    async with anyio.create_task_group() as tg:
        tg.start_soon(verify, "c1", 0.0)
        tg.start_soon(verify, "c2", 0.06)
    at = [r.url.params["correlation_id"] for r in ds.requests]
    assert at.count("c1") == len(times["c1"])
    assert at.count("c2") == len(times["c2"])
    moments_1 = {round(start + t, 6) for t in times["c1"][1:]}
    moments_2 = {round(start + 0.06 + t, 6) for t in times["c2"][1:]}
    assert moments_2 <= moments_1


async def test_a_write_seen_by_one_set_wakes_the_others(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """When one set's poll finds new rows, another set still awaiting events polls at once."""
    start = anyio.current_time()
    polled: list[float] = []

    async def early() -> None:
        ds.add(start + 0.05, event("c1"))
        exp = client.expectations("c1")
        exp.expect()
        await exp.verify()

    async def late() -> None:
        ds.add(start + 0.05, event("c2"))
        exp = client.expectations("c2", on_poll=lambda r: polled.append(anyio.current_time()))
        exp.expect(flush_interval=60.0)  # its own schedule would poll every 0.5 s
        await exp.verify()

    async with anyio.create_task_group() as tg:
        tg.start_soon(late)
        await anyio.sleep(0.01)
        tg.start_soon(early)
    assert polled[-1] - start <= STEP + 0.02


async def test_two_sets_on_one_id_share_each_query(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Concurrent sets on the same correlation id cost about the queries of one."""
    start = anyio.current_time()
    ds.add(start + 1.0, event("c1", "a.b.c"))

    async def one() -> None:
        exp = client.expectations("c1")
        exp.expect(event_type="a.b.c")
        await exp.verify()

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert len(ds.requests) <= math.ceil(1.0 / STEP) + 2


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"], indirect=True)
async def test_async_face_runs_under_both_backends(anyio_backend: str) -> None:
    """await verify() works under asyncio and trio."""
    ds = FakeDataStorage()
    ds.add(0.0, event("c1", "a.b.c"))
    async with AsyncAuditClient(**ds.client_kwargs()) as c:
        exp = c.expectations("c1")
        exp.expect(event_type="a.b.c", count=1)
        exp.expect_none(event_type="x.y.z", during=0.0)
        await exp.verify()


def test_blocking_face_verifies_and_raises() -> None:
    """AuditClient.expectations(...).verify() blocks; a failure raises the same exception."""
    ds = FakeDataStorage()
    ds.add(0.0, event("c1", "a.b.c"))
    with ka.AuditClient(**ds.client_kwargs()) as c:
        exp = c.expectations("c1")
        assert isinstance(exp, ka.ExpectationSet)
        exp.expect(event_type="a.b.c")
        exp.verify()
        exp.expect_none(event_type="a.b.c", during=0.0)
        with pytest.raises(ka.UnexpectedAuditEvents):
            exp.verify()


def test_blocking_face_context_manager() -> None:
    """with client.expectations(cid) as exp: verifies on exit."""
    ds = FakeDataStorage()
    ds.add(0.0, event("c1", "a.b.c"))
    with ka.AuditClient(**ds.client_kwargs()) as c, c.expectations("c1") as exp:
        exp.expect(event_type="a.b.c", count=1)
    assert exp.checks == ()


def test_blocking_face_starts_in_the_background() -> None:
    """The plugin's windowed mode arms checks and gets a future of the verdicts."""
    ds = FakeDataStorage()
    ds.add(0.0, event("c1", "a.b.c"))
    with ka.AuditClient(**ds.client_kwargs()) as c:
        exp = c.expectations("c1")
        exp.expect(event_type="never", timeout=0.3)
        exp.expect(event_type="a.b.c")
        future = exp._start()
        assert exp.checks == ()
        verification = future.result(timeout=30)
    assert verification is not None
    assert [f.expectation for f in verification.failures] == [
        "at least 1 event(s) with event_type='never'"
    ]


async def test_sets_follow_the_learned_cadence_of_a_steady_writer(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Consecutive sets against one ticker use the writer model the waits learn: after a few
    flushes an expect costs 2-3 polls and a few ms of lateness."""
    phase = 0.713
    late: list[float] = []
    polls: list[int] = []
    for i in range(12):
        now = anyio.current_time()
        visible = phase + 2.0 * (math.floor((now - phase) / 2.0) + 1) + 0.002
        ds.add(visible, event(f"s{i}"))
        records: list[ka.PollRecord] = []
        exp = client.expectations(f"s{i}", on_poll=records.append)
        exp.expect()
        await exp.verify()
        late.append(anyio.current_time() - visible)
        polls.append(len(records))
    assert max(late[4:]) <= 0.03
    assert max(polls[4:]) <= 3
    assert all(x <= STEP + 1e-9 for x in late)
