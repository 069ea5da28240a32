"""The audit-event operations without I/O: each request as built, each answer as read."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from kubernaut_audit import (
    AuthenticationError,
    BatchPartiallyStoredError,
    RequestInfo,
    ServerError,
    TransportConnectionError,
)
from kubernaut_audit._core import Response
from kubernaut_audit._operations import (
    BATCH_PATH,
    EVENTS_PATH,
    MAX_BATCH_BYTES,
    batch_chunks,
    create_batch,
    create_event,
    means_not_ready,
    partial_batch_error,
    query_page,
    ready,
)
from kubernaut_audit._query import make_filters

EventFactory = Callable[..., dict[str, Any]]
INFO = RequestInfo("GET", "http://ds.test/x", "rid-1")
JSON = {"content-type": "application/json"}


def _answer(status: int, body: Any) -> Response:
    return Response(status, JSON, json.dumps(body).encode(), INFO)


def test_query_page_is_an_idempotent_get_with_its_parameters() -> None:
    """A page query is a retryable GET of the events path with filters, limit and offset."""
    op = query_page(make_filters(correlation_id="rr-1"), 50, 100)
    assert (op.method, op.path, op.body, op.idempotent, op.write) == (
        "GET",
        EVENTS_PATH,
        None,
        True,
        False,
    )
    assert list(op.params) == [("correlation_id", "rr-1"), ("limit", 50), ("offset", 100)]


def test_query_page_reads_events_and_pagination(stored_event: EventFactory) -> None:
    """The answer reads as a typed page; pagination the server omits comes from the request."""
    op = query_page(make_filters(correlation_id="rr-1"), 50, 100)
    page = op.decode(_answer(200, {"data": [stored_event()]}))
    assert (len(page), page.limit, page.offset, page.total, page.has_more) == (
        1,
        50,
        100,
        1,
        False,
    )


def test_create_event_is_a_write(request_event: EventFactory) -> None:
    """One event is a POST of its JSON, idempotent only when the caller opts in."""
    op = create_event(request_event(), retry_writes=False)
    assert (op.method, op.path, op.write, op.idempotent) == ("POST", EVENTS_PATH, True, False)
    assert op.body is not None
    assert json.loads(op.body)["event_type"] == "gateway.signal.received"
    assert create_event(request_event(), retry_writes=True).idempotent


def test_create_event_validates_before_building(request_event: EventFactory) -> None:
    """An invalid event is refused when the operation is built, before anything is sent."""
    with pytest.raises(pydantic.ValidationError):
        create_event(request_event(event_outcome="maybe"), retry_writes=False)


def test_create_event_reads_202_as_not_stored(request_event: EventFactory) -> None:
    """A 202 answer reads as parked, not stored."""
    op = create_event(request_event(), retry_writes=False)
    result = op.decode(_answer(202, {"status": "accepted", "message": "queued"}))
    assert (result.stored, result.status_code, result.message) == (False, 202, "queued")


def test_batch_chunks_at_500_events(request_event: EventFactory) -> None:
    """1,001 small events take three chunks: 500, 500 and 1."""
    chunks = batch_chunks([request_event() for _ in range(1001)])
    assert [len(c) for c in chunks] == [500, 500, 1]


def test_batch_chunks_by_bytes(request_event: EventFactory) -> None:
    """Large events are cut into chunks under the byte cap, whatever their count."""
    big = request_event(event_data={"event_type": "x", "blob": "a" * 500_000})
    chunks = batch_chunks([big] * 20)
    assert len(chunks) > 1
    assert all(2 + sum(len(e) + 1 for e in c) <= MAX_BATCH_BYTES for c in chunks)
    assert sum(len(c) for c in chunks) == 20


def test_batch_chunk_is_a_json_array(request_event: EventFactory) -> None:
    """A chunk is POSTed as one JSON array to the batch path; the answer reads as its ids."""
    (chunk,) = batch_chunks([request_event(), request_event()])
    op = create_batch(chunk, retry_writes=False)
    assert op.path == BATCH_PATH
    assert op.body is not None
    assert len(json.loads(op.body)) == 2
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    answer = {"event_ids": ids, "message": "ok"}
    assert [str(i) for i in op.decode(_answer(201, answer))] == ids


def test_partial_batch_error_counts_what_was_not_sent() -> None:
    """A failure at a later chunk reports the stored ids and the events not stored."""
    stored = [uuid.uuid4()]
    chunks = [[b"{}"], [b"{}", b"{}"], [b"{}"]]
    cause = ServerError("boom", request=INFO, status_code=503)
    err = partial_batch_error(cause, index=1, chunks=chunks, stored=stored)
    assert isinstance(err, BatchPartiallyStoredError)
    assert (err.event_ids, err.unsent, err.request) == (stored, 3, INFO)
    assert "chunk 2 of 3" in str(err)


def test_ready_reads_200_as_ready() -> None:
    """/readyz answering 200 means ready."""
    assert ready().decode(Response(200, {}, b"", INFO)) is True


@pytest.mark.parametrize(
    ("error", "not_ready"),
    [
        (ServerError("x", request=INFO, status_code=503), True),
        (TransportConnectionError("x", request=INFO), True),
        (ServerError("x", request=INFO, status_code=500), False),
        (AuthenticationError("x", request=INFO, status_code=401), False),
    ],
)
def test_which_errors_mean_not_ready(error: Exception, not_ready: bool) -> None:
    """A 503 or no answer at all means 'not ready'; other errors are errors."""
    assert isinstance(error, ServerError | AuthenticationError | TransportConnectionError)
    assert means_not_ready(error) is not_ready
