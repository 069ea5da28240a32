"""kubernaut-audit: query Kubernaut's Data Storage audit trail and wait for audit events."""

from __future__ import annotations

from typing import Any

from ._client import AsyncAuditClient
from ._exceptions import (
    AuditError,
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
    UnprocessableEntityError,
)
from ._retry import RetryDetails, RetryHook, RetryPolicy
from ._sync import AuditClient
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
    "AuthenticationError",
    "BadRequestError",
    "BatchPartiallyStoredError",
    "BatchResult",
    "ConfigurationError",
    "CreateResult",
    "DataStorageConnectionError",
    "DataStorageError",
    "DataStorageTimeoutError",
    "EventCategory",
    "EventOutcome",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
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
    "UnprocessableEntityError",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("kubernaut_audit."):
        try:
            _obj.__module__ = "kubernaut_audit"
        except (AttributeError, TypeError):
            pass


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("kubernaut-audit")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
