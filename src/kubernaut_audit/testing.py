"""Helpers for test suites that use kubernaut-audit.

``set_testing(True)`` makes the SDK's HTTP retries instant and caps their attempts (queries,
writes and the page fetches of a wait alike), so a test that provokes errors against a fake
server does not sleep through backoffs. A wait's poll schedule is not changed: it follows the
writer's flush interval, which a test shortens with ``flush_interval=`` (or the plugin's
``--audit-flush-interval``) when its writer flushes faster.
"""

from __future__ import annotations

from types import TracebackType

from ._exceptions import ConfigurationError
from ._retry import set_testing_state, testing_state
from ._tracebacks import hide_audit_errors

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

__all__ = ["is_testing", "set_testing"]


class _Restore:
    """What :func:`set_testing` returns: leaving it as a context manager restores the mode."""

    def __init__(self, previous: tuple[bool, int]) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        set_testing_state(*self._previous)


def set_testing(testing: bool, *, attempts: int = 1) -> _Restore:
    """Turn test mode on or off: no backoff between retries, at most ``attempts`` tries.

    Works as a plain call or as a context manager that restores the previous mode::

        with set_testing(True, attempts=2):
            ...

    .. versionadded:: 0.1.0
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigurationError(f"attempts must be an int >= 1, got {attempts!r}")
    previous = testing_state()
    set_testing_state(testing, attempts)
    return _Restore(previous)


def is_testing() -> bool:
    """Whether test mode is on."""
    return testing_state()[0]
