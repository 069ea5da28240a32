"""kubernaut-audit: query Kubernaut's Data Storage audit trail and wait for audit events."""

from __future__ import annotations

import warnings
from typing import Any

from ._chain import ChainBreak, ChainVerification, compute_event_hash, verify_event_chain
from ._checks import AuditCheck
from ._client import AsyncAuditClient
from ._exceptions import (
    AuditError,
    AuditWaitError,
    AuditWaitTimeout,
    AuthenticationError,
    BadRequestError,
    BatchPartiallyStoredError,
    ConfigurationError,
    DataStorageError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestInfo,
    ResponseDecodeError,
    ResponseTooLargeError,
    ResponseValidationError,
    ServerError,
    TransportConnectionError,
    TransportError,
    TransportTimeoutError,
    UnexpectedAuditEvents,
    UnprocessableEntityError,
)
from ._expectations import AsyncExpectationSet, ExpectationSet
from ._payloads import PayloadRegistry
from ._polling import PollRecord
from ._retry import RetryDetails, RetryHook, RetryPolicy
from ._sync import AuditClient
from ._trail_ops import ExportProgress
from ._wait import WaitResult, WaitStats, default_timeout
from ._wait_api import assert_no_audit_events, wait_for_audit_events
from .models import (
    AuditEvent,
    AuditEventPage,
    AuditEventRequest,
    BatchResult,
    CreateResult,
    EventCategory,
    EventOutcome,
)

__all__ = [
    "AsyncAuditClient",
    "AsyncExpectationSet",
    "AuditCheck",
    "AuditClient",
    "AuditError",
    "AuditEvent",
    "AuditEventPage",
    "AuditEventRequest",
    "AuditWaitError",
    "AuditWaitTimeout",
    "AuthenticationError",
    "BadRequestError",
    "BatchPartiallyStoredError",
    "BatchResult",
    "ChainBreak",
    "ChainVerification",
    "ConfigurationError",
    "CreateResult",
    "DataStorageError",
    "EventCategory",
    "EventOutcome",
    "ExpectationSet",
    "ExportProgress",
    "NotFoundError",
    "PayloadRegistry",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PollRecord",
    "RateLimitError",
    "RequestInfo",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "RetryDetails",
    "RetryHook",
    "RetryPolicy",
    "ServerError",
    "TransportConnectionError",
    "TransportError",
    "TransportTimeoutError",
    "UnexpectedAuditEvents",
    "UnprocessableEntityError",
    "WaitResult",
    "WaitStats",
    "assert_no_audit_events",
    "compute_event_hash",
    "default_timeout",
    "verify_event_chain",
    "wait_for_audit_events",
]

# Public objects present themselves as kubernaut_audit.X (reprs, docs, pickles stay valid).
for _name in __all__:
    _obj = globals()[_name]
    if _obj.__module__.startswith("kubernaut_audit."):
        _obj.__module__ = "kubernaut_audit"
del _name, _obj


#: Deprecated in 0.2.0, removed in 0.3.0: old name -> new name (the same object).
_RENAMED = {
    # Neither is a DataStorageError (an error answer): both are TransportErrors (no answer).
    "DataStorageConnectionError": "TransportConnectionError",
    "DataStorageTimeoutError": "TransportTimeoutError",
    # One letter from AuditEvent.
    "AuditEvents": "WaitResult",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("kubernaut-audit")
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"kubernaut_audit.{name} is deprecated and will be removed in 0.3.0; "
            f"use kubernaut_audit.{new} (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
