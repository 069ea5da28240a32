"""Shared fixtures: both anyio backends, a hermetic environment, event factories."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from trio.testing import MockClock

EventFactory = Callable[..., dict[str, Any]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a pytest-xdist worker, the modules holding ``slow`` tests come first.

    ``make test`` distributes whole modules (``--dist loadfile --no-loadscope-reorder``, in
    collection order): a module of minutes handed out last would end the run alone.
    """
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """Run every async test under asyncio and under trio.

    Trio runs on a fresh ``MockClock(autojump_threshold=0)``: sleeps take no real time, so tests
    of backoff, ``Retry-After`` and deadlines assert on ``anyio.current_time()``. Timing tests
    select trio alone with ``@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)``.
    """
    if request.param == "trio":
        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    return request.param


@pytest.fixture
def ctrl_c_interrupts() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process and in the processes it starts, as at a
    terminal.

    A shell without job control starts a background command (``make test &``, a CI step, an
    agent's job) with SIGINT ignored, and every process below inherits that: Ctrl-C tests would
    then wait for an interrupt that never comes. A Python handler here is reset to the default
    in a child at exec, so a child Python installs its own KeyboardInterrupt handler.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's shell must not point a unit test at a real server or token.
    for name in (
        "DATA_STORAGE_URL",
        "DATA_STORAGE_TOKEN",
        "DATA_STORAGE_TOKEN_FILE",
        "DATA_STORAGE_USER",
        "KUBERNAUT_AUDIT_FLUSH_INTERVAL",
    ):
        monkeypatch.delenv(name, raising=False)


def _request_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "1.0",
        "event_type": "gateway.signal.received",
        "event_timestamp": datetime.now(UTC).isoformat(),
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": "rr-test-0001",
        "event_data": {"event_type": "gateway.signal.received", "signal_name": "HighCPU"},
    }
    event.update(overrides)
    return event


def _stored_event(**overrides: Any) -> dict[str, Any]:
    event = _request_event(
        event_id=str(uuid.uuid4()),
        event_date="2025-01-02",
        event_timestamp="2025-01-02T03:04:05.123456Z",
        severity="info",
        retention_days=2555,
        is_sensitive=False,
        event_hash="abc",
        previous_event_hash="",
        legal_hold=False,
    )
    event.update(overrides)
    return event


@pytest.fixture
def request_event() -> EventFactory:
    """A factory of valid write payloads (JSON dicts); keyword arguments override fields."""
    return _request_event


@pytest.fixture
def stored_event() -> EventFactory:
    """A factory of events as the server returns them (JSON dicts)."""
    return _stored_event
