"""What counts as transient, and the bounded retry policy built on tenacity.

Time comes from the event loop (``anyio.current_time`` / ``anyio.sleep``), never from
``time.monotonic``, so a fake clock drives retries in tests.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import anyio
import tenacity

from ._exceptions import (
    AuditError,
    ConfigurationError,
    DataStorageError,
    RequestInfo,
    TransportError,
)
from ._tracebacks import cut_plumbing, hide_audit_errors

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

logger = logging.getLogger("kubernaut_audit")

T = TypeVar("T")

#: Statuses worth another try: the server or a proxy in front of it is busy or restarting.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a request is retried.

    Args:
        attempts: total tries, the first included.
        timeout: total seconds across all tries and backoff; no sleep starts past it, and a try
            still running then fails with ``TransportTimeoutError``.
        initial: upper bound of the first backoff (full jitter: uniform in ``[0, bound]``).
        max_backoff: cap of the exponentially growing bound.
        max_retry_after: cap on a server's ``Retry-After``.

    .. versionadded:: 0.1.0
    """

    attempts: int = 5
    timeout: float = 30.0
    initial: float = 0.25
    max_backoff: float = 5.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigurationError(f"attempts must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ConfigurationError(f"attempts must be at least 1, got {self.attempts}")
        for name in ("timeout", "initial", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            # timeout may be infinite (no budget); a backoff must be a real number of seconds.
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or math.isnan(value)
                or value < 0
                or (name != "timeout" and math.isinf(value))
            ):
                raise ConfigurationError(
                    f"RetryPolicy {name} must be a number of seconds >= 0, got {value!r}"
                )


#: No retries at all.
NO_RETRY = RetryPolicy(attempts=1)


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """Handed to retry hooks before each backoff sleep.

    .. versionadded:: 0.1.0
    """

    request: RequestInfo
    attempt: int
    """The number of the try that just failed (1 for the first)."""
    wait: float
    """Seconds about to be slept."""
    waited_so_far: float
    """Seconds since the first try started."""
    error: AuditError
    """What went wrong."""


class RetryHook(Protocol):
    """Called before every retry sleep."""

    def __call__(self, details: RetryDetails, /) -> None: ...


def log_retry(details: RetryDetails) -> None:
    """The default hook: one structured log line per retry (never any header)."""
    logger.info(
        "retrying %s after attempt %d failed (%s); sleeping %.3fs",
        details.request,
        details.attempt,
        type(details.error).__name__,
        details.wait,
        extra={
            "audit_method": details.request.method,
            "audit_url": details.request.url,
            "audit_attempt": details.attempt,
            "audit_wait": details.wait,
            "audit_error": type(details.error).__name__,
        },
    )


@dataclass(frozen=True, slots=True)
class _Testing:
    attempts: int


_testing: _Testing | None = None


def set_testing_state(testing: bool, attempts: int) -> None:
    global _testing
    _testing = _Testing(attempts=attempts) if testing else None


def testing_state() -> tuple[bool, int]:
    return (_testing is not None, _testing.attempts if _testing else 0)


def is_transient(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether ``exc`` is worth another try.

    A request that may have reached the server is retried only when it is idempotent: a write
    is retried only if the connection was never made.
    """
    if isinstance(exc, TransportError):
        return idempotent or not exc.request_sent
    if isinstance(exc, DataStorageError):
        return idempotent and exc.status_code in TRANSIENT_STATUSES
    return False


def backoff(
    policy: RetryPolicy, attempt: int, rng: random.Random, retry_after: float | None
) -> float:
    """Seconds to sleep after try number ``attempt`` failed.

    A usable ``Retry-After`` wins (capped); otherwise full jitter over an exponentially growing
    bound, so that many clients failing together spread out instead of retrying in lockstep.
    """
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after)
    bound = min(policy.max_backoff, policy.initial * 2 ** (attempt - 1))
    return rng.uniform(0.0, bound)


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    *,
    request: RequestInfo,
    policy: RetryPolicy,
    rng: random.Random,
    idempotent: bool,
    deadline: float | None = None,
    hooks: Sequence[RetryHook] = (log_retry,),
) -> T:
    """Run ``call`` under ``policy``; never sleeps past ``deadline`` (an event-loop time)."""
    attempts = policy.attempts
    if _testing is not None:
        attempts = min(attempts, _testing.attempts)
    started = anyio.current_time()
    limit = started + policy.timeout
    if deadline is not None:
        limit = min(limit, deadline)

    def wait(state: tenacity.RetryCallState) -> float:
        if _testing is not None:
            return 0.0
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, DataStorageError) else None
        return backoff(policy, state.attempt_number, rng, retry_after)

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= attempts:
            return True
        return anyio.current_time() + state.upcoming_sleep > limit

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        assert isinstance(exc, AuditError)
        details = RetryDetails(
            request=request,
            attempt=state.attempt_number,
            wait=state.upcoming_sleep,
            waited_so_far=anyio.current_time() - started,
            error=exc,
        )
        for hook in hooks:
            hook(details)

    retrying = tenacity.AsyncRetrying(
        sleep=anyio.sleep,
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(lambda e: is_transient(e, idempotent=idempotent)),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return await retrying(call)
    except AuditError as exc:
        # The same error, re-raised without tenacity's frames (they say nothing of it).
        raise cut_plumbing(exc)  # noqa: B904
