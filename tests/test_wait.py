"""wait_for_audit_events / assert_no_audit_events against a scripted fake, on a fake clock.

Time is trio's MockClock (autojump): a 15-second wait takes no real time, and every assertion
about when polls happen is exact.
"""

from __future__ import annotations

import itertools
import math
import pickle
import random
from typing import Any

import anyio
import httpx
import pytest
from fakes import FakeDataStorage, event
from trio.testing import MockClock

import kubernaut_audit as ka
from kubernaut_audit import AsyncAuditClient
from kubernaut_audit._planner import WRITE_ALLOWANCE
from kubernaut_audit._polling import WaitState
from kubernaut_audit._query import QueryFilters
from kubernaut_audit._retry import RetryPolicy
from kubernaut_audit._schedule import ColdSchedule
from kubernaut_audit._wait import wait_async
from kubernaut_audit._writers import WriterKind
from kubernaut_audit.models import AuditEvent, AuditEventPage

pytestmark = pytest.mark.anyio

#: The cold schedule's poll step for the default 2 s flush interval.
STEP = ColdSchedule(2.0, WRITE_ALLOWANCE).step


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


async def test_returns_at_once_when_events_are_already_visible(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """One poll, no sleep, when the events are stored before the wait starts."""
    ds.add(0.0, event("c1"))
    start = anyio.current_time()
    got = await client.wait_for_audit_events("c1")
    assert len(got) == 1
    assert got.stats.polls == 1
    assert anyio.current_time() == start


async def test_notices_a_flushed_event_within_one_poll_step(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """An event appearing mid-interval is noticed within the 150 ms due-phase step."""
    start = anyio.current_time()
    ds.add(start + 1.234, event("c1"))
    got = await client.wait_for_audit_events("c1")
    lateness = anyio.current_time() - (start + 1.234)
    assert 0 <= lateness <= STEP + 1e-9
    assert got.stats.polls == math.ceil(1.234 / STEP) + 1
    assert got.stats.first_seen == pytest.approx(anyio.current_time() - start)


async def test_filters_apply_on_the_client_side(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Only events matching type, category, outcome and severity are returned."""
    ds.add(
        0.0,
        event("c1", "gateway.signal.received"),
        event("c1", "gateway.crd.created", outcome="failure"),
        event("c1", "gateway.crd.created", severity="critical"),
    )
    got = await client.wait_for_audit_events(
        "c1", event_type="gateway.crd.created", event_outcome="success", severity="critical"
    )
    assert [e.event_type for e in got] == ["gateway.crd.created"]
    assert got[0].severity == "critical"
    assert all(r.url.params.keys() == {"correlation_id", "limit"} for r in ds.requests)


async def test_min_count_waits_for_enough_events(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """min_count=3 ignores the first two arrivals and returns at the third."""
    start = anyio.current_time()
    ds.add(start + 0.3, event("c1"), event("c1"))
    ds.add(start + 2.3, event("c1"))
    got = await client.wait_for_audit_events("c1", min_count=3)
    assert len(got) == 3
    assert anyio.current_time() >= start + 2.3


async def test_event_types_list_needs_every_type(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """A list of types is met only when each type arrived at least once."""
    start = anyio.current_time()
    ds.add(start, event("c1", "a.b.c"))
    ds.add(start + 1.0, event("c1", "a.b.d"))
    got = await client.wait_for_audit_events("c1", event_types=["a.b.c", "a.b.d"])
    assert sorted(e.event_type for e in got) == ["a.b.c", "a.b.d"]
    assert anyio.current_time() >= start + 1.0


async def test_event_types_mapping_counts_per_type(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """A mapping type -> n needs n events of that type."""
    start = anyio.current_time()
    ds.add(start, event("c1", "a.b.c"), event("c1", "a.b.d"))
    ds.add(start + 2.0, event("c1", "a.b.c"))
    got = await client.wait_for_audit_events("c1", event_types={"a.b.c": 2, "a.b.d": 1})
    assert len(got) == 3


async def test_where_predicate_selects_events(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Only events accepted by `where` count towards the expectation."""
    ds.add(0.0, event("c1", namespace="a"), event("c1", namespace="b"))
    got = await client.wait_for_audit_events("c1", where=lambda e: e.namespace == "b")
    assert [e.namespace for e in got] == ["b"]


async def test_exceeding_count_fails_at_once(ds: FakeDataStorage, client: AsyncAuditClient) -> None:
    """count=1 with two events visible raises UnexpectedAuditEvents on the first poll."""
    ds.add(0.0, event("c1"), event("c1"))
    with pytest.raises(ka.UnexpectedAuditEvents, match="exactly 1") as info:
        await client.wait_for_audit_events("c1", count=1)
    assert isinstance(info.value, AssertionError)
    assert len(info.value.matched) == 2


async def test_settle_returns_the_complete_set_after_a_quiet_interval(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """With settle, a second batch within the watch window is included."""
    start = anyio.current_time()
    ds.add(start + 0.1, event("c1"))
    ds.add(start + 1.9, event("c1"))
    got = await client.wait_for_audit_events("c1", settle=True)
    assert len(got) == 2
    # Quiet for a whole interval plus the write allowance after the last change.
    assert anyio.current_time() >= start + 1.9 + 2.0 + 0.25 - 0.2


async def test_settle_fails_when_more_than_count_arrive(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """settle with count=1 fails when a second event follows within the window."""
    start = anyio.current_time()
    ds.add(start + 0.1, event("c1"))
    ds.add(start + 1.5, event("c1"))
    with pytest.raises(ka.UnexpectedAuditEvents, match="exactly 1"):
        await client.wait_for_audit_events("c1", count=1, settle=True)


async def test_settle_fails_on_an_unlisted_type(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """settle with event_types fails when another type arrives."""
    ds.add(0.0, event("c1", "a.b.c"), event("c1", "x.y.z"))
    with pytest.raises(ka.UnexpectedAuditEvents, match=r"x\.y\.z"):
        await client.wait_for_audit_events("c1", event_types=["a.b.c"], settle=True)


async def test_timeout_is_an_assertion_error_that_explains_itself(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """The timeout says what was expected, what arrived (by type and outcome), polls, time."""
    ds.add(0.0, event("c1", "gateway.crd.created", outcome="failure"))
    start = anyio.current_time()
    with pytest.raises(ka.AuditWaitTimeout) as info:
        await client.wait_for_audit_events("c1", event_type="gateway.signal.received", timeout=4)
    exc = info.value
    assert isinstance(exc, AssertionError)
    assert anyio.current_time() - start <= 4.0
    text = str(exc)
    assert "correlation_id='c1'" in text
    assert "at least 1 event(s) with event_type='gateway.signal.received'" in text
    assert "gateway.crd.created ×1" in text
    assert "failure ×1" in text
    assert f"({len(exc.polls)} polls" in text
    assert "none matched" in text
    assert exc.correlation_id == "c1"
    assert [e.event_type for e in exc.events] == ["gateway.crd.created"]
    assert exc.matched == []
    assert exc.elapsed == pytest.approx(anyio.current_time() - start)


async def test_timeout_pickles_with_its_diagnostics(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """An xdist worker can ship the timeout to the controller intact."""
    with pytest.raises(ka.AuditWaitTimeout) as info:
        await client.wait_for_audit_events("c1", timeout=1)
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)
    assert copy.polls == info.value.polls


async def test_default_timeout_derives_from_the_flush_interval(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """With flush_interval=2 the wait gives up after 3*2+5 = 11 s, not before."""
    start = anyio.current_time()
    with pytest.raises(ka.AuditWaitTimeout):
        await client.wait_for_audit_events("c1")
    elapsed = anyio.current_time() - start
    assert ka.default_timeout(2.0) == 11.0
    assert 11.0 - 0.1 <= elapsed <= 11.0


async def test_permanent_errors_end_the_wait_at_once(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """A 403 raises PermissionDeniedError after exactly one request."""
    ds.failures = [403]
    with pytest.raises(ka.PermissionDeniedError):
        await client.wait_for_audit_events("c1")
    assert len(ds.requests) == 1


async def test_transient_errors_do_not_end_the_wait(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """503s are retried inside the wait, which then succeeds."""
    ds.failures = [503] * 7
    ds.add(0.0, event("c1"))
    got = await client.wait_for_audit_events("c1")
    assert len(got) == 1
    assert any(p.error and "ServerError" in p.error for p in got.stats.history)


async def test_repeated_503s_fail_at_the_deadline_with_the_last_error(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Against a failing server the wait ends by its deadline and names the last error."""
    ds.failures = [503] * 10_000
    start = anyio.current_time()
    with pytest.raises(ka.AuditWaitTimeout) as info:
        await client.wait_for_audit_events("c1", timeout=5)
    assert anyio.current_time() - start <= 5.0
    assert isinstance(info.value.last_error, ka.ServerError)
    assert "last error:  ServerError" in str(info.value)
    assert "is Data Storage" in str(info.value)


async def test_no_request_starts_past_the_deadline(ds: FakeDataStorage) -> None:
    """Every request, retries included, is sent before the deadline."""
    sent: list[float] = []

    def stamp(request: httpx.Request) -> httpx.Response | None:
        sent.append(anyio.current_time())
        return None

    ds.override = stamp
    ds.failures = [503] * 10_000
    async with AsyncAuditClient(**ds.client_kwargs()) as c:
        start = anyio.current_time()
        with pytest.raises(ka.AuditWaitTimeout):
            await c.wait_for_audit_events("c1", timeout=3)
    assert max(sent) < start + 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"correlation_id": ""}, ValueError),
        ({"correlation_id": "  "}, ValueError),
        ({"correlation_id": "c", "event_type": ""}, ValueError),
        ({"correlation_id": "c", "min_count": -1}, ValueError),
        ({"correlation_id": "c", "count": 1, "min_count": 2}, ValueError),
        ({"correlation_id": "c", "event_types": "a.b"}, TypeError),
        ({"correlation_id": "c", "event_types": {"a.b": 0}}, ValueError),
        ({"correlation_id": "c", "event_type": "x", "event_types": ["y"]}, ValueError),
        ({"correlation_id": "c", "timeout": 0}, ValueError),
        ({"correlation_id": "c", "flush_interval": -2}, ValueError),
        ({"correlation_id": "c", "writer": "grid"}, ka.ConfigurationError),
        ({"correlation_id": "c", "event_outcome": "maybe"}, ValueError),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    ds: FakeDataStorage, client: AsyncAuditClient, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Invalid expectations raise at once and send nothing."""
    cid = kwargs.pop("correlation_id")
    with pytest.raises(error):
        await client.wait_for_audit_events(cid, **kwargs)
    assert ds.requests == []


async def test_concurrent_waits_on_one_correlation_id_share_queries(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Twenty expectations on one correlation id cost about as much as one."""
    start = anyio.current_time()
    ds.add(start + 1.5, event("c1", "a.b.c"), event("c1", "a.b.d"))
    results: list[int] = []

    async def one(i: int) -> None:
        got = await client.wait_for_audit_events("c1", event_type="a.b.c" if i % 2 else "a.b.d")
        results.append(len(got))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)
    assert results == [1] * 20
    single = math.ceil(1.5 / STEP) + 1
    assert len(ds.requests) <= single + 2


async def test_learns_the_flush_grid_of_a_steady_writer(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Consecutive waits against one ticker settle at 2-3 polls and a few ms of lateness."""
    phase = 0.713
    late: list[float] = []
    polls: list[int] = []
    for i in range(12):
        now = anyio.current_time()
        visible = phase + 2.0 * (math.floor((now - phase) / 2.0) + 1) + 0.002
        ds.add(visible, event(f"w{i}"))
        got = await client.wait_for_audit_events(f"w{i}")
        late.append(anyio.current_time() - visible)
        polls.append(got.stats.polls)
    assert max(late[4:]) <= 0.03
    assert max(polls[4:]) <= 3
    assert all(x <= STEP + 1e-9 for x in late)


async def test_never_misses_events_from_several_writers(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Writers with other intervals and phases never make a wait miss or exceed the cold step."""
    rng = random.Random(3)
    for i in range(30):
        now = anyio.current_time()
        interval = rng.choice([0.5, 1.0, 2.0])
        phase = rng.uniform(0, interval)
        visible = phase + interval * (math.floor((now - phase) / interval) + 1) + 0.002
        ds.add(visible, event(f"m{i}"))
        await client.wait_for_audit_events(f"m{i}")
        assert anyio.current_time() - visible <= STEP + 1e-9


async def test_a_changed_cadence_costs_at_most_two_late_waits(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """When the writer's phase moves, up to two waits may be late (never by more than an
    interval); the tracker then drops the old phase and later waits are within the cold step."""
    late: list[float] = []
    for phase in (0.4, 1.3):
        for i in range(8):
            now = anyio.current_time()
            visible = phase + 2.0 * (math.floor((now - phase) / 2.0) + 1) + 0.002
            ds.add(visible, event(f"p{phase}-{i}"))
            await client.wait_for_audit_events(f"p{phase}-{i}")
            late.append(anyio.current_time() - visible)
    over = [x for x in late[8:] if x > STEP + 1e-9]
    assert len(over) <= 2
    assert max(late) <= 2.0 + STEP
    assert max(late[11:]) <= STEP + 1e-9


async def test_on_poll_hook_sees_every_poll(ds: FakeDataStorage, client: AsyncAuditClient) -> None:
    """The hook receives one PollRecord per poll, numbered in order."""
    start = anyio.current_time()
    ds.add(start + 0.5, event("c1"))
    seen: list[ka.PollRecord] = []
    got = await client.wait_for_audit_events("c1", on_poll=seen.append)
    assert [p.number for p in seen] == list(range(1, got.stats.polls + 1))
    assert seen[-1].matched == 1
    assert seen[0].at == 0.0


async def test_poll_records_say_why_each_poll_was_sent(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """Each PollRecord names its kind: the first poll, then the cold schedule's due polls."""
    start = anyio.current_time()
    ds.add(start + 0.5, event("c1"))
    seen: list[ka.PollRecord] = []
    await client.wait_for_audit_events("c1", on_poll=seen.append)
    assert [p.kind for p in seen] == ["first"] + ["due"] * (len(seen) - 1)


async def test_absence_poll_records_are_watch_polls(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """An absence check's polls after the first are 'watch' polls."""
    seen: list[ka.PollRecord] = []
    await client.assert_no_audit_events("c1", on_poll=seen.append)
    assert [p.kind for p in seen] == ["first"] + ["watch"] * (len(seen) - 1)


async def test_assert_no_audit_events_watches_a_whole_interval(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """The absence check lasts the flush interval plus the write allowance, then passes."""
    ds.add(0.0, event("c1", "other.type"))
    start = anyio.current_time()
    await client.assert_no_audit_events("c1", event_type="wanted.type")
    assert anyio.current_time() - start >= 2.0 + 0.25


async def test_assert_no_audit_events_fails_when_one_arrives_late(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """An event flushed 2 s after the check began still fails it."""
    ds.add(anyio.current_time() + 2.1, event("c1"))
    with pytest.raises(ka.UnexpectedAuditEvents, match="none were expected"):
        await client.assert_no_audit_events("c1")


async def test_module_function_accepts_the_async_client(
    ds: FakeDataStorage, client: AsyncAuditClient
) -> None:
    """kubernaut_audit.wait_for_audit_events(async_client, ...) is awaitable."""
    ds.add(0.0, event("c1"))
    got = await ka.wait_for_audit_events(client, "c1")
    assert len(got) == 1
    await ka.assert_no_audit_events(client, "c2", during=0.5)


def test_module_function_blocks_with_the_sync_client() -> None:
    """With an AuditClient the same function blocks and returns the events."""
    ds = FakeDataStorage()
    ds.add(0.0, event("c1"))
    with ka.AuditClient(**ds.client_kwargs()) as c:
        got = ka.wait_for_audit_events(c, "c1")
        assert len(got) == 1
        assert c.wait_for_audit_events("c1", count=1)[0].correlation_id == "c1"
        ka.assert_no_audit_events(c, "c2", during=0.0)


def test_module_function_rejects_other_clients() -> None:
    """Passing something that is not a client is a TypeError."""
    with pytest.raises(TypeError):
        ka.wait_for_audit_events(object(), "c1")  # type: ignore[call-overload]


async def test_a_slow_server_is_not_polled_faster_than_it_answers() -> None:
    """When each query takes 0.5 s, the next one waits at least that long after the answer."""
    sent: list[float] = []
    start = anyio.current_time()

    async def slow(request: httpx.Request) -> httpx.Response:
        sent.append(anyio.current_time())
        await anyio.sleep(0.5)
        data = [event("c1")] if anyio.current_time() >= start + 3.0 else []
        return httpx.Response(200, json={"data": data})

    async with AsyncAuditClient(
        base_url="http://ds.test", transport=httpx.MockTransport(slow)
    ) as c:
        got = await c.wait_for_audit_events("c1")
    assert len(got) == 1
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 1.0 - 1e-9


class _PagesInMemory:
    """A WaitClient that is no client at all: pages from a list, no HTTP."""

    base_url = "memory://"
    flush_interval = 2.0
    writer: WriterKind = "auto"

    def __init__(self, visible_at: float, stored: dict[str, Any]) -> None:
        self._wait_state = WaitState()
        self.visible_at = visible_at
        self.stored = AuditEvent.model_validate(stored)
        self.fetches = 0

    async def _fetch_page(
        self,
        filters: QueryFilters,
        limit: int,
        offset: int,
        *,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> AuditEventPage:
        self.fetches += 1
        visible = anyio.current_time() >= self.visible_at
        rows = [self.stored] if visible and filters.correlation_id == "c1" else []
        return AuditEventPage(
            events=rows, limit=limit, offset=offset, total=len(rows), has_more=False
        )


async def test_wait_runs_on_any_wait_client() -> None:
    """The waiting code needs only the WaitClient protocol, not a client class."""
    start = anyio.current_time()
    source = _PagesInMemory(start + 0.5, event("c1"))
    got = await wait_async(source, "c1")
    assert [e.correlation_id for e in got] == ["c1"]
    assert got.stats.polls == source.fetches > 1
