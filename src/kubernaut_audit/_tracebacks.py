"""Tracebacks that read like a failed ``assert``: the caller's line, then the SDK's error.

Two tools, both for :class:`AuditError` only (a bug of the SDK keeps every frame):

* :func:`hide_audit_errors`, set as a module's ``__tracebackhide__``, tells pytest to leave
  that module's frames out of the traceback of an ``AuditError`` (``--full-trace`` shows them);
  this is pytest's own mechanism for assertion helpers, here in its callable form.
* :func:`cut_plumbing` drops the frames of other packages that an error crossed on its way up:
  the portal's thread and future on the blocking face, tenacity's loop around each request.
  Under pytest's ``--full-trace`` the plugin turns this off (:func:`keep_plumbing`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

from ._exceptions import AuditError

E = TypeVar("E", bound=BaseException)

_PACKAGE = __name__.rpartition(".")[0]
_keep = False


def hide_audit_errors(excinfo: Any) -> bool:
    """pytest's ``__tracebackhide__`` hook: hide the frame when the error is an AuditError."""
    return excinfo is not None and isinstance(getattr(excinfo, "value", None), AuditError)


__tracebackhide__ = hide_audit_errors


def keep_plumbing(keep: bool) -> bool:
    """Keep every frame (``--full-trace``) or not; returns the previous setting."""
    global _keep
    previous, _keep = _keep, keep
    return previous


def cut_plumbing(exc: E) -> E:
    """``exc``, to be re-raised where it was caught, with a traceback of the SDK's own frames
    only. The catching frame's entry is dropped (the ``raise`` adds it again). An error that is
    not an AuditError, or any error while :func:`keep_plumbing` is on, keeps the other frames.
    """
    entry = exc.__traceback__
    entry = entry.tb_next if entry is not None else None
    if _keep or not isinstance(exc, AuditError):
        return exc.with_traceback(entry)
    kept: list[TracebackType] = []
    while entry is not None:
        module = entry.tb_frame.f_globals.get("__name__", "")
        if module == _PACKAGE or module.startswith(_PACKAGE + "."):
            kept.append(entry)
        entry = entry.tb_next
    rebuilt: TracebackType | None = None
    for entry in reversed(kept):
        rebuilt = TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return exc.with_traceback(rebuilt)
