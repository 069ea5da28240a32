"""The public wait functions, for either face: they sit above both clients, so that the clients
and the waiting code (``_wait``, ``_polling``) never import each other.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Unpack, overload

from ._client import AsyncAuditClient
from ._sync import AuditClient
from ._tracebacks import hide_audit_errors
from ._wait import AbsenceOptions, WaitOptions, WaitResult, assert_none_async, wait_async

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors


@overload
def wait_for_audit_events(
    client: AuditClient, correlation_id: str, **options: Unpack[WaitOptions]
) -> WaitResult: ...
@overload
def wait_for_audit_events(
    client: AsyncAuditClient, correlation_id: str, **options: Unpack[WaitOptions]
) -> Coroutine[Any, Any, WaitResult]: ...
def wait_for_audit_events(
    client: AuditClient | AsyncAuditClient, correlation_id: str, **options: Unpack[WaitOptions]
) -> WaitResult | Coroutine[Any, Any, WaitResult]:
    """Wait until the audit events a test expects are queryable, and return them.

    Blocks with an :class:`AuditClient`; returns an awaitable with an :class:`AsyncAuditClient`.
    Only events of ``correlation_id`` are ever considered. The first query goes out at once;
    later ones follow a schedule built from the writer's ``flush_interval`` (see the README).
    A poll that meets a transient error is retried at most 3 times (backoff from 0.1 s, capped
    at one flush interval) within the wait's timeout; the client's ``retry=`` governs its other
    requests, not the polls of a wait.

    Args:
        correlation_id: required and non-empty.
        event_type, event_category, event_outcome, severity: only events matching these count.
        min_count: at least this many matching events (default 1).
        count: exactly this many matching events; more fails at once.
        event_types: every listed type at least once, or a mapping type -> count.
        where: a predicate on an event; only events it accepts count.
        timeout: seconds; default ``3 × flush_interval + 5``.
        flush_interval: the writer's flush interval; default the client's (2.0 s).
        writer: how the writer writes: ``"ticker"``, ``"since-last-write"`` or ``"auto"``
            (work it out from what the client's waits see); default the client's (``"auto"``).
        settle: once the expectation holds, keep watching for one flush interval plus the write
            time and fail if more than ``count``, or types not in ``event_types``, arrive.
        on_poll: called with a :class:`PollRecord` after every poll.

    Returns:
        The matching events, oldest first, with ``.stats`` (:class:`WaitStats`).

    Raises:
        AuditWaitTimeout: (an ``AssertionError``) the expectation was not met in time; its
            message says what arrived, how many polls were made and the last error.
        UnexpectedAuditEvents: (an ``AssertionError``) more or other events than allowed.
        DataStorageError: a permanent error (400, 401, 403, 404) ends the wait at once.

    .. versionadded:: 0.1.0
    """
    if isinstance(client, AsyncAuditClient):
        return wait_async(client, correlation_id, **options)
    if isinstance(client, AuditClient):
        return client.wait_for_audit_events(correlation_id, **options)
    raise TypeError(f"client must be an AuditClient or AsyncAuditClient, not {type(client)!r}")


@overload
def assert_no_audit_events(
    client: AuditClient, correlation_id: str, **options: Unpack[AbsenceOptions]
) -> None: ...
@overload
def assert_no_audit_events(
    client: AsyncAuditClient, correlation_id: str, **options: Unpack[AbsenceOptions]
) -> Coroutine[Any, Any, None]: ...
def assert_no_audit_events(
    client: AuditClient | AsyncAuditClient, correlation_id: str, **options: Unpack[AbsenceOptions]
) -> Coroutine[Any, Any, None] | None:
    """Pass only if no matching audit event appears for ``correlation_id``.

    Watches for ``during`` seconds, by default one flush interval plus the write time, so the
    check cannot pass merely because it looked before the writer flushed.

    Raises:
        UnexpectedAuditEvents: (an ``AssertionError``) a matching event appeared.

    .. versionadded:: 0.1.0
    """
    if isinstance(client, AsyncAuditClient):
        return assert_none_async(client, correlation_id, **options)
    if isinstance(client, AuditClient):
        client.assert_no_audit_events(correlation_id, **options)
        return None
    raise TypeError(f"client must be an AuditClient or AsyncAuditClient, not {type(client)!r}")
