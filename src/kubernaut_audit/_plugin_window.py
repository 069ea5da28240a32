"""Windowed verdicts for the pytest plugin (``--audit-window=K``).

The plugin owns the test protocol, as pytest-rerunfailures does: each test runs through
``runtestprotocol(log=False)``, its reports are held, and its declared checks keep being polled
in the background while up to K tests' checks are pending. Held tests are reported (logstart,
setup, call, teardown, logfinish) in the order they ran once their checks resolved, the call
report turned into a failure when a check failed.

* Emission happens only inside this plugin's ``pytest_runtest_protocol``, between two tests'
  ``runtestprotocol`` calls, never during one; the last test's protocol emits everything.
* Before fixtures of a class, module, package or session are finalized, the pending checks of
  held tests that use fixtures of that scope are resolved (the checks may need them: the client,
  the service that writes the events).
* Under pytest-xdist the worker checks that every report belongs to the item it is running:
  while a held test is reported, the worker is told that item is the one running
  (:class:`XdistWorker`). A worker also announces each held test (logstart) as soon as it is
  held, so that the controller (:class:`CrashGuard`) can report the tests a crashed worker held
  as failed instead of losing them.

This module imports pytest: it is part of the plugin, loaded only by ``pytest_plugin``.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.runner import runtestprotocol  # the protocol's one entry point; no public alias

#: pytest-xdist versions whose worker ties reports to items as :class:`XdistWorker` expects:
#: ``WorkerInteractor.item_index``, set before each ``pytest_runtest_protocol`` call and
#: asserted against every report's nodeid. Kept in step with the ``xdist`` extra in
#: pyproject.toml (a test checks both).
XDIST_SUPPORTED = ((3, 6), (3, 9))

#: Resolves a held test's verification into (exception to fail it with, or None).
Resolver = Callable[[pytest.Item, Future[Any]], BaseException | None]
Notifier = Callable[[pytest.Item, BaseException], None]


#: Plugins that run a test's protocol themselves only for the tests marked so (pytest-rerunfailures'
#: ``flaky``, pytest-forked's ``forked``; their options turn windowed mode off as a whole): the
#: window reports everything it holds and steps aside for those tests.
_PER_TEST_OWNERS = {"rerunfailures": "flaky", "pytest_forked": "forked"}


def _version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def xdist_supported(version: str) -> bool:
    lo, hi = XDIST_SUPPORTED
    return lo <= _version(version) < hi


def blockers(config: pytest.Config) -> list[str]:
    """Why windowed verdicts cannot be used in this run (empty: they can)."""
    opt = config.getoption
    reasons: list[str] = []
    if (opt("maxfail", 0) or 0) > 0:
        reasons.append("-x/--maxfail stops on a failure, which a held verdict reports late")
    if opt("usepdb", False) or opt("trace", False):
        reasons.append("--pdb/--trace debug a failure where it happens")
    if opt("stepwise", False) or opt("stepwise_skip", False):
        reasons.append("--stepwise stops on a failure")
    if (opt("reruns", 0) or 0) > 0 or opt("force_reruns", None) is not None:
        reasons.append("--reruns re-runs failed tests in the protocol it owns")
    if opt("forked", False):
        reasons.append("--forked runs each test in a child process")
    if opt("capture", "fd") == "no":
        reasons.append("-s shows output as it is written, not with its test")
    if config.getini("log_cli") or opt("log_cli_level", None):
        reasons.append("live logging (log_cli) writes as tests run")
    owners = sorted(
        {
            impl.plugin_name
            for impl in config.pluginmanager.hook.pytest_runtest_protocol.get_hookimpls()
            if not (impl.hookwrapper or impl.wrapper)
            and impl.plugin_name not in {"runner", "kubernaut-audit-window", *_PER_TEST_OWNERS}
        }
    )
    if owners:
        reasons.append(f"another plugin owns the test protocol ({', '.join(owners)})")
    if hasattr(config, "workerinput"):
        reasons.extend(XdistWorker.problems(config))
    elif config.pluginmanager.hasplugin("dsession"):
        version = _xdist_version()
        if not xdist_supported(version):
            reasons.append(_xdist_unsupported(version))
    return reasons


def _xdist_version() -> str:
    return importlib.metadata.version("pytest-xdist")


def _xdist_unsupported(version: str) -> str:
    (a, b), (c, d) = XDIST_SUPPORTED
    return f"pytest-xdist {version} is outside the supported versions (>={a}.{b},<{c}.{d})"


class XdistWorker:
    """The one contract with pytest-xdist's worker that windowed verdicts rely on.

    The worker's ``WorkerInteractor`` sets ``item_index`` before it calls
    ``pytest_runtest_protocol`` and, in ``pytest_runtest_logreport``, asserts that the report's
    nodeid is that item's and sends the index along. A held test is reported while another one
    runs, so for that moment the interactor is pointed at the held test's index.
    """

    def __init__(self, interactor: Any) -> None:
        self._interactor = interactor

    @staticmethod
    def _find(config: pytest.Config) -> Any:
        for plugin in config.pluginmanager.get_plugins():
            if type(plugin).__name__ == "WorkerInteractor" and hasattr(plugin, "sendevent"):
                return plugin
        return None

    @classmethod
    def problems(cls, config: pytest.Config) -> list[str]:
        version = _xdist_version()
        if not xdist_supported(version):
            return [_xdist_unsupported(version)]
        if cls._find(config) is None:
            return ["the pytest-xdist worker's interactor was not found"]
        return []

    @classmethod
    def of(cls, config: pytest.Config) -> XdistWorker | None:
        if not hasattr(config, "workerinput"):
            return None
        interactor = cls._find(config)
        assert interactor is not None  # checked by problems()
        return cls(interactor)

    def running_index(self) -> int:
        index = getattr(self._interactor, "item_index", None)
        if not isinstance(index, int):
            raise TypeError(
                "kubernaut-audit: pytest-xdist's worker no longer sets item_index before "
                "running a test; windowed verdicts cannot tie reports to tests (run without "
                "--audit-window, and report this with your pytest-xdist version)"
            )
        return index

    @contextmanager
    def reporting(self, index: int) -> Iterator[None]:
        saved = self._interactor.item_index
        self._interactor.item_index = index
        try:
            yield
        finally:
            self._interactor.item_index = saved


@dataclass
class _Held:
    item: pytest.Item
    reports: list[pytest.TestReport]
    future: Future[Any] | None
    index: int | None
    fixturenames: frozenset[str]
    announced: bool = False
    notified: bool = False
    failure: BaseException | None = None

    def pending(self) -> bool:
        return self.future is not None and not self.future.done()


@dataclass(eq=False)
class Window:
    """The held tests of one process and the protocol that holds and emits them."""

    size: int
    resolve: Resolver
    notify: Notifier
    pending_of: Callable[[pytest.Item], Future[Any] | None]
    xdist: XdistWorker | None = None
    held: deque[_Held] = field(default_factory=deque)
    #: Fixture names set up per scope node (class, module, package, session), by nodeid.
    scoped: dict[str, set[str]] = field(default_factory=dict)
    interrupted: bool = False
    #: The test whose protocol this window runs now (its checks are verified in the background).
    running: pytest.Item | None = None

    # -- hooks ------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        if any(item.get_closest_marker(m) is not None for m in _PER_TEST_OWNERS.values()):
            # A re-running or forking plugin owns this test's protocol: report everything held
            # first, so that its reports still come in order, then step aside.
            self._emit_all()
            return None
        self._emit_ready()
        index = self.xdist.running_index() if self.xdist is not None else None
        self.running = item
        try:
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
        finally:
            self.running = None
        held = _Held(
            item,
            reports,
            self.pending_of(item),
            index,
            frozenset(getattr(item, "fixturenames", ())),
        )
        self.held.append(held)
        if self.xdist is not None:
            # Announce the held test now: the controller then knows it, should this worker die.
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            held.announced = True
        self._emit_ready()
        while sum(1 for h in self.held if h.pending()) > self.size:
            self._wait(next(h for h in self.held if h.pending()))
            self._emit_ready()
        if nextitem is None:
            self._emit_all()
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any], request: Any) -> None:
        if fixturedef.scope != "function":
            self.scoped.setdefault(request.node.nodeid, set()).add(fixturedef.argname)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # The teardown may finalize fixtures of wider scopes that pending checks rely on.
        current = _Held(
            item, [], self.pending_of(item), None, frozenset(getattr(item, "fixturenames", ()))
        )
        candidates = [*self.held, current]
        if nextitem is None or item.session.shouldstop or item.session.shouldfail:
            needed = candidates
        else:
            staying = {id(node) for node in nextitem.listchain()}
            leaving = [n for n in item.listchain()[:-1] if id(n) not in staying]
            names: set[str] = set()
            for node in leaving:
                names |= self.scoped.get(node.nodeid, set())
            needed = [h for h in candidates if h.fixturenames & names]
        for held in needed:
            self._wait(held)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        try:
            return (yield)
        except BaseException:
            self.interrupted = True
            raise
        finally:
            self._finish()

    # -- holding and emitting ---------------------------------------------------------------

    def _wait(self, held: _Held) -> None:
        if held.future is not None:
            concurrent.futures.wait([held.future])

    def _settle(self, held: _Held) -> None:
        """Work out a resolved test's failure once, and tell the hook at once."""
        if held.notified or held.future is None or not held.future.done():
            return
        held.notified = True
        held.failure = self.resolve(held.item, held.future)
        if held.failure is not None:
            self.notify(held.item, held.failure)

    def _emit_ready(self) -> None:
        for held in self.held:
            self._settle(held)
        while self.held and not self.held[0].pending():
            self._emit(self.held.popleft())

    def _emit_all(self) -> None:
        for held in self.held:
            self._wait(held)
        self._emit_ready()

    def _finish(self) -> None:
        if not self.interrupted:
            self._emit_all()
            return
        # Interrupted (Ctrl-C): report what has a verdict, in order; drop the rest unreported,
        # as pytest drops a test interrupted while it runs.
        for held in self.held:
            if held.future is not None:
                held.future.cancel()
        self._emit_ready()
        self.held.clear()

    def _emit(self, held: _Held) -> None:
        self._settle(held)
        item = held.item
        reports = held.reports
        if held.failure is not None:
            reports = [
                failed_call_report(item, r, held.failure) if r.when == "call" else r
                for r in reports
            ]
        scope = (
            self.xdist.reporting(held.index)
            if self.xdist is not None and held.index is not None
            else nullcontext()
        )
        with scope:
            if not held.announced:
                item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            for report in reports:
                item.ihook.pytest_runtest_logreport(report=report)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


SECTION = "kubernaut-audit"


def failed_call_report(
    item: pytest.Item, held: pytest.TestReport, exc: BaseException
) -> pytest.TestReport:
    """The call report a test gets when its checks failed after its body passed: made by the
    ``pytest_runtest_makereport`` hooks from the failure, as in the default mode (xfail and
    every plugin's additions apply), with the held report's timing and captured output."""

    def fail() -> None:
        raise exc

    call = pytest.CallInfo.from_call(fail, when="call")
    report: pytest.TestReport = item.ihook.pytest_runtest_makereport(item=item, call=call)
    report.duration, report.start, report.stop = held.duration, held.start, held.stop
    report.sections = [*held.sections, *(s for s in report.sections if s[0] == SECTION)]
    return report


class CrashGuard:
    """On the pytest-xdist controller: tests a worker announced but never finished are reported
    as failed when the run ends, unless pytest-xdist reported them itself (the crash item).

    A windowed worker announces each held test (logstart) and finishes it (logfinish) once it is
    reported; a worker that dies in between leaves those tests open.
    """

    def __init__(self) -> None:
        self.open: dict[str, tuple[str, int | None, str]] = {}
        self.verdicts: set[str] = set()
        self.crashed: list[Any] = []

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.open[nodeid] = location

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.verdicts.add(report.nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.open.pop(nodeid, None)

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        if error is not None:
            self.crashed.append(node)

    def pytest_handlecrashitem(self, crashitem: str) -> None:
        self.open.pop(crashitem, None)  # pytest-xdist reports it

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        result = yield
        self.report_lost(session.config)
        return result

    def report_lost(self, config: pytest.Config) -> None:
        lost = [(nodeid, loc) for nodeid, loc in self.open.items() if nodeid not in self.verdicts]
        if not lost:
            return
        names = [str(getattr(getattr(n, "gateway", None), "id", "?")) for n in self.crashed]
        workers = ", ".join(names) or "a worker"
        for nodeid, location in lost:
            report = pytest.TestReport(
                nodeid=nodeid,
                location=location,
                keywords={},
                outcome="failed",
                longrepr=(
                    f"kubernaut-audit: the pytest-xdist worker holding this test's verdict "
                    f"({'one of: ' if len(names) > 1 else ''}{workers}) crashed before "
                    "reporting it; the test ran, but whether its audit checks passed is unknown"
                ),
                when="call",
            )
            if len(self.crashed) == 1:
                report.node = self.crashed[0]  # type: ignore[attr-defined]  # as xdist's own
            config.hook.pytest_runtest_logreport(report=report)
            config.hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
        self.open.clear()
