"""Expectation sets: audit checks declared now and verified together later, on either face.

``client.expectations(correlation_id)`` gives a set; ``expect(...)`` and ``expect_none(...)``
declare checks and return at once; ``verify()`` (blocking, or awaited on the async face) polls
until every check has a verdict, sharing one polling loop per set and one schedule per client
(``_checkpoll``), and raises the usual wait diagnostic when a check failed.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from types import FrameType, TracebackType
from typing import Protocol, Self, TypeVar, Unpack

from ._checkpoll import Verification, verify_checks
from ._checks import AuditCheck, ExpectNoneOptions, ExpectOptions, Site
from ._exceptions import AuditWaitError
from ._polling import PollHook, WaitClient

T = TypeVar("T")

_PACKAGE = __name__.rpartition(".")[0]


def caller_frame() -> FrameType | None:
    """The innermost frame outside this package: where a check was declared."""
    frame = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
    return frame


def _site(frame: FrameType | None) -> Site | None:
    return None if frame is None else Site(frame.f_code.co_filename, frame.f_lineno)


def combined_failure(verification: Verification) -> AuditWaitError:
    """The exception a failed verification raises: the failed check's own, or for several
    failed checks one of the first one's class carrying every diagnostic."""
    failures = verification.failures
    first = failures[0]
    if len(failures) == 1 and not verification.unverified:
        return first
    n = len(verification.checks)
    message = f"{len(failures)} of {n} audit expectations failed"
    if verification.unverified:
        message += f" ({verification.unverified} left unverified once one had failed)"
    message += "\n\n" + "\n\n".join(str(f) for f in failures)
    return type(first)(
        message,
        correlation_id=first.correlation_id,
        expectation="; ".join(f.expectation for f in failures),
        events=first.events,
        matched=[e for f in failures for e in f.matched],
        polls=first.polls,
        elapsed=first.elapsed,
        last_error=first.last_error,
        flush_interval=first.flush_interval,
    )


class AsyncExpectationSet:
    """Audit checks on one correlation id, declared now and verified together (async face).

    Get one from :meth:`AsyncAuditClient.expectations`. ``expect`` and ``expect_none`` validate
    and record a check and return at once; :meth:`verify` arms every recorded check, polls until
    each has a verdict and raises if one failed. All checks of a set share one polling loop (one
    query per poll), so ``expect(count=1, settle=True)`` and two ``expect_none(...)`` cost one
    quiet window, not three. As an async context manager, the set is verified on a clean exit.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self, client: WaitClient, correlation_id: str, *, on_poll: PollHook | None = None
    ) -> None:
        if not isinstance(correlation_id, str) or not correlation_id.strip():
            raise ValueError(
                "correlation_id is required and must be a non-empty string: checks without "
                "it would match other tests' events"
            )
        self._client = client
        self._cid = correlation_id
        self._on_poll = on_poll
        self._checks: list[AuditCheck] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(correlation_id={self._cid!r}, {len(self._checks)} pending)"

    @property
    def correlation_id(self) -> str:
        return self._cid

    @property
    def checks(self) -> tuple[AuditCheck, ...]:
        """The checks declared and not yet verified, in declaration order."""
        return tuple(self._checks)

    def expect(self, **options: Unpack[ExpectOptions]) -> AuditCheck:
        """Declare that matching events will arrive; returns the recorded check at once.

        Takes the arguments of :func:`wait_for_audit_events` (``event_type``, ``event_types``,
        ``count``, ``min_count``, ``where``, ``settle``, ``timeout``, ``flush_interval``...);
        the timeout counts from the start of :meth:`verify`.

        Raises:
            ValueError, TypeError: invalid arguments, before any request.
        """
        check = AuditCheck.expect(self._cid, site=_site(caller_frame()), **options)
        self._checks.append(check)
        return check

    def expect_none(self, **options: Unpack[ExpectNoneOptions]) -> AuditCheck:
        """Declare that no matching event will appear; returns the recorded check at once.

        Takes the arguments of :func:`assert_no_audit_events` (a selection, ``during``,
        ``flush_interval``); the watch window (by default one flush interval plus the write
        time) starts with :meth:`verify`.

        Raises:
            ValueError, TypeError: invalid arguments, before any request.
        """
        check = AuditCheck.expect_none(self._cid, site=_site(caller_frame()), **options)
        self._checks.append(check)
        return check

    def _take(self) -> list[AuditCheck]:
        checks, self._checks = self._checks, []
        return checks

    async def _verification(self, checks: list[AuditCheck] | None = None) -> Verification | None:
        checks = self._take() if checks is None else checks
        if not checks:
            return None
        return await verify_checks(self._client, checks, on_poll=self._on_poll)

    async def verify(self) -> None:
        """Verify every check declared since the last verification; a no-op without any.

        Raises:
            AuditWaitTimeout: (an ``AssertionError``) expected events did not arrive in time.
            UnexpectedAuditEvents: (an ``AssertionError``) more, or unwanted, events arrived.
            DataStorageError: a permanent error (400, 401, 403, 404) ends the polling at once.

            Several failed checks raise one exception of the first one's class with every
            diagnostic.
        """
        __tracebackhide__ = True
        verification = await self._verification()
        if verification is not None and verification.failures:
            raise combined_failure(verification)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True
        if exc_type is None:
            await self.verify()
        else:
            self._take()


class PortalRunner(Protocol):
    """What a blocking set needs from :class:`AuditClient`: run a coroutine function on its
    event loop and wait, or start it there and get a future."""

    def _run(self, fn: Callable[..., Awaitable[T]], *args: object) -> T: ...

    def _start_soon(self, fn: Callable[..., Awaitable[T]], *args: object) -> Future[T]: ...


class ExpectationSet:
    """Audit checks on one correlation id, declared now and verified together (blocking face).

    Get one from :meth:`AuditClient.expectations`; it behaves as :class:`AsyncExpectationSet`
    with a blocking :meth:`verify`, and as a context manager verifies on a clean exit. The
    pytest plugin's ``audit.expect`` uses one per test.

    .. versionadded:: 0.2.0
    """

    def __init__(self, async_set: AsyncExpectationSet, runner: PortalRunner) -> None:
        self._async = async_set
        self._runner = runner

    def __repr__(self) -> str:
        return repr(self._async).replace("Async", "", 1)

    @property
    def correlation_id(self) -> str:
        return self._async.correlation_id

    @property
    def checks(self) -> tuple[AuditCheck, ...]:
        """The checks declared and not yet verified, in declaration order."""
        return self._async.checks

    def expect(self, **options: Unpack[ExpectOptions]) -> AuditCheck:
        """Declare that matching events will arrive; see :meth:`AsyncExpectationSet.expect`."""
        return self._async.expect(**options)

    def expect_none(self, **options: Unpack[ExpectNoneOptions]) -> AuditCheck:
        """Declare that no matching event will appear; see
        :meth:`AsyncExpectationSet.expect_none`."""
        return self._async.expect_none(**options)

    def verify(self) -> None:
        """Block until every declared check has a verdict; raises as
        :meth:`AsyncExpectationSet.verify` does."""
        __tracebackhide__ = True
        verification = self._runner._run(self._async._verification)
        if verification is not None and verification.failures:
            raise combined_failure(verification)

    def _collect(self) -> Verification | None:
        """Verify the declared checks now and return the verdicts without raising."""
        return self._runner._run(self._async._verification)

    def _start(self) -> Future[Verification | None]:
        """Arm the declared checks now and verify them in the background (the plugin's
        windowed verdicts)."""
        return self._runner._start_soon(self._async._verification, self._async._take())

    def _discard(self) -> None:
        self._async._take()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True
        if exc_type is None:
            self.verify()
        else:
            self._discard()
