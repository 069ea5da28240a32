"""pytest plugin (entry point ``pytest11``): parallel-safe audit assertions out of the box.

Fixtures: ``correlation_id``, ``audit_client``, ``async_audit_client``, ``audit`` and
``audit_emulator``. Configuration: ``--data-storage-url`` / ini ``data_storage_url`` / env
``DATA_STORAGE_URL``; ``--audit-flush-interval`` / ini ``audit_flush_interval``;
``--audit-writer`` / ini ``audit_writer`` (``ticker``, ``since-last-write`` or ``auto``);
``--audit-emulator`` serves an embedded emulator on a free loopback port, one per xdist worker
(workers are separate processes: a per-worker server needs no cross-process coordination and
cannot collide on a port, and correlation ids keep tests apart either way);
``--audit-emulator-spec`` / ini ``audit_emulator_spec`` gives the embedded emulators the Data
Storage OpenAPI spec whose ``event_data`` union they hold writes to.

Declared checks (``audit.expect(...)``, ``audit.expect_none(...)``) are verified together after
the test body (a ``pytest_runtest_call`` wrapper), or, with ``--audit-window=K`` / ini
``audit_window``, while later tests run (``_plugin_window``). A failed check is a FAIL of its test
with the wait diagnostic; the hook ``pytest_audit_failure(item, failures)`` hears of it first.

This module and ``_plugin_window`` are the only modules of the package that import pytest.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

import pytest

from . import _config, _tracebacks
from ._chain import ChainVerification
from ._checkpoll import Verification
from ._checks import AuditCheck, ExpectNoneOptions, ExpectOptions
from ._client import AsyncAuditClient
from ._exceptions import AuditError, AuditWaitError, ConfigurationError
from ._expectations import ExpectationSet, combined_failure
from ._plugin_window import SECTION, CrashGuard, Window, XdistWorker, blockers
from ._polling import PollRecord
from ._sync import AuditClient
from ._wait import AbsenceOptions, WaitOptions, WaitResult
from ._writers import WriterKind, check_writer
from .emitters import BufferedEmitter, SinceLastWriteEmitter
from .models import AuditEvent

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["AuditHelper", "EmulatorKit"]

_MAX_CID = 255
_REPORT_KEY = pytest.StashKey["AuditHelper"]()
_PENDING_KEY = pytest.StashKey["Future[Verification | None]"]()
_WINDOW_KEY = pytest.StashKey["Window | None"]()
_BLOCKED_KEY = pytest.StashKey[list[str]]()
_FAILURES_KEY = pytest.StashKey[list[BaseException]]()
_SPEC_KEY = pytest.StashKey["Mapping[str, Any] | None"]()


class _Hooks:
    @pytest.hookspec
    def pytest_audit_failure(self, item: pytest.Item, failures: Sequence[BaseException]) -> None:
        """A test's declared audit checks failed (called once per test, before it is reported).

        In windowed mode a verdict is reported up to K tests late; this hook hears of it as soon
        as the run notices, for collecting logs while they are fresh.

        Args:
            item: the test.
            failures: one :class:`AuditWaitError` per failed check (``AuditWaitTimeout``,
                ``UnexpectedAuditEvents``), in declaration order, or the error that stopped the
                verification (a 401, say).

        .. versionadded:: 0.2.0
        """


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_Hooks)


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
        "--audit-writer",
        dest="audit_writer",
        default=None,
        help="how the audit writer writes, as waits assume: ticker, since-last-write or auto "
        "(default: ini audit_writer, then $KUBERNAUT_AUDIT_WRITER, then auto)",
    )
    group.addoption(
        "--audit-emulator",
        dest="audit_emulator",
        action="store_true",
        default=False,
        help="run against an embedded Data Storage emulator on a free loopback port "
        "(one per xdist worker); needs kubernaut-audit[emulator]",
    )
    group.addoption(
        "--audit-emulator-spec",
        dest="audit_emulator_spec",
        default=None,
        metavar="PATH",
        help="the Data Storage OpenAPI spec (JSON or YAML) whose event_data union the embedded "
        "emulators hold writes to, as the service does (default: ini audit_emulator_spec)",
    )
    group.addoption(
        "--audit-window",
        dest="audit_window",
        type=int,
        default=None,
        metavar="K",
        help="report tests up to K tests late so that the declared audit checks of up to K "
        "tests resolve together (windowed verdicts; default 0: verify after each test body)",
    )
    parser.addini("data_storage_url", "Data Storage address", default=None)
    parser.addini("audit_flush_interval", "audit writer flush interval (seconds)", default=None)
    parser.addini(
        "audit_writer", "audit writer kind: ticker, since-last-write or auto", default=None
    )
    parser.addini(
        "audit_emulator_spec",
        "Data Storage OpenAPI spec for the embedded emulators (relative to the ini file)",
        default=None,
    )
    parser.addini("audit_correlation_prefix", "prefix of generated correlation ids", default="test")
    parser.addini("audit_window", "windowed verdicts: tests with pending checks", default="0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "audit(flush_interval=None, timeout=None): settings for the `audit` fixture's waits "
        "and checks in this test",
    )
    try:
        _flush_interval(config)
        _writer(config)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SPEC_KEY] = _emulator_spec(config)
    if config.getoption("fulltrace", False):
        # --full-trace shows every frame of an audit failure, the portal's and tenacity's too.
        previous = _tracebacks.keep_plumbing(True)

        def restore() -> None:
            _tracebacks.keep_plumbing(previous)

        config.add_cleanup(restore)


def _emulator_spec(config: pytest.Config) -> Mapping[str, Any] | None:
    """The spec the embedded emulators validate payloads against, read once at configure time
    (a path that is wrong fails the run before any test, naming where it came from)."""
    option = config.getoption("audit_emulator_spec")
    ini = config.getini("audit_emulator_spec")
    if option:
        path, name = config.invocation_params.dir / option, "--audit-emulator-spec"
    elif ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        path, name = base / str(ini), "ini audit_emulator_spec"
    else:
        return None
    try:
        from .emulator._events import Payloads
        from .emulator._schema import load_document

        document = load_document(Path(path))
        Payloads(document)  # holds the event_data union, or says what is wrong
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in {"starlette", "uvicorn"}:
            raise pytest.UsageError(
                f"{name} needs the emulator extra: pip install 'kubernaut-audit[emulator]'"
            ) from None
        raise pytest.UsageError(f"{name}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise pytest.UsageError(f"{name}: {exc}") from None
    return document


def _window_size(config: pytest.Config) -> int:
    raw = config.getoption("audit_window")
    if raw is None:
        raw = config.getini("audit_window") or 0
    try:
        size = int(raw)
    except ValueError:
        raise pytest.UsageError(f"audit_window must be an integer >= 0, got {raw!r}") from None
    if size < 0:
        raise pytest.UsageError(f"--audit-window must be >= 0, got {size}")
    return size


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # After every plugin's pytest_configure (pytest-xdist registers its parts there).
    config = session.config
    config.stash[_WINDOW_KEY] = None
    config.stash[_BLOCKED_KEY] = []
    size = _window_size(config)
    if size <= 0:
        return
    reasons = blockers(config)
    if reasons:
        config.stash[_BLOCKED_KEY] = reasons
        return
    if config.pluginmanager.hasplugin("dsession"):
        # The controller runs no test: it only reports what crashed workers held.
        config.pluginmanager.register(CrashGuard(), "kubernaut-audit-crash-guard")
        return
    window = Window(
        size=size,
        resolve=_resolve_pending,
        notify=_notify,
        pending_of=lambda item: item.stash.get(_PENDING_KEY, None),
        xdist=XdistWorker.of(config),
    )
    config.stash[_WINDOW_KEY] = window
    config.pluginmanager.register(window, "kubernaut-audit-window")


def pytest_report_header(config: pytest.Config) -> str | None:
    reasons = config.stash.get(_BLOCKED_KEY, [])
    if not reasons:
        return None
    return (
        f"kubernaut-audit: --audit-window ignored ({'; '.join(reasons)}): declared audit checks "
        "are verified after each test body"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    # A conftest loaded during collection may bring a plugin that owns the protocol.
    config = session.config
    window = config.stash.get(_WINDOW_KEY, None)
    if window is None:
        return
    reasons = blockers(config)
    if not reasons:
        return
    config.pluginmanager.unregister(window)
    config.stash[_WINDOW_KEY] = None
    config.stash[_BLOCKED_KEY] = reasons
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(str(pytest_report_header(config)))


def _flush_interval(config: pytest.Config) -> float | None:
    option = config.getoption("audit_flush_interval")
    if option is not None:
        return _config.flush_interval_from(option, name="--audit-flush-interval")
    ini = config.getini("audit_flush_interval")
    if ini:
        return _config.flush_interval_from(ini, name="ini audit_flush_interval")
    return None


def _writer(config: pytest.Config) -> WriterKind | None:
    option = config.getoption("audit_writer")
    if option is not None:
        return check_writer(option, name="--audit-writer")
    ini = config.getini("audit_writer")
    if ini:
        return check_writer(ini, name="ini audit_writer")
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

        emulator = Emulator(spec=config.stash.get(_SPEC_KEY, None))
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
        base_url=data_storage_url,
        flush_interval=_flush_interval(request.config),
        writer=_writer(request.config),
    ) as client:
        yield client


@pytest.fixture
async def async_audit_client(
    request: pytest.FixtureRequest, data_storage_url: str
) -> AsyncIterator[AsyncAuditClient]:
    """An async client for anyio tests (one per test: each test has its own event loop)."""
    async with AsyncAuditClient(
        base_url=data_storage_url,
        flush_interval=_flush_interval(request.config),
        writer=_writer(request.config),
    ) as client:
        yield client


@dataclass
class AuditHelper:
    """The ``audit`` fixture: the test's client and correlation id bound together."""

    client: AuditClient
    correlation_id: str
    defaults: dict[str, Any] = field(default_factory=dict)
    polls: list[PollRecord] = field(default_factory=list, repr=False)
    _expectations: ExpectationSet | None = field(default=None, repr=False)
    _anchors: dict[int, tuple[FrameType, int, int]] = field(default_factory=dict, repr=False)

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

    def _set(self) -> ExpectationSet:
        if self._expectations is None:
            self._expectations = self.client.expectations(self.correlation_id, on_poll=self._record)
        return self._expectations

    def expect(self, **options: Unpack[ExpectOptions]) -> AuditCheck:
        """Declare that matching events will arrive; the check is verified after the test body
        (or, with ``--audit-window``, while later tests run). Returns at once.

        Takes the arguments of :func:`kubernaut_audit.wait_for_audit_events`; the test's
        ``@pytest.mark.audit`` settings apply. A failed check fails the test with the wait
        diagnostic, pointing at this line.

        .. versionadded:: 0.2.0
        """
        merged: dict[str, Any] = {**self.defaults, **options}
        check = self._set().expect(**merged)
        self._anchor(check, sys._getframe(1))
        return check

    def expect_none(self, **options: Unpack[ExpectNoneOptions]) -> AuditCheck:
        """Declare that no matching event will appear; verified as :meth:`expect` is, watching
        one flush interval plus the write time after the test body by default.

        Takes the arguments of :func:`kubernaut_audit.assert_no_audit_events`.

        .. versionadded:: 0.2.0
        """
        merged: dict[str, Any] = {**self.defaults, **options}
        merged.pop("timeout", None)
        check = self._set().expect_none(**merged)
        self._anchor(check, sys._getframe(1))
        return check

    def verify(self) -> None:
        """Verify the checks declared so far now, blocking, instead of after the test body.

        .. versionadded:: 0.2.0
        """
        __tracebackhide__ = True
        try:
            if self._expectations is not None:
                self._expectations.verify()
        finally:
            self._anchors.clear()

    def _anchor(self, check: AuditCheck, frame: FrameType) -> None:
        self._anchors[id(check)] = (frame, frame.f_lasti, frame.f_lineno)

    def _collect(self) -> Verification | None:
        assert self._expectations is not None
        return self._expectations._collect()

    def _pending(self) -> bool:
        return self._expectations is not None and bool(self._expectations.checks)

    def _discard(self) -> None:
        if self._expectations is not None:
            self._expectations._discard()
        self._anchors.clear()

    def _failure(self, outcome: Verification | BaseException | None) -> BaseException | None:
        """The exception a test fails with, raised from the line that declared the first
        failed check (so pytest shows that line), or None when every check passed."""
        anchors, self._anchors = self._anchors, {}  # the frames are needed no longer
        if outcome is None:
            return None
        if isinstance(outcome, BaseException):
            exc: BaseException = outcome
            anchor = next(iter(anchors.values()), None)
        elif not outcome.failures:
            return None
        else:
            exc = combined_failure(outcome)
            anchor = anchors.get(id(outcome.failed[0]))
        if anchor is not None:
            frame, lasti, lineno = anchor
            exc = exc.with_traceback(TracebackType(None, frame, lasti, lineno))
        return exc

    def _failures(self, outcome: Verification | BaseException | None) -> list[BaseException]:
        if isinstance(outcome, BaseException):
            return [outcome]
        return [] if outcome is None else list(outcome.failures)


@pytest.fixture
def audit(
    request: pytest.FixtureRequest, audit_client: AuditClient, correlation_id: str
) -> AuditHelper:
    """A helper bound to this test's correlation id: ``audit.expect(...)``,
    ``audit.expect_none(...)``, ``audit.wait(...)``, ``audit.assert_none(...)``,
    ``audit.events()``."""
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
def audit_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorKit]:
    """A private emulator served on a free loopback port, with a blocking client on it.

    Point the code under test at ``audit_emulator.url``, or emit through
    ``audit_emulator.emitter(flush_interval=...)``. With ``--audit-emulator-spec`` it holds
    writes to that spec's ``event_data`` union.
    """
    from .emulator import Emulator

    with ExitStack() as stack:
        emulator = Emulator(spec=request.config.stash.get(_SPEC_KEY, None))
        stack.callback(emulator.close)
        url = stack.enter_context(emulator.serve_in_thread(host="127.0.0.1", port=0))
        client = stack.enter_context(AuditClient(base_url=url))
        yield EmulatorKit(emulator=emulator, client=client, url=url, _stack=stack)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    __tracebackhide__ = True
    helper = item.stash.get(_REPORT_KEY, None)
    try:
        result = yield
    except BaseException:
        if helper is not None:
            helper._discard()  # the test failed or was skipped: its checks cannot change that
        raise
    if helper is None or not helper._pending():
        return result
    window = item.config.stash.get(_WINDOW_KEY, None)
    if window is not None and window.running is item:
        assert helper._expectations is not None
        item.stash[_PENDING_KEY] = helper._expectations._start()
        return result
    outcome: Verification | BaseException | None
    try:
        outcome = helper._collect()
    except AuditError as exc:
        outcome = exc
    failure = helper._failure(outcome)
    if failure is not None:
        item.ihook.pytest_audit_failure(item=item, failures=helper._failures(outcome))
        raise failure
    return result


def _resolve_pending(item: pytest.Item, future: Future[Any]) -> BaseException | None:
    helper = item.stash[_REPORT_KEY]
    if future.cancelled():
        return None
    exc = future.exception()
    outcome: Verification | BaseException | None = exc if exc is not None else future.result()
    failure = helper._failure(outcome)
    if failure is not None:
        item.stash[_FAILURES_KEY] = helper._failures(outcome)
    return failure


def _notify(item: pytest.Item, failure: BaseException) -> None:
    item.ihook.pytest_audit_failure(item=item, failures=item.stash.get(_FAILURES_KEY, [failure]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    helper = item.stash.get(_REPORT_KEY, None)
    if helper is not None and report.failed and call.when == "call":
        report.sections.append((SECTION, _failure_section(helper, call)))
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
