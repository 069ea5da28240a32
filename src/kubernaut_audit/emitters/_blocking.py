"""The blocking face of any buffered emitter: its async twin run on a background thread."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Self

import anyio.from_thread

from kubernaut_audit._generated.models import AuditEventRequest

from ._base import AsyncEmitterBase
from ._records import EmittedRecord, EmitterCounters


class BlockingEmitter:
    """Runs an :class:`AsyncEmitterBase` on a portal thread; ``emit()`` works from any thread."""

    def __init__(self, inner: AsyncEmitterBase) -> None:
        self._inner = inner
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._running: AbstractContextManager[Any] | None = None

    @property
    def flush_interval(self) -> float:
        """Seconds between writes, as the emitter's kind interprets them."""
        return self._inner.flush_interval

    @property
    def records(self) -> list[EmittedRecord]:
        """A snapshot of every emitted event's record, in emission order."""
        return self._inner.records

    @property
    def counters(self) -> EmitterCounters:
        """A snapshot of the running totals."""
        return self._inner.counters

    def start(self) -> None:
        """Start the background thread and the writer."""
        if self._portal is not None:
            raise RuntimeError("an emitter starts only once")
        portal_cm = anyio.from_thread.start_blocking_portal()
        portal = portal_cm.__enter__()
        running = portal.wrap_async_context_manager(self._inner)
        try:
            running.__enter__()
        except BaseException:
            portal_cm.__exit__(None, None, None)
            raise
        self._portal_cm, self._portal, self._running = portal_cm, portal, running

    def emit(self, event: Mapping[str, Any] | AuditEventRequest) -> None:
        """Buffer an event; never blocks.

        Args:
            event: The event, as a JSON-ready mapping or an ``AuditEventRequest``.
        """
        if self._inner._push(event) and self._portal is not None:
            self._portal.start_task_soon(self._inner._notify)

    def flush(self) -> None:
        """Write everything buffered now, and return once written (or dropped)."""
        if self._portal is not None:
            self._portal.call(self._inner.flush)

    def close(self) -> None:
        """Write what is buffered (within ``drain_timeout``), stop the thread, drop later emits."""
        if self._portal is None or self._portal_cm is None or self._running is None:
            self._inner._mark_closed()
            return
        try:
            self._running.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
            self._portal = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
