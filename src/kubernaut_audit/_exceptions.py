"""The SDK's exceptions: one tree, no httpx or tenacity type ever reaches the caller.

::

    AuditError
    ├── ConfigurationError            (also ValueError) no server address, bad settings
    ├── TransportError                the request did not get an HTTP answer
    │   ├── TransportConnectionError      refused, reset, DNS, dropped mid-body
    │   └── TransportTimeoutError         connect/read/write/pool timeout
    ├── DataStorageError              the server answered with an error status
    │   ├── BadRequestError               400
    │   ├── AuthenticationError           401
    │   ├── PermissionDeniedError         403
    │   ├── NotFoundError                 404
    │   ├── PayloadTooLargeError          413
    │   ├── UnprocessableEntityError      422
    │   ├── RateLimitError                429
    │   └── ServerError                   5xx
    ├── ResponseDecodeError           a 2xx body that is not the JSON we expect
    │   └── ResponseTooLargeError         the body passed the size cap
    ├── ResponseValidationError       JSON of the wrong shape (pydantic error as __cause__)
    ├── BatchPartiallyStoredError     a chunked batch write failed after earlier chunks stored
    └── AuditWaitError                (also AssertionError) a wait's expectation failed
        ├── AuditWaitTimeout              the expected events did not arrive in time
        └── UnexpectedAuditEvents         too many, or unwanted, events arrived
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from ._generated.models import RFC7807Problem

__all__ = [
    "AuditError",
    "AuditWaitError",
    "AuditWaitTimeout",
    "AuthenticationError",
    "BadRequestError",
    "BatchPartiallyStoredError",
    "ConfigurationError",
    "DataStorageError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestInfo",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "ServerError",
    "TransportConnectionError",
    "TransportError",
    "TransportTimeoutError",
    "UnexpectedAuditEvents",
    "UnprocessableEntityError",
]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What was asked: carried by every error instead of the raw request (which holds headers)."""

    method: str
    url: str
    request_id: str | None = None

    def __str__(self) -> str:
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.method} {self.url}{rid}"


class AuditError(Exception):
    """Base of every error the SDK raises."""

    def __init__(self, message: str, *, request: RequestInfo | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default pickling; rebuild from state.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[AuditError], args: tuple[Any, ...], state: dict[str, Any]) -> AuditError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class ConfigurationError(AuditError, ValueError):
    """The client is missing a setting (such as the server address) or one is invalid."""


class TransportError(AuditError):
    """The request got no HTTP response.

    ``request_sent`` is False when the connection was never made (nothing reached the server),
    which makes even a write safe to retry.
    """

    def __init__(
        self, message: str, *, request: RequestInfo | None = None, request_sent: bool = True
    ) -> None:
        super().__init__(message, request=request)
        self.request_sent = request_sent


class TransportConnectionError(TransportError):
    """Could not connect, or the connection broke before the response was complete.

    .. versionadded:: 0.2.0
       Replaces ``DataStorageConnectionError`` (deprecated; the same class), whose name
       promised a :class:`DataStorageError` it is not.
    """


class TransportTimeoutError(TransportError):
    """A connect, read, write or pool timeout expired.

    .. versionadded:: 0.2.0
       Replaces ``DataStorageTimeoutError`` (deprecated; the same class), whose name
       promised a :class:`DataStorageError` it is not.
    """


class DataStorageError(AuditError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status.
        problem: the parsed RFC 7807 body, or None when the body was not one.
        title, detail, type, instance, field_errors: the problem's members (None when absent).
        body: an excerpt of a body that was not a problem report (a proxy's HTML page, say).
        retry_after: seconds the server asked us to wait, when it did.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status_code: int,
        problem: RFC7807Problem | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code
        self.problem = problem
        self.body = body
        self.retry_after = retry_after

    @property
    def title(self) -> str | None:
        return self.problem.title if self.problem else None

    @property
    def detail(self) -> str | None:
        return self.problem.detail if self.problem else None

    @property
    def type(self) -> str | None:
        return self.problem.type if self.problem else None

    @property
    def instance(self) -> str | None:
        return self.problem.instance if self.problem else None

    @property
    def field_errors(self) -> dict[str, str]:
        return dict(self.problem.field_errors or {}) if self.problem else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, request={self.request!s})"


class BadRequestError(DataStorageError):
    """400: the request failed the server's validation."""


class AuthenticationError(DataStorageError):
    """401: no valid bearer token."""


class PermissionDeniedError(DataStorageError):
    """403: the token's identity is not allowed to do this."""


class NotFoundError(DataStorageError):
    """404: no such path (is the URL pointing at Data Storage?)."""


class PayloadTooLargeError(DataStorageError):
    """413: the request body is over the server's cap."""


class UnprocessableEntityError(DataStorageError):
    """422: the server understood the request but cannot process it."""


class RateLimitError(DataStorageError):
    """429: too many requests; ``retry_after`` says how long to back off."""


class ServerError(DataStorageError):
    """5xx: the server (or a proxy in front of it) failed."""


class ResponseDecodeError(AuditError):
    """A success response whose body is not the JSON we expect (HTML, truncated, not UTF-8...)."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status_code: int,
        content_type: str | None,
        excerpt: str,
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code
        self.content_type = content_type
        self.excerpt = excerpt


class ResponseTooLargeError(ResponseDecodeError):
    """The response body passed the client's size cap; reading stopped there."""


class ResponseValidationError(AuditError):
    """The response is JSON but not of the documented shape; ``__cause__`` is pydantic's error."""


class BatchPartiallyStoredError(AuditError):
    """A batch split into chunks failed part way: ``event_ids`` were stored, the rest were not.

    ``__cause__`` is the error of the failing chunk; ``unsent`` counts the events not stored.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        event_ids: list[UUID],
        unsent: int,
    ) -> None:
        super().__init__(message, request=request)
        self.event_ids = event_ids
        self.unsent = unsent


_STATUS_ERRORS: dict[int, type[DataStorageError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[DataStorageError]:
    """The exception class for an error status."""
    if status_code >= 500:
        return ServerError
    return _STATUS_ERRORS.get(status_code, DataStorageError)


class AuditWaitError(AuditError, AssertionError):
    """A wait's expectation failed; pytest reports it as a FAIL, not an ERROR.

    Attributes:
        correlation_id: the correlation id waited on.
        expectation: what was expected, in words.
        events: every event seen for the correlation id (matching or not), oldest first.
        matched: the events that matched the filters and predicate.
        polls: the poll history (:class:`PollRecord` items).
        elapsed: seconds from the start of the wait.
        last_error: the last transient error met, if any.
        flush_interval: the writer flush interval the wait assumed.
    """

    def __init__(
        self,
        message: str,
        *,
        correlation_id: str,
        expectation: str,
        events: list[Any],
        matched: list[Any],
        polls: list[Any],
        elapsed: float,
        last_error: AuditError | None,
        flush_interval: float,
    ) -> None:
        super().__init__(message)
        self.correlation_id = correlation_id
        self.expectation = expectation
        self.events = events
        self.matched = matched
        self.polls = polls
        self.elapsed = elapsed
        self.last_error = last_error
        self.flush_interval = flush_interval


class AuditWaitTimeout(AuditWaitError):
    """The expected audit events did not all arrive before the wait's timeout."""


class UnexpectedAuditEvents(AuditWaitError):
    """More events, or other events, arrived than the wait allowed."""
