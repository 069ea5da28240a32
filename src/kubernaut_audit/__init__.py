"""kubernaut-audit: query Kubernaut's Data Storage audit trail and wait for audit events."""

from __future__ import annotations

from typing import Any

from ._chain import ChainBreak, ChainVerification, compute_event_hash, verify_event_chain
from ._client import AsyncAuditClient
from ._exceptions import (
    AuditError,
    AuditWaitError,
    AuditWaitTimeout,
    AuthenticationError,
    BadRequestError,
    BatchPartiallyStoredError,
    ConfigurationError,
    DataStorageConnectionError,
    DataStorageError,
    DataStorageTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestInfo,
    ResponseDecodeError,
    ResponseTooLargeError,
    ResponseValidationError,
    ServerError,
    TransportError,
    UnexpectedAuditEvents,
    UnprocessableEntityError,
)
from ._payloads import PayloadRegistry
from ._polling import PollRecord
from ._retry import RetryDetails, RetryHook, RetryPolicy
from ._sync import AuditClient
from ._wait import AuditEvents, WaitStats, default_timeout
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
    "AuditClient",
    "AuditError",
    "AuditEvent",
    "AuditEventPage",
    "AuditEventRequest",
    "AuditEvents",
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
    "DataStorageConnectionError",
    "DataStorageError",
    "DataStorageTimeoutError",
    "EventCategory",
    "EventOutcome",
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
    "TransportError",
    "UnexpectedAuditEvents",
    "UnprocessableEntityError",
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


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("kubernaut-audit")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
