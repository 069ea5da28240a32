"""pytest plugin (entry point ``pytest11``): parallel-safe audit assertions out of the box.

Fixtures: ``correlation_id``, ``audit_client``, ``async_audit_client``, ``audit`` and
``audit_emulator``. Configuration: ``--data-storage-url`` / ini ``data_storage_url`` / env
``DATA_STORAGE_URL``; ``--audit-flush-interval`` / ini ``audit_flush_interval``;
``--audit-emulator`` serves an embedded emulator on a free loopback port, one per xdist worker
(workers are separate processes: a per-worker server needs no cross-process coordination and
cannot collide on a port, and correlation ids keep tests apart either way).

This is the only module of the package that imports pytest.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

import pytest

from . import _config, _tracebacks
from ._chain import ChainVerification
from ._client import AsyncAuditClient
from ._exceptions import AuditError, AuditWaitError, ConfigurationError
from ._polling import PollRecord
from ._sync import AuditClient
from ._wait import AbsenceOptions, WaitOptions, WaitResult
from .emitters import BufferedEmitter, SinceLastWriteEmitter
from .models import AuditEvent

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["AuditHelper", "EmulatorKit"]

_MAX_CID = 255
_REPORT_KEY = pytest.StashKey["AuditHelper"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubernaut-audit")
    group.addoption(
        "--data-storage-url",
        dest="data_storage_url",
        default=None,
        help=f"Data Storage address (default: ini data_storage_url, then ${_config.ENV_URL})",
    )
    group.addoption(
        "--audit-flush-interval",
        dest="audit_flush_interval",
        type=float,
        default=None,
        help="the audit writer's flush interval in seconds that waits assume (default 2.0)",
    )
    group.addoption(
        "--audit-emulator",
        dest="audit_emulator",
        action="store_true",
        default=False,
        help="run against an embedded Data Storage emulator on a free loopback port "
        "(one per xdist worker); needs kubernaut-audit[emulator]",
    )
    parser.addini("data_storage_url", "Data Storage address", default=None)
    parser.addini("audit_flush_interval", "audit writer flush interval (seconds)", default=None)
    parser.addini("audit_correlation_prefix", "prefix of generated correlation ids", default="test")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "audit(flush_interval=None, timeout=None): settings for the `audit` fixture's waits "
        "in this test",
    )
    try:
        _flush_interval(config)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("fulltrace", False):
        # --full-trace shows every frame of an audit failure, the portal's and tenacity's too.
        previous = _tracebacks.keep_plumbing(True)

        def restore() -> None:
            _tracebacks.keep_plumbing(previous)

        config.add_cleanup(restore)


def _flush_interval(config: pytest.Config) -> float | None:
    option = config.getoption("audit_flush_interval")
    if option is not None:
        return _config.flush_interval_from(option, name="--audit-flush-interval")
    ini = config.getini("audit_flush_interval")
    if ini:
        return _config.flush_interval_from(ini, name="ini audit_flush_interval")
    return None


def _worker_id(config: pytest.Config) -> str:
    return str(getattr(config, "workerinput", {}).get("workerid", "main"))


def _slug(name: str, limit: int = 40) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return slug[:limit].rstrip("-") or "test"


@pytest.fixture
def correlation_id(request: pytest.FixtureRequest) -> str:
    """A correlation id unique to this test and this xdist worker."""
    prefix = _slug(str(request.config.getini("audit_correlation_prefix")), 40)
    worker = _worker_id(request.config)
    cid = f"{prefix}-{worker}-{_slug(request.node.name)}-{uuid.uuid4().hex[:12]}"
    return cid[:_MAX_CID]


@pytest.fixture(scope="session")
def data_storage_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The Data Storage the session talks to (an embedded emulator with --audit-emulator)."""
    config = request.config
    if config.getoption("audit_emulator"):
        from .emulator import Emulator

        emulator = Emulator()
        with emulator.serve_in_thread(host="127.0.0.1", port=0) as served:
            yield served
        emulator.close()
        return
    url: str | None = (
        config.getoption("data_storage_url")
        or config.getini("data_storage_url")
        or _config.env(_config.ENV_URL)
    )
    if not url:
        pytest.fail(
            "no Data Storage address: pass --data-storage-url, set the ini option "
            f"data_storage_url or ${_config.ENV_URL}, or use --audit-emulator",
            pytrace=False,
        )
    yield str(url)


@pytest.fixture(scope="session")
def audit_client(request: pytest.FixtureRequest, data_storage_url: str) -> Iterator[AuditClient]:
    """A blocking client, one per worker, sharing its connection pool and learned cadence."""
    with AuditClient(
        base_url=data_storage_url, flush_interval=_flush_interval(request.config)
    ) as client:
        yield client


@pytest.fixture
async def async_audit_client(
    request: pytest.FixtureRequest, data_storage_url: str
) -> AsyncIterator[AsyncAuditClient]:
    """An async client for anyio tests (one per test: each test has its own event loop)."""
    async with AsyncAuditClient(
        base_url=data_storage_url, flush_interval=_flush_interval(request.config)
    ) as client:
        yield client


@dataclass
class AuditHelper:
    """The ``audit`` fixture: the test's client and correlation id bound together."""

    client: AuditClient
    correlation_id: str
    defaults: dict[str, Any] = field(default_factory=dict)
    polls: list[PollRecord] = field(default_factory=list)

    def _record(self, record: PollRecord) -> None:
        self.polls.append(record)

    def wait(self, **options: Unpack[WaitOptions]) -> WaitResult:
        """Wait for this test's events; see :func:`kubernaut_audit.wait_for_audit_events`."""
        __tracebackhide__ = True
        merged: dict[str, Any] = {**self.defaults, **options}
        merged.setdefault("on_poll", self._record)
        return self.client.wait_for_audit_events(self.correlation_id, **merged)

    def assert_none(self, **options: Unpack[AbsenceOptions]) -> None:
        """Fail if a matching event appears; see :func:`kubernaut_audit.assert_no_audit_events`."""
        __tracebackhide__ = True
        merged: dict[str, Any] = {**self.defaults, **options}
        merged.pop("timeout", None)
        merged.setdefault("on_poll", self._record)
        self.client.assert_no_audit_events(self.correlation_id, **merged)

    def events(self) -> list[AuditEvent]:
        """Every event stored for this test's correlation id so far, newest first."""
        return self.client.list_audit_events(correlation_id=self.correlation_id)

    def verify_chain(
        self,
        *,
        key: bytes | str | None = None,
        algorithm: Literal["auto", "sha256-unkeyed", "hmac-sha256"] = "auto",
    ) -> ChainVerification:
        """Verify here that this test's stored events form an intact hash chain:
        ``assert audit.verify_chain().intact``. Keyed (HMAC) rows need ``key=``; see
        :func:`kubernaut_audit.verify_event_chain`.

        .. versionadded:: 0.2.0
        """
        return self.client.verify_audit_chain_offline(
            self.correlation_id, key=key, algorithm=algorithm
        )


@pytest.fixture
def audit(
    request: pytest.FixtureRequest, audit_client: AuditClient, correlation_id: str
) -> AuditHelper:
    """A helper bound to this test's correlation id: ``audit.wait(...)``,
    ``audit.assert_none(...)``, ``audit.events()``."""
    defaults: dict[str, Any] = {}
    marker = request.node.get_closest_marker("audit")
    if marker is not None:
        unknown = set(marker.kwargs) - {"flush_interval", "timeout"}
        if unknown or marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.audit takes flush_interval= and timeout= only, got {marker}"
            )
        defaults.update(marker.kwargs)
    helper = AuditHelper(audit_client, correlation_id, defaults)
    request.node.stash[_REPORT_KEY] = helper
    return helper


@dataclass
class EmulatorKit:
    """The ``audit_emulator`` fixture: a private Data Storage, a client on it, and emitters."""

    emulator: Emulator
    client: AuditClient
    url: str
    _stack: ExitStack

    @overload
    def emitter(
        self, *, kind: Literal["ticker"] = ..., flush_interval: float = ..., **options: Any
    ) -> BufferedEmitter: ...
    @overload
    def emitter(
        self, *, kind: Literal["since-last-write"], flush_interval: float = ..., **options: Any
    ) -> SinceLastWriteEmitter: ...
    def emitter(
        self,
        *,
        kind: Literal["ticker", "since-last-write"] = "ticker",
        flush_interval: float = 2.0,
        **options: Any,
    ) -> BufferedEmitter | SinceLastWriteEmitter:
        """A started buffered writer (as a service would have) posting to this emulator; it is
        drained and closed when the test ends.

        Args:
            kind: ``"ticker"`` (the Go services': :class:`BufferedEmitter`) or
                ``"since-last-write"`` (the Python service's: :class:`SinceLastWriteEmitter`).
            flush_interval: the writer's interval (seconds).
            options: passed on to the emitter's class.

        .. versionchanged:: 0.2.0
           ``kind=``.
        """
        emitter: BufferedEmitter | SinceLastWriteEmitter
        if kind == "ticker":
            emitter = BufferedEmitter(self.url, flush_interval=flush_interval, **options)
        elif kind == "since-last-write":
            emitter = SinceLastWriteEmitter(self.url, flush_interval=flush_interval, **options)
        else:
            raise ValueError(f"kind must be 'ticker' or 'since-last-write', got {kind!r}")
        self._stack.enter_context(emitter)
        return emitter


@pytest.fixture
def audit_emulator() -> Iterator[EmulatorKit]:
    """A private emulator served on a free loopback port, with a blocking client on it.

    Point the code under test at ``audit_emulator.url``, or emit through
    ``audit_emulator.emitter(flush_interval=...)``.
    """
    from .emulator import Emulator

    with ExitStack() as stack:
        emulator = Emulator()
        stack.callback(emulator.close)
        url = stack.enter_context(emulator.serve_in_thread(host="127.0.0.1", port=0))
        client = stack.enter_context(AuditClient(base_url=url))
        yield EmulatorKit(emulator=emulator, client=client, url=url, _stack=stack)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    helper = item.stash.get(_REPORT_KEY, None)
    if helper is not None and report.failed and call.when == "call":
        report.sections.append(("kubernaut-audit", _failure_section(helper, call)))
    return report


def _failure_section(helper: AuditHelper, call: pytest.CallInfo[None]) -> str:
    lines = [f"correlation_id: {helper.correlation_id}"]
    exc = call.excinfo.value if call.excinfo else None
    events: list[AuditEvent] | None = exc.events if isinstance(exc, AuditWaitError) else None
    if events is None:
        try:
            events = helper.events()
        except AuditError as err:
            lines.append(f"events: could not be listed ({err})")
    if events is not None:
        lines.append(f"events seen ({len(events)}):")
        lines.extend(
            f"  {e.event_timestamp.isoformat()}  {e.event_type}  {e.event_outcome}  {e.event_id}"
            for e in events
        )
    if helper.polls:
        lines.append(f"poll timeline ({len(helper.polls)} polls):")
        lines.extend(
            f"  #{p.number:<3} +{p.at:7.3f}s  {p.events} events ({p.new} new, {p.matched} matching)"
            + (f"  error: {p.error}" if p.error else "")
            for p in helper.polls
        )
    return "\n".join(lines)
