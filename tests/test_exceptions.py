"""The exception tree: shape, attributes, pickling."""

from __future__ import annotations

import json
import pickle

import pytest

import kubernaut_audit as ka
from kubernaut_audit import (
    AuditError,
    BatchPartiallyStoredError,
    ConfigurationError,
    DataStorageError,
    RequestInfo,
    ResponseDecodeError,
    ResponseTooLargeError,
    ServerError,
)
from kubernaut_audit._exceptions import status_error_class
from kubernaut_audit.models import RFC7807Problem

INFO = RequestInfo("GET", "http://ds.test/api/v1/audit/events?limit=100", "rid-9")


@pytest.mark.parametrize("name", [n for n in ka.__all__ if n.endswith(("Error", "Timeout"))])
def test_every_exception_under_audit_error(name: str) -> None:
    """Every public exception derives from AuditError."""
    cls = getattr(ka, name)
    assert issubclass(cls, AuditError)


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (ka.BadRequestError, DataStorageError),
        (ka.ServerError, DataStorageError),
        (ka.TransportConnectionError, ka.TransportError),
        (ka.TransportTimeoutError, ka.TransportError),
        (ResponseTooLargeError, ResponseDecodeError),
        (ConfigurationError, ValueError),
        (ka.AuditWaitError, AssertionError),
        (ka.AuditWaitTimeout, ka.AuditWaitError),
    ],
)
def test_tree_shape(child: type[BaseException], parent: type[BaseException]) -> None:
    """The tree is as drawn in the module docstring."""
    assert issubclass(child, parent)


def test_unlisted_4xx_is_plain_data_storage_error() -> None:
    """A status without its own class maps to DataStorageError."""
    assert status_error_class(409) is DataStorageError
    assert status_error_class(599) is ServerError


def test_request_info_str_names_request() -> None:
    """RequestInfo reads as 'METHOD URL (request id ...)'."""
    assert str(INFO) == "GET http://ds.test/api/v1/audit/events?limit=100 (request id rid-9)"


def test_status_error_pickles_with_problem() -> None:
    """A status error survives pickling with its status, problem and request."""
    problem = RFC7807Problem.model_validate(
        {"type": "t", "title": "Bad", "status": 400, "field_errors": {"a": "b"}}
    )
    err = ka.BadRequestError(
        "boom", request=INFO, status_code=400, problem=problem, retry_after=1.5
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ka.BadRequestError
    assert (str(back), back.status_code, back.request, back.retry_after) == (
        "boom",
        400,
        INFO,
        1.5,
    )
    assert back.field_errors == {"a": "b"}


def test_batch_error_pickles() -> None:
    """BatchPartiallyStoredError keeps its ids and unsent count through pickling."""
    import uuid

    ids = [uuid.uuid4()]
    back = pickle.loads(pickle.dumps(BatchPartiallyStoredError("partial", event_ids=ids, unsent=3)))
    assert (back.event_ids, back.unsent) == (ids, 3)


def test_repr_is_short() -> None:
    """A status error's repr names the class, status and request only."""
    err = ServerError("x" * 10_000, request=INFO, status_code=503)
    assert repr(err) == f"ServerError(status_code=503, request={INFO})"


def test_field_errors_empty_without_problem() -> None:
    """field_errors is an empty dict when there is no problem report."""
    err = DataStorageError("x", status_code=418)
    assert err.field_errors == {}
    assert (err.title, err.detail, err.type, err.instance) == (None, None, None, None)


def test_field_errors_is_a_copy() -> None:
    """Mutating field_errors does not change the problem."""
    problem = RFC7807Problem.model_validate(
        json.loads('{"type":"t","title":"T","status":400,"field_errors":{"a":"b"}}')
    )
    err = DataStorageError("x", status_code=400, problem=problem)
    err.field_errors["c"] = "d"
    assert err.field_errors == {"a": "b"}
